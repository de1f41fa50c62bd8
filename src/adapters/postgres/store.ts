import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { requirePageLimit } from '../../core/records.js';
import type { AttemptOutcome, CompletionEffect, SqlClient, Store, WriteOptions } from '../types.js';
import { NotificationListener } from './listener.js';
import { type Row, storableText, toAttempt, toDate, toDelivery, toWebhook } from './rows.js';
import { plaintextSecrets, type SecretCodec } from './secrets.js';
import * as sql from './sql.js';
import { inTransaction } from './transaction.js';
import { CoalescedWakeUps } from './wake-ups.js';

/** How long finished deliveries are kept when `pruneDeliveries` is not told otherwise. */
export const DEFAULT_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;
export const DEFAULT_PRUNE_BATCH_SIZE = 1000;
/** Due deliveries looked at per claimed one before falling back to the per-webhook scan; see `dueWindow`. */
const DUE_WINDOW_PER_CLAIM = 4;
const MIN_DUE_WINDOW = 256;

export interface PostgresStoreOptions {
  /** A `pg` Pool. The store never ends it. */
  pool: Pool;
  /** The schema `migrate()` created. Default `zta_webhooks`. */
  schema?: string;
  /**
   * Announce new, requeued and released deliveries (and scheduled retries) with NOTIFY, and offer
   * `subscribe` (LISTEN on one dedicated pool connection), so idle dispatchers in every process wake at
   * once. Default true. Without it, dispatchers find work by polling.
   */
  notify?: boolean;
  /**
   * Told when the LISTEN connection fails or drops (it reconnects by itself), a listener throws, or the
   * NOTIFY that follows an emit fails (dispatchers' polls find the deliveries then).
   */
  onError?: (error: unknown) => void;
  /**
   * Advanced: how many of the earliest due deliveries `claimDeliveries` and `nextDueAt` read to decide which
   * webhooks to take from, before falling back to a scan over every webhook with pending deliveries.
   * Default: 4 × the claim limit, at least 256 and at most 512 (also the most this option takes). A larger
   * window falls back less often, a smaller one reads less; the fallback only happens when capped webhooks'
   * backlogs fill the whole window.
   */
  dueWindow?: number;
  /**
   * Run the statements of the delivery path (emit, claim, complete, release, next due time) as named
   * prepared statements, so Postgres parses and plans each once per connection instead of on every call:
   * about 40% less server CPU per delivery. Default true. Turn it off behind a pooler in transaction mode
   * that does not keep prepared statements (PgBouncer before 1.21, or with `max_prepared_statements = 0`).
   */
  preparedStatements?: boolean;
}

type PreparedKey =
  | 'selectSubscribers'
  | 'insertDeliveries'
  | 'claimDeliveries'
  | 'completeAttempts'
  | 'releaseDeliveries'
  | 'nextDueAt';

const PREPARED_KEYS: readonly PreparedKey[] = [
  'selectSubscribers',
  'insertDeliveries',
  'claimDeliveries',
  'completeAttempts',
  'releaseDeliveries',
  'nextDueAt',
];

/** SQLSTATEs of a statement Postgres rolled back because of a concurrent one: deadlock, serialization. */
const CONFLICT_CODES = new Set(['40P01', '40001']);
/**
 * A unique violation, for completeAttempts only: the same batch committed by a concurrent run of it (see
 * migration 4). Run again, its fresh snapshot finds those attempts recorded and skips them.
 */
const ALREADY_RECORDED = '23505';
const CONFLICT_RETRIES = 3;

/** SQLSTATE of a missing table: the schema is not there, or not migrated. */
const UNDEFINED_TABLE = '42P01';

/** Adds the likely cause to Postgres' "relation … does not exist", which says nothing of `migrate()`. */
function withMigrateHint(error: unknown, schema: string): unknown {
  if (error instanceof Error && (error as { code?: unknown }).code === UNDEFINED_TABLE) {
    error.message += ` (has migrate(pool, { schema: ${JSON.stringify(schema)} }) run on this database?)`;
  }
  return error;
}

function rolledBackByConflict(key: PreparedKey | null, error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code as string;
  return CONFLICT_CODES.has(code) || (key === 'completeAttempts' && code === ALREADY_RECORDED);
}

/**
 * Postgres `text` cannot hold U+0000, so no stored id contains one: a lookup by such an id (say, from a
 * request path) finds nothing, as in any store, instead of failing with an encoding error.
 */
