import { describe, expect, it } from 'vitest';
import { memoryStore } from '../../src/memory.js';
import { pageview, receiver, setup } from './harness.js';

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
