/**
 * Every SQL statement of the Postgres adapter, as pure functions of the schema name (the pg-boss way): no
 * string is built from user data, only from a validated schema identifier. Values always travel as
 * parameters; batches travel as arrays and are expanded with `unnest`, so a batch is one statement.
 */

export const DEFAULT_SCHEMA = 'zta_webhooks';
/**
 * The largest due window (see `dueWindow`), written into the statements as a constant: a LIMIT given as a
 * parameter is estimated at 10% of the table in a cached generic plan, so without a constant bound the
 * estimated cost of every claim and `nextDueAt` grows with the backlog (measured: about 8,000 and 9,400 at
 * a million pending deliveries, in proportion to it). Past `jit_above_cost` (100,000 by default), about
 * ten million by extrapolation, Postgres would JIT-compile each call (~130 ms, measured on another
 * statement) just when a backlog is being worked off. With a bound of 4096: about 1,500 and 500 at a million.
 * 512 since: a cached generic plan is only used while its estimated cost is below the average of the custom
 * plans Postgres made before, and with 4096 it was not for small claims, so every claim was planned again
 * (0.6-0.7 ms a claim; BENCHMARKS.md, 2026-11-27). A window that cannot decide falls back to the per-webhook
 * scan, so a smaller bound costs large claims nothing in correctness.
 */
export const MAX_DUE_WINDOW = 512;

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]*$/;
/** Leaves room for the channel suffix within Postgres' 63-byte identifier limit. */
const MAX_SCHEMA_LENGTH = 48;

/** The statuses a delivery can no longer leave by itself: what retention may delete. */
export const FINISHED_STATUSES = ['succeeded', 'failed', 'discarded'] as const;

/** Validates a schema name and returns it as a quoted identifier. */
export function quoteSchema(schema: string): string {
  if (typeof schema !== 'string' || !SCHEMA_PATTERN.test(schema) || schema.length > MAX_SCHEMA_LENGTH) {
    throw new TypeError(
      `Invalid schema name ${JSON.stringify(schema)}: use lower-case letters, digits and underscores ` +
        `(${SCHEMA_PATTERN.source}), at most ${MAX_SCHEMA_LENGTH} characters`,
    );
  }
  return `"${schema}"`;
}

/** The LISTEN/NOTIFY channel on which a schema announces deliveries that may have become due. */
export function channelName(schema: string): string {
  quoteSchema(schema);
  return `${schema}.due`;
}

/** `$1`: the channel. A wake-up on its own, after a write on the pool has committed. */
export function notify(): string {
  return "SELECT pg_notify($1, '')";
}

/** `LISTEN "<schema>.due"` (the channel is an identifier, so it cannot be a parameter). */
export function listen(schema: string): string {
  return `LISTEN "${channelName(schema)}"`;
}

// ---------------------------------------------------------------------------------------------------------
// Migrations: the version table and the advisory lock that serialises concurrent `migrate()` calls.
// ---------------------------------------------------------------------------------------------------------

/** The key of the transaction-level advisory lock held while migrating this schema. */
export function migrationLockKey(schema: string): string {
  quoteSchema(schema);
  return `zta_webhooks:migrate:${schema}`;
}

/** Turns the transaction's lock and statement timeouts off, and returns what they were (`lock`, `statement`). */
export function liftTimeouts(): string {
  return `SELECT current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS statement,
  set_config('lock_timeout', '0', true), set_config('statement_timeout', '0', true)`;
}

/** `$1`, `$2`: the lock and statement timeouts `liftTimeouts` returned, for the rest of the transaction. */
export function restoreTimeouts(): string {
  return `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`;
}

/** `$1`: `migrationLockKey(schema)`. Waits until no other session is migrating this schema. */
export function lockMigrations(): string {
  return 'SELECT pg_advisory_xact_lock(hashtext($1))';
}

export function createSchema(schema: string): string {
  return `CREATE SCHEMA IF NOT EXISTS ${quoteSchema(schema)}`;
}

export function createVersionTable(schema: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteSchema(schema)}.schema_version (
  version integer PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;
}

export function selectVersion(schema: string): string {
  return `SELECT coalesce(max(version), 0) AS version FROM ${quoteSchema(schema)}.schema_version`;
}

/** Whether the version table exists yet (without creating it): `$1` is the schema name. */
export function versionTableExists(): string {
  return `SELECT to_regclass(format('%I.schema_version', $1::text)) IS NOT NULL AS exists`;
}

/** Plain SQL (no parameters), so it can be part of a script for an external migration tool. */
export function insertVersion(schema: string, version: number): string {
  if (!Number.isInteger(version) || version < 1) throw new TypeError(`Invalid schema version ${version}`);
  return `INSERT INTO ${quoteSchema(schema)}.schema_version (version) VALUES (${version}) ON CONFLICT DO NOTHING`;
}

// ---------------------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------------------

/**
 * Taken before counting a site's webhooks, so that concurrent creates for one site (from any connection
 * or process) count and insert one after another. `$1` schema, `$2` site id. The two-key form keeps these
 * locks apart from single-key advisory locks an application may use.
 */
export function lockSite(): string {
  return 'SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))';
}

/**
 * Inserts the webhook unless its site already has `$13` webhooks; returns a row only when it inserted.
 * `$14`-`$16`: previous secret, its expiry, signature schemes.
 * Run after `lockSite` in the same transaction: the count then sees every committed competitor.
 */
