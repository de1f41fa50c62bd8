import { expect, it } from 'vitest';
import { lockMigrations, migrationLockKey, quoteSchema } from '../../src/adapters/postgres/sql.js';
import { migrate, migrationSql, migrations, postgresStore, SCHEMA_VERSION } from '../../src/postgres.js';
import { describePostgres, useTestDatabase } from './db.js';

describePostgres('migrate', () => {
  const db = useTestDatabase();

  const versions = async (schema: string) =>
    (await db.pool.query(`SELECT version FROM "${schema}".schema_version ORDER BY version`)).rows.map(
      (r) => r.version,
    );
  const tables = async (schema: string) =>
    (
      await db.pool.query(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
        [schema],
      )
    ).rows.map((r) => r.table_name);

  it('creates the schema, then finds nothing to do', async () => {
    const schema = db.freshSchema();
    expect(await migrate(db.pool, { schema })).toEqual({
      from: 0,
      to: SCHEMA_VERSION,
      applied: migrations.map((m) => m.version),
    });
    expect(await tables(schema)).toEqual(['attempts', 'deliveries', 'schema_version', 'webhooks']);
    expect(await migrate(db.pool, { schema })).toEqual({
      from: SCHEMA_VERSION,
      to: SCHEMA_VERSION,
      applied: [],
    });
    expect(await versions(schema)).toEqual(migrations.map((m) => m.version));
  });

  it('is safe to run from many connections at once on a fresh schema', async () => {
    const schema = db.freshSchema();
    const results = await Promise.all(Array.from({ length: 5 }, () => migrate(db.pool, { schema })));
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect(await versions(schema)).toEqual(migrations.map((m) => m.version));
  });

  it('is safe to run concurrently when sessions default to REPEATABLE READ', async () => {
    const schema = db.freshSchema();
    const pool = db.extraPool(4, { defaultIsolation: 'repeatable read' });
    const results = await Promise.all(Array.from({ length: 4 }, () => migrate(pool, { schema })));
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect(await versions(schema)).toEqual(migrations.map((m) => m.version));
  });

  it("waits for another migration however short the sessions' lock and statement timeouts", async () => {
    const schema = db.freshSchema();
    const pool = db.extraPool(3, { sessionOptions: '-c lock_timeout=50 -c statement_timeout=100' });
    // Another process holds the schema's migration lock for longer than either timeout.
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(lockMigrations(), [migrationLockKey(schema)]);
      const waiting = Promise.all([migrate(pool, { schema }), migrate(pool, { schema })]);
      await new Promise((resolve) => setTimeout(resolve, 400));
      await holder.query('COMMIT');
      const results = await waiting;
      expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    } finally {
      holder.release();
    }
    expect(await versions(schema)).toEqual(migrations.map((m) => m.version));
    // The sessions keep their own timeouts.
    expect((await pool.query('SHOW lock_timeout')).rows[0].lock_timeout).toBe('50ms');
  });

  it('exports its SQL for other migration tools, which migrate() then agrees with', async () => {
    const schema = db.freshSchema();
    const script = migrationSql(schema);
    expect(script).toContain(`CREATE TABLE "${schema}".deliveries`);
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(script);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await versions(schema)).toEqual(migrations.map((m) => m.version));
    expect((await migrate(db.pool, { schema })).applied).toEqual([]);
    expect(migrationSql(schema, SCHEMA_VERSION)).not.toContain('.webhooks (');
    expect(migrationSql()).toContain('"zta_webhooks".webhooks');
  });

  it('version 3 drops the site index of a version-2 schema', async () => {
    const schema = db.freshSchema();
    const indexes = async () =>
      (
        await db.pool.query(
          `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'deliveries'`,
          [schema],
        )
      ).rows.map((r) => r.indexname);
    await db.pool.query(migrationSql(schema).split('-- 3:')[0]!);
    expect(await versions(schema)).toEqual([1, 2]);
    expect(await indexes()).toContain('deliveries_site_log_idx');
    expect(await migrate(db.pool, { schema })).toMatchObject({ from: 2, applied: [3, 4] });
    expect(await indexes()).not.toContain('deliveries_site_log_idx');
    expect(await indexes()).toContain('deliveries_webhook_log_idx');
  });

  it('version 4 keeps one of each duplicated attempt of a version-3 schema and makes attempts unique', async () => {
    const schema = db.freshSchema();
    const s = `"${schema}"`;
    await db.pool.query(migrationSql(schema).split('-- 4:')[0]!);
    expect(await versions(schema)).toEqual([1, 2, 3]);
    await db.pool.query(
      `INSERT INTO ${s}.webhooks (id, site_id, url, events, secret, active, created_at, updated_at)
       VALUES ('wh_1', 'site_a', 'https://example.com/', ARRAY['pageview'], 'whsec_x', true, now(), now())`,
    );
    await db.pool.query(
      `INSERT INTO ${s}.deliveries (id, webhook_id, site_id, event, body, status, created_at, updated_at)
       VALUES ('dlv_1', 'wh_1', 'site_a', 'pageview', '{}', 'failed', now(), now())`,
    );
    const addAttempt = (attempt: number, startedAt: string, statusCode: number) =>
      db.pool.query(
        `INSERT INTO ${s}.attempts (delivery_id, webhook_id, attempt, started_at, duration_ms, status_code, ok)
         VALUES ('dlv_1', 'wh_1', $1, $2, 5, $3, false)`,
        [attempt, startedAt, statusCode],
      );
    await addAttempt(1, '2026-01-01T00:00:00.000Z', 500);
    await addAttempt(1, '2026-01-01T00:00:00.000Z', 501);
    await addAttempt(2, '2026-01-01T00:00:05.000Z', 502);
    await addAttempt(2, '2026-01-01T00:00:05.000Z', 503);
    await addAttempt(2, '2026-01-01T00:00:06.000Z', 504);
    expect(await migrate(db.pool, { schema })).toMatchObject({ from: 3, applied: [4] });
    const { rows } = await db.pool.query(`SELECT status_code FROM ${s}.attempts ORDER BY id`);
    expect(rows.map((r) => r.status_code)).toEqual([500, 502, 504]);
    await expect(addAttempt(1, '2026-01-01T00:00:00.000Z', 500)).rejects.toMatchObject({ code: '23505' });
  });

  it('stores timestamps with millisecond precision', async () => {
    const { rows } = await db.pool.query(
      `SELECT column_name, datetime_precision FROM information_schema.columns
       WHERE table_schema = $1 AND data_type = 'timestamp with time zone' AND table_name <> 'schema_version'`,
      [db.schema],
    );
    expect(rows.length).toBeGreaterThan(5);
    expect(new Set(rows.map((r) => r.datetime_precision))).toEqual(new Set([3]));
  });

  it('refuses schema names that are not plain identifiers', async () => {
    for (const bad of ['Zta', 'a-b', 'a"; DROP TABLE x; --', '1abc', '', 'x'.repeat(49)]) {
      expect(() => quoteSchema(bad)).toThrow(TypeError);
      await expect(migrate(db.pool, { schema: bad })).rejects.toThrow(/Invalid schema name/);
      expect(() => postgresStore({ pool: db.pool, schema: bad })).toThrow(/Invalid schema name/);
    }
  });
});
