// Several dispatcher PROCESSES (./worker.ts) on one schema, delivering to an HTTPS receiver in this
// process: exactly one worker at a time per delivery, nothing lost when a worker is killed with SIGKILL or
// when Postgres terminates a worker's connections under it.
import { performance } from 'node:perf_hooks';
import { expect, it } from 'vitest';
import { Dispatcher, WebhookManager } from '../../src/index.js';
import { createTestCA, type TestCA } from '../support/tls.js';
import { describePostgres, useTestDatabase } from './db.js';
import { startWorker, type TrackingReceiver, trackingReceiver, until } from './processes.js';

const SITE = 'site_processes';

function tally(values: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}
const HOOKS = 4;

describePostgres('dispatcher processes sharing one database', () => {
  const db = useTestDatabase();
  let ca: TestCA;

  /** Empty tables, `HOOKS` webhooks to the receiver, and an emitter that never starts (it only writes). */
  async function world(target: TrackingReceiver) {
    await db.truncate();
    ca ??= await createTestCA();
    const store = db.store();
    const manager = new WebhookManager({ store, authorize: () => true, allowPrivateNetworks: true });
    for (let i = 0; i < HOOKS; i++) {
      await manager.create(null, {
        siteId: SITE,
        url: target.receiver.url(`/hook/${i}`),
        events: ['pageview'],
      });
    }
    const app = new Dispatcher({ store });
    /** `events` pageviews, one delivery per webhook each. */
    const emit = (events: number) =>
      app.emitMany(
        Array.from({ length: events }, (_, i) => ({
          siteId: SITE,
          event: 'pageview' as const,
          data: { path: `/${i}` },
        })),
      );
    return { emit };
  }

  const table = (name: string) => `"${db.schema}".${name}`;

  async function statusCounts(): Promise<Record<string, number>> {
    const { rows } = await db.pool.query(
      `SELECT status, count(*)::int AS n FROM ${table('deliveries')} GROUP BY status`,
    );
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async function attemptRows() {
    const { rows } = await db.pool.query(
      `SELECT delivery_id, attempt, started_at, duration_ms, status_code FROM ${table('attempts')} ORDER BY delivery_id, id`,
    );
    const byDelivery = new Map<string, { attempt: number; start: number; end: number; status: number }[]>();
    for (const row of rows) {
      const list = byDelivery.get(row.delivery_id) ?? [];
      const start = (row.started_at as Date).getTime();
      list.push({ attempt: row.attempt, start, end: start + row.duration_ms, status: row.status_code });
      byDelivery.set(row.delivery_id, list);
    }
    return byDelivery;
  }

  it('delivers 5,000 deliveries with 3 worker processes: each attempted by one worker at a time, all arrive', {
    timeout: 90_000,
  }, async () => {
    ca ??= await createTestCA();
    // A fifth of the deliveries fail their first attempt, so retries (by any worker) are in the mix.
    const flaky = (id: string) => id.charCodeAt(id.length - 1) % 5 === 0;
    const target = await trackingReceiver(ca, (id, n) => ({
      status: n === 1 && flaky(id) ? 503 : 200,
      delayMs: 0,
    }));
    const { emit } = await world(target);
    const workers = await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        startWorker({ name, schema: db.schema, caCert: ca.caCert, concurrency: 32 }),
      ),
    );
    const ids: string[] = [];
    for (let wave = 0; wave < 5; wave++) ids.push(...(await emit(250))); // 5 × 250 events × 4 webhooks
    expect(ids).toHaveLength(5_000);
    const expected = new Set(ids);
    const retried = ids.filter(flaky).length;

    await until(async () => (await statusCounts()).succeeded === 5_000, 60_000, 'all 5,000 to succeed');
    await Promise.all(workers.map((worker) => worker.stop()));
    target.receiver.close();

    // From the receiver: every delivery arrived, each retried one exactly twice, no two requests for one
    // delivery overlapped in time, and every worker took part.
    const counts = target.counts();
    expect(new Set(counts.keys())).toEqual(expected);
    expect(target.hits).toHaveLength(5_000 + retried);
    for (const id of ids) expect(counts.get(id), id).toBe(flaky(id) ? 2 : 1);
    expect(target.overlapping()).toEqual([]);
    const perWorker = tally(target.hits.map((hit) => hit.worker));
    expect([...perWorker.keys()].sort()).toEqual(['a', 'b', 'c']);

    // From the attempts table: the same attempts, numbered in order, none overlapping another.
    const attempts = await attemptRows();
    expect(attempts.size).toBe(5_000);
    for (const [id, list] of attempts) {
      expect(list.map((a) => a.attempt)).toEqual(flaky(id) ? [1, 2] : [1]);
      expect(list.map((a) => a.status)).toEqual(flaky(id) ? [503, 200] : [200]);
      for (let i = 1; i < list.length; i++) expect(list[i]!.start).toBeGreaterThanOrEqual(list[i - 1]!.end);
    }
    expect(await statusCounts()).toEqual({ succeeded: 5_000 });
    for (const worker of workers) expect(worker.logs.filter((l) => l.level === 'error')).toEqual([]);
    console.log(
      `multi-process: 5000 deliveries, ${target.hits.length} requests; per worker ${[...perWorker]
        .map(([name, n]) => `${name}=${n}`)
        .join(' ')}`,
    );
  });

  it('survives kill -9 of a worker mid-batch: all arrive, duplicates only for attempts in flight at the kill', {
    timeout: 60_000,
  }, async () => {
    ca ??= await createTestCA();
    const target = await trackingReceiver(ca, () => ({ status: 200, delayMs: 100 }));
    const { emit } = await world(target);
    const concurrency = 16;
    const leaseMs = 1_500;
    const victim = await startWorker({
      name: 'victim',
      schema: db.schema,
      caCert: ca.caCert,
      concurrency,
      leaseMs,
    });
    const survivor = await startWorker({
      name: 'survivor',
      schema: db.schema,
      caCert: ca.caCert,
      concurrency,
      leaseMs,
    });
    const ids = await emit(200); // 800 deliveries, about 2.5 s of work at 2 × 16 in flight × 100 ms each
    await until(
      () => target.hits.filter((h) => h.worker === 'victim').length >= 150,
      20_000,
      'the victim to work',
    );

    const killedAt = new Date();
    const killedAtMono = performance.now();
    await victim.kill();
    expect(await victim.exited).toBe('SIGKILL');

    await until(
      async () => (await statusCounts()).succeeded === ids.length,
      30_000,
      'every delivery to succeed',
    );
    await survivor.stop();
    target.receiver.close();

    const counts = target.counts();
    expect(new Set(counts.keys())).toEqual(new Set(ids));
    expect(target.overlapping()).toEqual([]);
    expect(await statusCounts()).toEqual({ succeeded: ids.length });

    // What the victim had sent that no completion recorded: its requests the receiver got, minus the
    // deliveries with an attempt that started before the kill (only the victim's own attempts can have,
    // for these: no lease of a live worker expires).
    const { rows } = await db.pool.query(
      `SELECT DISTINCT delivery_id FROM ${table('attempts')} WHERE started_at <= $1`,
      [killedAt],
    );
    const recordedAtKill = new Set(rows.map((r) => r.delivery_id as string));
    const fromVictim = target.hits.filter((hit) => hit.worker === 'victim');
    const unrecorded = new Set(fromVictim.map((h) => h.deliveryId).filter((id) => !recordedAtKill.has(id)));
    const openAtKill = fromVictim.filter((h) => h.end === null || h.end > killedAtMono).length;
    const duplicates = [...counts].filter(([, n]) => n > 1).map(([id]) => id);

    // Every duplicate is a delivery the victim sent and had not recorded; each arrived exactly twice.
    for (const id of duplicates) {
      expect(unrecorded.has(id), id).toBe(true);
      expect(counts.get(id)).toBe(2);
    }
    expect(duplicates.length).toBeLessThanOrEqual(unrecorded.size);
    // The victim held at most `concurrency` requests open; what it had answered but not yet recorded sits
    // in one completion batch at most, itself bounded by what was in flight.
    expect(openAtKill).toBeLessThanOrEqual(concurrency);
    expect(unrecorded.size).toBeLessThanOrEqual(2 * concurrency);
    // The survivor sent those deliveries again, after the lease expired.
    for (const id of duplicates) {
      const again = target.hits.filter((h) => h.deliveryId === id).at(-1)!;
      expect(again.worker).toBe('survivor');
      expect(again.receivedAt.getTime() - killedAt.getTime()).toBeGreaterThanOrEqual(0);
    }
    // The attempts table has one row per request, except the victim's unrecorded ones.
    const attempts = await attemptRows();
    for (const id of ids) {
      expect(attempts.get(id)?.length ?? 0, id).toBe(counts.get(id)! - (unrecorded.has(id) ? 1 : 0));
    }
    console.log(
      `crash: ${ids.length} deliveries, victim sent ${fromVictim.length} (${openAtKill} open at the kill, ` +
        `${unrecorded.size} sent but unrecorded), duplicates ${duplicates.length}, concurrency ${concurrency}`,
    );
  });

  it('recovers from pg_terminate_backend of all its connections while delivering, losing nothing', {
    timeout: 60_000,
  }, async () => {
    ca ??= await createTestCA();
    const target = await trackingReceiver(ca, () => ({ status: 200, delayMs: 5 }));
    const { emit } = await world(target);
    const worker = await startWorker({
      name: 'faulty',
      schema: db.schema,
      caCert: ca.caCert,
      concurrency: 16,
      leaseMs: 3_000,
      poolSize: 6,
    });
    const ids: string[] = [];
    const terminated: number[] = [];
    const emitting = (async () => {
      for (let wave = 0; wave < 8; wave++) {
        ids.push(...(await emit(40)));
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    })();
    const killing = (async () => {
      await until(() => target.hits.length > 50, 20_000, 'deliveries to flow');
      for (let round = 0; round < 5; round++) {
        const { rows } = await db.pool.query(
          `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()`,
          ['zta-worker-faulty'],
        );
        terminated.push(rows.filter((r) => r.ok).length);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    })();
    await Promise.all([emitting, killing]);
    expect(ids).toHaveLength(8 * 40 * HOOKS);

    await until(
      async () => (await statusCounts()).succeeded === ids.length,
      30_000,
      'every delivery to succeed',
    );
    // Nothing stuck in `delivering`, nothing lost; the same process did it all.
    expect(await statusCounts()).toEqual({ succeeded: ids.length });
    expect(worker.child.exitCode).toBeNull();
    const counts = target.counts();
    expect(new Set(counts.keys())).toEqual(new Set(ids));
    expect(target.overlapping()).toEqual([]);
    // One attempt row per request: a completion batch retried after a lost answer is not recorded twice.
    const attempts = await attemptRows();
    for (const id of ids) expect(attempts.get(id)?.length, id).toBe(counts.get(id));

    expect(terminated.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5);
    const faults = worker.logs.filter((l) => ['error', 'pool', 'listen'].includes(l.level));
    expect(faults.length).toBeGreaterThan(0);
    await worker.stop();
    target.receiver.close();
    const duplicates = [...counts.values()].filter((n) => n > 1).length;
    const kinds = [...tally(faults.map((l) => `${l.level}: ${l.message}`))].map(([k, n]) => `${n}× ${k}`);
    console.log(
      `db faults: ${ids.length} deliveries, backends terminated per round ${terminated.join(',')}, ` +
        `duplicates ${duplicates}; worker saw ${kinds.join('; ')}`,
    );
  });
});