export function insertWebhook(schema: string): string {
  const s = quoteSchema(schema);
  return `INSERT INTO ${s}.webhooks (id, site_id, url, events, description, secret, active, disabled_reason,
  consecutive_failures, created_at, updated_at, last_triggered, previous_secret, previous_secret_expires_at,
  signature_schemes)
SELECT $1, $2, $3, $4::text[], $5, $6, $7, $8, $9, $10, $11, $12, $14, $15, $16::text[]
WHERE (SELECT count(*) FROM ${s}.webhooks WHERE site_id = $2) < $13::integer
RETURNING id`;
}

export function selectWebhook(schema: string): string {
  return `SELECT * FROM ${quoteSchema(schema)}.webhooks WHERE id = $1`;
}

export function selectSiteWebhooks(schema: string): string {
  return `SELECT * FROM ${quoteSchema(schema)}.webhooks WHERE site_id = $1 ORDER BY created_at, id`;
}

/** `$1` the id to continue after (null: from the start), `$2` the page size. */
export function selectAllWebhooks(schema: string): string {
  return `SELECT * FROM ${quoteSchema(schema)}.webhooks WHERE $1::text IS NULL OR id > $1::text ORDER BY id LIMIT $2`;
}

/** `$1` site, `$2` event type. */
export function selectSubscribers(schema: string): string {
  return `SELECT ${WEBHOOK_COLUMNS.join(', ')} FROM ${quoteSchema(schema)}.webhooks
WHERE site_id = $1 AND active AND $2 = ANY (events)
ORDER BY created_at, id`;
}

/**
 * `$1` id, `$2` the patch as JSON with snake_case keys (a key present means "set this column"), `$3` the
 * patch's `updatedAt`. When the patch makes an active webhook inactive, its pending deliveries become
 * `discarded` in the same statement (`discard_pending`, see the migration). The row is locked first so that
 * `was_active` is the value this update replaces, not a stale snapshot.
 */
export function updateWebhook(schema: string): string {
  const s = quoteSchema(schema);
  const set = (column: string, value: string) =>
    `${column} = CASE WHEN $2::jsonb ? '${column}' THEN ${value} ELSE w.${column} END`;
  // `$4`: the secret the change expects (WebhookPatch.ifSecret) or null; `$5`: whether it expects a previous
  // secret, `$6` (ifPreviousSecret, null: none). Checked under the row lock, on the row's latest version
  // once a concurrent change has committed. Disabling discards the webhook's pending deliveries, and so does
  // enabling it again: whatever is pending then was left while it was inactive (released by a stopping
  // worker, or inserted by an outbox transaction that committed after the disable), and is stale, as is a
  // claim whose lease ran out meanwhile (its worker died; `ended_leases`).
  return `WITH old AS (
  SELECT id, active FROM ${s}.webhooks
  WHERE id = $1 AND ($4::text IS NULL OR secret = $4)
    AND (NOT $5::boolean OR previous_secret IS NOT DISTINCT FROM $6::text)
  FOR NO KEY UPDATE
),
updated AS (
  UPDATE ${s}.webhooks w SET
    ${set('url', "$2::jsonb ->> 'url'")},
    ${set('events', "ARRAY(SELECT jsonb_array_elements_text($2::jsonb -> 'events'))")},
    ${set('description', "$2::jsonb ->> 'description'")},
    ${set('secret', "$2::jsonb ->> 'secret'")},
    ${set('previous_secret', "$2::jsonb ->> 'previous_secret'")},
    ${set('previous_secret_expires_at', "($2::jsonb ->> 'previous_secret_expires_at')::timestamptz")},
    ${set(
      'signature_schemes',
      `CASE WHEN jsonb_typeof($2::jsonb -> 'signature_schemes') = 'array'
        THEN ARRAY(SELECT jsonb_array_elements_text($2::jsonb -> 'signature_schemes')) END`,
    )},
    ${set('active', "($2::jsonb ->> 'active')::boolean")},
    ${set('disabled_reason', "$2::jsonb ->> 'disabled_reason'")},
    ${set('consecutive_failures', "($2::jsonb ->> 'consecutive_failures')::integer")},
    updated_at = $3
  FROM old
  WHERE w.id = old.id
  RETURNING w.*, old.active AS was_active
),
ended_leases AS (
  UPDATE ${s}.deliveries d
  SET status = 'discarded', next_attempt_at = NULL, lease_expires_at = NULL, updated_at = $3
  FROM updated u
  WHERE NOT u.was_active AND u.active
    AND d.webhook_id = u.id AND d.status = 'delivering' AND d.lease_expires_at <= $3
  RETURNING 1
),
-- After ended_leases (it counts its rows first): the function's own snapshot then sees what that UPDATE
-- changed, instead of the UPDATE finding a row that the function changed first (a release that committed
-- meanwhile made it pending), which Postgres refuses ("tuple already modified", 27000).
discarded (n) AS MATERIALIZED (
  SELECT ${s}.discard_pending(u.id, $3, '{}') FROM updated u
  WHERE u.was_active <> u.active AND (SELECT count(*) FROM ended_leases) >= 0
)
SELECT u.*, (SELECT sum(n) FROM discarded) AS discarded FROM updated u`;
}

/** Deliveries and their attempts go with it (ON DELETE CASCADE). */
export function deleteWebhook(schema: string): string {
  return `DELETE FROM ${quoteSchema(schema)}.webhooks WHERE id = $1 RETURNING id`;
}

// ---------------------------------------------------------------------------------------------------------
// The delivery queue
// ---------------------------------------------------------------------------------------------------------

/**
 * Sends the wake-up notification when `$n` (the channel) is not null and the CTE `source` produced a row.
 * `pg_notify` inside the writing statement means it is delivered only when that transaction commits: also
 * when the transaction is the caller's own (the outbox).
 */
