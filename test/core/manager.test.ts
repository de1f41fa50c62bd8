import { beforeEach, describe, expect, it } from 'vitest';
import { WebhookError, WebhookManager } from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';
import { delivery } from '../../src/testing/fixtures.js';

type User = { name: string; sites: string[] };
const alice: User = { name: 'alice', sites: ['site_abc123', 'site_two'] };
const mallory: User = { name: 'mallory', sites: ['site_evil'] };

const authorize = (user: User, siteId: string) => user.sites.includes(siteId);
const valid = {
  siteId: 'site_abc123',
  url: 'https://your-server.com/webhook',
  events: ['pageview', 'event', 'goal'],
  description: 'Production webhook for analytics events',
};

async function rejection(promise: Promise<unknown>): Promise<WebhookError> {
  try {
    await promise;
  } catch (error) {
    if (WebhookError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a WebhookError, got success');
}

describe('WebhookManager', () => {
  let manager: WebhookManager<User>;
  beforeEach(() => {
    manager = new WebhookManager<User>({ store: memoryStore(), authorize });
  });

  it('refuses a maxWebhooksPerSite that is not a positive integer (Postgres could not count to it)', () => {
    for (const maxWebhooksPerSite of [0, -1, 2.5, 2 ** 31, Number.POSITIVE_INFINITY, Number.NaN]) {
      expect(() => new WebhookManager({ store: memoryStore(), authorize, maxWebhooksPerSite })).toThrow(
        'maxWebhooksPerSite must be a positive integer',
      );
    }
    expect(
      () => new WebhookManager({ store: memoryStore(), authorize, maxWebhooksPerSite: 25 }),
    ).not.toThrow();
  });

  describe('create', () => {
    it('returns the spec-shaped webhook with its secret once', async () => {
      const { webhook } = await manager.create(alice, valid);
      expect(webhook).toMatchObject({
        url: 'https://your-server.com/webhook',
        events: ['pageview', 'event', 'goal'],
        active: true,
        siteId: 'site_abc123',
        description: 'Production webhook for analytics events',
        lastTriggered: null,
        disabledReason: null,
      });
      expect(webhook.id).toMatch(/^wh_[A-Za-z0-9_-]{22,}$/);
      expect(Buffer.from(webhook.id.slice(3), 'base64url').length * 8).toBeGreaterThanOrEqual(96);
      expect(webhook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
      expect(Buffer.from(webhook.secret.slice(6), 'base64')).toHaveLength(32);
      expect(new Date(webhook.createdAt).toISOString()).toBe(webhook.createdAt);
    });

    it('never shows the secret again in list or get', async () => {
      const { webhook } = await manager.create(alice, valid);
      const { webhooks } = await manager.list(alice, 'site_abc123');
      expect(webhooks).toHaveLength(1);
      expect(webhooks[0]).not.toHaveProperty('secret');
      expect(JSON.stringify(webhooks)).not.toContain(webhook.secret);
      const got = await manager.get(alice, webhook.id);
      expect(got.webhook).not.toHaveProperty('secret');
      expect(got.webhook.id).toBe(webhook.id);
    });

    it('gives every webhook its own id and secret', async () => {
      const a = await manager.create(alice, valid);
      const b = await manager.create(alice, valid);
      expect(a.webhook.id).not.toBe(b.webhook.id);
      expect(a.webhook.secret).not.toBe(b.webhook.secret);
    });

    it.each([
      ['http://your-server.com/webhook', 'URL must use HTTPS', 'url_not_https'],
      ['ftp://your-server.com/webhook', 'URL must use HTTPS', 'url_not_https'],
      ['/relative/path', 'URL must be an absolute URL', 'invalid_url'],
      ['your-server.com/webhook', 'URL must be an absolute URL', 'invalid_url'],
      ['https://user:pass@your-server.com/webhook', 'URL must not contain credentials', 'invalid_url'],
      ['https://user@your-server.com/webhook', 'URL must not contain credentials', 'invalid_url'],
      ['https://your-server.com/webhook#frag', 'URL must not contain a fragment', 'invalid_url'],
      [`https://your-server.com/${'a'.repeat(2030)}`, 'URL must be at most 2048 characters', 'invalid_url'],
    ])('refuses url %s', async (url, message, code) => {
      const error = await rejection(manager.create(alice, { ...valid, url }));
      expect(error).toMatchObject({ status: 400, code, message });
    });

    it('accepts a URL of exactly 2048 characters', async () => {
      const base = 'https://your-server.com/';
      const url = base + 'a'.repeat(2048 - base.length);
      expect((await manager.create(alice, { ...valid, url })).webhook.url).toBe(url);
    });

    it('stores the URL normalised', async () => {
      const { webhook } = await manager.create(alice, {
        ...valid,
        url: 'HTTPS://Your-Server.COM:443/a/../webhook',
      });
      expect(webhook.url).toBe('https://your-server.com/webhook');
    });

    it.each([
      [['pageview', 'invalid_event'], 'Invalid event type: invalid_event', 'invalid_event_type'],
      [['PAGEVIEW'], 'Invalid event type: PAGEVIEW', 'invalid_event_type'],
      [[42], 'Invalid event type: 42', 'invalid_event_type'],
      [[], 'events must contain at least one event type', 'validation_failed'],
      [['goal', 'goal'], 'Duplicate event type: goal', 'validation_failed'],
      ['pageview', 'events must be an array of event types', 'validation_failed'],
      [undefined, 'events is required', 'validation_failed'],
    ])('refuses events %j', async (events, message, code) => {
      const error = await rejection(manager.create(alice, { ...valid, events: events as string[] }));
      expect(error).toMatchObject({ status: 400, code, message });
    });

    it.each([
      [['pageview', 'event', 'goal', 'alert', 'session_end', 'pageview']],
      [['pageview', 'event', 'goal', 'alert', 'session_end', 'conversion']],
      [Array.from({ length: 50 }, () => 'goal')],
    ])('refuses more than 5 event types with the spec’s message %#', async (events) => {
      const error = await rejection(manager.create(alice, { ...valid, events }));
      expect(error).toMatchObject({
        status: 400,
        code: 'validation_failed',
        message: 'Maximum 5 event types per webhook',
      });
    });

    it('accepts all five event types', async () => {
      const events = ['pageview', 'event', 'goal', 'alert', 'session_end'];
      expect((await manager.create(alice, { ...valid, events })).webhook.events).toEqual(events);
    });

    it.each([
      [{ ...valid, siteId: undefined }, 'siteId is required'],
      [{ ...valid, siteId: '' }, 'siteId is required'],
      [{ ...valid, siteId: 12 }, 'siteId must be a string'],
      [{ ...valid, url: undefined }, 'url is required'],
      [{ ...valid, description: 7 }, 'description must be a string'],
      [{ ...valid, description: 'x'.repeat(501) }, 'description must be at most 500 characters'],
      [{ ...valid, description: 'a\u0000b' }, 'description must not contain NUL characters'],
      [{ ...valid, description: 'a\ud800b' }, 'description must be valid Unicode text'],
      [{ ...valid, description: 'end \udfff' }, 'description must be valid Unicode text'],
      [null, 'Request body must be a JSON object'],
      ['a string', 'Request body must be a JSON object'],
      [
        { ...valid, desciption: 'typo' },
        'Unknown field: desciption (expected siteId, url, events, description, signatureSchemes)',
      ],
      [
        { ...valid, active: false, secret: 'whsec_mine' },
        'Unknown field: active, secret (expected siteId, url, events, description, signatureSchemes)',
      ],
    ])('refuses malformed input %#', async (input, message) => {
      const error = await rejection(manager.create(alice, input as never));
      expect(error).toMatchObject({ status: 400, code: 'validation_failed', message });
    });

    it('refuses a site the principal does not own with 403 Access denied', async () => {
      const error = await rejection(manager.create(mallory, valid));
      expect(error).toMatchObject({ status: 403, code: 'access_denied', message: 'Access denied' });
      expect((await manager.list(alice, 'site_abc123')).webhooks).toEqual([]);
    });

    it('awaits an async authorize', async () => {
      const asyncManager = new WebhookManager<User>({
        store: memoryStore(),
        authorize: async (user, siteId) => {
          await new Promise((resolve) => setTimeout(resolve, 1));
          return authorize(user, siteId);
        },
      });
      await expect(asyncManager.create(alice, valid)).resolves.toBeDefined();
      await expect(asyncManager.create(mallory, valid)).rejects.toMatchObject({ status: 403 });
    });

    it('refuses the 11th webhook of a site', async () => {
      for (let i = 0; i < 10; i++) await manager.create(alice, valid);
      const error = await rejection(manager.create(alice, valid));
      expect(error).toMatchObject({
        status: 400,
        code: 'webhook_limit_reached',
        message: 'Maximum 10 webhooks per site',
      });
      await expect(manager.create(alice, { ...valid, siteId: 'site_two' })).resolves.toBeDefined();
    });

    it('leaves exactly 10 webhooks after 50 concurrent creates', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, () => manager.create(alice, valid)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
      for (const r of results) {
        if (r.status === 'rejected') expect(WebhookError.is(r.reason, 'webhook_limit_reached')).toBe(true);
      }
      expect((await manager.list(alice, 'site_abc123')).webhooks).toHaveLength(10);
    });
  });

  describe('private networks', () => {
    it.each([
      'https://localhost/hook',
      'https://LOCALHOST./hook',
      'https://api.localhost/hook',
      'https://127.0.0.1/hook',
      'https://2130706433/hook',
      'https://0x7f.1/hook',
      'https://017700000001/hook',
      'https://127.1/hook',
      'https://0/hook',
      'https://0.0.0.0/hook',
      'https://10.1.2.3/hook',
      'https://172.16.0.1/hook',
      'https://192.168.1.1/hook',
      'https://169.254.169.254/latest/meta-data',
      'https://100.64.0.1/hook',
      'https://224.0.0.1/hook',
      'https://255.255.255.255/hook',
      'https://[::1]/hook',
      'https://[::]/hook',
      'https://[::ffff:127.0.0.1]/hook',
      'https://[::ffff:a00:1]/hook',
      'https://[fc00::1]/hook',
      'https://[fd12:3456::1]/hook',
      'https://[fe80::1]/hook',
      'https://[ff02::1]/hook',
      'https://[64:ff9b::7f00:1]/hook',
      'https://[2002:7f00:1::1]/hook',
      'https://[2001::1]/hook',
      'https://192.0.2.10/hook',
      'https://198.18.0.1/hook',
    ])('refuses %s', async (url) => {
      const error = await rejection(manager.create(alice, { ...valid, url }));
      expect(error.status).toBe(400);
      expect(error.code).toBe('private_address');
      expect(error.message).toMatch(/^URL must not point to (localhost|a private or reserved address)$/);
    });

    it.each(['https://8.8.8.8/hook', 'https://[2606:4700:4700::1111]/hook', 'https://example.com/hook'])(
      'accepts public %s',
      async (url) => {
        await expect(manager.create(alice, { ...valid, url })).resolves.toBeDefined();
      },
    );

    it('allows private and loopback URLs with allowPrivateNetworks', async () => {
      const local = new WebhookManager<User>({ store: memoryStore(), authorize, allowPrivateNetworks: true });
      for (const url of ['https://127.0.0.1:8443/hook', 'https://localhost/hook', 'https://10.0.0.1/hook']) {
        await expect(local.create(alice, { ...valid, url })).resolves.toBeDefined();
      }
      await expect(local.create(alice, { ...valid, url: 'http://127.0.0.1/hook' })).rejects.toMatchObject({
        message: 'URL must use HTTPS',
      });
    });

    it('checks updates too', async () => {
      const { webhook } = await manager.create(alice, valid);
      const error = await rejection(manager.update(alice, webhook.id, { url: 'https://10.0.0.1/' }));
      expect(error.code).toBe('private_address');
    });
  });

  describe('get, update, delete, rotateSecret', () => {
    it('lists only the asked site', async () => {
      await manager.create(alice, valid);
      await manager.create(alice, { ...valid, siteId: 'site_two' });
      expect((await manager.list(alice, 'site_two')).webhooks.map((w) => w.siteId)).toEqual(['site_two']);
      await expect(manager.list(mallory, 'site_abc123')).rejects.toMatchObject({
        status: 403,
        message: 'Access denied',
      });
      await expect(manager.list(alice, '')).rejects.toMatchObject({
        status: 400,
        message: 'siteId is required',
      });
    });

    it('deletes with the spec response, then 404s', async () => {
      const { webhook } = await manager.create(alice, valid);
      expect(await manager.delete(alice, webhook.id)).toEqual({
        success: true,
        message: 'Webhook deleted successfully',
      });
      await expect(manager.delete(alice, webhook.id)).rejects.toMatchObject({
        status: 404,
        message: 'Webhook not found',
      });
      expect((await manager.list(alice, 'site_abc123')).webhooks).toEqual([]);
    });

    it('refuses ids that cannot be ids with 400', async () => {
      for (const id of ['wh_\u0000', 'wh_a/b', 'wh a', '../x']) {
        await expect(manager.get(alice, id)).rejects.toMatchObject({ status: 400, message: 'id is invalid' });
      }
    });

    it("answers 404 for another tenant's webhook, exactly as for a missing one", async () => {
      const { webhook } = await manager.create(alice, valid);
      const missing = await rejection(manager.get(mallory, 'wh_doesnotexist'));
      for (const call of [
        manager.get(mallory, webhook.id),
        manager.delete(mallory, webhook.id),
        manager.update(mallory, webhook.id, { active: false }),
        manager.rotateSecret(mallory, webhook.id),
      ]) {
        const error = await rejection(call);
        expect({ status: error.status, code: error.code, message: error.message }).toEqual({
          status: missing.status,
          code: missing.code,
          message: missing.message,
        });
      }
      expect(missing).toMatchObject({ status: 404, code: 'webhook_not_found', message: 'Webhook not found' });
      expect((await manager.get(alice, webhook.id)).webhook.active).toBe(true);
    });

    it('updates url, events, description and active', async () => {
      const { webhook } = await manager.create(alice, valid);
      const { webhook: updated } = await manager.update(alice, webhook.id, {
        url: 'https://other.example/hook',
        events: ['alert'],
        description: null,
      });
      expect(updated).toMatchObject({
        url: 'https://other.example/hook',
        events: ['alert'],
        description: null,
      });
      const disabled = await manager.update(alice, webhook.id, { active: false });
      expect(disabled.webhook).toMatchObject({ active: false, disabledReason: 'Disabled by user' });
      const enabled = await manager.update(alice, webhook.id, { active: true });
      expect(enabled.webhook).toMatchObject({ active: true, disabledReason: null });
      await expect(manager.update(alice, webhook.id, { events: ['nope'] })).rejects.toMatchObject({
        message: 'Invalid event type: nope',
      });
      await expect(manager.update(alice, webhook.id, { active: 'yes' as never })).rejects.toMatchObject({
        message: 'active must be a boolean',
      });
      // A misspelt field is refused, not ignored with a 200 that leaves the webhook as it was.
      await expect(manager.update(alice, webhook.id, { actve: false } as never)).rejects.toMatchObject({
        status: 400,
        message: 'Unknown field: actve (expected url, events, description, active, signatureSchemes)',
      });
      await expect(
        manager.update(alice, webhook.id, { siteId: 'site_other' } as never),
      ).rejects.toMatchObject({
        status: 400,
        message: 'Unknown field: siteId (expected url, events, description, active, signatureSchemes)',
      });
      expect((await manager.get(alice, webhook.id)).webhook).toMatchObject({
        active: true,
        siteId: valid.siteId,
      });
      await expect(manager.update(alice, webhook.id, { description: '\ud83d' })).rejects.toMatchObject({
        status: 400,
        message: 'description must be valid Unicode text',
      });
      const emoji = await manager.update(alice, webhook.id, { description: 'rocket \ud83d\ude80' });
      expect(emoji.webhook.description).toBe('rocket 🚀');
    });

    it('two rotations at once both count: the first one’s secret is the previous of the second', async () => {
      const store = memoryStore();
      // Both rotations read the webhook before either writes (a double click on "rotate").
      let reads = 0;
      let bothRead: () => void = () => {};
      const barrier = new Promise<void>((resolve) => {
        bothRead = resolve;
      });
      const getWebhook = store.getWebhook.bind(store);
      store.getWebhook = async (id) => {
        const record = await getWebhook(id);
        if (++reads === 2) bothRead();
        if (reads <= 2) await barrier;
        return record;
      };
      const racing = new WebhookManager<User>({ store, authorize });
      const { webhook } = await racing.create(alice, valid);
      reads = 0;
      const [first, second] = await Promise.all([
        racing.rotateSecret(alice, webhook.id, { overlapSeconds: 3600 }),
        racing.rotateSecret(alice, webhook.id, { overlapSeconds: 3600 }),
      ]);
      const stored = (await getWebhook(webhook.id))!;
      // Neither caller holds a secret that never signs, and the original no longer signs.
      expect([stored.secret, stored.previousSecret].sort()).toEqual(
        [first.webhook.secret, second.webhook.secret].sort(),
      );
      expect([stored.secret, stored.previousSecret]).not.toContain(webhook.secret);
    });

    /**
     * `redeliver` of a failed delivery, with `meanwhile` run by the store just before its requeue: what lands
     * between the manager's check and the store's write.
     */
    async function redeliverRacing(
      meanwhile: (store: ReturnType<typeof memoryStore>, webhookId: string, now: Date) => Promise<unknown>,
    ): Promise<WebhookError> {
      const store = memoryStore();
      const racing = new WebhookManager<User>({ store, authorize });
      const { webhook } = await racing.create(alice, valid);
      const failed = delivery((await store.getWebhook(webhook.id))!, {
        status: 'failed',
        nextAttemptAt: null,
      });
      await store.insertDeliveries([failed]);
      const requeue = store.requeueDelivery.bind(store);
      store.requeueDelivery = async (id, now) => {
        await meanwhile(store, webhook.id, now);
        return requeue(id, now);
      };
      return rejection(racing.redeliver(alice, failed.id));
    }

    it('redeliver says the webhook is disabled when the disable lands between its check and its write', async () => {
      const error = await redeliverRacing((store, webhookId, now) =>
        store.updateWebhook(webhookId, { active: false, disabledReason: 'Disabled by user', updatedAt: now }),
      );
      expect(error).toMatchObject({
        status: 409,
        message: 'Webhook is disabled; re-enable it before redelivering',
      });
    });

    it('redeliver answers 404 when retention prunes the delivery between its check and its write', async () => {
      const error = await redeliverRacing((store, _webhookId, now) =>
        store.pruneDeliveries!({ olderThan: new Date(now.getTime() + 60_000) }),
      );
      expect(error).toMatchObject({ status: 404, message: 'Delivery not found' });
    });

    it('rotateSecret gives up with 409 rotation_conflict after losing to other rotations five times', async () => {
      const store = memoryStore();
      const racing = new WebhookManager<User>({ store, authorize });
      const { webhook } = await racing.create(alice, valid);
      let writes = 0;
      const update = store.updateWebhook.bind(store);
      // Every write finds the secret changed by someone else since it was read.
      store.updateWebhook = async (id, patch) => {
        writes++;
        return update(id, { ...patch, ifSecret: 'whsec_changed_meanwhile' });
      };
      const error = await rejection(racing.rotateSecret(alice, webhook.id));
      expect(error).toMatchObject({ status: 409, code: 'rotation_conflict' });
      expect(writes).toBe(5);
      expect((await store.getWebhook(webhook.id))!.secret).toBe(webhook.secret);
    });

    it('rotates the secret and shows the new one once', async () => {
      const { webhook } = await manager.create(alice, valid);
      const rotated = await manager.rotateSecret(alice, webhook.id);
      expect(rotated.webhook.secret).toMatch(/^whsec_/);
      expect(rotated.webhook.secret).not.toBe(webhook.secret);
      expect(rotated.webhook.id).toBe(webhook.id);
      expect(JSON.stringify(await manager.get(alice, webhook.id))).not.toContain(rotated.webhook.secret);
    });
  });

  describe('WebhookError', () => {
    it('is recognised by shape and code, and serialises to the spec body', async () => {
      const error = await rejection(manager.create(alice, { ...valid, url: 'http://x.example' }));
      expect(WebhookError.is(error)).toBe(true);
      expect(WebhookError.is(error, 'url_not_https')).toBe(true);
      expect(WebhookError.is(error, 'invalid_url')).toBe(false);
      expect(WebhookError.is(new Error('URL must use HTTPS'))).toBe(false);
      expect(WebhookError.is({ name: 'WebhookError', code: 'url_not_https', status: 400 })).toBe(true);
      expect(JSON.parse(JSON.stringify(error))).toEqual({ error: 'URL must use HTTPS' });
    });
  });
});
