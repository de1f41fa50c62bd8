import { describe, expect, it } from 'vitest';
import { DeliveryArchive } from '../../src/adapters/memory/archive.js';
import type { WebhookRecord } from '../../src/core/records.js';
import { memoryStore } from '../../src/memory.js';
import { at, attempt, delivery, failedAttempt, webhook } from '../../src/testing/fixtures.js';

const MiB = 1024 * 1024;
const hook: WebhookRecord = webhook();

describe('DeliveryArchive', () => {
  it('gives back a delivery and its attempts exactly, every field', () => {
    const archive = new DeliveryArchive();
    const d = delivery(hook, {
      body: JSON.stringify({ event: 'goal', data: { name: 'café 日本 😀', q: '"\\' } }),
      status: 'failed',
      attempts: 3,
      lastStatusCode: 503,
      lastError: 'HTTP 503',
      createdAt: at(1),
      updatedAt: at(9_999),
    });
    const log = [
      failedAttempt(d, 1),
      attempt(d, 2, { statusCode: null, errorCode: 'timeout', responseSnippet: null, ok: false }),
      attempt(d, 3, { statusCode: 503, responseSnippet: 'ünïcode', ok: false, durationMs: 5000 }),
    ];
    const slot = archive.add(d, log);

    expect(archive.read(slot)).toEqual({ delivery: d, attempts: log });
    expect(archive.createdAt(slot)).toBe(at(1).getTime());
    expect(archive.status(slot)).toBe('failed');
    expect(archive.siteId(slot)).toBe(d.siteId);
    expect(archive.size).toBe(1);
  });

  it('hands out new objects on every read', () => {
    const archive = new DeliveryArchive();
    const slot = archive.add(delivery(hook, { status: 'succeeded' }), []);
    const first = archive.read(slot);
    first.delivery.createdAt.setTime(0);
    first.delivery.status = 'pending';
    expect(archive.read(slot).delivery).toMatchObject({ status: 'succeeded', createdAt: at(0) });
  });

  it('keeps thousands of records, reusing the slots of deleted ones', () => {
    const archive = new DeliveryArchive();
    const records = Array.from({ length: 3000 }, (_, i) =>
      delivery(hook, { status: 'succeeded', siteId: `site_${i % 7}`, createdAt: at(i) }),
    );
    const slots = records.map((d) => archive.add(d, [attempt(d, 1)]));
    for (const i of [0, 1023, 1024, 2047, 2999]) {
      expect(archive.read(slots[i]!).delivery).toEqual(records[i]);
      expect(archive.siteId(slots[i]!)).toBe(`site_${i % 7}`);
    }

    archive.delete(slots[10]!);
    archive.delete(slots[20]!);
    const again = delivery(hook, { status: 'discarded', siteId: 'site_new' });
    const reused = archive.add(again, []);
    expect([slots[10], slots[20]]).toContain(reused);
    expect(archive.read(reused).delivery).toEqual(again);
    expect(archive.siteId(reused)).toBe('site_new');
    expect(archive.size).toBe(2999);
  });

  it('releases a chunk once its last record is deleted', () => {
    const archive = new DeliveryArchive();
    const body = JSON.stringify({ event: 'pageview', data: { padding: 'x'.repeat(100_000) } });
    const slots = Array.from({ length: 30 }, () =>
      archive.add(delivery(hook, { body, status: 'succeeded' }), []),
    );
    expect(archive.chunkBytes).toBeGreaterThanOrEqual(3 * MiB);

    for (const slot of slots) archive.delete(slot);
    // Only the chunk still being filled is kept.
    expect(archive.chunkBytes).toBe(MiB);
    expect(archive.size).toBe(0);
  });

  it('gives a record over half a chunk a chunk of its own, released with it', () => {
    const archive = new DeliveryArchive();
    archive.add(delivery(hook, { status: 'succeeded' }), []);
    const before = archive.chunkBytes;
    const body = JSON.stringify({ data: 'é'.repeat(400_000) });
    const big = delivery(hook, { body, status: 'failed' });
    const slot = archive.add(big, []);
    expect(archive.chunkBytes - before).toBeGreaterThan(Buffer.byteLength(body));
    expect(archive.read(slot).delivery.body).toBe(body);

    archive.delete(slot);
    expect(archive.chunkBytes).toBe(before);
  });
});

