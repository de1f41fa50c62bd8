import { describe, expect, it } from 'vitest';
import { memoryStore } from '../../src/memory.js';
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
