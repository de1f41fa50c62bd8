import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Dispatcher,
  LONG_RETRY_POLICY,
  SPEC_RETRY_POLICY,
  type Transport,
  type TransportRequest,
  type TransportResult,
  WebhookManager,
} from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';

/** A transport that answers from a script and notes when it was called, on the (fake) clock. */
function scriptedTransport(answers: TransportResult[]) {
  const calls: { at: number; request: TransportRequest }[] = [];
  const transport: Transport = {
    async send(request) {
      calls.push({ at: Date.now(), request });
      return answers[Math.min(calls.length - 1, answers.length - 1)]!;
    },
    async close() {},
  };
  return { transport, calls };
}

const serverError: TransportResult = { kind: 'response', statusCode: 500, headers: {}, bodySnippet: '' };
const okResponse: TransportResult = { kind: 'response', statusCode: 200, headers: {}, bodySnippet: 'OK' };

async function scenario(answers: TransportResult[], retry = SPEC_RETRY_POLICY) {
  const store = memoryStore();
  const manager = new WebhookManager({ store, authorize: () => true });
  const { webhook } = await manager.create(null, {
    siteId: 's1',
    url: 'https://hooks.example/in',
    events: ['goal'],
  });
  const { transport, calls } = scriptedTransport(answers);
  const dispatcher = new Dispatcher({ store, transport, retry });
  await dispatcher.start();
  const [id] = await dispatcher.emit({
    siteId: 's1',
    event: 'goal',
    data: { goalId: 'g1', goalName: 'Signup' },
  });
  return { store, dispatcher, calls, id: id!, webhook };
}

describe('retry schedule (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
    });
    vi.setSystemTime(new Date('2026-01-01T00:00:00.000Z'));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('follows the spec: attempt 1 at once, 2 after 5 s, 3 after 25 s more, then failed', async () => {
    const { calls, store, id, dispatcher } = await scenario([serverError]);
    const start = Date.now();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.at - start)).toEqual([0]);

    await vi.advanceTimersByTimeAsync(4_999);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.at - start)).toEqual([0, 5_000]);

    await vi.advanceTimersByTimeAsync(24_999);
    expect(calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.at - start)).toEqual([0, 5_000, 30_000]);
    // The spec's request timeout, by default: 5 seconds per attempt.
    expect(calls.map((c) => c.request.timeoutMs)).toEqual([5_000, 5_000, 5_000]);

    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(calls).toHaveLength(3);
    expect((await store.getDelivery(id))!.status).toBe('failed');
    expect(await store.nextDueAt()).toBeNull();
    await dispatcher.stop();
  });

  it('stops retrying once an attempt succeeds', async () => {
    const { calls, store, id, dispatcher } = await scenario([serverError, okResponse]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toHaveLength(2);
    expect((await store.getDelivery(id))!.status).toBe('succeeded');
    await dispatcher.stop();
  });

  it('runs the long preset over about 27.6 hours', async () => {
    expect(LONG_RETRY_POLICY.delaysMs).toEqual([
      5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
    ]);
    const { calls, store, id, dispatcher } = await scenario([serverError], LONG_RETRY_POLICY);
    const start = Date.now();
    await vi.advanceTimersByTimeAsync(30 * 3_600_000);
    const offsets = calls.map((c) => c.at - start);
    let expected = 0;
    expect(offsets).toEqual([0, ...LONG_RETRY_POLICY.delaysMs.map((delay) => (expected += delay))]);
    expect(expected).toBe(99_305_000);
    expect((await store.getDelivery(id))!.status).toBe('failed');
    await dispatcher.stop();
  });

  it('sets no timer while nothing is due', async () => {
    const { dispatcher } = await scenario([okResponse]);
    await vi.advanceTimersByTimeAsync(0);
    // only the safety-net poller and the next retention run remain (both unref'd); no wake-up timer
    expect(vi.getTimerCount()).toBe(2);
    await dispatcher.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});