function unstorable(value: string | undefined): boolean {
  return value?.includes('\u0000') === true;
}

function invalidDate(value: Date | undefined): boolean {
  return value !== undefined && Number.isNaN(value.getTime());
}

/** Postgres' earliest timestamp (4714-11-24 BC); a JavaScript Date goes back to 271,822 BC. */
const EARLIEST_TIMESTAMP = Date.UTC(-4713, 10, 24);

/** Whether `value` is earlier than any timestamp Postgres can hold (so earlier than every stored one). */
function beforeEveryTimestamp(value: Date | undefined): boolean {
  return value !== undefined && value.getTime() < EARLIEST_TIMESTAMP;
}

export interface PruneOptions {
  /** Delete finished deliveries created before this. Default: 30 days ago. */
  olderThan?: Date;
  /** Rows per DELETE statement (each its own transaction). Default 1000. */
  batchSize?: number;
}

export interface PostgresStore extends Store {
  readonly schema: string;
  /** The NOTIFY channel of this schema. */
  readonly channel: string;
  /**
   * Deletes finished (`succeeded`, `failed`, `discarded`) deliveries created before the cutoff, with their
   * attempts, in batches of `batchSize` so no transaction grows large; returns how many it deleted. First
   * discards deliveries of inactive webhooks whose worker died holding them (lease expired), which nothing
   * else would ever finish.
   */
  pruneDeliveries(options?: PruneOptions): Promise<number>;
  /** Stops listening and gives the LISTEN connection back to the pool. Does not end the pool. */
  close(): Promise<void>;
}

