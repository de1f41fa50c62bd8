import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DueQueue } from '../../src/adapters/memory/due-queue.js';

/** A model of what the memory store does: each id is due at one time, or not at all; every change pushes. */
function modelQueue() {
  const dueAt = new Map<string, number>();
  const queue = new DueQueue((at, id) => dueAt.get(id) === at);
  const schedule = (id: string, at: number | null) => {
    if (at === null) {
      dueAt.delete(id);
      return;
    }
    dueAt.set(id, at);
    queue.push(at, id);
  };
  /** Pops every entry, keeping the live ones, as the store's readers do. */
  const drain = () => {
    const live: { at: number; id: string }[] = [];
    for (let entry = queue.pop(); entry !== undefined; entry = queue.pop()) {
      if (dueAt.get(entry.id) === entry.at) live.push(entry);
    }
    return live;
  };
  return { queue, dueAt, schedule, drain };
}

describe('DueQueue', () => {
  it('pops every live entry in time order, whatever was swept on the way (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.option(fc.integer({ min: 0, max: 1000 }))), {
          maxLength: 3000,
        }),
        (changes) => {
          const { dueAt, schedule, drain } = modelQueue();
          for (const [id, at] of changes) schedule(`d${id}`, at);
          const popped = drain();
          const times = popped.map((entry) => entry.at);
          expect(times).toEqual([...times].sort((a, b) => a - b));
          // Each live record comes out at least once (a record due at the same time twice has two entries).
          expect(new Set(popped.map((e) => `${e.id}@${e.at}`))).toEqual(
            new Set([...dueAt].map(([id, at]) => `${id}@${at}`)),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('does not keep stale entries that are not due for a long time: leases that ended early', () => {
    const { queue, schedule } = modelQueue();
    // A store at work: each delivery is leased for a minute, then completes long before that.
    for (let i = 0; i < 100_000; i++) {
      schedule(`d${i}`, 60_000 + i);
      schedule(`d${i}`, null);
    }
    expect(queue.size).toBeLessThanOrEqual(1024);
    // Live entries are never swept: 5,000 open leases, all still there after another 100,000 changes.
    for (let i = 0; i < 5_000; i++) schedule(`open${i}`, 120_000 + i);
    for (let i = 0; i < 100_000; i++) {
      schedule(`e${i}`, 60_000 + i);
      schedule(`e${i}`, null);
    }
    expect(queue.size).toBeLessThanOrEqual(2 * 5_000 + 1024);
    const live: string[] = [];
    for (let entry = queue.pop(); entry !== undefined; entry = queue.pop()) {
      if (entry.id.startsWith('open')) live.push(entry.id);
    }
    expect(live).toHaveLength(5_000);
  });
});
