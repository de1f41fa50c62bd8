import { describe, expect, it } from 'vitest';
import type { DeliveryQuery } from '../../src/adapters/types.js';
import type { DeliveryRecord } from '../../src/core/records.js';
import { memoryStore } from '../../src/memory.js';
import { at, delivery, webhook } from '../../src/testing/fixtures.js';
import { testStore } from '../../src/testing.js';

describe('memoryStore conformance', () => {
  testStore({ create: () => memoryStore() });
});

describe('memoryStore', () => {
  it('refuses to pretend it can write inside a SQL transaction', async () => {
    const store = memoryStore();
    const client = { query: async () => ({ rows: [] }) };
    await expect(store.insertDeliveries([], { client })).rejects.toThrow(
      /cannot write inside a SQL transaction/,
    );
    await expect(store.findSubscribers('s', 'pageview', { client })).rejects.toThrow(/SQL transaction/);
  });
});

describe('memoryStore activity log', () => {
  it('pages through a long log exactly as a full sort would, live and finished, ties included', async () => {
    const store = memoryStore();
    const hooks = [
      webhook({ siteId: 'site_a' }),
      webhook({ siteId: 'site_a' }),
      webhook({ siteId: 'site_b' }),
      webhook({ siteId: 'site_b' }),
    ];
    for (const hook of hooks) await store.createWebhook(hook, { maxPerSite: 10 });
    const statuses = ['pending', 'succeeded', 'failed', 'discarded'] as const;
    // 3,000 deliveries over 1,009 distinct times (so ties), in a scrambled order; the last webhook has a
    // small share of them (listed by looking its deliveries up), the others large ones (listed by a scan).
    const all = Array.from({ length: 3000 }, (_, i) =>
      delivery(hooks[i % 13 === 0 ? 3 : i % 3]!, {
        createdAt: at(((i * 7919) % 1009) * 100),
        status: statuses[i % 4]!,
      }),
    );
    await store.insertDeliveries(all);

    const expected = (keep: (d: DeliveryRecord) => boolean) =>
      all
        .filter(keep)
        .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
        .map((d) => d.id);
    const pages = async (query: Omit<DeliveryQuery, 'limit' | 'after'>, limit = 7) => {
      const ids: string[] = [];
      let after: DeliveryQuery['after'];
      for (;;) {
        const page = await store.listDeliveries({ ...query, limit, ...(after && { after }) });
        ids.push(...page.map((d) => d.id));
        if (page.length < limit) return ids;
        after = { createdAt: page.at(-1)!.createdAt, id: page.at(-1)!.id };
      }
    };

    expect(await pages({ siteId: 'site_a' })).toEqual(expected((d) => d.siteId === 'site_a'));
    expect(await pages({ webhookId: hooks[1]!.id, status: 'failed' })).toEqual(
      expected((d) => d.webhookId === hooks[1]!.id && d.status === 'failed'),
    );
    expect(await pages({ webhookId: hooks[3]!.id })).toEqual(expected((d) => d.webhookId === hooks[3]!.id));
    expect(await pages({ webhookId: hooks[3]!.id, status: 'pending' }, 3)).toEqual(
      expected((d) => d.webhookId === hooks[3]!.id && d.status === 'pending'),
    );
    expect(await pages({ siteId: 'site_b', since: at(50_000) }, 50)).toEqual(
      expected((d) => d.siteId === 'site_b' && d.createdAt >= at(50_000)),
    );
    const page = await store.listDeliveries({ siteId: 'site_a', limit: 1000 });
    expect(page.map((d) => d.id)).toEqual(expected((d) => d.siteId === 'site_a').slice(0, 1000));
    expect(page.find((d) => d.status === 'succeeded')).toMatchObject({ body: all[1]!.body });
  });
});
