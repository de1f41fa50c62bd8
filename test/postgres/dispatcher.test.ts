import { performance } from 'node:perf_hooks';
import { expect, it } from 'vitest';
import { Dispatcher } from '../../src/index.js';
import { latestDelivery, owner, pageview, receiver, setup } from '../dispatcher/harness.js';
import { sequence, status } from '../support/hostile.js';
import { ok } from '../support/receiver.js';
import { describePostgres, useTestDatabase } from './db.js';

describePostgres('Dispatcher on postgresStore', () => {
  const db = useTestDatabase();

  it('wakes an idle dispatcher in another process within milliseconds of the emitting commit', async () => {
    await db.truncate();
    const target = await receiver();
    const worker = await setup({ store: db.store(), pollIntervalMs: 60_000 });
    await worker.subscribe(target.url());
    await worker.dispatcher.start();
    await new Promise((resolve) => setTimeout(resolve, 100)); // idle, LISTENing

    const app = new Dispatcher({ store: db.store({ notify: true }) }); // never started: it only emits
    const client = await db.extraPool(1).connect();
    let committedAt: number;
    try {
      await client.query('BEGIN');
      await app.emit(pageview('/from-another-process'), { client });
      committedAt = performance.now();
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const [request] = await target.waitFor(1, 2_000);
    expect(JSON.parse(request!.body).data.path).toBe('/from-another-process');
    expect(request!.receivedAt - committedAt).toBeLessThan(250);
  });

  it('retries on schedule and records every attempt', async () => {
    await db.truncate();
    const target = await receiver(sequence([status(500), ok]));
    const { dispatcher, subscribe, manager } = await setup({ store: db.store(), pollIntervalMs: 60_000 });
    const webhook = await subscribe(target.url());
    await dispatcher.start();
    await dispatcher.emit(pageview());
    await target.waitFor(2, 3_000);
    const delivery = await latestDelivery(manager, webhook.id, 'succeeded');
    expect(delivery.attempts.map((a) => [a.attempt, a.statusCode])).toEqual([
      [1, 500],
      [2, 200],
    ]);
    expect((await manager.get(owner, webhook.id)).webhook).toMatchObject({ active: true });
  });

  it('shares one queue between dispatchers: every delivery arrives exactly once', async () => {
    await db.truncate();
    const target = await receiver();
    // Two "processes": each its own pool, store and dispatcher.
    const first = await setup({
      store: db.store({ pool: db.extraPool(4) }),
      concurrency: 8,
      perWebhookConcurrency: 4,
    });
    const second = await setup({
      store: db.store({ pool: db.extraPool(4) }),
      concurrency: 8,
      perWebhookConcurrency: 4,
    });
    const hooks = [await first.subscribe(target.url('/a')), await first.subscribe(target.url('/b'))];
    await Promise.all([first.dispatcher.start(), second.dispatcher.start()]);
    const ids = (
      await Promise.all(Array.from({ length: 50 }, (_, i) => second.dispatcher.emit(pageview(`/p${i}`))))
    ).flat();
    expect(ids).toHaveLength(100);
    const requests = await target.waitFor(100, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const delivered = requests.map((r) => r.headers['x-zta-delivery-id']);
    expect(delivered).toHaveLength(100);
    expect(new Set(delivered)).toEqual(new Set(ids));
    expect(new Set(requests.map((r) => r.headers['x-zta-webhook-id']))).toEqual(
      new Set(hooks.map((h) => h.id)),
    );
  });
});
