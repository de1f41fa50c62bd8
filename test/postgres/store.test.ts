import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { expect, it, vi } from 'vitest';
import * as sql from '../../src/adapters/postgres/sql.js';
import { Dispatcher } from '../../src/index.js';
import { postgresStore } from '../../src/postgres.js';
import { DATABASE_URL, describePostgres, useTestDatabase } from './db.js';
import { findNode, literal, mostRowsRead } from './plans.js';
import { at, attempt, delivery, failedAttempt, T0, waitFor, webhook } from './records.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describePostgres('postgresStore', () => {
  const db = useTestDatabase();

  it('refuses to subscribe on a pool of one connection, which LISTEN would hold for ever', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    try {
      const dispatcher = new Dispatcher({ store: postgresStore({ pool, schema: db.schema }) });
      await expect(dispatcher.start()).rejects.toThrow(
        'postgresStore: subscribing holds one pool connection for LISTEN, so the pool needs max >= 2 (it has 1); or pass notify: false',
      );
      // Without NOTIFY it polls, and one connection is enough.
      const polling = new Dispatcher({ store: postgresStore({ pool, schema: db.schema, notify: false }) });
      await polling.start();
      expect(await polling.runDue()).toEqual({ attempted: 0 });
      await polling.stop();
    } finally {
      await pool.end();
    }
  });

  /** An empty schema with one webhook, and a store on it. */
  const storeWithOneWebhook = async () => {
    await db.truncate();
    const store = db.store({ notify: false });
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    return { store, hook, s: `"${db.schema}"` };
  };

  /** `storeWithOneWebhook` with one delivery claimed under a lease of `leaseMs` from `at(0)`. */
  const oneClaimedDelivery = async (leaseMs = 60_000) => {
    const { store, hook, s } = await storeWithOneWebhook();
    const d = delivery(hook);
    await store.insertDeliveries([d]);
    const [claimed] = await store.claimDeliveries({ now: at(0), limit: 1, leaseMs });
    return { store, hook, s, d, lease: claimed!.delivery.leaseExpiresAt! };
  };

  /**
   * Another session holding the webhook's row (as another worker's completion batch or a change in progress
   * does) until `letGo()`, which commits and gives the connection back; a second call does nothing.
   */
  const holdWebhookRow = async (s: string, webhookId: string) => {
    const client = await db.pool.connect();
    await client.query('BEGIN');
    await client.query(`SELECT 1 FROM ${s}.webhooks WHERE id = $1 FOR NO KEY UPDATE`, [webhookId]);
    let held = true;
    return {
      async letGo() {
        if (!held) return;
        held = false;
        try {
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      },
    };
  };

  /** The statements (text and values) that `run` sends through the pool. */
  const statementsSent = async (run: () => Promise<unknown>) => {
    const spy = vi.spyOn(db.pool, 'query');
    try {
      await run();
      return spy.mock.calls.map(([config]) => config as unknown as { text: string; values: unknown[] });
    } finally {
      spy.mockRestore();
    }
  };

  /**
   * An empty schema with one webhook, a store on it, and another store on its own pool (as in another
   * process) subscribed: `woken` gets the time of each call, and the first call (it is listening) is in.
   */
  const subscribedElsewhere = async () => {
    await db.truncate();
    const store = db.store();
    const otherProcess = postgresStore({ pool: db.extraPool(2), schema: db.schema });
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const woken: number[] = [];
    const unsubscribe = otherProcess.subscribe!(() => woken.push(performance.now()));
    await waitFor(() => woken.length === 1);
    const stop = async () => {
      unsubscribe();
      await otherProcess.close();
    };
    return { store, hook, woken, stop };
  };

  it('holds the per-site limit for 50 concurrent creates from several pools', async () => {
    await db.truncate();
    const stores = [db.pool, db.extraPool(5), db.extraPool(5)].map((pool) =>
      postgresStore({ pool, schema: db.schema, notify: false }),
    );
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        stores[i % stores.length]!.createWebhook(webhook({ siteId: 'site_race' }), { maxPerSite: 10 }),
      ),
    );
    expect(outcomes.filter((o) => o === 'created')).toHaveLength(10);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".webhooks`);
    expect(rows[0].n).toBe(10);
  });

  it('holds the per-site limit when sessions default to REPEATABLE READ (its transaction asks for READ COMMITTED)', async () => {
    await db.truncate();
    const pool = db.extraPool(5, { defaultIsolation: 'repeatable read' });
    expect((await pool.query('SHOW transaction_isolation')).rows[0].transaction_isolation).toBe(
      'repeatable read',
    );
    const store = postgresStore({ pool, schema: db.schema, notify: false });
    const outcomes = await Promise.all(
      Array.from({ length: 25 }, () =>
        store.createWebhook(webhook({ siteId: 'site_race' }), { maxPerSite: 10 }),
      ),
    );
    expect(outcomes.filter((o) => o === 'created')).toHaveLength(10);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".webhooks`);
    expect(rows[0].n).toBe(10);
  });

  it('survives its connection being terminated inside a transaction, and goes on working', async () => {
    await db.truncate();
    const pool = db.extraPool(2);
    const store = postgresStore({ pool, schema: db.schema, notify: false });
    // Another create for the site holds its lock, so this one waits inside its transaction.
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(sql.lockSite(), [db.schema, 'site_t']);
      // Settled into a value at once: it may fail before the test gets to look at it.
      const creating = store.createWebhook(webhook({ siteId: 'site_t' }), { maxPerSite: 10 }).then(
        (outcome) => outcome,
        (error: unknown) => error,
      );
      await waitFor(async () => (await db.lockWaiters()) === 1);
      await db.pool.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = $1 AND wait_event_type = 'Lock' AND query = $2`,
        [db.schema, sql.lockSite()],
      );
      // Without a listener on the checked-out client, pg's 'error' event would end the process (and fail
      // this file as an unhandled error); the call itself fails with the connection.
      expect(await creating).toBeInstanceOf(Error);
      await holder.query('COMMIT');
    } finally {
      holder.release();
    }
    expect(await store.createWebhook(webhook({ siteId: 'site_t' }), { maxPerSite: 10 })).toBe('created');
  });

  it('reads back every timestamp to the millisecond, whatever the session time zone', async () => {
    await db.truncate();
    const pool = new pg.Pool({
      connectionString: DATABASE_URL,
      max: 2,
      options: '-c TimeZone=Asia/Kathmandu',
    });
    try {
      const store = postgresStore({ pool, schema: db.schema, notify: false });
      const odd = (iso: string) => new Date(iso);
      const hook = webhook({
        createdAt: odd('1969-12-31T23:59:59.999Z'),
        updatedAt: odd('2026-03-04T05:06:07.891Z'),
        lastTriggered: odd('2031-07-08T09:10:11.001Z'),
      });
      await store.createWebhook(hook, { maxPerSite: 10 });
      expect(await store.getWebhook(hook.id)).toEqual(hook);

      const d = delivery(hook, {
        nextAttemptAt: odd('2026-01-01T00:00:00.007Z'),
        createdAt: odd('2026-01-01T00:00:00.123Z'),
        updatedAt: odd('2026-01-01T00:00:00.999Z'),
      });
      await store.insertDeliveries([d]);
      expect(await store.getDelivery(d.id)).toEqual(d);
      expect(await store.nextDueAt()).toEqual(d.nextAttemptAt);
      const now = odd('2026-01-01T00:00:01.333Z');
      const [claimed] = await store.claimDeliveries({ now, limit: 1, leaseMs: 1_234 });
      expect(claimed!.delivery.leaseExpiresAt).toEqual(odd('2026-01-01T00:00:02.567Z'));
      expect(claimed!.delivery.updatedAt).toEqual(now);

      const done = attempt(d, 1, { startedAt: odd('2026-01-01T00:00:01.445Z'), durationMs: 17 });
      await store.completeAttempts([
        { attempt: done, next: { status: 'succeeded' }, maxConsecutiveFailures: 10 },
      ]);
      expect(await store.listAttempts([d.id])).toEqual([done]);
      expect((await store.getDelivery(d.id))!.updatedAt).toEqual(odd('2026-01-01T00:00:01.462Z'));
      expect((await store.getWebhook(hook.id))!.lastTriggered).toEqual(hook.lastTriggered);

      const { rows } = await pool.query(
        `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS t FROM "${db.schema}".deliveries`,
      );
      expect(rows[0].t).toBe('2026-01-01 00:00:00.123000');
    } finally {
      await pool.end();
    }
  });

  it('writes through the caller’s transaction: an emit that rolls back leaves nothing (the outbox)', async () => {
    await db.truncate();
    const store = db.store();
    const hook = webhook({ siteId: 'site_outbox', events: ['pageview'] });
    await store.createWebhook(hook, { maxPerSite: 10 });
    const dispatcher = new Dispatcher({ store });
    const event = { siteId: 'site_outbox', event: 'pageview' as const, data: { path: '/checkout' } };
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const [rolledBack] = await dispatcher.emit(event, { client });
      expect(rolledBack).toBeDefined();
      expect(await store.getDelivery(rolledBack!)).toBeNull(); // not visible outside the transaction
      await client.query('ROLLBACK');
      expect(await store.getDelivery(rolledBack!)).toBeNull();

      await client.query('BEGIN');
      // A webhook created in the same transaction is found too: findSubscribers reads through the client.
      await client.query(
        `INSERT INTO "${db.schema}".webhooks (id, site_id, url, events, secret, active, created_at, updated_at)
         VALUES ('wh_in_tx', 'site_outbox', 'https://x.example/', '{pageview}', 's', true, now(), now())`,
      );
      const committed = await dispatcher.emit(event, { client });
      expect(committed).toHaveLength(2);
      await client.query('COMMIT');
      const stored = await Promise.all(committed.map((id) => store.getDelivery(id)));
      expect(stored.map((d) => d?.webhookId).sort()).toEqual([hook.id, 'wh_in_tx'].sort());
      expect(stored[0]).toMatchObject({ status: 'pending', event: 'pageview', siteId: 'site_outbox' });
      expect(JSON.parse(stored[0]!.body)).toMatchObject({ event: 'pageview', data: { path: '/checkout' } });
    } finally {
      client.release();
      await dispatcher.stop();
    }
  });

  it('skips deliveries for webhooks deleted meanwhile instead of failing the caller’s transaction', async () => {
    await db.truncate();
    const store = db.store({ notify: false });
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const kept = delivery(hook);
    await store.insertDeliveries([kept, delivery(webhook())]);
    expect(await store.listDeliveries({ siteId: 'site_a', limit: 10 })).toEqual([kept]);
  });

  it('waits for a webhook whose DELETE is in progress and leaves it out, on the pool and in the outbox', async () => {
    for (const outbox of [false, true]) {
      await db.truncate();
      const store = db.store({ notify: false });
      const [going, staying] = [webhook(), webhook()];
      await store.createWebhook(going, { maxPerSite: 10 });
      await store.createWebhook(staying, { maxPerSite: 10 });
      const deleter = await db.pool.connect();
      const caller = await db.pool.connect();
      try {
        await deleter.query('BEGIN');
        await deleter.query(`DELETE FROM "${db.schema}".webhooks WHERE id = $1`, [going.id]);
        const kept = delivery(staying);
        let inserting: Promise<unknown>;
        if (outbox) {
          await caller.query('BEGIN');
          inserting = store.insertDeliveries([delivery(going), kept], { client: caller });
        } else {
          inserting = store.insertDeliveries([delivery(going), kept]);
        }
        await sleep(100);
        await deleter.query('COMMIT');
        await inserting;
        if (outbox) expect((await caller.query('COMMIT')).command).toBe('COMMIT');
        expect(await store.listDeliveries({ siteId: 'site_a', limit: 10 })).toEqual([kept]);
      } finally {
        deleter.release();
        caller.release();
      }
    }
  });

  it('an outbox emit committed after a disable is discarded when the webhook is enabled again', async () => {
    // FOR KEY SHARE does not wait for the disable (a stronger lock would make emits and completions queue
    // behind each other's transactions), so the caller's rows land pending on the inactive webhook.
    await db.truncate();
    const store = db.store();
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const caller = await db.pool.connect();
    try {
      await caller.query('BEGIN');
      const [id] = await store.insertDeliveries([delivery(hook)], { client: caller });
      await store.updateWebhook(hook.id, { active: false, updatedAt: at(1) });
      await caller.query('COMMIT');
      expect(await store.getDelivery(id!)).toMatchObject({ status: 'pending' });
      expect(await store.claimDeliveries({ now: at(10), limit: 10, leaseMs: 1000 })).toEqual([]);
      await store.updateWebhook(hook.id, { active: true, updatedAt: at(2) });
      expect(await store.getDelivery(id!)).toMatchObject({ status: 'discarded' });
      expect(await store.claimDeliveries({ now: at(10), limit: 10, leaseMs: 1000 })).toEqual([]);
    } finally {
      caller.release();
    }
  });

  it('NOTIFYs subscribers in any process within milliseconds of a commit, and not for a rollback', async () => {
    const { store, hook, woken: calls, stop } = await subscribedElsewhere();
    try {
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        await store.insertDeliveries([delivery(hook)], { client });
        await sleep(50);
        await client.query('ROLLBACK');
        await sleep(100);
        expect(calls).toHaveLength(1);

        await client.query('BEGIN');
        await store.insertDeliveries([delivery(hook), delivery(hook)], { client });
        await sleep(50);
        expect(calls).toHaveLength(1);
        const committedAt = performance.now();
        await client.query('COMMIT');
        await waitFor(() => calls.length === 2);
        expect(calls[1]! - committedAt).toBeLessThan(100);
      } finally {
        client.release();
      }

      // Nothing recorded (the webhook is gone), nothing sent.
      expect(await store.insertDeliveries([delivery(webhook())])).toEqual([]);
      await sleep(100);
      expect(calls).toHaveLength(2);

      await store.insertDeliveries([delivery(hook)]);
      await waitFor(() => calls.length === 3);
      const [claimed] = await store.claimDeliveries({ now: at(0), limit: 1, leaseMs: 60_000 });
      await store.releaseDeliveries([claimed!.delivery.id], at(1));
      await waitFor(() => calls.length === 4);

      // A store without notify sends nothing and offers no subscribe.
      const quiet = postgresStore({ pool: db.pool, schema: db.schema, notify: false });
      expect(quiet.subscribe).toBeUndefined();
      await quiet.insertDeliveries([delivery(hook)]);
      await sleep(100);
      expect(calls).toHaveLength(4);
    } finally {
      await stop();
    }
  });

  it('wakes subscribers after concurrent emits with a few NOTIFYs of their own, not one in each emit', async () => {
    // Postgres makes the commits of notifying transactions wait for each other: a NOTIFY inside every
    // emit cost concurrent emitters their group commit (bench/postgres-emit.mjs). A lone emit keeps its
    // NOTIFY inside (one round trip); emits that overlap share NOTIFYs sent after their commits.
    const { store, hook, woken, stop } = await subscribedElsewhere();
    try {
      const alone = await statementsSent(() => store.insertDeliveries([delivery(hook)]));
      expect(alone.map((config) => config.text)).toEqual([sql.insertDeliveries(db.schema)]);
      expect(alone[0]!.values.at(-1)).toBe(store.channel);
      await waitFor(() => woken.length === 2);

      const query = db.pool.query.bind(db.pool) as (...args: unknown[]) => unknown;
      let lastInsertSent = 0;
      const spy = vi.spyOn(db.pool, 'query').mockImplementation(((...args: unknown[]) => {
        const [config] = args as [{ text?: string }];
        if (config.text === sql.insertDeliveries(db.schema)) lastInsertSent = performance.now();
        return query(...args);
      }) as never);
      let statements: string[];
      try {
        await Promise.all(Array.from({ length: 40 }, () => store.insertDeliveries([delivery(hook)])));
        await store.close();
        statements = spy.mock.calls.map(([config]) =>
          typeof config === 'string' ? config : (config as { text: string }).text,
        );
      } finally {
        spy.mockRestore();
      }
      const inserts = statements.filter((text) => text === sql.insertDeliveries(db.schema));
      const notifies = statements.filter((text) => text === sql.notify());
      expect(inserts).toHaveLength(40);
      expect(notifies.length).toBeGreaterThanOrEqual(1);
      expect(notifies.length).toBeLessThan(20);
      // A NOTIFY follows every commit (sent after it, or inside the lone insert), so the subscriber is woken
      // after the last insert was sent.
      await waitFor(() => woken.some((at) => at > lastInsertSent));
      expect(
        (await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".deliveries`)).rows[0].n,
      ).toBe(41);
    } finally {
      await stop();
    }
  });

  it('wakes subscribers when a retry is scheduled or a delivery requeued', async () => {
    await db.truncate();
    const store = db.store();
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const d = delivery(hook);
    await store.insertDeliveries([d]);
    let calls = 0;
    store.subscribe!(() => calls++);
    await waitFor(() => calls === 1);
    await store.claimDeliveries({ now: at(0), limit: 1, leaseMs: 60_000 });
    await store.completeAttempts([
      {
        attempt: failedAttempt(d, 1),
        next: { status: 'pending', nextAttemptAt: at(5000) },
        maxConsecutiveFailures: 10,
      },
    ]);
    await waitFor(() => calls === 2);
    await store.claimDeliveries({ now: at(5000), limit: 1, leaseMs: 60_000 });
    await store.completeAttempts([
      { attempt: failedAttempt(d, 2), next: { status: 'failed' }, maxConsecutiveFailures: 10 },
    ]);
    await sleep(100);
    expect(calls).toBe(2);
    await store.requeueDelivery(d.id, at(9000));
    await waitFor(() => calls === 3);
  });

  it.each([
    ['', false],
    [', also when its onError throws', true],
  ])(
    'recovers its LISTEN connection after pg_terminate_backend and calls listeners once%s',
    async (_, throws) => {
      await db.truncate();
      const errors: unknown[] = [];
      const store = db.store({
        onError: (error) => {
          errors.push(error);
          if (throws) throw new Error('reporter down');
        },
      });
      const hook = webhook();
      await store.createWebhook(hook, { maxPerSite: 10 });
      let calls = 0;
      store.subscribe!(() => calls++);
      await waitFor(() => calls === 1);
      const listeners = async () =>
        (
          await db.pool.query(
            'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = $1',
            [`LISTEN "${store.channel}"`],
          )
        ).rows.map((r) => r.pid as number);
      const [before] = await listeners();
      expect(before).toBeDefined();

      await db.pool.query('SELECT pg_terminate_backend($1)', [before]);
      await waitFor(() => calls === 2); // reconnected: once, for whatever was missed
      expect(errors.length).toBeGreaterThan(0);
      const after = await listeners();
      expect(after).toHaveLength(1);
      expect(after[0]).not.toBe(before);

      await store.insertDeliveries([delivery(hook)]);
      await waitFor(() => calls === 3);
    },
  );

  it('resolves emits whose NOTIFY failed, also when its onError throws', async () => {
    await db.truncate();
    let failNotify = true;
    // The pool as the store sees it: the first NOTIFY after an insert fails (a connection lost meanwhile).
    const pool = new Proxy(db.pool, {
      get(target, key, receiver) {
        if (key !== 'query') return Reflect.get(target, key, receiver);
        return (config: unknown, values?: unknown) => {
          const text = typeof config === 'string' ? config : (config as { text: string }).text;
          if (failNotify && text.startsWith('SELECT pg_notify')) {
            failNotify = false;
            return Promise.reject(new Error('Connection terminated unexpectedly'));
          }
          return target.query(config as string, values as unknown[]);
        };
      },
    });
    const errors: unknown[] = [];
    const store = postgresStore({
      pool,
      schema: db.schema,
      onError: (error) => {
        errors.push(error);
        throw new Error('reporter down');
      },
    });
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    // Overlapping emits: their NOTIFYs are coalesced, and the waiters of the failed one must still resolve.
    for (let round = 0; round < 2; round++) {
      const inserted = await Promise.all([
        store.insertDeliveries([delivery(hook)]),
        store.insertDeliveries([delivery(hook)]),
        store.insertDeliveries([delivery(hook)]),
      ]);
      expect(inserted.flat()).toHaveLength(3);
    }
    expect(errors.map(String)).toEqual(['Error: Connection terminated unexpectedly']);
    await store.close();
  });

  it('gives the LISTEN connection back when the last listener unsubscribes, and on close', async () => {
    const pool = db.extraPool(3);
    const store = postgresStore({ pool, schema: db.schema });
    let calls = 0;
    const first = store.subscribe!(() => calls++);
    const second = store.subscribe!(() => calls++);
    await waitFor(() => calls === 2);
    expect(pool.totalCount - pool.idleCount).toBe(1);
    first();
    expect(pool.totalCount - pool.idleCount).toBe(1);
    second();
    await waitFor(() => pool.totalCount - pool.idleCount === 0);
    store.subscribe!(() => calls++);
    await waitFor(() => calls === 3);
    await store.close();
    expect(pool.totalCount - pool.idleCount).toBe(0);
  });

  it('prunes only finished deliveries older than the cutoff, in bounded batches', async () => {
    await db.truncate();
    const store = db.store({ notify: false });
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const old = (status: 'succeeded' | 'failed' | 'discarded' | 'pending' | 'delivering', ms = 0) =>
      delivery(hook, {
        status,
        createdAt: at(ms),
        ...(status === 'delivering' && { leaseExpiresAt: at(1) }),
      });
    const doomed = [
      old('succeeded'),
      old('succeeded', 1),
      old('failed', 2),
      old('discarded', 3),
      old('succeeded', 4),
    ];
    const kept = [old('pending'), old('delivering'), old('succeeded', 10_000), old('failed', 20_000)];
    await store.insertDeliveries([...doomed, ...kept]);
    await store.completeAttempts([
      { attempt: attempt(doomed[0]!, 1), next: { status: 'succeeded' }, maxConsecutiveFailures: 10 },
    ]);
    const spy = vi.spyOn(db.pool, 'query');
    try {
      expect(await store.pruneDeliveries({ olderThan: at(10_000), batchSize: 2 })).toBe(5);
      expect(spy.mock.calls.filter(([text]) => String(text).includes('DELETE FROM'))).toHaveLength(3);
    } finally {
      spy.mockRestore();
    }
    const left = await store.listDeliveries({ webhookId: hook.id, limit: 100 });
    expect(left.map((d) => d.id).sort()).toEqual(kept.map((d) => d.id).sort());
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".attempts`);
    expect(rows[0].n).toBe(0);
    await expect(store.pruneDeliveries({ batchSize: 0 })).rejects.toThrow(/batchSize/);
  });

  it('prunes after 30 days by default', async () => {
    await db.truncate();
    const store = db.store({ notify: false });
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const day = 24 * 60 * 60 * 1000;
    const older = delivery(hook, { status: 'succeeded', createdAt: new Date(Date.now() - 31 * day) });
    const newer = delivery(hook, { status: 'succeeded', createdAt: new Date(Date.now() - 29 * day) });
    await store.insertDeliveries([older, newer]);
    expect(await store.pruneDeliveries()).toBe(1);
    expect(await store.getDelivery(newer.id)).not.toBeNull();
  });

  it('stores a response snippet with NUL characters instead of failing the batch', async () => {
    await db.truncate();
    const store = db.store({ notify: false });
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const d = delivery(hook);
    await store.insertDeliveries([d]);
    const nul = attempt(d, 1, { responseSnippet: 'a\u0000b' });
    await store.completeAttempts([
      { attempt: nul, next: { status: 'succeeded' }, maxConsecutiveFailures: 10 },
    ]);
    expect((await store.listAttempts([d.id]))[0]!.responseSnippet).toBe('a\uFFFDb');
  });

  it('never hands one delivery to two claimers at once', async () => {
    await db.truncate();
    const hooks = Array.from({ length: 5 }, () => webhook());
    const seed = postgresStore({ pool: db.pool, schema: db.schema, notify: false });
    for (const hook of hooks) await seed.createWebhook(hook, { maxPerSite: 10 });
    const all = hooks.flatMap((hook) =>
      Array.from({ length: 60 }, (_, i) => delivery(hook, { nextAttemptAt: at(i) })),
    );
    await seed.insertDeliveries(all);
    const claimers = [db.pool, db.extraPool(3), db.extraPool(3), db.extraPool(3)].map((pool) =>
      postgresStore({ pool, schema: db.schema, notify: false }),
    );
    const seen: string[] = [];
    await Promise.all(
      claimers.map(async (claimer) => {
        for (let empty = 0; empty < 3; ) {
          const claimed = await claimer.claimDeliveries({
            now: at(1000),
            limit: 7,
            leaseMs: 60_000,
            perWebhookLimit: 3,
          });
          if (claimed.length === 0) empty++;
          seen.push(...claimed.map((c) => c.delivery.id));
        }
      }),
    );
    expect(seen).toHaveLength(all.length);
    expect(new Set(seen).size).toBe(all.length);
  });

  it('claims from every webhook when one has a large backlog, and reclaims expired leases under the cap', async () => {
    await db.truncate();
    const store = db.store({ notify: false });
    const flooded = webhook();
    const quiet = webhook();
    await store.createWebhook(flooded, { maxPerSite: 10 });
    await store.createWebhook(quiet, { maxPerSite: 10 });
    const backlog = Array.from({ length: 5000 }, (_, i) =>
      delivery(flooded, { nextAttemptAt: at(i % 1000) }),
    );
    await store.insertDeliveries(backlog);
    const mine = delivery(quiet, { nextAttemptAt: at(999) });
    await store.insertDeliveries([mine]);
    const first = await store.claimDeliveries({ now: at(1000), limit: 4, leaseMs: 100, perWebhookLimit: 2 });
    expect(first.filter((c) => c.webhook.id === flooded.id)).toHaveLength(2);
    expect(first.filter((c) => c.webhook.id === quiet.id).map((c) => c.delivery.id)).toEqual([mine.id]);
    // Expired leases (the quiet webhook's, due at 1100) are reclaimed; the cap still holds for the flood.
    const again = await store.claimDeliveries({ now: at(2000), limit: 10, leaseMs: 100, perWebhookLimit: 3 });
    expect(again.filter((c) => c.webhook.id === flooded.id)).toHaveLength(3);
    expect(again.map((c) => c.delivery.id)).toContain(mine.id);
    expect(await store.nextDueAt({ excludeWebhookIds: [flooded.id] })).toEqual(at(2100));
    expect(await store.nextDueAt()).toEqual(at(1)); // all five due at 0 are claimed
  });

  it('keeps the webhook row lock order so concurrent completion batches do not deadlock', async () => {
    await db.truncate();
    const store = db.store({ notify: false });
    const hooks = Array.from({ length: 4 }, () => webhook());
    for (const hook of hooks) await store.createWebhook(hook, { maxPerSite: 10 });
    const ds = hooks.flatMap((hook) => Array.from({ length: 10 }, () => delivery(hook)));
    await store.insertDeliveries(ds);
    await store.claimDeliveries({ now: T0, limit: 100, leaseMs: 60_000 });
    const batches = [0, 1, 2, 3].map((b) => ds.filter((_, i) => i % 4 === b).reverse());
    const results = await Promise.all(
      batches.map((batch) =>
        store.completeAttempts(
          batch.map((d) => ({
            attempt: failedAttempt(d, 1),
            next: { status: 'failed' },
            maxConsecutiveFailures: 100,
          })),
        ),
      ),
    );
    expect(results.flat()).toHaveLength(40);
    for (const hook of hooks) expect((await store.getWebhook(hook.id))!.consecutiveFailures).toBe(10);
  });

  it('runs a completion again when Postgres picked it as a deadlock victim, recording it once', {
    timeout: 15_000,
  }, async () => {
    await db.truncate();
    // Postgres checks for a deadlock once, deadlock_timeout after a session starts waiting. The store's
    // sessions check after 2 s, the other session after a minute: the completion is always the victim.
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2, options: '-c deadlock_timeout=2s' });
    const store = postgresStore({ pool, schema: db.schema, notify: false });
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const d = delivery(hook);
    await store.insertDeliveries([d]);
    await store.claimDeliveries({ now: T0, limit: 1, leaseMs: 60_000 });
    const outcome = {
      attempt: attempt(d, 1),
      next: { status: 'succeeded' as const },
      maxConsecutiveFailures: 10,
    };

    // Another session holds the delivery row; the completion locks the webhook row, then waits for it.
    const other = await db.pool.connect();
    try {
      await other.query('BEGIN');
      await other.query("SET LOCAL deadlock_timeout = '60s'");
      const { rows } = await other.query('SELECT pg_backend_pid() AS pid');
      await other.query(`SELECT 1 FROM "${db.schema}".deliveries WHERE id = $1 FOR UPDATE`, [d.id]);
      let completed = false;
      const completion = store.completeAttempts([outcome]).finally(() => {
        completed = true;
      });
      await waitFor(async () => {
        const blocked = await db.pool.query(
          'SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))',
          [rows[0].pid],
        );
        return blocked.rows.length > 0;
      }, 5_000);
      // Now the other session wants the webhook row: a cycle. The completion has waited longer, so its
      // deadlock check runs first and rolls it back, which is the only way this lock can be granted.
      await other.query(`SELECT 1 FROM "${db.schema}".webhooks WHERE id = $1 FOR UPDATE`, [hook.id]);
      expect(completed).toBe(false); // the store is running it again, and waits for the delivery row
      await other.query('COMMIT');
      expect(await completion).toEqual([
        { deliveryId: d.id, webhookId: hook.id, siteId: hook.siteId, disabledReason: null },
      ]);
      expect(await store.listAttempts([d.id])).toEqual([outcome.attempt]);
      expect((await store.getDelivery(d.id))!.status).toBe('succeeded');
    } finally {
      other.release();
      await pool.end();
    }
  });

  it('leaves a delivery to a claim that took it while a late completion waited for its row', async () => {
    const { store, s, d, lease } = await oneClaimedDelivery(1000);
    // Another worker's claim of the expired lease, not yet committed when the completion starts: the
    // completion's snapshot still shows the old lease, so only the UPDATE's check on the row's latest version
    // can keep the outcome off the delivery.
    const reclaimer = await db.pool.connect();
    try {
      await reclaimer.query('BEGIN');
      await reclaimer.query(`UPDATE ${s}.deliveries SET lease_expires_at = $2 WHERE id = $1`, [
        d.id,
        at(5000),
      ]);
      const completing = store.completeAttempts([
        {
          attempt: attempt(d, 1),
          next: { status: 'succeeded' },
          maxConsecutiveFailures: 10,
          leaseExpiresAt: lease,
        },
      ]);
      await waitFor(async () => (await db.lockWaiters()) === 1);
      await reclaimer.query('COMMIT');
      await completing;
    } finally {
      reclaimer.release();
    }
    expect(await store.getDelivery(d.id)).toMatchObject({
      status: 'delivering',
      attempts: 0,
      leaseExpiresAt: at(5000),
    });
    expect(await store.listAttempts([d.id])).toHaveLength(1);
  });

  it('does not count a late failure whose delivery was claimed again while it waited for the webhook', async () => {
    const { store, hook, s, d, lease } = await oneClaimedDelivery(1000);
    // Another worker's completion batch holds the webhook row, so the late completion waits for it; its
    // snapshot was taken before the wait and still shows the old lease.
    const row = await holdWebhookRow(s, hook.id);
    try {
      const late = store.completeAttempts([
        {
          attempt: failedAttempt(d, 1),
          next: { status: 'failed' },
          maxConsecutiveFailures: 1,
          leaseExpiresAt: lease,
        },
      ]);
      await waitFor(async () => (await db.lockWaiters()) === 1);
      const [again] = await store.claimDeliveries({ now: at(2000), limit: 1, leaseMs: 60_000 });
      expect(again!.delivery.id).toBe(d.id);
      await row.letGo();
      expect(await late).toEqual([
        { deliveryId: d.id, webhookId: hook.id, siteId: hook.siteId, disabledReason: null },
      ]);
    } finally {
      await row.letGo();
    }
    expect(await store.getWebhook(hook.id)).toMatchObject({ active: true, consecutiveFailures: 0 });
    expect(await store.getDelivery(d.id)).toMatchObject({ status: 'delivering', leaseExpiresAt: at(62_000) });
    expect(await store.listAttempts([d.id])).toHaveLength(1);
  });

  it('re-enables a webhook whose dead claim was released while the re-enable waited for the webhook row', async () => {
    const { store, hook, s, d } = await oneClaimedDelivery(1000); // the lease ended long ago
    await store.updateWebhook(hook.id, {
      active: false,
      disabledReason: 'Disabled by user',
      updatedAt: at(2),
    });
    const row = await holdWebhookRow(s, hook.id);
    try {
      // The re-enable's snapshot shows the claim still in flight with its lease ended ...
      const enabling = store.updateWebhook(hook.id, {
        active: true,
        disabledReason: null,
        updatedAt: at(5_000),
      });
      await waitFor(async () => (await db.lockWaiters()) === 1);
      // ... but before it gets the row, a stopping worker hands the claim back (it is pending now).
      await store.releaseDeliveries([d.id], at(2_500));
      await row.letGo();
      expect(await enabling).toMatchObject({ active: true });
    } finally {
      await row.letGo();
    }
    expect(await store.getDelivery(d.id)).toMatchObject({ status: 'discarded' });
  });

  it('records an outcome given twice in one batch once (the unique index would refuse the second)', async () => {
    const { store, hook, d } = await oneClaimedDelivery();
    const outcome = {
      attempt: failedAttempt(d, 1),
      next: { status: 'failed' as const },
      maxConsecutiveFailures: 10,
    };
    await store.completeAttempts([outcome, { ...outcome }]);
    expect(await store.listAttempts([d.id])).toHaveLength(1);
    expect((await store.getWebhook(hook.id))!.consecutiveFailures).toBe(1);
  });

  it('records a completion batch once when its retry overlaps the first run (a client-side timeout)', async () => {
    const { store, hook, s, d } = await oneClaimedDelivery();
    const outcome = {
      attempt: failedAttempt(d, 1),
      next: { status: 'failed' as const },
      maxConsecutiveFailures: 10,
    };
    // Something holds the webhook row, so the first run waits for it; the retry starts meanwhile, and its
    // snapshot, like the first run's, shows the attempt not recorded yet.
    const row = await holdWebhookRow(s, hook.id);
    try {
      const first = store.completeAttempts([outcome]);
      await waitFor(async () => (await db.lockWaiters()) === 1);
      const retry = store.completeAttempts([outcome]);
      await waitFor(async () => (await db.lockWaiters()) === 2);
      await row.letGo();
      await Promise.all([first, retry]);
    } finally {
      await row.letGo();
    }
    expect(await store.listAttempts([d.id])).toHaveLength(1);
    expect((await store.getWebhook(hook.id))!.consecutiveFailures).toBe(1);
  });

  it('records a completion batch once when it is retried after its commit (a lost acknowledgement)', async () => {
    await db.truncate();
    const store = db.store({ notify: false });
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const [ok, failing] = [delivery(hook), delivery(hook)];
    await store.insertDeliveries([ok, failing]);
    await store.claimDeliveries({ now: T0, limit: 10, leaseMs: 60_000 });
    const batch = [
      { attempt: attempt(ok, 1), next: { status: 'succeeded' as const }, maxConsecutiveFailures: 10 },
      { attempt: failedAttempt(failing, 1), next: { status: 'failed' as const }, maxConsecutiveFailures: 10 },
    ];
    expect(await store.completeAttempts(batch)).toHaveLength(2);
    // The dispatcher's CompletionWriter sends the same batch again when it saw an error.
    expect(await store.completeAttempts(batch)).toEqual([]);
    expect(await store.listAttempts([ok.id, failing.id])).toEqual(batch.map((o) => o.attempt));
    expect((await store.getWebhook(hook.id))!.consecutiveFailures).toBe(1);
    // A later attempt of the same delivery (a redelivery from attempt 1 again) is a new attempt.
    await store.requeueDelivery(failing.id, at(5000));
    await store.claimDeliveries({ now: at(5000), limit: 10, leaseMs: 60_000 });
    const again = attempt(failing, 1, { startedAt: at(5000) });
    expect(await store.completeAttempts([{ ...batch[1]!, attempt: again }])).toHaveLength(1);
    expect(await store.listAttempts([failing.id])).toEqual([batch[1]!.attempt, again]);
  });

  it('claims from each webhook’s own index while a capped webhook holds the earliest due deliveries', async () => {
    // A slow endpoint at its per-webhook limit with a backlog that is due first and was written first (so
    // the heap is in due order, as it is for first attempts). Asked for the other webhooks' deliveries in
    // due order, Postgres preferred walking the due index past the whole backlog to the per-webhook index:
    // every claim read the backlog once per webhook it took from (156 ms per claim at 100,000).
    await db.truncate();
    const store = db.store({ notify: false });
    const hooks = Array.from({ length: 8 }, () => webhook());
    for (const hook of hooks) await store.createWebhook(hook, { maxPerSite: 10 });
    const [slow, ...others] = hooks as [ReturnType<typeof webhook>, ...ReturnType<typeof webhook>[]];
    const s = `"${db.schema}"`;
    /** `count` deliveries round-robin over `ids`, numbered and due from `from` ms on, 1 ms apart. */
    const insert = (ids: string[], from: number, count: number) =>
      db.pool.query(
        `INSERT INTO ${s}.deliveries (id, webhook_id, site_id, event, body, status, attempts, next_attempt_at,
           created_at, updated_at)
         SELECT 'dlv_' || $2::int + g, ($1::text[])[1 + g % cardinality($1::text[])], $3, 'pageview', '{}',
           'pending', 0, $4::timestamptz + ($2::int + g) * interval '1 ms', $4, $4
         FROM generate_series(0, $5::int - 1) g`,
        [ids, from, slow.siteId, at(0), count],
      );
    await insert([slow.id], 0, 20_000);
    await insert(
      others.map((hook) => hook.id),
      20_000,
      14_000,
    );
    await db.pool.query(`ANALYZE ${s}.deliveries`);
    const claim = () =>
      store.claimDeliveries({
        now: at(100_000),
        limit: 29,
        leaseMs: 60_000,
        perWebhookLimit: 8,
        busyWebhooks: new Map([[slow.id, 8]]),
      });
    const sent = (await statementsSent(claim)).find((c) => c.text === sql.claimDeliveries(db.schema))!;

    const client = await db.pool.connect();
    try {
      for (const mode of ['force_custom_plan', 'force_generic_plan']) {
        await client.query('BEGIN');
        await client.query(`SET LOCAL plan_cache_mode = ${mode}`);
        await client.query(`PREPARE claim_${mode} AS ${sent.text}`);
        const { rows } = await client.query(
          `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim_${mode} (${sent.values.map(literal).join(', ')})`,
        );
        await client.query('ROLLBACK');
        await client.query(`DEALLOCATE claim_${mode}`);
        // The due window reads 256 entries; a per-webhook scan reads about what it takes.
        expect(mostRowsRead(rows[0]['QUERY PLAN'][0].Plan, 'deliveries'), mode).toBeLessThanOrEqual(256);
      }
    } finally {
      client.release();
    }
    const claimed = await claim();
    expect(claimed).toHaveLength(29);
    expect(claimed.some((c) => c.webhook.id === slow.id)).toBe(false);
  });

  it('checks a completion batch against earlier attempts by index, not by reading every attempt', async () => {
    // With a few thousand attempts Postgres' cost model prefers hashing the whole table, and a cached
    // (generic) plan would keep doing so however large the table grows before the next ANALYZE.
    const { store, hook, s } = await storeWithOneWebhook();
    await db.pool.query(
      `INSERT INTO ${s}.deliveries (id, webhook_id, site_id, event, body, status, attempts, created_at, updated_at)
       SELECT 'dlv_' || g, $1, $2, 'pageview', '{}', 'succeeded', 1, now(), now() FROM generate_series(1, 3000) g`,
      [hook.id, hook.siteId],
    );
    await db.pool.query(
      `INSERT INTO ${s}.attempts (delivery_id, webhook_id, attempt, started_at, duration_ms, status_code, ok)
       SELECT 'dlv_' || g, $1, 1, now(), 1, 200, true FROM generate_series(1, 3000) g`,
      [hook.id],
    );
    await db.pool.query(`ANALYZE ${s}.deliveries`);
    await db.pool.query(`ANALYZE ${s}.attempts`);
    // A completion batch of 64, as the store sends it, planned for its actual values as Postgres does for
    // the first executions of a prepared statement.
    const batch = Array.from({ length: 64 }, () => delivery(hook));
    await store.insertDeliveries(batch);
    const sent = (
      await statementsSent(() =>
        store.completeAttempts(
          batch.map((d) => ({
            attempt: attempt(d, 1),
            next: { status: 'succeeded' },
            maxConsecutiveFailures: 10,
          })),
        ),
      )
    ).find((config) => config.text === sql.completeAttempts(db.schema));
    const { rows } = await db.pool.query(`EXPLAIN ${sent!.text}`, sent!.values);
    const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
    expect(plan).toContain('attempts_once_idx');
    expect(plan).not.toMatch(/Seq Scan on attempts/);
  });

  it('bounds the due window by a constant, so cached plans do not grow costlier with the backlog', async () => {
    // In a cached generic plan a LIMIT given as a parameter is estimated at 10% of the table: the claim's
    // and nextDueAt's estimated cost grew with the backlog, towards `jit_above_cost` (JIT-compiling each
    // call) at about ten million pending deliveries. A constant outer LIMIT caps the estimate.
    const { store, hook, s } = await storeWithOneWebhook();
    await db.pool.query(
      `INSERT INTO ${s}.deliveries (id, webhook_id, site_id, event, body, status, attempts, next_attempt_at,
         created_at, updated_at)
       SELECT 'dlv_' || g, $1, $2, 'pageview', '{}', 'pending', 0, $3::timestamptz + g * interval '1 ms', $3, $3
       FROM generate_series(1, 60000) g`,
      [hook.id, hook.siteId, at(0)],
    );
    await db.pool.query(`ANALYZE ${s}.deliveries`);
    const sent = await statementsSent(async () => {
      await store.claimDeliveries({ now: at(100_000), limit: 64, leaseMs: 60_000, perWebhookLimit: 8 });
      await store.nextDueAt();
    });
    expect(sent.map((config) => config.text)).toEqual([
      sql.claimDeliveries(db.schema),
      sql.nextDueAt(db.schema),
    ]);

    const pool = db.extraPool(1);
    await pool.query('SET plan_cache_mode = force_generic_plan');
    for (const [i, { text, values }] of sent.entries()) {
      await pool.query(`PREPARE generic_${i} AS ${text}`);
      // EXECUTE takes no bind parameters: the values go in as untyped literals, as the driver sends them.
      const { rows } = await pool.query(
        `EXPLAIN (FORMAT JSON) EXECUTE generic_${i} (${values.map(literal).join(', ')})`,
      );
      const window = findNode(
        rows[0]['QUERY PLAN'][0].Plan,
        (node) => node['Subplan Name'] === 'CTE due_window',
      );
      expect(window?.['Plan Rows']).toBeLessThanOrEqual(sql.MAX_DUE_WINDOW);
    }
  });

  it('takes a dueWindow from 1 to 512', () => {
    for (const dueWindow of [0, 1.5, 513, Number.NaN]) {
      expect(() => postgresStore({ pool: db.pool, schema: db.schema, dueWindow })).toThrow(
        new TypeError('dueWindow must be an integer from 1 to 512'),
      );
    }
    for (const dueWindow of [1, 512]) {
      expect(() =>
        postgresStore({ pool: db.pool, schema: db.schema, notify: false, dueWindow }),
      ).not.toThrow();
    }
  });

  it('claims more deliveries in one call than the largest due window holds, earliest due first', async () => {
    // 4 × 5,000 is past the 512 bound: the store asks for a window of 512, which cannot decide, and the
    // per-webhook scan answers. (Asking for 20,000 would read a full window of 512 as all there is.)
    await db.truncate();
    const store = db.store({ notify: false });
    const hooks = Array.from({ length: 10 }, () => webhook());
    for (const hook of hooks) await store.createWebhook(hook, { maxPerSite: 10 });
    await db.pool.query(
      `INSERT INTO "${db.schema}".deliveries (id, webhook_id, site_id, event, body, status, attempts,
         next_attempt_at, created_at, updated_at)
       SELECT 'dlv_' || lpad(g::text, 5, '0'), ($1::text[])[1 + g % 10], $2, 'pageview', '{}', 'pending', 0,
         $3::timestamptz + g * interval '1 ms', $3, $3
       FROM generate_series(1, 6000) g`,
      [hooks.map((hook) => hook.id), hooks[0]!.siteId, at(0)],
    );
    const claimed = await store.claimDeliveries({ now: at(10_000), limit: 5000, leaseMs: 60_000 });
    expect(claimed.map((c) => c.delivery.id)).toEqual(
      Array.from({ length: 5000 }, (_, i) => `dlv_${String(i + 1).padStart(5, '0')}`),
    );
  });

  it('prepares the delivery-path statements once per connection, unless told not to', async () => {
    await db.truncate();
    const named = async (preparedStatements: boolean) => {
      const pool = db.extraPool(1); // one connection: pg_prepared_statements is per session
      const store = postgresStore({ pool, schema: db.schema, notify: false, preparedStatements });
      const hook = webhook();
      await store.createWebhook(hook, { maxPerSite: 10 });
      await store.insertDeliveries([delivery(hook)]);
      for (let i = 0; i < 3; i++) await store.claimDeliveries({ now: at(i), limit: 10, leaseMs: 1 });
      await store.nextDueAt();
      const { rows } = await pool.query(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'zta\\_%' ORDER BY name",
      );
      return rows.map((row) => row.name as string);
    };
    const names = await named(true);
    expect(names).toHaveLength(3); // insert, claim, nextDueAt: each prepared once, used again by name
    expect(await named(false)).toEqual([]);
  });

  it('names migrate() when the schema was never migrated, on every kind of call', async () => {
    const schema = `${db.schema}_never_migrated`;
    const store = postgresStore({ pool: db.pool, schema, notify: false });
    const hint = `(has migrate(pool, { schema: "${schema}" }) run on this database?)`;
    const calls: [string, () => Promise<unknown>][] = [
      ['createWebhook', () => store.createWebhook(webhook(), { maxPerSite: 10 })],
      ['getWebhook', () => store.getWebhook('wh_x')],
      ['claimDeliveries', () => store.claimDeliveries({ now: new Date(), limit: 1, leaseMs: 1000 })],
      ['pruneDeliveries', () => store.pruneDeliveries({ olderThan: new Date() })],
    ];
    for (const [name, call] of calls) {
      const error = await call().then(
        () => null,
        (rejection: unknown) => rejection as Error & { code?: string },
      );
      expect(error?.code, name).toBe('42P01');
      expect(error?.message, name).toContain(hint);
    }
  });

  it('finds nothing, instead of failing, for ids with a NUL (Postgres cannot store one) or invalid dates', async () => {
    await db.truncate();
    const store = db.store({ notify: false });
    const nul = 'wh_\u0000';
    expect(await store.getWebhook(nul)).toBeNull();
    expect(await store.updateWebhook(nul, { active: false, updatedAt: T0 })).toBeNull();
    expect(await store.deleteWebhook(nul)).toBe(false);
    expect(await store.listWebhooks('site_\u0000')).toEqual([]);
    expect(await store.findSubscribers('site_\u0000', 'pageview')).toEqual([]);
    expect(await store.getDelivery('dlv_\u0000')).toBeNull();
    expect(await store.requeueDelivery('dlv_\u0000', T0)).toBeNull();
    expect(await store.listAttempts(['dlv_\u0000'])).toEqual([]);
    expect(await store.listDeliveries({ siteId: 'site_\u0000', limit: 10 })).toEqual([]);
    expect(await store.listDeliveries({ webhookId: nul, limit: 10 })).toEqual([]);
    expect(
      await store.listDeliveries({ siteId: 'site_a', after: { createdAt: T0, id: 'dlv_\u0000' }, limit: 10 }),
    ).toEqual([]);
    // Nor for dates out of range (a cursor can carry any number): nothing is after or since an invalid date.
    const hook = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    await store.insertDeliveries([delivery(hook)]);
    const invalid = new Date(8_640_000_000_000_001);
    expect(await store.listDeliveries({ siteId: hook.siteId, since: invalid, limit: 10 })).toEqual([]);
    expect(
      await store.listDeliveries({
        siteId: hook.siteId,
        after: { createdAt: invalid, id: 'dlv_x' },
        limit: 10,
      }),
    ).toEqual([]);
    expect(await store.listDeliveries({ siteId: hook.siteId, limit: 10 })).toHaveLength(1);
    // Valid dates before Postgres' earliest timestamp (4714-11-24 BC): everything is since them, nothing
    // is older than them. Found by the HTTP fuzz test (`since=-004713-11-23T23:59:59.999Z` was a 500).
    const earliest = new Date(Date.UTC(-4713, 10, 24));
    for (const ancient of [new Date(earliest.getTime() - 1), new Date(-8_640_000_000_000_000), earliest]) {
      expect(await store.listDeliveries({ siteId: hook.siteId, since: ancient, limit: 10 })).toHaveLength(1);
      expect(
        await store.listDeliveries({
          siteId: hook.siteId,
          after: { createdAt: ancient, id: 'dlv_x' },
          limit: 10,
        }),
      ).toEqual([]);
    }
  });
});
