// Retention: a started dispatcher prunes finished deliveries older than `retention.maxAgeMs` every
// `retention.intervalMs` through `store.pruneDeliveries`, never two runs at once, logging failures.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { type DeliveryRecord, Dispatcher, type Store } from '../../src/index.js';
import { createStore, describeEachStore } from '../postgres/stores.js';
import { pageview, receiver, SITE, setup, until } from './harness.js';

const DAY = 24 * 60 * 60 * 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function record(webhookId: string, overrides: Partial<DeliveryRecord>): DeliveryRecord {
  const createdAt = overrides.createdAt ?? new Date();
  return {
    id: `dlv_retention_${Math.random().toString(36).slice(2)}`,
    webhookId,
    siteId: SITE,
    event: 'pageview',
    body: JSON.stringify(pageview()),
    status: 'succeeded',
    attempts: 1,
    nextAttemptAt: null,
    leaseExpiresAt: null,
    lastStatusCode: 200,
    lastError: null,
    createdAt,
    updatedAt: createdAt,
    ...overrides,
  };
}

describeEachStore('dispatcher: retention', (kind) => {
  it('prunes finished deliveries older than maxAgeMs, at start and then periodically', async () => {
    const target = await receiver();
    const { dispatcher, subscribe, store, logs } = await setup({
      retention: { maxAgeMs: 1_000, intervalMs: 100 },
    });
    const webhook = await subscribe(target.url());
    const old = new Date(Date.now() - 60_000);
    const oldFinished = [
      record(webhook.id, { createdAt: old }),
      record(webhook.id, { createdAt: old, status: 'failed', lastStatusCode: 500, lastError: 'HTTP 500' }),
      record(webhook.id, { createdAt: old, status: 'discarded', attempts: 0, lastStatusCode: null }),
    ];
    // Old but not finished: never pruned, whatever its age.
    const oldPending = record(webhook.id, {
      createdAt: old,
      status: 'pending',
      attempts: 0,
      nextAttemptAt: new Date(Date.now() + 3_600_000),
      lastStatusCode: null,
    });
    await store.insertDeliveries([...oldFinished, oldPending]);
    await dispatcher.start();
    const [fresh] = await dispatcher.emit(pageview('/fresh'));
    await until(async () => (await store.getDelivery(oldFinished[0]!.id)) === null, 2_000);
    for (const gone of oldFinished) expect(await store.getDelivery(gone.id)).toBeNull();
    expect(await store.getDelivery(oldPending.id)).toMatchObject({ status: 'pending' });
    await until(async () => (await store.getDelivery(fresh!))?.status === 'succeeded');
    expect(await store.listAttempts([fresh!])).toHaveLength(1);
    expect(logs).toContainEqual({
      level: 'info',
      message: 'pruned old deliveries',
      fields: { deleted: 3, olderThan: expect.any(Date) },
    });

    // Once it is older than maxAgeMs, a later run takes the delivery sent just now, attempts and all.
    await until(async () => (await store.getDelivery(fresh!)) === null, 5_000);
    expect(await store.listAttempts([fresh!])).toEqual([]);
    expect(await store.getDelivery(oldPending.id)).toMatchObject({ status: 'pending' });
  });

  it('defaults to 30 days, never overlaps runs, logs a failed run and retries it, stops with stop()', async () => {
    const base = await createStore();
    const cutoffs: Date[] = [];
    let running = 0;
    let peak = 0;
    const store: Store = {
      ...base,
      async pruneDeliveries(options) {
        cutoffs.push(options.olderThan);
        running++;
        peak = Math.max(peak, running);
        try {
          await sleep(50);
          if (cutoffs.length === 1) throw new Error('database unavailable');
          return await base.pruneDeliveries!(options);
        } finally {
          running--;
        }
      },
    };
    const { dispatcher, logs } = await setup({ store, retention: { intervalMs: 5 } });
    const startedAt = Date.now();
    await dispatcher.start();
    await until(() => cutoffs.length >= 4);
    await dispatcher.stop();
    expect(running).toBe(0); // stop() waited for the run in progress
    expect(peak).toBe(1);
    expect(Math.abs(startedAt - 30 * DAY - cutoffs[0]!.getTime())).toBeLessThan(1_000);
    expect(logs.filter((line) => line.message.includes('prune'))).toEqual([
      {
        level: 'error',
        message: 'could not prune old deliveries',
        fields: { error: 'database unavailable' },
      },
    ]);
    const runs = cutoffs.length;
    await sleep(100);
    expect(cutoffs.length).toBe(runs);

    // Started again, it prunes again.
    await dispatcher.start();
    await until(() => cutoffs.length > runs);
  });

  it('does nothing with retention: false, or with a store that cannot prune', async () => {
    const base = await createStore();
    let calls = 0;
    const counting: Store = {
      ...base,
      pruneDeliveries: async (options) => {
        calls++;
        return base.pruneDeliveries!(options);
      },
    };
    const off = await setup({ store: counting, retention: false });
    await off.dispatcher.start();
    const { pruneDeliveries: _, ...withoutPrune } = base;
    const unable = await setup({ store: withoutPrune as Store, retention: { intervalMs: 5 } });
    await unable.dispatcher.start();
    await sleep(50);
    expect(calls).toBe(0);
    expect([...off.logs, ...unable.logs].filter((line) => line.level === 'error')).toEqual([]);
  });

  it('refuses a maxAgeMs or intervalMs that is not a positive number', async () => {
    const store = await createStore();
    expect(() => new Dispatcher({ store, retention: { maxAgeMs: 0 } })).toThrow(
      'retention.maxAgeMs must be a positive number',
    );
    expect(() => new Dispatcher({ store, retention: { intervalMs: Number.NaN } })).toThrow(
      'retention.intervalMs must be a positive number',
    );
  });

  it.runIf(kind === 'memory')('keeps no process alive: its timer is unref’d', () => {
    // A started dispatcher with nothing due must not hold the process open (neither the safety-net poll
    // nor the retention timer), so a script that forgets stop() still exits.
    const index = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
    const memory = fileURLToPath(new URL('../../src/memory.ts', import.meta.url));
    const script = `
      import { Dispatcher } from ${JSON.stringify(index)};
      import { memoryStore } from ${JSON.stringify(memory)};
      let pruned = 0;
      const store = memoryStore();
      const counting = { ...store, pruneDeliveries: async (o) => { pruned++; return store.pruneDeliveries(o); } };
      const dispatcher = new Dispatcher({ store: counting, retention: { intervalMs: 60_000 } });
      await dispatcher.start();
      process.on('exit', () => console.log('exited, pruned ' + pruned));
    `;
    const started = Date.now();
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toBe('exited, pruned 1');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