function notifyIf(source: string, channelParam: string): string {
  return `SELECT pg_notify(${channelParam}, '') FROM (SELECT 1 FROM ${source} LIMIT 1) AS changed
WHERE ${channelParam}::text IS NOT NULL`;
}

/**
 * One multi-row insert from 13 parallel arrays; `$14` channel or null. Returns the ids inserted and sends
 * the notification (once: an uncorrelated sub-select) only if there is one. Deliveries of webhooks that no
 * longer exist are left out rather than failing the caller's transaction on the foreign key, and so are
 * those of webhooks disabled since the caller looked up subscribers (the disable discarded the webhook's
 * pending deliveries; one inserted after it would wait for a re-enable and then go out stale). A disable
 * that commits before this insert does (during the statement, or before an outbox caller's commit) is not
 * seen here; re-enabling discards what it left. The webhooks are locked
 * FOR KEY SHARE first (the lock the foreign-key check takes anyway): a webhook whose DELETE has not
 * committed yet is waited for and then left out, where a plain EXISTS would still see it and the foreign
 * key would then fail the statement, and with it an outbox caller's transaction.
 */
export function insertDeliveries(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH live AS MATERIALIZED (
  SELECT id FROM ${s}.webhooks WHERE id = ANY ($2::text[]) AND active FOR KEY SHARE
),
inserted AS (
  INSERT INTO ${s}.deliveries (id, webhook_id, site_id, event, body, status, attempts, next_attempt_at,
    lease_expires_at, last_status_code, last_error, created_at, updated_at)
  SELECT r.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::integer[],
      $8::timestamptz[], $9::timestamptz[], $10::integer[], $11::text[], $12::timestamptz[], $13::timestamptz[])
    AS r(id, webhook_id, site_id, event, body, status, attempts, next_attempt_at, lease_expires_at,
      last_status_code, last_error, created_at, updated_at)
  WHERE r.webhook_id IN (SELECT id FROM live)
  RETURNING id
)
SELECT i.id, (SELECT count(*) FROM (${notifyIf('inserted', '$14')}) n) AS notified FROM inserted i`;
}

/**
 * The first `limit` pending deliveries in due order, from `deliveries_due_idx` (next_attempt_at) INCLUDE
 * (webhook_id) WHERE status = 'pending': an index-only range scan that stops after `limit` entries. The outer
 * constant LIMIT changes no result (`limit` is at most `MAX_DUE_WINDOW`); it caps the planner's estimate.
 */
function dueWindowCte(s: string, dueBefore: string | null, limit: string): string {
  return `due_window AS MATERIALIZED (
  SELECT * FROM (
    SELECT webhook_id, next_attempt_at AS due FROM ${s}.deliveries
    WHERE status = 'pending'${dueBefore === null ? '' : ` AND next_attempt_at <= ${dueBefore}`}
    ORDER BY next_attempt_at
    LIMIT ${limit}
  ) w
  LIMIT ${MAX_DUE_WINDOW}
)`;
}

/**
 * A skip scan: the earliest pending due time of each webhook that has pending deliveries, one index probe
 * per webhook on `deliveries_webhook_due_idx` (webhook_id, next_attempt_at) WHERE status = 'pending'. Each
 * step jumps straight past the previous webhook's entries, so the cost is one probe per webhook with
 * pending work, however many deliveries each has. Only evaluated when the due window cannot decide.
 */
function headsCte(s: string): string {
  return `heads (webhook_id, due) AS (
  (SELECT webhook_id, next_attempt_at FROM ${s}.deliveries
    WHERE status = 'pending'
    ORDER BY webhook_id, next_attempt_at LIMIT 1)
  UNION ALL
  SELECT following.webhook_id, following.next_attempt_at
  FROM heads h
  CROSS JOIN LATERAL (
    SELECT webhook_id, next_attempt_at FROM ${s}.deliveries
    WHERE status = 'pending' AND webhook_id > h.webhook_id
    ORDER BY webhook_id, next_attempt_at LIMIT 1
  ) following
)`;
}

/** Free slots of a webhook: the per-webhook limit `$3` (null: none) minus `busy`, at most the limit `$2`. */
function slots(busy: string): string {
  return `CASE WHEN $3::integer IS NULL THEN $2::integer
    ELSE least($2::integer, $3::integer - coalesce(${busy}, 0)) END`;
}

/**
 * Claims up to `$2` deliveries in one statement. Parameters: `$1` now, `$2` limit, `$3` per-webhook limit
 * (null: none), `$4`/`$5` busy webhook ids and their in-flight counts, `$6` the lease expiry, `$7` the size of
 * the due window (a few times `$2`), `$8` the most any one webhook can get (`$2`, or `$3` if smaller).
 *
 * The plan, and why its cost stays flat as the backlog grows:
 * 1. Which webhooks can have deliveries among the `$2` earliest? Usually the due window answers: the first
 *    `$7` due deliveries in due order (an index-only scan of `$7` entries). If it holds every due delivery
 *    (fewer than `$7`), or at least `$2` that the per-webhook caps allow, then at least `$2` claimable
 *    deliveries are due no later than its end, so the answer lies inside it (plus expired leases, which
 *    are always candidates: a lease taking a slot only displaces a later delivery of the same webhook),
 *    and its webhooks are the only candidates. Only when capped webhooks' backlogs fill the window does
 *    the statement fall back to the skip scan over all webhooks with pending work (`heads`); a one-time
 *    filter keeps the unused path from running at all. `expired` reads only the expired leases, from
 *    `deliveries_lease_idx`.
 * 2. `due_hooks` keeps the candidate webhooks that are active and have a free slot, and only the `$2` with
 *    the earliest due time: the `$2` earliest deliveries overall can come from no other webhooks.
 * 3. `picked` takes, per such webhook, a LATERAL `ORDER BY next_attempt_at LIMIT slots FOR UPDATE SKIP
 *    LOCKED` on `deliveries_webhook_due_idx` (webhook_id, next_attempt_at): a range scan that stops after
 *    `slots` rows, so a webhook with a million due deliveries costs what one with ten does, and never hides
 *    the others. Rows another worker holds are skipped, not waited for. Expired leases are taken the same
 *    way (a one-time filter skips that scan for webhooks without any). Then the overall `ORDER BY due
 *    LIMIT $2`. When the window decides, `window_take` has already counted how many of each webhook's
 *    window rows are among the `$2` earliest the caps allow, and the pending scan stops there instead of at
 *    `slots`: it locks about `$2` rows rather than up to `$2` × `slots`, so rows it would not claim are
 *    neither locked (and skipped by other workers' claims meanwhile) nor written to. Rows another worker
 *    holds are skipped and the scan takes that webhook's next ones, so the count still comes out whole.
 * 4. One UPDATE moves the picked rows to `delivering` under the lease and returns them with their webhooks.
 * Why the pending scan bounds its due time as the row `(webhook_id, next_attempt_at) <= (h.id, $1)` rather
 * than as `next_attempt_at <= $1`: given the latter, Postgres may read the scan from `deliveries_due_idx` in
 * due order, filtering on the webhook, which it costs as cheap when the heap is in due order (it is, for
 * first attempts). While a webhook at its limit holds the earliest due deliveries, that walks through its
 * whole backlog once per other webhook (156 ms per claim behind 100,000; `store.test.ts`). The row bound is
 * an index condition only for an index led by (webhook_id, next_attempt_at), so there the scan is costed
 * as reading just that webhook's due rows, while the due-order index is left with none. (The row alone,
 * without the equality, let Postgres sort the webhook's rows from the activity log's index instead.)
 * The constant outer `LIMIT $8` around each per-webhook scan changes no result (`slots` <= `$8`); it tells
 * the planner how few rows a scan returns. Without it the estimate grows with the table (a LIMIT of an
 * outer column is costed as 10% of the rows), and past `jit_above_cost` Postgres would spend tens of
 * milliseconds JIT-compiling a statement that runs in a few.
 * Cost: O($7 + claimed rows) normally; O(webhooks with pending work + claimed rows) in the fallback. Neither
 * depends on how many deliveries are pending.
 */
export function claimDeliveries(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH RECURSIVE ${headsCte(s)},
busy (webhook_id, n) AS (
  SELECT * FROM unnest($4::text[], $5::integer[])
),
expired (webhook_id, due) AS (
  SELECT webhook_id, min(lease_expires_at) FROM ${s}.deliveries
  WHERE status = 'delivering' AND lease_expires_at <= $1
  GROUP BY webhook_id
),
${dueWindowCte(s, '$1', '$7')},
window_hooks AS MATERIALIZED (
  SELECT webhook_id, min(due) AS due, count(*) AS n FROM due_window GROUP BY webhook_id
),
path AS MATERIALIZED (
  SELECT (SELECT count(*) FROM due_window) < $7
    OR (SELECT coalesce(sum(greatest(0, least(h.n, ${slots('b.n')}))), 0)
        FROM window_hooks h
        JOIN ${s}.webhooks w ON w.id = h.webhook_id AND w.active
        LEFT JOIN busy b ON b.webhook_id = h.webhook_id) >= $2
    AS windowed
),
window_take AS MATERIALIZED (
  SELECT t.webhook_id, count(*) AS take FROM (
    SELECT r.webhook_id FROM (
      SELECT webhook_id, due, row_number() OVER (PARTITION BY webhook_id ORDER BY due) AS rank FROM due_window
    ) r
    JOIN ${s}.webhooks w ON w.id = r.webhook_id AND w.active
    LEFT JOIN busy b ON b.webhook_id = r.webhook_id
    WHERE r.rank <= ${slots('b.n')}
    ORDER BY r.due, r.webhook_id
    LIMIT $2
  ) t
  GROUP BY t.webhook_id
),
candidates (webhook_id, due, expired) AS (
  SELECT webhook_id, due, false FROM window_hooks WHERE (SELECT windowed FROM path)
  UNION ALL
  SELECT webhook_id, due, false FROM heads WHERE due <= $1 AND NOT (SELECT windowed FROM path)
  UNION ALL
  SELECT webhook_id, due, true FROM expired
),
due_hooks AS MATERIALIZED (
  SELECT x.webhook_id AS id, x.due, x.has_expired, x.slots,
    CASE WHEN (SELECT windowed FROM path) THEN least(x.slots, coalesce(t.take, 0)) ELSE x.slots END AS pending
  FROM (
    SELECT u.webhook_id, min(u.due) AS due, bool_or(u.expired) AS has_expired, ${slots('max(b.n)')} AS slots
    FROM candidates u
    LEFT JOIN busy b ON b.webhook_id = u.webhook_id
    GROUP BY u.webhook_id
  ) x
  JOIN ${s}.webhooks w ON w.id = x.webhook_id AND w.active
  LEFT JOIN window_take t ON t.webhook_id = x.webhook_id
  WHERE x.slots > 0
  ORDER BY x.due, x.webhook_id
  LIMIT $2
),
picked AS MATERIALIZED (
  SELECT c.id, c.due
  FROM due_hooks h
  CROSS JOIN LATERAL (
    SELECT both_kinds.id, both_kinds.due FROM (
      (SELECT p.id, p.next_attempt_at AS due FROM (
        SELECT id, next_attempt_at FROM ${s}.deliveries
        WHERE webhook_id = h.id AND (webhook_id, next_attempt_at) <= (h.id, $1) AND status = 'pending'
        ORDER BY next_attempt_at
        LIMIT h.pending
        FOR UPDATE SKIP LOCKED
      ) p LIMIT $8)
      UNION ALL
      (SELECT e.id, e.lease_expires_at FROM (
        SELECT id, lease_expires_at FROM ${s}.deliveries
        WHERE h.has_expired AND webhook_id = h.id AND status = 'delivering' AND lease_expires_at <= $1
        ORDER BY lease_expires_at
        LIMIT h.slots
        FOR UPDATE SKIP LOCKED
      ) e LIMIT $8)
    ) both_kinds
    ORDER BY both_kinds.due
    LIMIT h.slots
  ) c
  ORDER BY c.due, c.id
  LIMIT $2
),
claimed AS (
  UPDATE ${s}.deliveries d
  SET status = 'delivering', next_attempt_at = NULL, lease_expires_at = $6, updated_at = $1
  FROM picked p
  WHERE d.id = p.id
  RETURNING ${DELIVERY_COLUMNS.map((column) => `d.${column}`).join(', ')}, p.due AS claim_due
)
SELECT ${DELIVERY_COLUMNS.map((column) => `c.${column}`).join(', ')}, c.claim_due,
  ${prefixedWebhookColumns('w', 'w_')}
FROM claimed c
JOIN ${s}.webhooks w ON w.id = c.webhook_id
ORDER BY c.claim_due, c.id`;
}

