import { describe, expect, it } from 'vitest';
import { memoryStore } from '../../src/memory.js';
import { pageview, receiver, setup, until } from './harness.js';

describe('wake-ups', () => {
  // A kick landing just after the engine's last "again?" check used to be dropped until the 30 s poll.
  it.each([0, 1, 2, 3, 5, 8])('delivers an emit that lands %i microtasks after start()', async (gap) => {
    const target = await receiver();
    const { dispatcher, subscribe } = await setup({ store: memoryStore(), pollIntervalMs: 60_000 });
    await subscribe(target.url());
    await dispatcher.start();
    for (let i = 0; i < gap; i++) await null;
    const started = Date.now();
    await dispatcher.emit(pageview());
    await target.waitFor(1, 3000);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe('claims per delivery', () => {
  /** A memory store that counts the engine's claims and next-due-time lookups. */
  function countingStore() {
    const store = memoryStore();
    const calls = { claims: 0, nextDue: 0 };
    const claim = store.claimDeliveries.bind(store);
    const nextDueAt = store.nextDueAt.bind(store);
    store.claimDeliveries = (options) => {
      calls.claims++;
      return claim(options);
    };
    store.nextDueAt = (options) => {
      calls.nextDue++;
      return nextDueAt(options);
    };
    return { store, calls };
  }

  // The emit kicks the engine and the store's notification of the insert kicks it again; the finished
  // attempt frees a slot while nothing else is due. Each used to run its own claim (three per delivery).
  it('a poll interval past setInterval’s ceiling (about 24.8 days) means rarely, not every millisecond', async () => {
    const { store, calls } = countingStore();
    const { dispatcher } = await setup({ store, pollIntervalMs: 40 * 24 * 60 * 60 * 1000 });
    await dispatcher.start();
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The start-up claim only (Node turns an overflowing interval into one of 1 ms: a claim every ms).
    expect(calls.claims).toBe(1);
  });

  it('one emit to an idle engine costs one claim and one next-due lookup', async () => {
    const target = await receiver();
    const { store, calls } = countingStore();
    const { dispatcher, subscribe } = await setup({ store, pollIntervalMs: 60_000 });
    await subscribe(target.url());
    await dispatcher.start();
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let round = 1; round <= 3; round++) {
      calls.claims = 0;
      calls.nextDue = 0;
      const [id] = await dispatcher.emit(pageview(`/${round}`));
      await target.waitFor(round);
      await until(async () => (await store.getDelivery(id!))?.status === 'succeeded');
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(calls).toEqual({ claims: 1, nextDue: 1 });
    }
  });

  // The freed slot is the only signal that a webhook at its per-endpoint limit may send its next delivery.
  it('a webhook at its per-endpoint limit sends its backlog one by one without waiting for a poll', async () => {
    const target = await receiver();
    const { dispatcher, subscribe } = await setup({
      store: memoryStore(),
      pollIntervalMs: 60_000,
      perWebhookConcurrency: 1,
    });
    await subscribe(target.url());
    await dispatcher.start();
    await dispatcher.emitMany(Array.from({ length: 10 }, (_, i) => pageview(`/${i}`)));
    await dispatcher.emit(pageview('/late'));
    await target.waitFor(11, 3000);
    expect(target.requests.map((r) => JSON.parse(r.body).data.path)).toContain('/late');
  });
});