/**
 * The durable, multi-process store: webhooks, deliveries and attempts in Postgres tables created by
 * `migrate()`. Every method is one statement (or, for `createWebhook`, one short transaction), so any
 * number of dispatchers in any number of processes can share one database.
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  const { pool, notify = true, dueWindow, preparedStatements = true } = options;
  // The host's reporter must not take the LISTEN loop or a pending emit down with it when it throws.
  const onError = (error: unknown): void => {
    try {
      options.onError?.(error);
    } catch {
      // Nowhere left to report it.
    }
  };
  if (
    dueWindow !== undefined &&
    !(Number.isInteger(dueWindow) && dueWindow > 0 && dueWindow <= sql.MAX_DUE_WINDOW)
  ) {
    throw new TypeError(`dueWindow must be an integer from 1 to ${sql.MAX_DUE_WINDOW}`);
  }
  const schema = options.schema ?? sql.DEFAULT_SCHEMA;
  sql.quoteSchema(schema);
  const channel = sql.channelName(schema);
  const notifyChannel = notify ? channel : null;
  const secrets: SecretCodec = plaintextSecrets;
  const text = {
    lockSite: sql.lockSite(),
    insertWebhook: sql.insertWebhook(schema),
    selectWebhook: sql.selectWebhook(schema),
    selectSiteWebhooks: sql.selectSiteWebhooks(schema),
    selectAllWebhooks: sql.selectAllWebhooks(schema),
    selectSubscribers: sql.selectSubscribers(schema),
    updateWebhook: sql.updateWebhook(schema),
    deleteWebhook: sql.deleteWebhook(schema),
    insertDeliveries: sql.insertDeliveries(schema),
    claimDeliveries: sql.claimDeliveries(schema),
    completeAttempts: sql.completeAttempts(schema),
    releaseDeliveries: sql.releaseDeliveries(schema),
    nextDueAt: sql.nextDueAt(schema),
    selectDelivery: sql.selectDelivery(schema),
    listDeliveries: sql.listDeliveries(schema),
    listSiteDeliveries: sql.listSiteDeliveries(schema),
    listAttempts: sql.listAttempts(schema),
    requeueDelivery: sql.requeueDelivery(schema),
    discardOrphanedLeases: sql.discardOrphanedLeases(schema),
    pruneDeliveries: sql.pruneDeliveries(schema),
  };
  const listener = notify
    ? new NotificationListener({ pool, channel, listenSql: sql.listen(schema), onError })
    : undefined;
  /** Inserts on the pool in progress: see insertDeliveries. */
  let poolInserts = 0;
  const wakeUps = notify
    ? new CoalescedWakeUps(() => pool.query(sql.notify(), [channel]), onError)
    : undefined;

  /**
   * The hot statements, prepared once per connection under a name derived from their text (which includes
   * the schema), so two stores on different schemas never share a name. A caller's `client` (the outbox)
   * is only known to have `query(text, values)`, so it always gets the plain text.
   */
  const prepared = Object.fromEntries(
    PREPARED_KEYS.map((key) => [
      key,
      `zta_${createHash('sha1').update(text[key]).digest('hex').slice(0, 24)}`,
    ]),
  ) as Record<PreparedKey, string>;
  /**
   * Sends one statement on the pool, where it is its own transaction: when Postgres picks it as a deadlock
   * (or serialization) victim it has rolled all of it back, so it runs again at once, up to
   * `CONFLICT_RETRIES` times.
   */
  const onPool = async (
    key: PreparedKey | null,
    send: () => Promise<{ rows: unknown[] }>,
  ): Promise<Row[]> => {
    for (let retries = 0; ; retries++) {
      try {
        return (await send()).rows as Row[];
      } catch (error) {
        if (retries >= CONFLICT_RETRIES || !rolledBackByConflict(key, error)) {
          throw withMigrateHint(error, schema);
        }
      }
    }
  };
  /**
   * One statement, on the pool or in a caller's `client`. The latter may be inside the caller's own
   * transaction, which a conflict has aborted: that error goes back to the caller.
   */
  const query = async (statement: string, values: unknown[], client?: SqlClient): Promise<Row[]> => {
    if (client === undefined) return onPool(null, () => pool.query(statement, values));
    try {
      return (await client.query(statement, values)).rows as Row[];
    } catch (error) {
      throw withMigrateHint(error, schema);
    }
  };
  /** The delivery-path statements, prepared on the pool's connections (see `prepared`). */
  const run = async (key: PreparedKey, values: unknown[], client?: SqlClient): Promise<Row[]> => {
    if (client !== undefined) return query(text[key], values, client);
    const statement = preparedStatements
      ? { name: prepared[key], text: text[key], values }
      : { text: text[key], values };
    return onPool(key, () => pool.query(statement));
  };

  const store: PostgresStore = {
    schema,
    channel,

    async createWebhook(record, { maxPerSite }) {
      return inTransaction(pool, async (client) => {
        await client.query(text.lockSite, [schema, record.siteId]);
        const rows = await query(
          text.insertWebhook,
          [
            record.id,
            record.siteId,
            record.url,
            record.events,
            record.description,
            secrets.seal(record.secret),
            record.active,
            record.disabledReason,
            record.consecutiveFailures,
            record.createdAt,
            record.updatedAt,
            record.lastTriggered,
            maxPerSite,
            record.previousSecret === null ? null : secrets.seal(record.previousSecret),
            record.previousSecretExpiresAt,
            record.signatureSchemes,
          ],
          client,
        );
        return rows.length > 0 ? 'created' : 'limit_reached';
      });
    },

    async getWebhook(id) {
      if (unstorable(id)) return null;
      const [row] = await query(text.selectWebhook, [id]);
      return row ? toWebhook(row, secrets) : null;
    },

    async listWebhooks(siteId) {
      if (unstorable(siteId)) return [];
      return (await query(text.selectSiteWebhooks, [siteId])).map((row) => toWebhook(row, secrets));
    },

    async listAllWebhooks({ after, limit }) {
      requirePageLimit(limit);
      if (after !== undefined && unstorable(after)) throw new TypeError('after must not contain NUL');
      const rows = await query(text.selectAllWebhooks, [after ?? null, limit]);
      return rows.map((row) => toWebhook(row, secrets));
    },

    async findSubscribers(siteId, event, writeOptions?: WriteOptions) {
      if (unstorable(siteId)) return [];
      const rows = await run('selectSubscribers', [siteId, event], writeOptions?.client);
      return rows.map((row) => toWebhook(row, secrets));
    },

    async updateWebhook(id, patch) {
      if (unstorable(id)) return null;
      const columns: Record<string, unknown> = {};
      if (patch.url !== undefined) columns.url = patch.url;
      if (patch.events !== undefined) columns.events = patch.events;
      if (patch.description !== undefined) columns.description = patch.description;
      if (patch.secret !== undefined) columns.secret = secrets.seal(patch.secret);
      if (patch.previousSecret !== undefined) {
        columns.previous_secret = patch.previousSecret === null ? null : secrets.seal(patch.previousSecret);
      }
      if (patch.previousSecretExpiresAt !== undefined) {
        columns.previous_secret_expires_at = patch.previousSecretExpiresAt;
      }
      if (patch.signatureSchemes !== undefined) columns.signature_schemes = patch.signatureSchemes;
      if (patch.active !== undefined) columns.active = patch.active;
      if (patch.disabledReason !== undefined) columns.disabled_reason = patch.disabledReason;
      if (patch.consecutiveFailures !== undefined) columns.consecutive_failures = patch.consecutiveFailures;
      const ifSecret = patch.ifSecret === undefined ? null : secrets.seal(patch.ifSecret);
      const { ifPreviousSecret } = patch;
      const values = [
        id,
        JSON.stringify(columns),
        patch.updatedAt,
        ifSecret,
        ifPreviousSecret !== undefined,
        ifPreviousSecret === undefined || ifPreviousSecret === null ? null : secrets.seal(ifPreviousSecret),
      ];
      const [row] = await query(text.updateWebhook, values);
      return row ? toWebhook(row, secrets) : null;
    },

    async deleteWebhook(id) {
      if (unstorable(id)) return false;
      return (await query(text.deleteWebhook, [id])).length > 0;
    },

    async insertDeliveries(records, writeOptions) {
      if (records.length === 0) return [];
      // In a caller's transaction the NOTIFY must go with it (it is sent only if that commits). On the pool
      // it goes with the insert too while no other insert of this store is in progress; when some are, it
      // follows the commit and is shared with theirs (see wake-ups.ts).
      const client = writeOptions?.client;
      const onPool = client === undefined;
      const inline = !onPool || poolInserts === 0;
      if (onPool) poolInserts++;
      let rows: Row[];
      try {
        rows = await run(
          'insertDeliveries',
          [
            records.map((r) => r.id),
            records.map((r) => r.webhookId),
            records.map((r) => r.siteId),
            records.map((r) => r.event),
            records.map((r) => r.body),
            records.map((r) => r.status),
            records.map((r) => r.attempts),
            records.map((r) => r.nextAttemptAt),
            records.map((r) => r.leaseExpiresAt),
            records.map((r) => r.lastStatusCode),
            records.map((r) => r.lastError),
            records.map((r) => r.createdAt),
            records.map((r) => r.updatedAt),
            inline ? notifyChannel : null,
          ],
          client,
        );
      } finally {
        if (onPool) poolInserts--;
      }
      if (!inline && rows.length > 0) await wakeUps?.wake();
      if (rows.length === records.length) return records.map((r) => r.id);
      const recorded = new Set(rows.map((row) => row.id as string));
      return records.filter((r) => recorded.has(r.id)).map((r) => r.id);
    },

    async claimDeliveries({ now, limit, leaseMs, perWebhookLimit, busyWebhooks }) {
      const wanted = Math.ceil(limit);
      if (!(wanted > 0)) return [];
      const busy = [...(busyWebhooks ?? new Map<string, number>())];
      const perWebhook =
        perWebhookLimit === undefined || !Number.isFinite(perWebhookLimit)
          ? null
          : Math.ceil(perWebhookLimit);
      const rows = await run('claimDeliveries', [
        now,
        wanted,
        perWebhook,
        busy.map(([id]) => id),
        busy.map(([, count]) => Math.ceil(count)),
        new Date(now.getTime() + leaseMs),
        dueWindow ?? Math.min(Math.max(DUE_WINDOW_PER_CLAIM * wanted, MIN_DUE_WINDOW), sql.MAX_DUE_WINDOW),
        perWebhook === null ? wanted : Math.max(0, Math.min(wanted, perWebhook)),
      ]);
      return rows.map((row) => ({
        delivery: toDelivery(row),
        webhook: toWebhook(row, secrets, 'w_'),
        dueAt: toDate(row.claim_due),
      }));
    },

    async completeAttempts(outcomes: AttemptOutcome[]) {
      if (outcomes.length === 0) return [];
      const attempts = outcomes.map((o) => o.attempt);
      const rows = await run('completeAttempts', [
        attempts.map((a) => a.deliveryId),
        attempts.map((a) => a.webhookId),
        attempts.map((a) => a.attempt),
        attempts.map((a) => a.startedAt),
        attempts.map((a) => Math.round(a.durationMs)),
        attempts.map((a) => a.statusCode),
        attempts.map((a) => a.errorCode),
        attempts.map((a) => storableText(a.responseSnippet)),
        attempts.map((a) => a.ok),
        outcomes.map((o) => o.next.status),
        outcomes.map((o) => (o.next.status === 'pending' ? o.next.nextAttemptAt : null)),
        attempts.map((a) => new Date(a.startedAt.getTime() + Math.round(a.durationMs))),
        attempts.map((a) => (a.ok ? null : (a.errorCode ?? `HTTP ${a.statusCode}`))),
        outcomes.map((o) => o.disableReason ?? null),
        outcomes.map((o) => o.maxConsecutiveFailures),
        notifyChannel,
        outcomes.map((o) => o.leaseExpiresAt ?? null),
      ]);
      return rows.map(
        (row): CompletionEffect => ({
          deliveryId: String(row.delivery_id),
          webhookId: String(row.webhook_id),
          siteId: String(row.site_id),
          disabledReason: row.disabled_reason === null ? null : String(row.disabled_reason),
        }),
      );
    },

    async releaseDeliveries(ids, now, leases, dueAt) {
      if (ids.length === 0) return;
      await run('releaseDeliveries', [ids, now, notifyChannel, leases ?? null, dueAt ?? null]);
    },

    async nextDueAt({ excludeWebhookIds = [] } = {}) {
      const [row] = await run('nextDueAt', [excludeWebhookIds, dueWindow ?? MIN_DUE_WINDOW]);
      return row?.due === null || row?.due === undefined ? null : toDate(row.due);
    },

    async getDelivery(id) {
      if (unstorable(id)) return null;
      const [row] = await query(text.selectDelivery, [id]);
      return row ? toDelivery(row) : null;
    },

    async listDeliveries(q) {
      requirePageLimit(q.limit);
      if (unstorable(q.siteId) || unstorable(q.webhookId) || unstorable(q.after?.id)) return [];
      // An invalid date compares false with everything: nothing is after it or since it (as in memory).
      if (invalidDate(q.since) || invalidDate(q.after?.createdAt)) return [];
      // Dates Postgres cannot hold would fail the statement: nothing is older than such a cursor, and
      // everything is since such a date.
      if (beforeEveryTimestamp(q.after?.createdAt)) return [];
      const since = beforeEveryTimestamp(q.since) ? undefined : q.since;
      const filters = [
        q.status ?? null,
        since ?? null,
        q.after?.createdAt ?? null,
        q.after?.id ?? null,
        q.limit,
      ];
      if (q.siteId === undefined || q.webhookId !== undefined) {
        const rows = await query(text.listDeliveries, [q.siteId ?? null, q.webhookId ?? null, ...filters]);
        return rows.map(toDelivery);
      }
      // Each round reads four times more per webhook; the share reaches the whole page within a few.
      for (let widen = 1; ; widen *= 4) {
        const rows = await query(text.listSiteDeliveries, [q.siteId, ...filters, widen]);
        if (rows.length === 0 || rows[0]!.complete === true) return rows.map(toDelivery);
      }
    },

    async listAttempts(deliveryIds) {
      const ids = deliveryIds.filter((id) => !unstorable(id));
      if (ids.length === 0) return [];
      return (await query(text.listAttempts, [ids])).map(toAttempt);
    },

    async requeueDelivery(id, now) {
      if (unstorable(id)) return null;
      const [row] = await query(text.requeueDelivery, [id, now, notifyChannel]);
      return row ? toDelivery(row) : null;
    },

    async pruneDeliveries({ olderThan, batchSize = DEFAULT_PRUNE_BATCH_SIZE }: PruneOptions = {}) {
      if (!Number.isInteger(batchSize) || batchSize <= 0) {
        throw new TypeError('batchSize must be a positive integer');
      }
      const cutoff = olderThan ?? new Date(Date.now() - DEFAULT_RETENTION_MS);
      const now = new Date();
      for (;;) {
        const [row] = await query(text.discardOrphanedLeases, [now, batchSize]);
        if (Number(row?.discarded ?? 0) < batchSize) break;
      }
      let total = 0;
      for (;;) {
        const [row] = await query(text.pruneDeliveries, [cutoff, batchSize]);
        const deleted = Number(row?.deleted ?? 0);
        total += deleted;
        if (deleted < batchSize) return total;
      }
    },

    async close() {
      await wakeUps?.flush();
      await listener?.close();
    },
  };
  if (listener !== undefined) {
    store.subscribe = (fn) => {
      // With the only connection held by LISTEN, every claim, write and emit would wait for ever.
      const max = pool.options?.max;
      if (typeof max === 'number' && max < 2) {
        throw new TypeError(
          `postgresStore: subscribing holds one pool connection for LISTEN, so the pool needs max >= 2 (it has ${max}); or pass notify: false`,
        );
      }
      return listener.subscribe(fn);
    };
  }
  return store;
}
