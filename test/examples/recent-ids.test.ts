import { describe, expect, it } from 'vitest';
import { RecentIds } from '../../examples/shared/recent-ids.js';

describe('RecentIds (the receiver idempotency guard)', () => {
  it('reports an id as new once, then as seen until its TTL runs out', () => {
    let now = 0;
    const ids = new RecentIds({ ttlMs: 1_000, now: () => now });
    expect(ids.add('dlv_a')).toBe(true);
    expect(ids.add('dlv_a')).toBe(false);
    now = 999;
    expect(ids.add('dlv_a')).toBe(false);
    now = 1_000;
    expect(ids.has('dlv_a')).toBe(false);
    expect(ids.add('dlv_a')).toBe(true);
  });

  it('never holds more than maxEntries ids, evicting the oldest first', () => {
    const ids = new RecentIds({ maxEntries: 3, now: () => 0 });
    for (const id of ['a', 'b', 'c', 'd']) expect(ids.add(id)).toBe(true);
    expect(ids.size).toBe(3);
    expect(ids.evicted).toBe(1);
    expect(ids.has('a')).toBe(false);
    expect(['b', 'c', 'd'].map((id) => ids.has(id))).toEqual([true, true, true]);
  });

  it('drops expired ids as new ones arrive, so memory follows the traffic of the last TTL', () => {
    let now = 0;
    const ids = new RecentIds({ ttlMs: 100, maxEntries: 1_000_000, now: () => now });
    for (let i = 0; i < 10_000; i++) {
      now = i;
      ids.add(`dlv_${i}`);
    }
    expect(ids.size).toBe(100);
    expect(ids.evicted).toBe(0);
  });

  it('forgets an id on delete, so a redelivery after failed processing is processed', () => {
    const ids = new RecentIds();
    ids.add('dlv_a');
    expect(ids.delete('dlv_a')).toBe(true);
    expect(ids.add('dlv_a')).toBe(true);
  });

  it('refuses nonsensical limits', () => {
    expect(() => new RecentIds({ ttlMs: 0 })).toThrow(TypeError);
    expect(() => new RecentIds({ maxEntries: 0 })).toThrow(TypeError);
    expect(() => new RecentIds({ maxEntries: 1.5 })).toThrow(TypeError);
  });
});
