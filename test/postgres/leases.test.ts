// Leases live in their own table (migration 3): a claim locks the delivery row and inserts a lease, so the
// large deliveries table and its indexes are written once per attempt (on completion), not twice.
import { expect, it } from 'vitest';
import {
  createSchema,
  createVersionTable,
  insertVersion,
  quoteSchema,
} from '../../src/adapters/postgres/sql.js';
import { migrate, migrations, postgresStore } from '../../src/postgres.js';
import { describePostgres, useTestDatabase } from './db.js';
import { at, attempt, delivery, webhook } from './records.js';

describePostgres('postgresStore leases', () => {
  const db = useTestDatabase();

  /** A fresh store with one webhook and one delivery due at `at(0)`. */
  const oneDueDelivery = async () => {
    await db.truncate();
    const store = postgresStore({ pool: db.pool, schema: db.schema, notify: false });
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const d = delivery(hook, { nextAttemptAt: at(0) });
    await store.insertDeliveries([d]);
    return { store, hook, d };
  };

  it('claims without rewriting the delivery row, and shows the lease as `delivering`', async () => {
    const { store, hook, d } = await oneDueDelivery();
    const version = async () =>
      (
        await db.pool.query(`SELECT ctid::text, xmin::text FROM "${db.schema}".deliveries WHERE id = $1`, [
          d.id,
        ])
      ).rows[0];
    const before = await version();

    const [claimed] = await store.claimDeliveries({ now: at(5), limit: 10, leaseMs: 60_000 });
    expect(claimed!.delivery).toEqual({
      ...d,
      status: 'delivering',
      nextAttemptAt: null,
      leaseExpiresAt: at(60_005),
      updatedAt: at(5),
    });
    expect(await version()).toEqual(before);
    const { rows: leases } = await db.pool.query(`SELECT * FROM "${db.schema}".leases`);
    expect(leases).toEqual([
      { delivery_id: d.id, webhook_id: hook.id, expires_at: at(60_005), claimed_at: at(5) },
    ]);
    expect(await store.getDelivery(d.id)).toEqual(claimed!.delivery);
    const listed = async (status: 'pending' | 'delivering') =>
      (await store.listDeliveries({ webhookId: hook.id, status, limit: 10 })).map((x) => x.id);
    expect(await listed('delivering')).toEqual([d.id]);
    expect(await listed('pending')).toEqual([]);

    await store.completeAttempts([
      {
        attempt: attempt(d, 1, { startedAt: at(6) }),
        next: { status: 'succeeded' },
        maxConsecutiveFailures: 10,
      },
    ]);
    expect((await db.pool.query(`SELECT * FROM "${db.schema}".leases`)).rows).toEqual([]);
    expect(await store.getDelivery(d.id)).toMatchObject({ status: 'succeeded', leaseExpiresAt: null });
  });

  it('takes over a lease only once it has run out', async () => {
    const { store, d } = await oneDueDelivery();
    expect(await store.claimDeliveries({ now: at(1), limit: 10, leaseMs: 1_000 })).toHaveLength(1);
    expect(await store.claimDeliveries({ now: at(1_000), limit: 10, leaseMs: 1_000 })).toEqual([]);
    expect(await store.nextDueAt()).toEqual(at(1_001));
    const [again] = await store.claimDeliveries({ now: at(1_001), limit: 10, leaseMs: 1_000 });
    expect(again!.delivery).toMatchObject({ id: d.id, leaseExpiresAt: at(2_001), updatedAt: at(1_001) });
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".leases`)).rows[0].n).toBe(1);
  });

  it('releases a lease: the delivery is pending and due again', async () => {
    const { store, d } = await oneDueDelivery();
    await store.claimDeliveries({ now: at(1), limit: 10, leaseMs: 60_000 });
    await store.releaseDeliveries([d.id], at(2));
    expect(await store.getDelivery(d.id)).toMatchObject({
      status: 'pending',
      nextAttemptAt: at(2),
      leaseExpiresAt: null,
      updatedAt: at(2),
    });
    expect(await store.nextDueAt()).toEqual(at(2));
  });

  it('deletes the leases of a deleted webhook with its deliveries', async () => {
    await db.truncate();
    const store = postgresStore({ pool: db.pool, schema: db.schema, notify: false });
    const [gone, kept] = [webhook(), webhook()];
    for (const hook of [gone, kept]) {
      await store.createWebhook(hook, { maxPerSite: 10 });
      await store.insertDeliveries([delivery(hook, { nextAttemptAt: at(0) })]);
    }
    expect(await store.claimDeliveries({ now: at(1), limit: 10, leaseMs: 60_000 })).toHaveLength(2);
    expect(await store.deleteWebhook(gone.id)).toBe(true);
    const { rows } = await db.pool.query(`SELECT webhook_id FROM "${db.schema}".leases`);
    expect(rows).toEqual([{ webhook_id: kept.id }]);
  });

  it('migration 3 moves the deliveries in flight of a version-2 schema to leases', async () => {
    const schema = db.freshSchema();
    const s = quoteSchema(schema);
    await db.pool.query(`${createSchema(schema)}; ${createVersionTable(schema)}`);
    for (const m of migrations.filter((m) => m.version <= 2)) {
      await db.pool.query(m.sql(schema));
      await db.pool.query(insertVersion(schema, m.version));
    }
    const hook = webhook();
    await db.pool.query(
      `INSERT INTO ${s}.webhooks (id, site_id, url, events, secret, active, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, true, $6, $6)`,
      [hook.id, hook.siteId, hook.url, hook.events, hook.secret, hook.createdAt],
    );
    const inFlight = delivery(hook, { nextAttemptAt: null, updatedAt: at(10) });
    const waiting = delivery(hook, { nextAttemptAt: at(20) });
    for (const [d, status, lease] of [
      [inFlight, 'delivering', at(60_010)],
      [waiting, 'pending', null],
    ] as const) {
      await db.pool.query(
        `INSERT INTO ${s}.deliveries (id, webhook_id, site_id, event, body, status, attempts, next_attempt_at,
           lease_expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10)`,
        [
          d.id,
          hook.id,
          hook.siteId,
          d.event,
          d.body,
          status,
          d.nextAttemptAt,
          lease,
          d.createdAt,
          d.updatedAt,
        ],
      );
    }

    expect((await migrate(db.pool, { schema })).applied).toEqual([3]);
    const store = postgresStore({ pool: db.pool, schema, notify: false });
    try {
      expect(await store.getDelivery(inFlight.id)).toEqual({
        ...inFlight,
        status: 'delivering',
        leaseExpiresAt: at(60_010),
      });
      expect(await store.getDelivery(waiting.id)).toEqual(waiting);
      const ids = async (now: number) =>
        (await store.claimDeliveries({ now: at(now), limit: 10, leaseMs: 120_000 })).map(
          (c) => c.delivery.id,
        );
      expect(await ids(30)).toEqual([waiting.id]);
      expect(await ids(60_010)).toEqual([inFlight.id]);
    } finally {
      await store.close();
    }
  });
});