describe('memoryStore and its archive', () => {
  it('records a late result for a delivery that finished meanwhile, as it did before archiving', async () => {
    const store = memoryStore();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const d = delivery(hook);
    await store.insertDeliveries([d]);
    await store.claimDeliveries({ now: at(0), limit: 1, leaseMs: 1000 });
    const complete = (a: ReturnType<typeof attempt>, status: 'succeeded' | 'failed') =>
      store.completeAttempts([{ attempt: a, next: { status }, maxConsecutiveFailures: 10 }]);

    await complete(attempt(d, 1), 'succeeded');
    // Another attempt of the same number (a second claim after the lease ran out), started later.
    const late = { ...failedAttempt(d, 1), startedAt: at(1500) };
    expect(await complete(late, 'failed')).toHaveLength(1);

    expect(await store.getDelivery(d.id)).toMatchObject({ status: 'failed', lastStatusCode: 500 });
    expect(await store.listAttempts([d.id])).toEqual([attempt(d, 1), late]);
  });

  it('applies a redelivered attempt that starts in the same millisecond as the first one (a frozen clock)', async () => {
    const store = memoryStore();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const d = delivery(hook);
    await store.insertDeliveries([d]);
    await store.claimDeliveries({ now: at(0), limit: 1, leaseMs: 1000 });
    await store.completeAttempts([
      { attempt: failedAttempt(d, 1), next: { status: 'failed' }, maxConsecutiveFailures: 10 },
    ]);
    await store.requeueDelivery(d.id, at(0));
    await store.claimDeliveries({ now: at(0), limit: 1, leaseMs: 1000 });
    await store.completeAttempts([
      { attempt: attempt(d, 1), next: { status: 'succeeded' }, maxConsecutiveFailures: 10 },
    ]);
    expect(await store.getDelivery(d.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(await store.listAttempts([d.id])).toHaveLength(2);
  });

  it('keeps a re-inserted delivery under its new webhook only', async () => {
    const store = memoryStore();
    const other = webhook();
    await store.createWebhook(hook, { maxPerSite: 10 });
    await store.createWebhook(other, { maxPerSite: 10 });
    const d = delivery(hook, { status: 'succeeded' });
    await store.insertDeliveries([d]);
    await store.insertDeliveries([{ ...d, webhookId: other.id, status: 'failed' }]);

    expect(await store.listDeliveries({ webhookId: hook.id, limit: 10 })).toEqual([]);
    expect(await store.listDeliveries({ webhookId: other.id, limit: 10 })).toMatchObject([
      { id: d.id, status: 'failed' },
    ]);
    // Deleting the old webhook leaves the delivery that now belongs to the other one.
    await store.deleteWebhook(hook.id);
    expect(await store.getDelivery(d.id)).toMatchObject({ webhookId: other.id, status: 'failed' });
  });

  it('lists live and archived deliveries together, newest first', async () => {
    const store = memoryStore();
    await store.createWebhook(hook, { maxPerSite: 10 });
    const old = delivery(hook, { status: 'succeeded', createdAt: at(1) });
    const live = delivery(hook, { createdAt: at(2) });
    const failed = delivery(hook, { status: 'failed', createdAt: at(3) });
    await store.insertDeliveries([old, live, failed]);

    const listed = await store.listDeliveries({ siteId: hook.siteId, limit: 10 });
    expect(listed.map((d) => d.id)).toEqual([failed.id, live.id, old.id]);
    expect(listed[0]).toEqual(failed);
    expect(
      (await store.listDeliveries({ webhookId: hook.id, status: 'pending', limit: 10 })).map((d) => d.id),
    ).toEqual([live.id]);
  });
});
