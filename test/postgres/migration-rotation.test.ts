// Migration 2 (rotation overlap and signature schemes) upgrades a version-1 schema in place: rows written
// before it read back with no previous secret and the default schemes, and take the new fields afterwards.
import { expect, it } from 'vitest';
import {
  createSchema,
  createVersionTable,
  insertVersion,
  quoteSchema,
} from '../../src/adapters/postgres/sql.js';
import { migrate, migrations, postgresStore, SCHEMA_VERSION } from '../../src/postgres.js';
import { describePostgres, useTestDatabase } from './db.js';
import { at, webhook } from './records.js';

describePostgres('migrate: version 2', () => {
  const db = useTestDatabase();

  it('adds the columns to a version-1 schema whose rows keep working', async () => {
    const schema = db.freshSchema();
    const v1 = migrations.find((m) => m.version === 1)!;
    await db.pool.query(`${createSchema(schema)}; ${createVersionTable(schema)}`);
    await db.pool.query(v1.sql(schema));
    await db.pool.query(insertVersion(schema, 1));
    const old = webhook();
    await db.pool.query(
      `INSERT INTO ${quoteSchema(schema)}.webhooks (id, site_id, url, events, description, secret, active,
         disabled_reason, consecutive_failures, created_at, updated_at, last_triggered)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        old.id,
        old.siteId,
        old.url,
        old.events,
        null,
        old.secret,
        true,
        null,
        0,
        old.createdAt,
        old.updatedAt,
        null,
      ],
    );

    expect(await migrate(db.pool, { schema })).toEqual({
      from: 1,
      to: SCHEMA_VERSION,
      applied: migrations.filter((m) => m.version > 1).map((m) => m.version),
    });
    const store = postgresStore({ pool: db.pool, schema });
    try {
      expect(await store.getWebhook(old.id)).toEqual(old);
      const patched = await store.updateWebhook(old.id, {
        previousSecret: old.secret,
        previousSecretExpiresAt: at(60_000),
        signatureSchemes: ['standard'],
        updatedAt: at(1),
      });
      expect(patched).toMatchObject({
        previousSecret: old.secret,
        previousSecretExpiresAt: at(60_000),
        signatureSchemes: ['standard'],
      });
    } finally {
      await store.close();
    }
  });
});