/**
 * The columns `toDelivery` reads. Statements run as prepared statements name their columns instead of `*`,
 * so a later migration that adds a column cannot change their result type under a running process.
 */
export const DELIVERY_COLUMNS = [
  'id',
  'webhook_id',
  'site_id',
  'event',
  'body',
  'status',
  'attempts',
  'next_attempt_at',
  'lease_expires_at',
  'last_status_code',
  'last_error',
  'created_at',
  'updated_at',
] as const;

export const WEBHOOK_COLUMNS = [
  'id',
  'site_id',
  'url',
  'events',
  'description',
  'secret',
  'active',
  'disabled_reason',
  'consecutive_failures',
  'created_at',
  'updated_at',
  'last_triggered',
  'previous_secret',
  'previous_secret_expires_at',
  'signature_schemes',
] as const;

function prefixedWebhookColumns(alias: string, prefix: string): string {
  return WEBHOOK_COLUMNS.map((column) => `${alias}.${column} AS ${prefix}${column}`).join(', ');
}

/**
 * Records a batch of attempt outcomes in one statement (one round trip, one transaction). `$1`..`$15` and
 * `$17` are parallel arrays, one element per outcome in batch order; `$16` the channel or null; `$17` the
 * lease each attempt was made under, or null.
 *
 * An outcome whose lease no longer holds its delivery (`current` false: its worker stalled past the lease
 * and the delivery was claimed again or finished) is only recorded: it changes neither the delivery nor
 * the webhook's failure count, cannot disable it, and does not keep its delivery from being discarded. The
 * check reads each delivery row under a lock taken after its webhook's (`held`, `FOR NO KEY UPDATE`), so
 * it sees the row's latest version even when the statement first waited for a webhook lock (its snapshot
 * is older than that wait: a claim committed meanwhile would otherwise look not to have happened); the
 * delivery UPDATE checks it again.
 *
 * The webhooks of the batch are locked first, in id order (so concurrent batches queue for them in one
 * order; Postgres can still report a deadlock between two when a third batch updated one of their webhooks
 * in between, as this statement both locks and updates a webhook row: the store runs the victim again),
 * which makes the consecutive-failure count read here the one this statement replaces. The count
 * is then folded over the batch exactly as one-by-one completion would: `successes` numbers the runs that
 * a success starts (a success resets the count), `failures` is the count after each outcome, and
 * `disabled_at` is the first outcome that disables the webhook (a disable reason, or the count reaching
 * its maximum while the webhook was active). Outcomes whose webhook or delivery no longer exists are
 * dropped, as in the memory store. So are outcomes already recorded (the same delivery, attempt number and
 * start time): when a connection is lost after this statement committed but before its answer arrived,
 * the dispatcher retries the batch, and the retry must not record the attempts, or count failures, twice.
 * A delivery that would go back to `pending` on a webhook that is
 * inactive, or that this batch disables (before or after that outcome), is `discarded` instead, as are the
 * webhook's other pending ones (`discard_pending`, called only for a webhook this batch disables).
 * Sends the wake-up notification when a retry was scheduled.
 *
 * Why `OFFSET 0` in the delivery lookup (`held`, which also drops outcomes whose delivery is gone) and the
 * attempts check: it keeps each a per-outcome probe of the primary key and of `attempts_once_idx`. Without
 * it Postgres may turn them into hash joins over the whole table when its statistics say the table is
 * small, and a cached plan keeps doing that while the table grows until the next ANALYZE: measured on a
 * fresh schema, a seq scan of every attempt row on each completion batch.
 *
 * Why a function for the discards: an UPDATE of "all pending deliveries of these webhooks" written inline
 * is costed by the planner at the average backlog per webhook, on every call, although it almost never
 * runs. With a large backlog that estimate passes `jit_above_cost`, and Postgres would JIT-compile every
 * completion batch (tens of milliseconds). The function call is costed as one call per disabled webhook,
 * and its own UPDATE is planned only when it actually runs.
 */
