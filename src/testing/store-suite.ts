import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AttemptOutcome, ClaimOptions, Store } from '../adapters/types.js';
import { newSecret } from '../core/ids.js';
import type { DeliveryRecord, WebhookRecord } from '../core/records.js';
import { at, attempt, delivery, failedAttempt, webhook } from './fixtures.js';

export interface StoreSuiteOptions<S extends Store = Store> {
  /** A fresh, empty store for each test. */
  create: () => S | Promise<S>;
  /** Called after each test with the store `create` returned (with its own type: `store.close()`). */
  destroy?: (store: S) => void | Promise<void>;
}

/**
 * The store conformance suite: every `Store` adapter must pass it unchanged. Call it inside a test file:
 * `testStore({ create: () => memoryStore() })`.
 */
export function testStore<S extends Store>(options: StoreSuiteOptions<S>): void {
  let store: S;

  beforeEach(async () => {
    store = await options.create();
  });
  afterEach(async () => {
    await options.destroy?.(store);
  });

  const claimAll = (now: Date, extra: Partial<ClaimOptions> = {}) =>
    store.claimDeliveries({ now, limit: 100, leaseMs: 30_000, ...extra });

  const complete = (outcome: Partial<AttemptOutcome> & Pick<AttemptOutcome, 'attempt' | 'next'>) =>
    store.completeAttempts([{ maxConsecutiveFailures: 10, ...outcome }]);

  describe('webhooks', () => {
    it('creates, reads back and lists webhooks of a site, oldest first', async () => {
      const first = webhook({ createdAt: at(1) });
      const second = webhook({ createdAt: at(2), events: ['alert'], description: 'two' });
      const elsewhere = webhook({ siteId: 'site_b' });
      expect(await store.createWebhook(second, { maxPerSite: 10 })).toBe('created');
      expect(await store.createWebhook(first, { maxPerSite: 10 })).toBe('created');
      expect(await store.createWebhook(elsewhere, { maxPerSite: 10 })).toBe('created');

      expect(await store.getWebhook(second.id)).toEqual(second);
      expect((await store.listWebhooks('site_a')).map((w) => w.id)).toEqual([first.id, second.id]);
      expect(await store.listWebhooks('site_none')).toEqual([]);
      expect(await store.getWebhook('wh_missing')).toBeNull();
    });

    it('lists every webhook of every site in pages by id (if the store supports it)', async () => {
      if (store.listAllWebhooks === undefined) return;
      const records = [
        webhook(),
        webhook(),
        webhook({ siteId: 'site_b' }),
        webhook(),
        webhook({ siteId: 'site_c' }),
      ];
      for (const record of records) await store.createWebhook(record, { maxPerSite: 10 });
      const all = await store.listAllWebhooks({ limit: 100 });
      expect(all.map((w) => w.id).sort()).toEqual(records.map((r) => r.id).sort());
      expect(all.find((w) => w.id === records[2]!.id)).toEqual(records[2]);
      const paged: string[] = [];
      let after: string | undefined;
      for (let page = 0; page < 10; page++) {
        const batch = await store.listAllWebhooks({ ...(after !== undefined && { after }), limit: 2 });
        expect(batch.length).toBeLessThanOrEqual(2);
        paged.push(...batch.map((w) => w.id));
        if (batch.length < 2) break;
        after = batch.at(-1)!.id;
      }
      expect(paged).toEqual(all.map((w) => w.id));
      expect(await store.listAllWebhooks({ after: all.at(-1)!.id, limit: 10 })).toEqual([]);
      for (const limit of [0, 2.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(store.listAllWebhooks({ limit })).rejects.toThrow('limit must be a positive integer');
      }
    });

    it('hands out copies: mutating a result does not change the store', async () => {
      const record = webhook();
      await store.createWebhook(record, { maxPerSite: 10 });
      const read = await store.getWebhook(record.id);
      read!.events.push('alert');
      read!.url = 'https://changed.example/';
      expect(await store.getWebhook(record.id)).toEqual(record);
    });

    it('refuses a webhook beyond maxPerSite, per site', async () => {
      for (let i = 0; i < 3; i++) {
        expect(await store.createWebhook(webhook(), { maxPerSite: 3 })).toBe('created');
      }
      expect(await store.createWebhook(webhook(), { maxPerSite: 3 })).toBe('limit_reached');
      expect(await store.createWebhook(webhook({ siteId: 'site_b' }), { maxPerSite: 3 })).toBe('created');
      expect(await store.listWebhooks('site_a')).toHaveLength(3);
    });

    it('holds the per-site limit under 50 concurrent creates', async () => {
      const outcomes = await Promise.all(
        Array.from({ length: 50 }, () => store.createWebhook(webhook(), { maxPerSite: 10 })),
      );
      expect(outcomes.filter((o) => o === 'created')).toHaveLength(10);
      expect(await store.listWebhooks('site_a')).toHaveLength(10);
    });

    it('finds the active subscribers of an event', async () => {
      const pageviews = webhook({ events: ['pageview'] });
      const goals = webhook({ events: ['goal'] });
      const inactive = webhook({ events: ['pageview'], active: false });
      const otherSite = webhook({ siteId: 'site_b', events: ['pageview'] });
      for (const w of [pageviews, goals, inactive, otherSite])
        await store.createWebhook(w, { maxPerSite: 10 });
      expect((await store.findSubscribers('site_a', 'pageview')).map((w) => w.id)).toEqual([pageviews.id]);
      expect((await store.findSubscribers('site_a', 'session_end')).map((w) => w.id)).toEqual([]);
    });

    it('updates fields and returns the new record; null for an unknown id', async () => {
      const record = webhook();
      await store.createWebhook(record, { maxPerSite: 10 });
      const updated = await store.updateWebhook(record.id, {
        url: 'https://new.example/hook',
        events: ['alert'],
        description: 'changed',
        updatedAt: at(5),
      });
      expect(updated).toMatchObject({
        url: 'https://new.example/hook',
        events: ['alert'],
        description: 'changed',
      });
      expect(updated!.updatedAt).toEqual(at(5));
      expect(await store.getWebhook(record.id)).toEqual(updated);
      expect(await store.updateWebhook('wh_missing', { updatedAt: at(5) })).toBeNull();
    });

    it('round-trips and patches the rotation fields and signature schemes', async () => {
      const record = webhook({ signatureSchemes: ['standard', 'zta'] });
      await store.createWebhook(record, { maxPerSite: 10 });
      expect(await store.getWebhook(record.id)).toEqual(record);
      const rotated = await store.updateWebhook(record.id, {
        secret: newSecret(),
        previousSecret: record.secret,
        previousSecretExpiresAt: at(86_400_000),
        signatureSchemes: ['zta'],
        updatedAt: at(5),
      });
      expect(rotated).toMatchObject({
        previousSecret: record.secret,
        previousSecretExpiresAt: at(86_400_000),
        signatureSchemes: ['zta'],
        url: record.url,
      });
      expect(rotated!.secret).not.toBe(record.secret);
      expect(await store.getWebhook(record.id)).toEqual(rotated);
      // Claimed deliveries carry the same record.
      await store.insertDeliveries([delivery(record)]);
      expect((await claimAll(at(0)))[0]!.webhook).toEqual(rotated);
      // A patch without the fields leaves them alone; null clears them.
      await store.updateWebhook(record.id, { description: 'x', updatedAt: at(6) });
      expect(await store.getWebhook(record.id)).toMatchObject({
        previousSecret: record.secret,
        signatureSchemes: ['zta'],
      });
      const cleared = await store.updateWebhook(record.id, {
        previousSecret: null,
        previousSecretExpiresAt: null,
        signatureSchemes: null,
        updatedAt: at(7),
      });
      expect(cleared).toMatchObject({
        previousSecret: null,
        previousSecretExpiresAt: null,
        signatureSchemes: null,
      });
      expect(await store.getWebhook(record.id)).toEqual(cleared);
      expect((await store.findSubscribers('site_a', 'pageview'))[0]).toEqual(cleared);
    });

    it('discards pending deliveries when a webhook is made inactive', async () => {
      const record = webhook();
      await store.createWebhook(record, { maxPerSite: 10 });
      const pending = delivery(record);
      await store.insertDeliveries([pending]);
      await store.updateWebhook(record.id, {
        active: false,
        disabledReason: 'Disabled by user',
        updatedAt: at(1),
      });
      expect((await store.getDelivery(pending.id))!.status).toBe('discarded');
      expect(await claimAll(at(10))).toEqual([]);
      expect(await store.nextDueAt()).toBeNull();
    });

    it('discards, on re-enable, a claim whose lease ran out while the webhook was inactive', async () => {
      const record = webhook();
      await store.createWebhook(record, { maxPerSite: 10 });
      const dead = delivery(record, { nextAttemptAt: at(0) });
      const alive = delivery(record, { nextAttemptAt: at(0) });
      await store.insertDeliveries([dead]);
      // Claimed by a worker that then died: the lease runs out while the webhook is disabled.
      expect(await claimAll(at(1), { leaseMs: 4 })).toHaveLength(1);
      await store.insertDeliveries([alive]);
      // Claimed by a worker still at work when the webhook comes back: its lease holds.
      expect(await claimAll(at(2), { leaseMs: 60_000 })).toHaveLength(1);
      await store.updateWebhook(record.id, {
        active: false,
        disabledReason: 'Disabled by user',
        updatedAt: at(3),
      });
      expect(await claimAll(at(10))).toEqual([]);
      expect(await store.nextDueAt()).toBeNull();
      await store.updateWebhook(record.id, { active: true, disabledReason: null, updatedAt: at(11) });
      expect(await store.getDelivery(dead.id)).toMatchObject({
        status: 'discarded',
        leaseExpiresAt: null,
        updatedAt: at(11),
      });
      expect(await store.getDelivery(alive.id)).toMatchObject({
        status: 'delivering',
        leaseExpiresAt: at(60_002),
      });
      // The live claim's lease is still watched: if its worker dies now, it is claimed again.
      expect(await store.nextDueAt()).toEqual(at(60_002));
      expect((await claimAll(at(60_002))).map((c) => c.delivery.id)).toEqual([alive.id]);
    });

    it('leaves out deliveries of a webhook that no longer exists', async () => {
      const record = webhook();
      await store.createWebhook(record, { maxPerSite: 10 });
      const kept = delivery(record);
      const gone = webhook();
      const alsoKept = delivery(record);
      // The ids recorded, in input order.
      expect(await store.insertDeliveries([kept, delivery(gone), alsoKept])).toEqual([kept.id, alsoKept.id]);
      const both = [kept.id, alsoKept.id].sort();
      const listed = await store.listDeliveries({ siteId: record.siteId, limit: 10 });
      expect(listed.map((d) => d.id).sort()).toEqual(both);
      expect((await claimAll(at(10))).map((c) => c.delivery.id).sort()).toEqual(both);
    });

    it('discards, on re-enable, deliveries left pending while the webhook was inactive', async () => {
      const record = webhook();
      await store.createWebhook(record, { maxPerSite: 10 });
      const d = delivery(record, { nextAttemptAt: at(0) });
      await store.insertDeliveries([d]);
      expect(await claimAll(at(1))).toHaveLength(1);
      await store.updateWebhook(record.id, { active: false, updatedAt: at(2) });
      // A worker stopping hands its claim back while the webhook is disabled.
      await store.releaseDeliveries([d.id], at(3));
      expect(await store.getDelivery(d.id)).toMatchObject({ status: 'pending' });
      await store.updateWebhook(record.id, { active: true, updatedAt: at(4) });
      expect(await store.getDelivery(d.id)).toMatchObject({ status: 'discarded', nextAttemptAt: null });
      expect(await claimAll(at(10))).toEqual([]);
      // What is recorded after the re-enable goes out.
      const fresh = delivery(record, { nextAttemptAt: at(5) });
      expect(await store.insertDeliveries([fresh])).toEqual([fresh.id]);
      expect((await claimAll(at(10))).map((c) => c.delivery.id)).toEqual([fresh.id]);
    });

    it('ignores keys of a patch given as undefined', async () => {
      const record = webhook({ description: 'keep' });
      await store.createWebhook(record, { maxPerSite: 10 });
      const d = delivery(record);
      await store.insertDeliveries([d]);
      const patched = await store.updateWebhook(record.id, {
        active: undefined,
        description: undefined,
        updatedAt: at(1),
      });
      expect(patched).toMatchObject({ active: true, description: 'keep', updatedAt: at(1) });
      expect(await store.getDelivery(d.id)).toMatchObject({ status: 'pending' });
    });

    it('leaves out deliveries of a webhook disabled since its subscribers were looked up', async () => {
      const record = webhook();
      await store.createWebhook(record, { maxPerSite: 10 });
      await store.updateWebhook(record.id, { active: false, updatedAt: at(1) });
      expect(await store.insertDeliveries([delivery(record)])).toEqual([]);
      expect(await store.listDeliveries({ siteId: record.siteId, limit: 10 })).toEqual([]);
      // Enabled again, nothing stale goes out.
      await store.updateWebhook(record.id, { active: true, updatedAt: at(2) });
      expect(await claimAll(at(10))).toEqual([]);
    });

    it('applies a patch with ifSecret only while the stored secret is that one', async () => {
      const record = webhook();
      await store.createWebhook(record, { maxPerSite: 10 });
      const stale = await store.updateWebhook(record.id, {
        secret: 'whsec_new',
        updatedAt: at(1),
        ifSecret: 'whsec_not_the_current_one',
      });
      expect(stale).toBeNull();
      expect((await store.getWebhook(record.id))!.secret).toBe(record.secret);
      const applied = await store.updateWebhook(record.id, {
        secret: 'whsec_new',
        previousSecret: record.secret,
        updatedAt: at(2),
        ifSecret: record.secret,
      });
      expect(applied).toMatchObject({ secret: 'whsec_new', previousSecret: record.secret });
      expect(await store.getWebhook(record.id)).not.toHaveProperty('ifSecret');
    });

    it('applies a patch with ifPreviousSecret only while the stored previous secret is that one', async () => {
      const record = webhook();
      await store.createWebhook(record, { maxPerSite: 10 });
      // No previous secret stored: a patch expecting one changes nothing, one expecting none applies.
      expect(
        await store.updateWebhook(record.id, {
          description: 'x',
          updatedAt: at(1),
          ifPreviousSecret: 'whsec_p',
        }),
      ).toBeNull();
      await store.updateWebhook(record.id, {
        previousSecret: 'whsec_p',
        updatedAt: at(2),
        ifPreviousSecret: null,
      });
      expect((await store.getWebhook(record.id))!.previousSecret).toBe('whsec_p');
      expect(
        await store.updateWebhook(record.id, {
          previousSecret: 'whsec_q',
          updatedAt: at(3),
          ifPreviousSecret: null,
        }),
      ).toBeNull();
      expect(
        await store.updateWebhook(record.id, {
          previousSecret: 'whsec_q',
          updatedAt: at(4),
          ifSecret: record.secret,
          ifPreviousSecret: 'whsec_p',
        }),
      ).toMatchObject({ previousSecret: 'whsec_q' });
      expect(await store.getWebhook(record.id)).not.toHaveProperty('ifPreviousSecret');
    });

    it('deletes a webhook with its deliveries and attempts', async () => {
      const record = webhook();
      await store.createWebhook(record, { maxPerSite: 1 });
      const d = delivery(record);
      await store.insertDeliveries([d]);
      await claimAll(at(0));
      await complete({ attempt: attempt(d, 1), next: { status: 'succeeded' } });
      expect(await store.deleteWebhook(record.id)).toBe(true);
      expect(await store.getWebhook(record.id)).toBeNull();
      expect(await store.getDelivery(d.id)).toBeNull();
      expect(await store.listAttempts([d.id])).toEqual([]);
      expect(await store.deleteWebhook(record.id)).toBe(false);
      expect(await store.createWebhook(webhook(), { maxPerSite: 1 })).toBe('created');
    });
  });

  describe('delivery queue', () => {
    let hook: WebhookRecord;
    beforeEach(async () => {
      hook = webhook();
      await store.createWebhook(hook, { maxPerSite: 10 });
    });

    it('claims only due deliveries, earliest due first, up to the limit, under a lease', async () => {
      const later = delivery(hook, { nextAttemptAt: at(3000) });
      const first = delivery(hook, { nextAttemptAt: at(0) });
      const second = delivery(hook, { nextAttemptAt: at(1000) });
      await store.insertDeliveries([later, second, first]);

      const claimed = await claimAll(at(2000), { limit: 1, leaseMs: 60_000 });
      expect(claimed.map((c) => c.delivery.id)).toEqual([first.id]);
      expect(claimed[0]!.delivery).toMatchObject({ status: 'delivering', leaseExpiresAt: at(62_000) });
      expect(claimed[0]!.webhook).toEqual(hook);

      expect((await claimAll(at(2000))).map((c) => c.delivery.id)).toEqual([second.id]);
      expect(await claimAll(at(2000))).toEqual([]);
      expect((await store.getDelivery(later.id))!.status).toBe('pending');
    });

    it('keeps a body exactly as given, whatever characters it holds', async () => {
      const body = JSON.stringify({
        event: 'pageview',
        data: { path: '/café/日本', emoji: '😀', quote: '"', nul: '\u0000', long: 'é'.repeat(5000) },
      });
      const d = delivery(hook, { body });
      await store.insertDeliveries([d]);

      expect((await store.getDelivery(d.id))!.body).toBe(body);
      expect((await claimAll(at(0)))[0]!.delivery.body).toBe(body);
      expect((await store.listDeliveries({ webhookId: hook.id, limit: 10 }))[0]!.body).toBe(body);
    });

    it('caps each webhook at its free slots without hiding other webhooks behind its backlog', async () => {
      const other = webhook();
      const third = webhook();
      await store.createWebhook(other, { maxPerSite: 10 });
      await store.createWebhook(third, { maxPerSite: 10 });
      const backlog = Array.from({ length: 20 }, (_, i) => delivery(hook, { nextAttemptAt: at(i) }));
      const theirs = delivery(other, { nextAttemptAt: at(100) });
      const busyOnes = delivery(third, { nextAttemptAt: at(50) });
      await store.insertDeliveries([...backlog, theirs, busyOnes]);

      const claimed = await claimAll(at(1000), {
        limit: 10,
        perWebhookLimit: 3,
        busyWebhooks: new Map([[third.id, 3]]),
      });
      const ids = claimed.map((c) => c.delivery.id);
      expect(ids).toEqual([backlog[0]!.id, backlog[1]!.id, backlog[2]!.id, theirs.id]);

      const rest = await claimAll(at(1000), { limit: 100, perWebhookLimit: 100 });
      expect(rest.map((c) => c.delivery.id)).toEqual([...backlog.slice(3).map((d) => d.id), busyOnes.id]);
    });

    it('reclaims a delivery whose lease expired', async () => {
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      await claimAll(at(0), { leaseMs: 1000 });
      expect(await claimAll(at(999))).toEqual([]);
      expect(await store.nextDueAt()).toEqual(at(1000));
      const again = await claimAll(at(1000), { leaseMs: 1000 });
      expect(again.map((c) => c.delivery.id)).toEqual([d.id]);
      expect(again[0]!.delivery.leaseExpiresAt).toEqual(at(2000));
    });

    it('applies a leased outcome after an outcome without a lease in one batch only as late', async () => {
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      const [claimed] = await claimAll(at(0), { leaseMs: 1000 });
      await store.completeAttempts([
        {
          attempt: attempt(d, 1, { startedAt: at(100) }),
          next: { status: 'succeeded' },
          maxConsecutiveFailures: 3,
        },
        {
          attempt: attempt(d, 1, { startedAt: at(200), statusCode: 410, ok: false }),
          next: { status: 'failed' },
          disableReason: 'Endpoint answered 410 Gone',
          maxConsecutiveFailures: 3,
          leaseExpiresAt: claimed!.delivery.leaseExpiresAt!,
        },
      ]);
      expect(await store.getDelivery(d.id)).toMatchObject({ status: 'succeeded', lastStatusCode: 200 });
      expect(await store.getWebhook(hook.id)).toMatchObject({ active: true, consecutiveFailures: 0 });
    });

    it('hands out a delivery once per claim, even under a lease that ends at once', async () => {
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      expect((await claimAll(at(0), { leaseMs: 0 })).map((c) => c.delivery.id)).toEqual([d.id]);
      // Expired, it is claimed again by the next call.
      expect((await claimAll(at(1), { leaseMs: 1000 })).map((c) => c.delivery.id)).toEqual([d.id]);
    });

    it('applies only the first of two outcomes under one lease in one batch (the second is late)', async () => {
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      const [claimed] = await claimAll(at(0), { leaseMs: 1000 });
      const lease = claimed!.delivery.leaseExpiresAt!;
      await store.completeAttempts([
        {
          attempt: attempt(d, 1, { startedAt: at(100) }),
          next: { status: 'succeeded' },
          maxConsecutiveFailures: 3,
          leaseExpiresAt: lease,
        },
        {
          attempt: attempt(d, 1, { startedAt: at(200), statusCode: 410, ok: false }),
          next: { status: 'failed' },
          disableReason: 'Endpoint answered 410 Gone',
          maxConsecutiveFailures: 3,
          leaseExpiresAt: lease,
        },
      ]);
      expect(await store.getDelivery(d.id)).toMatchObject({ status: 'succeeded', lastStatusCode: 200 });
      expect(await store.getWebhook(hook.id)).toMatchObject({ active: true, consecutiveFailures: 0 });
      expect(await store.listAttempts([d.id])).toHaveLength(2);
    });

    it('only logs a late outcome whose lease no longer holds the delivery (claimed again, or finished)', async () => {
      await store.updateWebhook(hook.id, { consecutiveFailures: 2, updatedAt: at(0) });
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      const [stalled] = await claimAll(at(0), { leaseMs: 1000 });
      const staleLease = stalled!.delivery.leaseExpiresAt!;
      const [current] = await claimAll(at(1000), { leaseMs: 1000 });
      expect(current!.delivery.leaseExpiresAt).toEqual(at(2000));

      // The stalled worker's answer arrives now. Applied, its retry would hand the delivery to a third worker
      // while the second still holds it.
      const late = attempt(d, 1, { ok: false, statusCode: 503, startedAt: at(500) });
      expect(
        await complete({
          attempt: late,
          next: { status: 'pending', nextAttemptAt: at(1200) },
          leaseExpiresAt: staleLease,
        }),
      ).toEqual([{ deliveryId: d.id, webhookId: hook.id, siteId: hook.siteId, disabledReason: null }]);
      expect(await store.getDelivery(d.id)).toMatchObject({
        status: 'delivering',
        attempts: 0,
        leaseExpiresAt: at(2000),
      });
      expect(await claimAll(at(1500))).toEqual([]);
      expect(await store.getWebhook(hook.id)).toMatchObject({
        consecutiveFailures: 2,
        lastTriggered: at(500),
      });

      await complete({
        attempt: attempt(d, 1, { startedAt: at(1100) }),
        next: { status: 'succeeded' },
        leaseExpiresAt: at(2000),
      });
      expect(await store.getDelivery(d.id)).toMatchObject({ status: 'succeeded', attempts: 1 });

      // Late after it succeeded: a 410 that would disable the webhook at once is only logged too.
      await complete({
        attempt: attempt(d, 1, { ok: false, statusCode: 410, startedAt: at(700) }),
        next: { status: 'failed' },
        disableReason: 'Endpoint returned 410 Gone',
        leaseExpiresAt: staleLease,
      });
      expect(await store.getDelivery(d.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
      expect(await store.getWebhook(hook.id)).toMatchObject({
        active: true,
        consecutiveFailures: 0,
        lastTriggered: at(1100),
      });
      expect((await store.listAttempts([d.id])).map((a) => a.startedAt.getTime()).sort()).toEqual(
        [at(500), at(700), at(1100)].map((t) => t.getTime()),
      );
    });

    it('reports when the next delivery is due, leaving out excluded webhooks', async () => {
      expect(await store.nextDueAt()).toBeNull();
      const other = webhook();
      await store.createWebhook(other, { maxPerSite: 10 });
      await store.insertDeliveries([
        delivery(hook, { nextAttemptAt: at(500) }),
        delivery(hook, { nextAttemptAt: at(200) }),
        delivery(other, { nextAttemptAt: at(900) }),
      ]);
      expect(await store.nextDueAt()).toEqual(at(200));
      expect(await store.nextDueAt({ excludeWebhookIds: [hook.id] })).toEqual(at(900));
      expect(await store.nextDueAt({ excludeWebhookIds: [hook.id, other.id] })).toBeNull();
      expect(await store.nextDueAt()).toEqual(at(200));
    });

    it('records a successful attempt and resets the failure count', async () => {
      await store.updateWebhook(hook.id, { consecutiveFailures: 3, updatedAt: at(0) });
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      await claimAll(at(0));
      const done = attempt(d, 1);
      expect(await complete({ attempt: done, next: { status: 'succeeded' } })).toEqual([
        { deliveryId: d.id, webhookId: hook.id, siteId: hook.siteId, disabledReason: null },
      ]);
      expect(await store.getDelivery(d.id)).toMatchObject({
        status: 'succeeded',
        attempts: 1,
        nextAttemptAt: null,
        leaseExpiresAt: null,
        lastStatusCode: 200,
        lastError: null,
      });
      expect(await store.listAttempts([d.id])).toEqual([done]);
      const after = await store.getWebhook(hook.id);
      expect(after!.consecutiveFailures).toBe(0);
      expect(after!.lastTriggered).toEqual(done.startedAt);
    });

    it('schedules a retry, then marks the delivery failed and counts it', async () => {
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      await claimAll(at(0));
      await complete({ attempt: failedAttempt(d, 1), next: { status: 'pending', nextAttemptAt: at(6000) } });
      expect(await store.getDelivery(d.id)).toMatchObject({
        status: 'pending',
        attempts: 1,
        lastStatusCode: 500,
      });
      expect(await store.nextDueAt()).toEqual(at(6000));
      expect(await claimAll(at(5999))).toEqual([]);
      expect(await claimAll(at(6000))).toHaveLength(1);
      const timeout = attempt(d, 2, {
        statusCode: null,
        errorCode: 'timeout',
        ok: false,
        responseSnippet: null,
      });
      await complete({ attempt: timeout, next: { status: 'failed' } });
      expect(await store.getDelivery(d.id)).toMatchObject({
        status: 'failed',
        attempts: 2,
        lastError: 'timeout',
      });
      expect((await store.listAttempts([d.id])).map((a) => a.attempt)).toEqual([1, 2]);
      expect((await store.getWebhook(hook.id))!.consecutiveFailures).toBe(1);
    });

    it('disables a webhook after N consecutive failed deliveries and discards its pending ones', async () => {
      const failing = [delivery(hook), delivery(hook)];
      const waiting = delivery(hook, { nextAttemptAt: at(60_000) });
      await store.insertDeliveries([...failing, waiting]);
      await claimAll(at(0));
      const effects = await store.completeAttempts(
        failing.map((d) => ({
          attempt: failedAttempt(d, 1),
          next: { status: 'failed' },
          maxConsecutiveFailures: 2,
        })),
      );
      expect(effects.map((e) => e.disabledReason)).toEqual([
        null,
        'Disabled after 2 consecutive failed deliveries',
      ]);
      expect(await store.getWebhook(hook.id)).toMatchObject({
        active: false,
        disabledReason: 'Disabled after 2 consecutive failed deliveries',
        consecutiveFailures: 2,
      });
      expect((await store.getDelivery(waiting.id))!.status).toBe('discarded');
      expect(await store.findSubscribers(hook.siteId, 'pageview')).toEqual([]);
    });

    it('discards the retry of an attempt that was in flight when its webhook was disabled', async () => {
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      await claimAll(at(0));
      await store.updateWebhook(hook.id, {
        active: false,
        disabledReason: 'Disabled by user',
        updatedAt: at(1),
      });
      await complete({ attempt: failedAttempt(d, 1), next: { status: 'pending', nextAttemptAt: at(5000) } });
      expect(await store.getDelivery(d.id)).toMatchObject({
        status: 'discarded',
        nextAttemptAt: null,
        attempts: 1,
      });
      expect(await store.nextDueAt()).toBeNull();
      await store.updateWebhook(hook.id, { active: true, disabledReason: null, updatedAt: at(2) });
      expect(await claimAll(at(10_000))).toEqual([]);
    });

    it('leaves a webhook the user disabled as it is when an attempt in flight would have disabled it', async () => {
      const [first, second] = [delivery(hook), delivery(hook)];
      await store.insertDeliveries([first, second]);
      await claimAll(at(0));
      await store.updateWebhook(hook.id, {
        active: false,
        disabledReason: 'Disabled by user',
        updatedAt: at(1),
      });
      const effects = [
        ...(await complete({
          attempt: failedAttempt(first, 1),
          next: { status: 'failed' },
          maxConsecutiveFailures: 1,
        })),
        ...(await complete({
          attempt: attempt(second, 1, { statusCode: 410, ok: false }),
          next: { status: 'failed' },
          disableReason: 'Endpoint returned 410 Gone',
        })),
      ];
      expect(effects.map((effect) => effect.disabledReason)).toEqual([null, null]);
      expect(await store.getWebhook(hook.id)).toMatchObject({
        active: false,
        disabledReason: 'Disabled by user',
        updatedAt: at(1),
      });
    });

    it('disables at once when told to (410 Gone)', async () => {
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      await claimAll(at(0));
      const gone = attempt(d, 1, { statusCode: 410, ok: false });
      const [effect] = await complete({
        attempt: gone,
        next: { status: 'failed' },
        disableReason: 'Endpoint returned 410 Gone',
      });
      expect(effect!.disabledReason).toBe('Endpoint returned 410 Gone');
      expect(await store.getWebhook(hook.id)).toMatchObject({
        active: false,
        disabledReason: 'Endpoint returned 410 Gone',
      });
    });

    it('keeps the attempt whose retry is discarded by the disable it caused', async () => {
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      await claimAll(at(0));
      const last = attempt(d, 1, { statusCode: 500, ok: false });
      await complete({
        attempt: last,
        next: { status: 'pending', nextAttemptAt: at(5000) },
        maxConsecutiveFailures: 1,
        disableReason: 'Endpoint returned 410 Gone',
      });
      expect(await store.getDelivery(d.id)).toMatchObject({ status: 'discarded', attempts: 1 });
      expect(await store.listAttempts([d.id])).toEqual([last]);
    });

    it('releases claimed deliveries back to pending, due now', async () => {
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      await claimAll(at(0), { leaseMs: 60_000 });
      await store.releaseDeliveries([d.id], at(10));
      expect(await store.getDelivery(d.id)).toMatchObject({
        status: 'pending',
        nextAttemptAt: at(10),
        leaseExpiresAt: null,
      });
      expect((await claimAll(at(10))).map((c) => c.delivery.id)).toEqual([d.id]);
    });

    it('releases claims back in their places when given their due times', async () => {
      const [a, b, c] = [at(1), at(2), at(3)].map((due) => delivery(hook, { nextAttemptAt: due }));
      await store.insertDeliveries([a!, b!, c!]);
      const [first] = await claimAll(at(10), { limit: 1 });
      expect(first!.delivery.id).toBe(a!.id);
      // Stores written before ClaimedDelivery.dueAt may leave it out.
      if (first!.dueAt !== undefined) expect(first!.dueAt).toEqual(at(1));
      await store.releaseDeliveries([a!.id], at(20), [first!.delivery.leaseExpiresAt], [at(1)]);
      expect(await store.getDelivery(a!.id)).toMatchObject({ status: 'pending', nextAttemptAt: at(1) });
      expect((await claimAll(at(30))).map((claimed) => claimed.delivery.id)).toEqual([a!.id, b!.id, c!.id]);
    });

    it('releases a claim only while the lease it names still holds it', async () => {
      await store.insertDeliveries([delivery(hook), delivery(hook)]);
      const first = await claimAll(at(0), { leaseMs: 1_000 });
      const lease = (id: string) => first.find((c) => c.delivery.id === id)!.delivery.leaseExpiresAt;
      // The leases ran out (a worker stalled) and another worker claimed one of them again.
      const [again] = await claimAll(at(2_000), { leaseMs: 60_000, limit: 1 });
      const taken = again!.delivery.id;
      const left = first.map((c) => c.delivery.id).find((id) => id !== taken)!;
      await store.releaseDeliveries([taken, left], at(2_500), [lease(taken), lease(left)]);
      expect(await store.getDelivery(taken)).toMatchObject({
        status: 'delivering',
        leaseExpiresAt: at(62_000),
      });
      expect(await store.getDelivery(left)).toMatchObject({ status: 'pending', nextAttemptAt: at(2_500) });
      await store.releaseDeliveries([taken], at(3_000), [again!.delivery.leaseExpiresAt]);
      expect(await store.getDelivery(taken)).toMatchObject({ status: 'pending', nextAttemptAt: at(3_000) });
    });

    it('requeues only finished deliveries, from attempt 0', async () => {
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      expect(await store.requeueDelivery(d.id, at(1))).toBeNull();
      await claimAll(at(0));
      // In flight: not yet.
      expect(await store.requeueDelivery(d.id, at(1))).toBeNull();
      await complete({ attempt: failedAttempt(d, 1), next: { status: 'failed' } });
      const requeued = await store.requeueDelivery(d.id, at(50));
      expect(requeued).toMatchObject({ id: d.id, status: 'pending', attempts: 0, nextAttemptAt: at(50) });
      expect((await claimAll(at(50))).map((c) => c.delivery.id)).toEqual([d.id]);
      expect(await store.requeueDelivery('dlv_missing', at(1))).toBeNull();
      // A succeeded one too (a resend): the receiver answered but lost it.
      await complete({ attempt: attempt(d, 1, { startedAt: at(60) }), next: { status: 'succeeded' } });
      expect(await store.getDelivery(d.id)).toMatchObject({ status: 'succeeded' });
      expect(await store.requeueDelivery(d.id, at(70))).toMatchObject({ status: 'pending', attempts: 0 });
      expect((await claimAll(at(70))).map((c) => c.delivery.id)).toEqual([d.id]);
    });

    it('requeues nothing of an inactive webhook (it would stay pending for good)', async () => {
      const d = delivery(hook);
      await store.insertDeliveries([d]);
      await claimAll(at(0));
      await complete({ attempt: failedAttempt(d, 1), next: { status: 'failed' } });
      await store.updateWebhook(hook.id, {
        active: false,
        disabledReason: 'Disabled by user',
        updatedAt: at(60),
      });
      expect(await store.requeueDelivery(d.id, at(70))).toBeNull();
      expect((await store.getDelivery(d.id))!.status).toBe('failed');
      await store.updateWebhook(hook.id, { active: true, disabledReason: null, updatedAt: at(80) });
      expect(await store.requeueDelivery(d.id, at(90))).toMatchObject({ status: 'pending' });
    });

    it('refuses a page size that is not a positive integer', async () => {
      for (const limit of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(store.listDeliveries({ webhookId: hook.id, limit })).rejects.toThrow(
          'limit must be a positive integer',
        );
        await expect(store.listDeliveries({ siteId: hook.siteId, limit })).rejects.toThrow(
          'limit must be a positive integer',
        );
      }
    });

    it('pages through the activity log newest first with filters', async () => {
      const other = webhook({ siteId: 'site_b' });
      await store.createWebhook(other, { maxPerSite: 10 });
      const mine = Array.from({ length: 5 }, (_, i) => delivery(hook, { createdAt: at(i * 1000) }));
      const theirs = delivery(other, { createdAt: at(2500) });
      await store.insertDeliveries([...mine, theirs]);

      const firstPage = await store.listDeliveries({ webhookId: hook.id, limit: 2 });
      expect(firstPage.map((d) => d.id)).toEqual([mine[4]!.id, mine[3]!.id]);
      const last = firstPage[1]!;
      const secondPage = await store.listDeliveries({ webhookId: hook.id, limit: 10, after: last });
      expect(secondPage.map((d) => d.id)).toEqual([mine[2]!.id, mine[1]!.id, mine[0]!.id]);

      expect((await store.listDeliveries({ siteId: 'site_b', limit: 10 })).map((d) => d.id)).toEqual([
        theirs.id,
      ]);
      expect(await store.listDeliveries({ siteId: 'site_a', since: at(3000), limit: 10 })).toHaveLength(2);
      expect(await store.listDeliveries({ siteId: 'site_a', status: 'failed', limit: 10 })).toEqual([]);
    });

    it('breaks createdAt ties by id so paging never skips or repeats', async () => {
      const same = Array.from({ length: 6 }, () => delivery(hook, { createdAt: at(0) }));
      await store.insertDeliveries(same);
      const seen: string[] = [];
      let after: DeliveryRecord | undefined;
      for (;;) {
        const page: DeliveryRecord[] = await store.listDeliveries({
          webhookId: hook.id,
          limit: 4,
          ...(after && { after }),
        });
        seen.push(...page.map((d) => d.id));
        if (page.length < 4) break;
        after = page.at(-1);
      }
      expect(seen).toHaveLength(6);
      expect(new Set(seen)).toEqual(new Set(same.map((d) => d.id)));
    });

    it('prunes finished deliveries older than the cutoff with their attempts (if the store supports it)', async () => {
      if (store.pruneDeliveries === undefined) return;
      const succeeded = delivery(hook, { createdAt: at(0) });
      const inFlight = delivery(hook, { createdAt: at(1) });
      const failed = delivery(hook, { createdAt: at(2), status: 'failed', nextAttemptAt: null, attempts: 3 });
      const discarded = delivery(hook, { createdAt: at(3), status: 'discarded', nextAttemptAt: null });
      const waiting = delivery(hook, { createdAt: at(4), nextAttemptAt: at(100_000) });
      const recent = delivery(hook, { createdAt: at(10_000), status: 'succeeded', nextAttemptAt: null });
      await store.insertDeliveries([succeeded, inFlight, failed, discarded, waiting, recent]);
      expect((await claimAll(at(0), { leaseMs: 60_000 })).map((c) => c.delivery.id).sort()).toEqual(
        [succeeded.id, inFlight.id].sort(),
      );
      await complete({ attempt: attempt(succeeded, 1), next: { status: 'succeeded' } });

      expect(await store.pruneDeliveries({ olderThan: at(5_000), batchSize: 2 })).toBe(3);
      for (const gone of [succeeded, failed, discarded]) expect(await store.getDelivery(gone.id)).toBeNull();
      expect(await store.listAttempts([succeeded.id])).toEqual([]);
      const left = await store.listDeliveries({ webhookId: hook.id, limit: 10 });
      expect(left.map((d) => d.id)).toEqual([recent.id, waiting.id, inFlight.id]);
      expect(await store.pruneDeliveries({ olderThan: at(5_000) })).toBe(0);

      // The queue is unaffected: the expired lease and the waiting delivery are still claimed when due.
      expect(await store.nextDueAt()).toEqual(at(60_000));
      expect((await claimAll(at(100_000))).map((c) => c.delivery.id)).toEqual([inFlight.id, waiting.id]);
    });

    it('discards, when pruning, what a dead worker left in flight on a webhook now inactive (if it prunes)', async () => {
      if (store.pruneDeliveries === undefined) return;
      const other = webhook();
      await store.createWebhook(other, { maxPerSite: 10 });
      const orphan = delivery(hook, { createdAt: at(0) });
      const reclaimable = delivery(other, { createdAt: at(1) });
      const stillHeld = delivery(hook, { createdAt: at(2) });
      await store.insertDeliveries([stillHeld]);
      await claimAll(new Date(), { leaseMs: 3_600_000 });
      await store.insertDeliveries([orphan, reclaimable]);
      await claimAll(at(0), { leaseMs: 1_000 });
      await store.updateWebhook(hook.id, {
        active: false,
        disabledReason: 'Disabled by user',
        updatedAt: at(3),
      });
      // Nothing will claim the orphan again: its webhook is inactive.
      expect((await claimAll(new Date())).map((c) => c.delivery.id)).toEqual([reclaimable.id]);

      await store.pruneDeliveries({ olderThan: at(0), batchSize: 1 });
      expect(await store.getDelivery(orphan.id)).toMatchObject({ status: 'discarded', leaseExpiresAt: null });
      expect(await store.getDelivery(stillHeld.id)).toMatchObject({ status: 'delivering' });
      expect((await store.getDelivery(reclaimable.id))!.status).toBe('delivering');
      // Redeliverable once the webhook is enabled again, like the deliveries that disabling discarded.
      expect(await store.requeueDelivery(orphan.id, new Date())).toBeNull();
      await store.updateWebhook(hook.id, { active: true, disabledReason: null, updatedAt: at(4) });
      expect(await store.requeueDelivery(orphan.id, new Date())).toMatchObject({ status: 'pending' });
    });

    it('notifies subscribers when deliveries are queued (if the store supports it)', async () => {
      if (store.subscribe === undefined) return;
      let calls = 0;
      const unsubscribe = store.subscribe(() => calls++);
      await store.insertDeliveries([delivery(hook)]);
      await vitestWaitFor(() => calls > 0);
      unsubscribe();
      const before = calls;
      await store.insertDeliveries([delivery(hook)]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(calls).toBe(before);
    });
  });
}

async function vitestWaitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a store notification');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
