/**
 * The real-server test database. Each test file gets its own schema (`zta_test_<random>`), migrated before
 * its first test and dropped after its last, so files running in parallel never see each other's rows.
 *
 * Availability rule: when Postgres cannot be reached, a developer run (no `CI` in the environment) warns
 * loudly and skips only the Postgres suites; with `CI` set, every Postgres suite fails instead.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import { migrate, type PostgresStore, type PostgresStoreOptions, postgresStore } from '../../src/postgres.js';

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const inCI = process.env.CI !== undefined && !['', '0', 'false'].includes(process.env.CI.toLowerCase());

type Availability = { ok: true } | { ok: false; error: string };

async function probe(): Promise<Availability> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return { ok: true };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  } finally {
    await client.end().catch(() => {});
  }
}

export const availability: Availability = await probe();

function unavailableMessage(error: string): string {
  return `PostgreSQL is not reachable at ${redact(DATABASE_URL)} (${error}).`;
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

let warned = false;

/**
 * `describe` for suites that need the real server: skipped with a loud warning on a developer machine
 * without Postgres, failing in CI.
 */
export function describePostgres(name: string, body: () => void): void {
  if (!availability.ok && !inCI) {
    if (!warned) {
      warned = true;
      const line = '!'.repeat(100);
      console.warn(
        `\n${line}\n!! ${unavailableMessage(availability.error)}\n` +
          '!! SKIPPING the Postgres test suites. Start PostgreSQL (see DEVELOPERS.md) or set DATABASE_URL.\n' +
          `!! (With CI set these suites fail instead of skipping.)\n${line}\n`,
      );
    }
    describe.skip(name, body);
    return;
  }
  describe(name, () => {
    beforeAll(() => {
      if (!availability.ok) {
        throw new Error(`${unavailableMessage(availability.error)} CI is set, so the Postgres suites fail.`);
      }
    });
    body();
  });
}

export interface TestDatabase {
  readonly pool: pg.Pool;
  readonly schema: string;
  /** A store on this file's schema (on the file's pool unless given another); closed after the test. */
  store(options?: Partial<Omit<PostgresStoreOptions, 'schema'>>): PostgresStore;
  /** Empties the tables (keeps the schema and its version). */
  truncate(): Promise<void>;
  /** A fresh, unmigrated schema name, dropped after the file. */
  freshSchema(): string;
  /**
   * A second pool on the same database (another "process"), ended after the file. `defaultIsolation` sets
   * the sessions' `default_transaction_isolation`, as a role or database setting would.
   */
  extraPool(
    max?: number,
    options?: { defaultIsolation?: 'repeatable read' | 'serializable'; sessionOptions?: string },
  ): pg.Pool;
  /**
   * How many of this file's sessions wait for a lock now. Its pools connect as `application_name = <schema>`,
   * so sessions of files running alongside are not counted.
   */
  lockWaiters(): Promise<number>;
}

export function newPool(
  max = 5,
  options: { applicationName?: string; sessionOptions?: string } = {},
): pg.Pool {
  const pool = new pg.Pool({
    connectionString: DATABASE_URL,
    max,
    ...(options.applicationName !== undefined && { application_name: options.applicationName }),
    ...(options.sessionOptions !== undefined && { options: options.sessionOptions }),
  });
  pool.on('error', () => {});
  return pool;
}

const randomSchema = (): string => `zta_test_${randomBytes(6).toString('hex')}`;

/** Call inside `describePostgres`: a pool and a migrated schema of its own for this file. */
export function useTestDatabase(): TestDatabase {
  let pool: pg.Pool | undefined;
  const schema = randomSchema();
  const schemas = [schema];
  const pools: pg.Pool[] = [];
  const stores: PostgresStore[] = [];

  beforeAll(async () => {
    pool = newPool(5, { applicationName: schema });
    await migrate(pool, { schema });
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    if (pool !== undefined) {
      for (const name of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
      await pool.end();
    }
    await Promise.all(pools.splice(0).map((p) => p.end()));
  });

  return {
    get pool() {
      if (pool === undefined) throw new Error('the test database is not set up');
      return pool;
    },
    schema,
    store(options = {}) {
      const created = postgresStore({ pool: this.pool, schema, ...options });
      stores.push(created);
      return created;
    },
    async truncate() {
      await this.pool.query(`TRUNCATE "${schema}".webhooks, "${schema}".deliveries, "${schema}".attempts`);
    },
    freshSchema() {
      const name = randomSchema();
      schemas.push(name);
      return name;
    },
    extraPool(max = 5, { defaultIsolation, sessionOptions } = {}) {
      const settings = [
        // A space in a value of `-c` is escaped with a backslash.
        defaultIsolation && `-c default_transaction_isolation=${defaultIsolation.replace(' ', '\\ ')}`,
        sessionOptions,
      ].filter(Boolean);
      const extra = newPool(max, {
        applicationName: schema,
        ...(settings.length > 0 && { sessionOptions: settings.join(' ') }),
      });
      pools.push(extra);
      return extra;
    },
    async lockWaiters() {
      const { rows } = await this.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
        [schema],
      );
      return rows[0].n as number;
    },
  };
}
