// A site's activity log on Postgres is read per webhook (there is no index by site since schema version
// 3): each webhook gives a share of the page and a wider share is read when one webhook's share might hide
// deliveries that belong on the page. The reference is the same query ordered by Postgres over the table.
import { expect, it, vi } from 'vitest';
import type { DeliveryQuery, DeliveryStatus } from '../../src/index.js';
import { describePostgres, useTestDatabase } from './db.js';
import { mostRowsRead } from './plans.js';
import { at, delivery, webhook } from './records.js';

describePostgres('postgresStore: a site activity log', () => {
  const db = useTestDatabase();

  /** Ids of the site's deliveries as Postgres orders them, with the query's filters, newest first. */
  const reference = async (q: DeliveryQuery): Promise<string[]> => {
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT id FROM "${db.schema}".deliveries
       WHERE site_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::timestamptz IS NULL OR created_at >= $3)
         AND ($4::timestamptz IS NULL OR (created_at, id) < ($4::timestamptz, $5::text))
       ORDER BY created_at DESC, id DESC LIMIT $6`,
      [q.siteId, q.status ?? null, q.since ?? null, q.after?.createdAt ?? null, q.after?.id ?? null, q.limit],
    );
    return rows.map((row) => row.id);
  };

  /** How many rounds (statements) one listing takes. */
  const rounds = async (run: () => Promise<unknown>): Promise<number> => {
    const spy = vi.spyOn(db.pool, 'query');
    try {
      await run();
      return spy.mock.calls.filter(([text]) => String(text).includes('fetched_of_webhook')).length;
    } finally {
      spy.mockRestore();
    }
  };

  /** Webhooks of site_a (and one of site_b), and deliveries made by `plan(index of webhook, n)`. */
  const seed = async (
    hooks: number,
    perHook: (hook: number) => { createdAt: number; status?: DeliveryStatus }[],
  ) => {
    await db.truncate();
    const store = db.store({ notify: false });
    const made = Array.from({ length: hooks }, () => webhook());
    const other = webhook({ siteId: 'site_b' });
    for (const hook of [...made, other]) await store.createWebhook(hook, { maxPerSite: 20 });
    const records = made.flatMap((hook, i) =>
      perHook(i).map(({ createdAt, status = 'succeeded' }) =>
        delivery(hook, { createdAt: at(createdAt), status, nextAttemptAt: null }),
      ),
    );
    records.push(...Array.from({ length: 30 }, (_, i) => delivery(other, { createdAt: at(i) })));
    await store.insertDeliveries(records);
    return store;
  };

  it('reads one round when the webhooks share the page evenly', async () => {
    const store = await seed(5, (hook) =>
      Array.from({ length: 40 }, (_, i) => ({ createdAt: i * 5 + hook })),
    );
    const q = { siteId: 'site_a', limit: 50 };
    let page: string[] = [];
    expect(await rounds(async () => (page = (await store.listDeliveries(q)).map((d) => d.id)))).toBe(1);
    expect(page).toEqual(await reference(q));
  });

  it('reads wider rounds when one webhook holds the newest page, and still gets it right', async () => {
    // Webhook 0 has the 120 newest; the other nine only older ones.
    const store = await seed(10, (hook) =>
      hook === 0
        ? Array.from({ length: 120 }, (_, i) => ({ createdAt: 10_000 + i }))
        : Array.from({ length: 20 }, (_, i) => ({ createdAt: hook * 100 + i })),
    );
    const q = { siteId: 'site_a', limit: 50 };
    let page: string[] = [];
    expect(
      await rounds(async () => (page = (await store.listDeliveries(q)).map((d) => d.id))),
    ).toBeGreaterThan(1);
    expect(page).toEqual(await reference(q));
    expect(page).toHaveLength(50);
  });

  it('pages through the whole log with a cursor: ties on the creation time, filters, skewed webhooks', async () => {
    // Many deliveries per millisecond across webhooks, so the id decides the order within a tie.
    const store = await seed(7, (hook) =>
      Array.from({ length: 10 + hook * 15 }, (_, i) => ({
        createdAt: Math.floor(i / (hook + 1)) * 3,
        status: (['succeeded', 'failed', 'pending', 'discarded'] as const)[(i * 7 + hook) % 4],
      })),
    );
    for (const filters of [
      {},
      { status: 'failed' as const },
      { since: at(30) },
      { status: 'pending' as const, since: at(9) },
    ]) {
      for (const limit of [1, 7, 50, 1000]) {
        const seen: string[] = [];
        let after: DeliveryQuery['after'];
        for (let pages = 0; pages < 1000; pages++) {
          const q: DeliveryQuery = { siteId: 'site_a', limit, ...filters, ...(after && { after }) };
          const page = await store.listDeliveries(q);
          expect(page.map((d) => d.id)).toEqual(await reference(q));
          seen.push(...page.map((d) => d.id));
          if (page.length < limit) break;
          const last = page.at(-1)!;
          after = { createdAt: last.createdAt, id: last.id };
        }
        expect(seen).toEqual(await reference({ siteId: 'site_a', limit: 100_000, ...filters }));
      }
    }
  });

  it('fills the page from one webhook when the others have nothing to show', async () => {
    const store = await seed(4, (hook) =>
      hook === 2 ? Array.from({ length: 100 }, (_, i) => ({ createdAt: i })) : [],
    );
    const q = { siteId: 'site_a', limit: 50 };
    const page = (await store.listDeliveries(q)).map((d) => d.id);
    expect(page).toHaveLength(50);
    expect(page).toEqual(await reference(q));
  });

  it('lists nothing for a site without webhooks, and never another site', async () => {
    const store = await seed(1, () => [{ createdAt: 1 }]);
    expect(await store.listDeliveries({ siteId: 'site_none', limit: 10 })).toEqual([]);
    expect(
      (await store.listDeliveries({ siteId: 'site_b', limit: 100 })).every((d) => d.siteId === 'site_b'),
    ).toBe(true);
    expect(await store.listDeliveries({ siteId: 'site_b', limit: 100 })).toHaveLength(30);
  });

  it('reads each webhook’s share through its own index, even past a busy webhook’s newer deliveries', async () => {
    // A quiet webhook's deliveries written first, a busy one's after them: the heap in creation order, as in
    // production. For a status page Postgres preferred the retention index (finished deliveries by creation
    // time) and walked the busy webhook's deliveries to find the quiet one's share: 50 ms at 200,000.
    await db.truncate();
    const store = db.store({ notify: false });
    const [quiet, busy] = [webhook(), webhook()];
    for (const hook of [quiet, busy]) await store.createWebhook(hook, { maxPerSite: 20 });
    const s = `"${db.schema}"`;
    for (const [hook, from, count] of [
      [quiet, 0, 1_000],
      [busy, 1_000, 50_000],
    ] as const) {
      await db.pool.query(
        `INSERT INTO ${s}.deliveries (id, webhook_id, site_id, event, body, status, attempts, created_at, updated_at)
         SELECT 'dlv_' || $2::int + g, $1, 'site_a', 'pageview', '{}', 'succeeded', 1,
           $4::timestamptz + ($2::int + g) * interval '1 ms', $4
         FROM generate_series(0, $3::int - 1) g`,
        [hook.id, from, count, at(0)],
      );
    }
    await db.pool.query(`ANALYZE ${s}.deliveries`);
    const q = { siteId: 'site_a', status: 'succeeded' as const, limit: 50 };
    const spy = vi.spyOn(db.pool, 'query');
    let page: string[];
    let calls: unknown[][];
    try {
      page = (await store.listDeliveries(q)).map((d) => d.id);
      calls = [...spy.mock.calls];
    } finally {
      spy.mockRestore();
    }
    expect(page).toEqual(await reference(q));
    const [text, values] = calls.find(([t]) => String(t).includes('fetched_of_webhook'))!;
    const { rows } = await db.pool.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values as unknown[]);
    // Each webhook's share of a page of 50 is 26 (the statement's first round).
    expect(mostRowsRead(rows[0]['QUERY PLAN'][0].Plan, 'deliveries')).toBeLessThanOrEqual(100);
  });
});
