import type { Pool } from 'pg';
import {
  createSchema,
  createVersionTable,
  DEFAULT_SCHEMA,
  FINISHED_STATUSES,
  insertVersion,
  liftTimeouts,
  lockMigrations,
  migrationLockKey,
  quoteSchema,
  restoreTimeouts,
  selectVersion,
} from './sql.js';
import { inTransaction } from './transaction.js';

export interface Migration {
  /** Applied in ascending order; each version once per schema. */
  version: number;
  description: string;
  /** Plain SQL (no parameters) for the given schema; the schema itself already exists. */
  sql(schema: string): string;
}

const DELIVERY_STATUS_CHECK = "status IN ('pending', 'delivering', 'succeeded', 'failed', 'discarded')";

/**
 * Every schema change, in order. Never edit a released migration: add a new one. Timestamps are
 * `timestamptz(3)`: millisecond precision, like a JavaScript `Date`, so every value reads back exactly as
 * it was written.
 */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    description: 'webhooks, deliveries and attempts',
    sql: (schema) => {
      const s = quoteSchema(schema);
      const finished = FINISHED_STATUSES.map((status) => `'${status}'`).join(', ');
      return `CREATE TABLE ${s}.webhooks (
  id text PRIMARY KEY,
  site_id text NOT NULL,
  url text NOT NULL,
  events text[] NOT NULL,
  description text,
  -- As the store receives it; see src/adapters/postgres/secrets.ts for the encryption-at-rest seam.
  secret text NOT NULL,
  active boolean NOT NULL,
  disabled_reason text,
  consecutive_failures integer NOT NULL DEFAULT 0,
  created_at timestamptz(3) NOT NULL,
  updated_at timestamptz(3) NOT NULL,
  last_triggered timestamptz(3)
);
-- listWebhooks, findSubscribers and the per-site count.
CREATE INDEX webhooks_site_idx ON ${s}.webhooks (site_id, created_at, id);

CREATE TABLE ${s}.deliveries (
  id text PRIMARY KEY,
  webhook_id text NOT NULL REFERENCES ${s}.webhooks (id) ON DELETE CASCADE,
  site_id text NOT NULL,
  event text NOT NULL,
  body text NOT NULL,
  status text NOT NULL CHECK (${DELIVERY_STATUS_CHECK}),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz(3),
  lease_expires_at timestamptz(3),
  last_status_code integer,
  last_error text,
  created_at timestamptz(3) NOT NULL,
  updated_at timestamptz(3) NOT NULL
);
-- The queue (see claimDeliveries in sql.ts for the plan). Due order across webhooks, index-only: which
-- webhooks have the earliest due deliveries.
CREATE INDEX deliveries_due_idx ON ${s}.deliveries (next_attempt_at) INCLUDE (webhook_id)
  WHERE status = 'pending';
-- Due order within one webhook: claiming takes at most its free slots from here, and the fallback skip
-- scan finds each webhook's earliest due delivery. Neither walks a backlog.
CREATE INDEX deliveries_webhook_due_idx ON ${s}.deliveries (webhook_id, next_attempt_at)
  WHERE status = 'pending';
-- Leases: expired ones are reclaimed; live ones tell nextDueAt when they will expire.
CREATE INDEX deliveries_lease_idx ON ${s}.deliveries (lease_expires_at) WHERE status = 'delivering';
-- The activity log, newest first with id as the tie-breaker (keyset paging); also the ON DELETE CASCADE
-- lookup by webhook.
CREATE INDEX deliveries_site_log_idx ON ${s}.deliveries (site_id, created_at DESC, id DESC);
CREATE INDEX deliveries_webhook_log_idx ON ${s}.deliveries (webhook_id, created_at DESC, id DESC);
-- Retention: finished deliveries, oldest first.
CREATE INDEX deliveries_finished_idx ON ${s}.deliveries (created_at) WHERE status IN (${finished});

CREATE TABLE ${s}.attempts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id text NOT NULL REFERENCES ${s}.deliveries (id) ON DELETE CASCADE,
  webhook_id text NOT NULL,
  attempt integer NOT NULL,
  started_at timestamptz(3) NOT NULL,
  duration_ms integer NOT NULL,
  status_code integer,
  error_code text,
  response_snippet text,
  ok boolean NOT NULL
);
CREATE INDEX attempts_delivery_idx ON ${s}.attempts (delivery_id, id);

-- Discards a webhook's pending deliveries (but not those in keep) when it is disabled. A function so that
-- the statements calling it are planned without this UPDATE's cost; see completeAttempts in sql.ts.
CREATE FUNCTION ${s}.discard_pending(webhook_id text, at timestamptz, keep text[]) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
  WITH discarded AS (
    UPDATE ${s}.deliveries d SET status = 'discarded', next_attempt_at = NULL, updated_at = discard_pending.at
    WHERE d.webhook_id = discard_pending.webhook_id AND d.status = 'pending' AND d.id <> ALL (discard_pending.keep)
    RETURNING 1
  )
  SELECT count(*) FROM discarded
$$;`;
    },
  },
  {
    version: 2,
    description: 'secret rotation overlap and per-webhook signature schemes',
    // Nullable columns without defaults: adding them rewrites no rows and holds the lock only briefly.
    sql: (schema) => `ALTER TABLE ${quoteSchema(schema)}.webhooks
  -- The secret before the last rotation, sealed like secret (see secrets.ts), and when it stops signing.
  ADD COLUMN previous_secret text,
  ADD COLUMN previous_secret_expires_at timestamptz(3),
  -- NULL: the dispatcher's default schemes.
  ADD COLUMN signature_schemes text[];`,
  },
  {
    version: 3,
    description: "drop deliveries_site_log_idx (a site's activity log is read through its webhooks)",
    // Every row version written (emit, claim, completion) paid an entry in it, scattered for retries and
    // part of what makes claims grow with the table; only the activity log by site read it
    // (listSiteDeliveries in sql.ts now reads per webhook). A plain DROP INDEX runs inside migrate()'s
    // transaction: it waits for statements on the table in progress, then holds its lock only briefly.
    sql: (schema) => `DROP INDEX IF EXISTS ${quoteSchema(schema)}.deliveries_site_log_idx;`,
  },
  {
    version: 4,
    description: 'each attempt recorded once: a unique index on (delivery_id, attempt, started_at)',
    // completeAttempts skips outcomes already recorded, but judges that by its statement's snapshot, taken
    // before it waits for the webhook locks: a batch retried while its first run was still waiting (a
    // client-side timeout) was recorded, and its failures counted, twice. With the unique index the later
    // run fails (23505) and the store runs it again on a fresh snapshot, which finds the attempts recorded.
    // Duplicates left by such runs are removed first (the first recorded is kept). The index also serves
    // what attempts_delivery_idx (delivery_id, id) did: a delivery's attempts, and the cascade from it.
    sql: (schema) => {
      const s = quoteSchema(schema);
      return `DELETE FROM ${s}.attempts a USING ${s}.attempts b
  WHERE a.delivery_id = b.delivery_id AND a.attempt = b.attempt AND a.started_at = b.started_at AND a.id > b.id;
CREATE UNIQUE INDEX attempts_once_idx ON ${s}.attempts (delivery_id, attempt, started_at);
DROP INDEX ${s}.attempts_delivery_idx;`;
    },
  },
];