export function completeAttempts(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH input AS MATERIALIZED (
  SELECT i.*, row_number() OVER (PARTITION BY i.delivery_id, i.attempt, i.started_at ORDER BY i.ord) AS copy
  FROM unnest($1::text[], $2::text[], $3::integer[], $4::timestamptz[], $5::integer[], $6::integer[],
      $7::text[], $8::text[], $9::boolean[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::text[],
      $14::text[], $15::integer[], $17::timestamptz[]) WITH ORDINALITY
    AS i(delivery_id, webhook_id, attempt, started_at, duration_ms, status_code, error_code, response_snippet,
      ok, next_status, next_attempt_at, finished_at, last_error, disable_reason, max_failures, lease, ord)
),
hooks AS MATERIALIZED (
  SELECT id, site_id, active, consecutive_failures FROM ${s}.webhooks
  WHERE id IN (SELECT webhook_id FROM input)
  ORDER BY id
  FOR NO KEY UPDATE
),
valid AS MATERIALIZED (
  SELECT c.*,
    sum((c.current AND c.next_status = 'succeeded')::integer) OVER (PARTITION BY c.webhook_id ORDER BY c.ord)
      AS successes
  FROM (
    -- An outcome without a lease always applies; one under the delivery's lease only if no outcome before it
    -- in the batch applied (applying one ends the lease), as one by one.
    SELECT h.*, (h.lease IS NULL OR (h.by_lease AND row_number() OVER (
        PARTITION BY h.delivery_id, (h.lease IS NULL OR h.by_lease) ORDER BY h.ord) = 1)) AS current
    FROM (
    SELECT i.*, h.site_id, h.active AS was_active, h.consecutive_failures AS initial_failures, held.by_lease
    FROM input i
    JOIN hooks h ON h.id = i.webhook_id
    CROSS JOIN LATERAL (
      SELECT coalesce(d.status = 'delivering' AND d.lease_expires_at = i.lease, false) AS by_lease
      FROM ${s}.deliveries d WHERE d.id = i.delivery_id AND d.webhook_id = h.id
      OFFSET 0
      FOR NO KEY UPDATE OF d
    ) held
    -- The same outcome twice in one batch is recorded once (the unique index would refuse the second).
    WHERE i.copy = 1
      AND NOT EXISTS (
        SELECT 1 FROM ${s}.attempts a
        WHERE a.delivery_id = i.delivery_id AND a.attempt = i.attempt AND a.started_at = i.started_at
        OFFSET 0
      )
    ) h
  ) c
),
counted AS MATERIALIZED (
  SELECT v.*,
    CASE WHEN v.successes = 0 THEN v.initial_failures ELSE 0 END
      + sum((v.current AND v.next_status = 'failed')::integer)
        OVER (PARTITION BY v.webhook_id, v.successes ORDER BY v.ord)
      AS failures
  FROM valid v
),
decided AS MATERIALIZED (
  SELECT c.*,
    min(c.ord) FILTER (
      WHERE c.current AND c.was_active AND (c.disable_reason IS NOT NULL OR c.failures >= c.max_failures)
    ) OVER (PARTITION BY c.webhook_id) AS disabled_at
  FROM counted c
),
disabling AS MATERIALIZED (
  SELECT webhook_id, ord, finished_at,
    coalesce(disable_reason, 'Disabled after ' || failures || ' consecutive failed deliveries') AS reason
  FROM decided
  WHERE ord = disabled_at
),
webhook_updates AS (
  UPDATE ${s}.webhooks w SET
    consecutive_failures = t.failures,
    last_triggered = greatest(w.last_triggered, t.last_started),
    active = CASE WHEN x.webhook_id IS NULL THEN w.active ELSE false END,
    disabled_reason = CASE WHEN x.webhook_id IS NULL THEN w.disabled_reason ELSE x.reason END,
    updated_at = CASE WHEN x.webhook_id IS NULL THEN w.updated_at ELSE x.finished_at END
  FROM (
    SELECT DISTINCT ON (webhook_id) webhook_id, failures,
      max(started_at) OVER (PARTITION BY webhook_id) AS last_started
    FROM decided
    ORDER BY webhook_id, ord DESC
  ) t
  LEFT JOIN disabling x ON x.webhook_id = t.webhook_id
  WHERE w.id = t.webhook_id
),
outcomes AS MATERIALIZED (
  SELECT o.*,
    (o.next_status = 'pending' AND (NOT o.was_active OR o.disabled_at IS NOT NULL)) AS discarded,
    x.finished_at AS disabled_finished_at
  FROM decided o
  LEFT JOIN disabling x ON x.webhook_id = o.webhook_id
),
delivery_updates AS (
  UPDATE ${s}.deliveries d SET
    status = CASE WHEN u.discarded THEN 'discarded' ELSE u.next_status END,
    attempts = u.attempt,
    next_attempt_at = CASE WHEN u.next_status = 'pending' AND NOT u.discarded THEN u.next_attempt_at END,
    lease_expires_at = NULL,
    last_status_code = u.status_code,
    last_error = u.last_error,
    updated_at = CASE WHEN u.discarded AND u.disabled_at > u.ord THEN u.disabled_finished_at ELSE u.finished_at END
  FROM (SELECT DISTINCT ON (delivery_id) * FROM outcomes WHERE current ORDER BY delivery_id, ord DESC) u
  WHERE d.id = u.delivery_id
    -- Checked again on the row's latest version if another transaction changed it meanwhile.
    AND (u.lease IS NULL OR (d.status = 'delivering' AND d.lease_expires_at = u.lease))
),
discards (n) AS MATERIALIZED (
  SELECT ${s}.discard_pending(
    x.webhook_id, x.finished_at, ARRAY(SELECT delivery_id FROM outcomes WHERE current)
  )
  FROM disabling x
),
recorded AS (
  INSERT INTO ${s}.attempts (delivery_id, webhook_id, attempt, started_at, duration_ms, status_code, error_code,
    response_snippet, ok)
  SELECT delivery_id, webhook_id, attempt, started_at, duration_ms, status_code, error_code, response_snippet, ok
  FROM outcomes
  ORDER BY ord
),
retries AS (
  SELECT 1 FROM outcomes WHERE current AND next_status = 'pending' AND NOT discarded
)
SELECT o.delivery_id, o.webhook_id, o.site_id, x.reason AS disabled_reason,
  (SELECT sum(n) FROM discards) AS discarded,
  (SELECT count(*) FROM (${notifyIf('retries', '$16')}) AS woke) AS notified
FROM outcomes o
LEFT JOIN disabling x ON x.webhook_id = o.webhook_id AND x.ord = o.ord
ORDER BY o.ord`;
}

/**
 * `$1` ids, `$2` now, `$3` channel or null, `$4` the lease of each id (null, or a null element: any), `$5`
 * when each is due again (null, or a null element: now).
 */
export function releaseDeliveries(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH released AS (
  UPDATE ${s}.deliveries d
  SET status = 'pending', next_attempt_at = coalesce(r.due, $2), lease_expires_at = NULL, updated_at = $2
  FROM unnest($1::text[], $4::timestamptz[], $5::timestamptz[]) AS r(id, lease, due)
  WHERE d.id = r.id AND d.status = 'delivering' AND (r.lease IS NULL OR d.lease_expires_at = r.lease)
  RETURNING 1
)
${notifyIf('released', '$3')}`;
}

/**
 * The earliest time `claimDeliveries` will find something, leaving out the webhooks in `$1`; `$2` the size
 * of the due window. Pending deliveries: the first eligible one in the due window (an index-only scan of
 * at most `$2` entries) is the answer; only when excluded (or inactive) webhooks fill the whole window does
 * the skip scan over webhooks with pending work run (the CASE evaluates it lazily). Leases: those of
 * deliveries in flight, as many as workers have claimed.
 */
export function nextDueAt(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH RECURSIVE ${headsCte(s)},
${dueWindowCte(s, null, '$2')},
in_window AS MATERIALIZED (
  SELECT min(d.due) AS due, (SELECT count(*) FROM due_window) AS scanned
  FROM due_window d
  JOIN ${s}.webhooks w ON w.id = d.webhook_id
  WHERE w.active AND d.webhook_id <> ALL ($1::text[])
),
leases (webhook_id, due) AS (
  SELECT webhook_id, min(lease_expires_at) FROM ${s}.deliveries
  WHERE status = 'delivering'
  GROUP BY webhook_id
)
SELECT least(
  (SELECT CASE WHEN f.due IS NOT NULL OR f.scanned < $2 THEN f.due
      ELSE (SELECT min(h.due) FROM heads h JOIN ${s}.webhooks w ON w.id = h.webhook_id
            WHERE w.active AND h.webhook_id <> ALL ($1::text[])) END
    FROM in_window f),
  (SELECT min(l.due) FROM leases l JOIN ${s}.webhooks w ON w.id = l.webhook_id
    WHERE w.active AND l.webhook_id <> ALL ($1::text[]))
) AS due`;
}

export function selectDelivery(schema: string): string {
  return `SELECT * FROM ${quoteSchema(schema)}.deliveries WHERE id = $1`;
}

/**
 * The activity log, newest first, by keyset. `$1` site, `$2` webhook, `$3` status, `$4` since, `$5`/`$6` the
 * (created_at, id) to continue after, `$7` limit; null means "no filter". `pg` plans an unnamed statement
 * with its parameter values, so the unused filters fold away and the (site_id | webhook_id, created_at
 * DESC, id DESC) indexes serve the scan.
 */
export function listDeliveries(schema: string): string {
  return `SELECT * FROM ${quoteSchema(schema)}.deliveries
WHERE ($1::text IS NULL OR site_id = $1)
  AND ($2::text IS NULL OR webhook_id = $2)
  AND ${logFilters(3)}
ORDER BY created_at DESC, id DESC
LIMIT $7`;
}

/**
 * The activity log's optional filters (null: no filter), parameters from `$first`: status, since, and the
 * (created_at, id) to continue after.
 */
function logFilters(first: number): string {
  const [status, since, afterAt, afterId] = [first, first + 1, first + 2, first + 3].map((n) => `$${n}`);
  return `(${status}::text IS NULL OR status = ${status})
  AND (${since}::timestamptz IS NULL OR created_at >= ${since})
  AND (${afterAt}::timestamptz IS NULL OR (created_at, id) < (${afterAt}::timestamptz, ${afterId}::text))`;
}

/**
 * A site's activity log, as `listDeliveries` with no webhook: `$1` site, `$2` status, `$3` since, `$4`/`$5`
 * the position to continue after, `$6` limit (null: no filter), `$7` how many times wider than the first
 * round each webhook's share is read.
 *
 * There is no index by site (migration 3): each of the site's webhooks gives its newest deliveries from
 * `deliveries_webhook_log_idx`, an equal share of the page each (Postgres 15 cannot merge per-webhook
 * index scans in order, so each reads a bounded share), and the page is the newest `$6` of those. Each
 * row says whether the page is `complete`: it is not when some webhook gave its whole share and the oldest
 * of it is newer than the page's last row (more of that webhook might belong on the page); the caller then
 * asks again with a wider share, up to the whole page per webhook, where it is always complete. A
 * delivery's site is its webhook's and a webhook never changes site, so the webhooks find every delivery.
 *
 * The range on `webhook_id` repeats the equality on purpose: only an index led by `webhook_id` can use it,
 * so Postgres estimates the per-webhook read as cheap there. Without it, for a status filter it preferred
 * `deliveries_finished_idx` in creation order, and a quiet webhook's share then walked past all of a busy
 * webhook's newer deliveries (50 ms at 200,000; `site-log.test.ts`). The same kind of fix as in
 * `claimDeliveries`; either is about estimates, not results.
 */
export function listSiteDeliveries(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH share AS (
  SELECT least($6::bigint, (ceil($6::numeric / greatest(count(*), 1)) * $7::bigint + 1)::bigint) AS n
  FROM ${s}.webhooks WHERE site_id = $1
),
fetched AS MATERIALIZED (
  SELECT d.*,
    count(*) OVER (PARTITION BY d.webhook_id) AS fetched_of_webhook,
    row_number() OVER (PARTITION BY d.webhook_id ORDER BY d.created_at, d.id) AS age_rank
  FROM ${s}.webhooks w
  CROSS JOIN LATERAL (
    SELECT * FROM ${s}.deliveries
    WHERE webhook_id = w.id AND webhook_id >= w.id AND webhook_id <= w.id AND site_id = $1 AND ${logFilters(2)}
    ORDER BY created_at DESC, id DESC
    LIMIT (SELECT n FROM share)
  ) d
  WHERE w.site_id = $1
),
page AS MATERIALIZED (
  SELECT * FROM fetched ORDER BY created_at DESC, id DESC LIMIT $6
),
page_end AS (
  SELECT created_at, id, (SELECT count(*) FROM page) AS size FROM page ORDER BY created_at, id LIMIT 1
)
SELECT p.*, NOT EXISTS (
  SELECT 1 FROM fetched f, page_end e
  WHERE f.age_rank = 1 AND f.fetched_of_webhook = (SELECT n FROM share)
    AND (e.size < $6 OR (f.created_at, f.id) > (e.created_at, e.id))
) AS complete
FROM page p
ORDER BY p.created_at DESC, p.id DESC`;
}

/** `$1` delivery ids; grouped in that order, each delivery's attempts in the order they were recorded. */
export function listAttempts(schema: string): string {
  return `SELECT a.* FROM unnest($1::text[]) WITH ORDINALITY AS r(delivery_id, position)
JOIN ${quoteSchema(schema)}.attempts a ON a.delivery_id = r.delivery_id
ORDER BY r.position, a.id`;
}

/** `$1` id, `$2` now, `$3` channel or null. */
export function requeueDelivery(schema: string): string {
  const s = quoteSchema(schema);
  // The webhook must be active, checked under a share lock: a disable in progress (which discards the
  // webhook's pending deliveries) is waited for, so a requeue cannot slip in behind it and stay pending.
  return `WITH active_hook AS MATERIALIZED (
  SELECT w.id FROM ${s}.webhooks w
  WHERE w.id = (SELECT webhook_id FROM ${s}.deliveries WHERE id = $1) AND w.active
  FOR SHARE
),
requeued AS (
  UPDATE ${s}.deliveries
  SET status = 'pending', attempts = 0, next_attempt_at = $2, lease_expires_at = NULL, updated_at = $2
  WHERE id = $1 AND status IN ('succeeded', 'failed', 'discarded') AND webhook_id IN (SELECT id FROM active_hook)
  RETURNING *
)
SELECT r.*, (SELECT count(*) FROM (${notifyIf('requeued', '$3')}) AS woke) AS notified
FROM requeued r`;
}

/**
 * Discards deliveries a dead worker left `delivering` on a webhook that is inactive: claims take nothing of
 * an inactive webhook, so their expired leases would never be reclaimed, and as unfinished rows they would
 * never be pruned or redeliverable. Disabling discards a webhook's pending deliveries; this catches those
 * that were in flight with a worker that died (before or after the disable). `$1` now, `$2` batch size.
 * Reads expired leases from `deliveries_lease_idx`.
 */
export function discardOrphanedLeases(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH orphaned AS (
  SELECT d.id FROM ${s}.deliveries d
  JOIN ${s}.webhooks w ON w.id = d.webhook_id AND NOT w.active
  WHERE d.status = 'delivering' AND d.lease_expires_at <= $1
  LIMIT $2
  FOR UPDATE OF d SKIP LOCKED
),
discarded AS (
  UPDATE ${s}.deliveries d
  SET status = 'discarded', next_attempt_at = NULL, lease_expires_at = NULL, updated_at = $1
  FROM orphaned o
  WHERE d.id = o.id
  RETURNING 1
)
SELECT count(*)::integer AS discarded FROM discarded`;
}

/**
 * Deletes up to `$2` finished deliveries created before `$1` (their attempts go with them), oldest first,
 * through `deliveries_finished_idx`; returns how many. Rows another session holds are skipped.
 */
export function pruneDeliveries(schema: string): string {
  const s = quoteSchema(schema);
  const finished = FINISHED_STATUSES.map((status) => `'${status}'`).join(', ');
  return `WITH doomed AS (
  SELECT id FROM ${s}.deliveries
  WHERE status IN (${finished}) AND created_at < $1
  ORDER BY created_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
),
deleted AS (
  DELETE FROM ${s}.deliveries d USING doomed WHERE d.id = doomed.id RETURNING 1
)
SELECT count(*)::integer AS deleted FROM deleted`;
}
