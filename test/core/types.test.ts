// The public types accept what users naturally pass: read-only arrays (the library's own EVENT_TYPES
// among them), CA certificates as Buffers, and the memory store's optional methods as present. Checked
// by `tsc --noEmit` (npm run lint, in CI); the runtime parts check that the values work too.
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  type CreateWebhookInput,
  type DispatcherOptions,
  EVENT_TYPES,
  type UpdateWebhookInput,
} from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';
import { owner, pageview, receiver, SITE, setup } from '../dispatcher/harness.js';

describe('public types', () => {
  it('take read-only event and scheme lists', async () => {
    const input = {
      siteId: SITE,
      url: 'https://hooks.example.com/in',
      events: ['goal', 'alert'] as const,
      signatureSchemes: ['zta', 'standard'] as const,
    };
    expectTypeOf(input).toExtend<CreateWebhookInput>();
    expectTypeOf({ events: EVENT_TYPES }).toExtend<UpdateWebhookInput>();
    const { manager } = await setup({ store: memoryStore() });
    const { webhook } = await manager.create(owner, input);
    expect(webhook.events).toEqual(['goal', 'alert']);
    const { webhook: updated } = await manager.update(owner, webhook.id, { events: EVENT_TYPES.slice(0, 5) });
    expect(updated.events).toHaveLength(5);
  });

  it('take a CA certificate as a Buffer, and deliver with it', async () => {
    expectTypeOf<{ ca: Buffer }>().toExtend<NonNullable<DispatcherOptions['tls']>>();
    expectTypeOf<{ ca: readonly Buffer[] }>().toExtend<NonNullable<DispatcherOptions['tls']>>();
    const target = await receiver();
    const { dispatcher, subscribe } = await setup({
      store: memoryStore(),
      tls: { ca: [Buffer.from(target.caCert)] },
    });
    await subscribe(target.url());
    await dispatcher.emit(pageview());
    expect(await dispatcher.runDue()).toEqual({ attempted: 1 });
    expect(target.requests).toHaveLength(1);
  });

  it('give the memory store its optional methods as present', async () => {
    const store = memoryStore();
    expectTypeOf(store.pruneDeliveries).toBeFunction();
    expectTypeOf(store.listAllWebhooks).toBeFunction();
    expect(await store.pruneDeliveries({ olderThan: new Date() })).toBe(0);
    expect(await store.listAllWebhooks({ limit: 10 })).toEqual([]);
  });
});