/** The schema version this release of the library reads and writes. */
export const SCHEMA_VERSION = migrations.at(-1)!.version;

/**
 * The SQL of the migrations after `fromVersion`, as one script for your own migration tool: it creates the
 * schema and its `schema_version` table if needed, and records each version it applies, so `migrate()`
 * agrees with it afterwards. Run it in one transaction, and not concurrently with itself.
 */
export function migrationSql(schema: string = DEFAULT_SCHEMA, fromVersion = 0): string {
  const parts = [`${createSchema(schema)};`, `${createVersionTable(schema)};`];
  for (const migration of migrations) {
    if (migration.version <= fromVersion) continue;
    parts.push(`-- ${migration.version}: ${migration.description}`);
    parts.push(`${migration.sql(schema)}`);
    parts.push(`${insertVersion(schema, migration.version)};`);
  }
  return `${parts.join('\n\n')}\n`;
}

export interface MigrateOptions {
  /** Default `zta_webhooks`. */
  schema?: string;
}

export interface MigrateResult {
  /** The version before, 0 for a new schema. */
  from: number;
  /** The version now. */
  to: number;
  /** The versions this call applied; empty when the schema was up to date. */
  applied: number[];
}

/**
 * Creates or upgrades the schema. Idempotent, and safe to call from many processes at once: a transaction
 * holds an advisory lock for the schema while it reads the version and applies what is missing, so the
 * others wait (whatever their `lock_timeout` or `statement_timeout`) and then find nothing to do. A schema
 * newer than this release is left alone.
 */
export async function migrate(pool: Pool, options: MigrateOptions = {}): Promise<MigrateResult> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  quoteSchema(schema);
  return inTransaction(pool, async (client) => {
    // The others wait for the lock however short the session's lock or statement timeout (each would
    // otherwise fail with 55P03 or 57014 while one process migrates); the migration's own statements keep
    // the session's timeouts.
    const { rows: timeouts } = await client.query<{ lock: string; statement: string }>(liftTimeouts());
    await client.query(lockMigrations(), [migrationLockKey(schema)]);
    await client.query(restoreTimeouts(), [timeouts[0]!.lock, timeouts[0]!.statement]);
    await client.query(createSchema(schema));
    await client.query(createVersionTable(schema));
    const { rows } = await client.query<{ version: number }>(selectVersion(schema));
    const from = rows[0]?.version ?? 0;
    const applied: number[] = [];
    for (const migration of migrations) {
      if (migration.version <= from) continue;
      await client.query(migration.sql(schema));
      await client.query(insertVersion(schema, migration.version));
      applied.push(migration.version);
    }
    return { from, to: Math.max(from, SCHEMA_VERSION), applied };
  });
}
