import { describe, expect, it } from 'vitest';
import { MAX_PAYLOAD_BYTES, USER_AGENT, WebhookError } from '../../src/index.js';
import { undiciTransport } from '../../src/transport/undici-transport.js';
import { verifyWebhook } from '../../src/verify.js';
import { createStore, describeEachStore } from '../postgres/stores.js';
import { delay, endlessBody, hang, redirect, reset, sequence, status } from '../support/hostile.js';
import { latestDelivery, owner, pageview, receiver, SITE, setup, until } from './harness.js';

describeEachStore('dispatcher: delivery', () => {
  describe('delivery', () => {
    it('webhooks of several sites on one origin: waiting for a connection is not counted against the receiver', async () => {
      // Two connections to an origin answering in 300 ms, sixteen deliveries to it at once: the last ones
      // wait over 2 s for a connection, longer than the 1 s timeout. They must neither be cut off after
      // the receiver got them (and be sent again) nor be recorded as the receiver's timeouts.
      const target = await receiver(delay(300, status(200)));
      const transport = undiciTransport({
        tls: { ca: target.caCert },
        allowPrivateNetworks: true,
        connectionsPerOrigin: 2,
      });
      const { dispatcher, manager, logs } = await setup({
        transport,
        timeoutMs: 1000,
        concurrency: 16,
        perSiteConcurrency: 16,
        perOriginConcurrency: 16,
        retry: { delaysMs: [] },
      });
      try {
        for (const siteId of owner.sites) {
          for (let i = 0; i < 4; i++) {
            await manager.create(owner, { siteId, url: target.url(`/${siteId}/${i}`), events: ['pageview'] });
          }
        }
        for (const siteId of owner.sites) {
          await dispatcher.emitMany([pageview('/a'), pageview('/b')].map((input) => ({ ...input, siteId })));
        }
        // The ones that find no connection in time go back, due a second later: runDue again until done.
        await until(async () => {
          await dispatcher.runDue();
          return target.requests.length === 16;
        }, 15_000);
        expect(target.requests).toHaveLength(16);
        const deliveries = (
          await Promise.all(owner.sites.map((siteId) => manager.deliveries(owner, { siteId, limit: 100 })))
        ).flatMap((page) => page.deliveries);
        expect(deliveries).toHaveLength(16);
        for (const delivery of deliveries) {
          expect(delivery.status).toBe('succeeded');
          expect(delivery.attempts.map((attempt) => attempt.statusCode)).toEqual([200]);
          // The receiver's 300 ms and the round trip, without the wait for a connection.
          expect(delivery.attempts[0]!.durationMs).toBeLessThan(1000);
        }
        expect(new Set(target.requests.map((request) => request.headers['x-zta-delivery-id'])).size).toBe(16);
        // The ones that waited too long went back to the queue unsent, and were sent later.
        expect(logs.some((line) => line.message.startsWith('delivery not sent'))).toBe(true);
      } finally {
        await dispatcher.stop();
        await transport.close();
      }
    });

    it('POSTs the exact body with the spec headers, signed with the secret', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, manager } = await setup();
      const webhook = await subscribe(target.url());
      await dispatcher.start();
      const timestamp = '2024-12-12T16:30:00.000Z';
      const [deliveryId] = await dispatcher.emit({ ...pageview(), timestamp });
      const [request] = await target.waitFor(1);

      expect(request!.method).toBe('POST');
      expect(request!.url).toBe('/webhook');
      expect(request!.body).toBe(
        JSON.stringify({
          event: 'pageview',
          timestamp,
          data: {
            siteId: SITE,
            path: '/blog/my-article',
            referrer: 'https://google.com',
            country: 'US',
            device: 'desktop',
            browser: 'Chrome',
          },
        }),
      );
      const headers = request!.headers;
      expect(headers['content-type']).toBe('application/json');
      expect(headers['x-zta-event']).toBe('pageview');
      expect(headers['x-zta-webhook-id']).toBe(webhook.id);
      expect(headers['x-zta-delivery-id']).toBe(deliveryId);
      expect(headers['user-agent']).toBe(USER_AGENT);
      expect(Number(headers['x-zta-timestamp'])).toBeCloseTo(Date.now() / 1000, -1);
      expect(headers['x-zta-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
      expect(verifyWebhook(request!.body, headers['x-zta-signature'], webhook.secret)).toBe(true);
      expect(verifyWebhook(request!.body, headers['x-zta-signature'], `${webhook.secret}x`)).toBe(false);

      await until(async () => (await manager.get(owner, webhook.id)).webhook.lastTriggered !== null);
      const { deliveries } = await manager.deliveries(owner, { webhookId: webhook.id });
      expect(deliveries).toHaveLength(1);
      expect(deliveries[0]).toMatchObject({ id: deliveryId, status: 'succeeded', lastStatusCode: 200 });
      expect(deliveries[0]!.attempts).toEqual([
        expect.objectContaining({
          attempt: 1,
          ok: true,
          statusCode: 200,
          errorCode: null,
          responseSnippet: 'OK',
        }),
      ]);
    });

    it('fans out to active subscribers of the event only', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, manager } = await setup();
      const a = await subscribe(target.url('/a'), ['pageview']);
      const b = await subscribe(target.url('/b'), ['pageview', 'goal']);
      await subscribe(target.url('/goals-only'), ['goal']);
      const off = await subscribe(target.url('/off'), ['pageview']);
      await manager.update(owner, off.id, { active: false });
      await manager.create(
        { sites: ['site_two'] },
        { siteId: 'site_two', url: target.url('/two'), events: ['pageview'] },
      );

      const ids = await dispatcher.emit(pageview());
      expect(ids).toHaveLength(2);
      await dispatcher.start();
      await target.waitFor(2);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(target.requests.map((r) => r.url).sort()).toEqual(['/a', '/b']);
      expect(new Set(target.requests.map((r) => r.headers['x-zta-webhook-id']))).toEqual(
        new Set([a.id, b.id]),
      );
    });

    it('returns only the ids it recorded when a webhook is deleted between lookup and insert', async () => {
      const target = await receiver();
      const base = await createStore();
      const { dispatcher, subscribe, store } = await setup({
        store: {
          ...base,
          // The moment an emit has looked its subscribers up, one of them is deleted.
          findSubscribers: async (siteId, event, options) => {
            const found = await base.findSubscribers(siteId, event, options);
            await base.deleteWebhook(doomed.id);
            return found;
          },
        },
      });
      const kept = await subscribe(target.url('/kept'), ['pageview']);
      const doomed = await subscribe(target.url('/doomed'), ['pageview']);

      const ids = await dispatcher.emit(pageview());
      expect(ids).toHaveLength(1);
      expect((await store.getDelivery(ids[0]!))?.webhookId).toBe(kept.id);
      expect(await dispatcher.emit(pageview())).toHaveLength(1);
    });

    it('takes a store whose insertDeliveries resolves to nothing (the contract before ids) as recording all', async () => {
      const target = await receiver();
      const base = await createStore();
      const legacy = {
        ...base,
        insertDeliveries: async (...args: Parameters<typeof base.insertDeliveries>) => {
          await base.insertDeliveries(...args);
        },
      } as unknown as typeof base;
      const { dispatcher, subscribe, store } = await setup({ store: legacy });
      await subscribe(target.url());
      const ids = await dispatcher.emitMany([pageview('/1'), pageview('/2')]);
      expect(ids).toHaveLength(2);
      for (const id of ids) expect(await store.getDelivery(id)).not.toBeNull();
    });

    it('batches with emitMany, validating every event before recording any', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, store } = await setup();
      await subscribe(target.url());
      await expect(
        dispatcher.emitMany([pageview('/1'), { ...pageview(), event: 'nope' as never }]),
      ).rejects.toMatchObject({
        code: 'invalid_event_type',
        message: 'Invalid event type: nope',
      });
      expect(await store.listDeliveries({ siteId: SITE, limit: 10 })).toEqual([]);
      const ids = await dispatcher.emitMany([pageview('/1'), pageview('/2'), pageview('/3')]);
      expect(new Set(ids).size).toBe(3);
      await dispatcher.start();
      await target.waitFor(3);
    });

    it('refuses a body over 1 MB at emit and records nothing', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, store } = await setup();
      await subscribe(target.url());
      const big = { ...pageview(), data: { path: 'x'.repeat(MAX_PAYLOAD_BYTES) } };
      const error = await dispatcher.emit(big).catch((e: unknown) => e);
      expect(WebhookError.is(error, 'payload_too_large')).toBe(true);
      expect(error).toMatchObject({ status: 413, message: 'Payload exceeds the 1MB limit' });
      expect(await store.listDeliveries({ siteId: SITE, limit: 10 })).toEqual([]);
      // multi-byte characters count as bytes, not as string length
      const wide = { ...pageview(), data: { path: 'é'.repeat(MAX_PAYLOAD_BYTES / 2) } };
      await expect(dispatcher.emit(wide)).rejects.toMatchObject({ code: 'payload_too_large' });
    });

    it.each([
      [{ ...pageview(), siteId: '' }, 'siteId is required'],
      [{ ...pageview(), data: null }, 'data must be an object'],
      [{ ...pageview(), data: { siteId: 'site_other', path: '/' } }, 'data.siteId must match siteId'],
      [{ ...pageview(), timestamp: 'not a date' }, 'timestamp must be a valid date'],
      [{ ...pageview(), data: { n: 10n } }, 'data must be JSON-serialisable'],
      // Its own toJSON would replace the fields in the body, siteId included.
      [
        { ...pageview(), data: { path: '/', toJSON: () => ({ siteId: 'site_other' }) } },
        'data must not have a toJSON method',
      ],
      [
        {
          ...pageview(),
          data: {
            get path() {
              throw new Error('getter bug');
            },
          },
        },
        'data must be JSON-serialisable',
      ],
    ])('refuses a malformed event %#', async (input, message) => {
      const { dispatcher } = await setup();
      await expect(dispatcher.emit(input as never)).rejects.toMatchObject({ status: 400, message });
    });

    it('reads data once: a getter cannot show one siteId to the check and send another', async () => {
      const target = await receiver();
      const { dispatcher, subscribe } = await setup();
      await subscribe(target.url());
      let reads = 0;
      const data = {
        get siteId() {
          reads++;
          return reads === 1 ? SITE : 'site_other';
        },
      };
      await dispatcher.start();
      await dispatcher.emit({ ...pageview(), data });
      const [request] = await target.waitFor(1);
      expect(JSON.parse(request!.body).data.siteId).toBe(SITE);
      expect(reads).toBe(1);
    });

    it('retries a 500 and succeeds on the next attempt, with the same delivery id', async () => {
      const target = await receiver(sequence([status(500, {}, 'boom'), status(200)]));
      const { dispatcher, subscribe, manager } = await setup();
      const webhook = await subscribe(target.url());
      await dispatcher.start();
      const [id] = await dispatcher.emit(pageview());
      const requests = await target.waitFor(2);
      expect(requests.map((r) => r.headers['x-zta-delivery-id'])).toEqual([id, id]);
      expect(requests[0]!.body).toBe(requests[1]!.body);
      const delivery = await latestDelivery(manager, webhook.id, 'succeeded');
      expect(delivery.attempts.map((a) => [a.attempt, a.statusCode, a.ok, a.responseSnippet])).toEqual([
        [1, 500, false, 'boom'],
        [2, 200, true, ''],
      ]);
    });

    it('gives up after the last attempt and marks the delivery failed', async () => {
      const target = await receiver(status(503));
      const { dispatcher, subscribe, manager } = await setup();
      const webhook = await subscribe(target.url());
      const failed: string[] = [];
      dispatcher.on('delivery:failed', (info) => failed.push(info.deliveryId));
      await dispatcher.start();
      const [id] = await dispatcher.emit(pageview());
      await until(() => failed.length === 1);
      expect(failed).toEqual([id]);
      expect(target.requests).toHaveLength(3);
      const delivery = await latestDelivery(manager, webhook.id, 'failed');
      expect(delivery).toMatchObject({ lastStatusCode: 503, lastError: 'HTTP 503' });
      expect(delivery.attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    });

    it.each([400, 401, 404, 422])('does not retry a %i', async (code) => {
      const target = await receiver(status(code));
      const { dispatcher, subscribe, manager } = await setup();
      const webhook = await subscribe(target.url());
      await dispatcher.start();
      await dispatcher.emit(pageview());
      await latestDelivery(manager, webhook.id, 'failed');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(target.requests).toHaveLength(1);
    });

    it('retries a 429 no sooner than its Retry-After', async () => {
      const target = await receiver(sequence([status(429, { 'retry-after': '1' }), status(200)]));
      const { dispatcher, subscribe } = await setup();
      await subscribe(target.url());
      await dispatcher.start();
      await dispatcher.emit(pageview());
      const [first, second] = await target.waitFor(2, 5000);
      expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(950);
    });

    it('caps a long Retry-After at retryAfterCapMs', async () => {
      const target = await receiver(sequence([status(408, { 'retry-after': '3600' }), status(200)]));
      const { dispatcher, subscribe } = await setup({ retry: { delaysMs: [50], retryAfterCapMs: 300 } });
      await subscribe(target.url());
      await dispatcher.start();
      await dispatcher.emit(pageview());
      const [first, second] = await target.waitFor(2, 3000);
      expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(250);
    });

    it('times out a receiver that never answers, then retries', async () => {
      const target = await receiver(sequence([hang(), status(200)]));
      const { dispatcher, subscribe, manager } = await setup({ timeoutMs: 300 });
      const webhook = await subscribe(target.url());
      await dispatcher.start();
      await dispatcher.emit(pageview());
      const delivery = await latestDelivery(manager, webhook.id, 'succeeded');
      const [timedOut] = delivery.attempts;
      expect(timedOut).toMatchObject({ ok: false, errorCode: 'timeout', statusCode: null });
      expect(timedOut!.durationMs).toBeGreaterThanOrEqual(290);
    });

    it('records a connection reset and retries it', async () => {
      const target = await receiver(sequence([reset(), status(200)]));
      const { dispatcher, subscribe, manager } = await setup();
      const webhook = await subscribe(target.url());
      await dispatcher.start();
      await dispatcher.emit(pageview());
      const delivery = await latestDelivery(manager, webhook.id, 'succeeded');
      expect(delivery.attempts[0]).toMatchObject({ ok: false, errorCode: 'connection_reset' });
    });

    it('records a refused connection', async () => {
      const target = await receiver();
      const url = target.url();
      await target.close();
      const { dispatcher, subscribe, manager } = await setup({ retry: { delaysMs: [] } });
      const webhook = await subscribe(url);
      await dispatcher.start();
      await dispatcher.emit(pageview());
      const delivery = await latestDelivery(manager, webhook.id, 'failed');
      expect(delivery.attempts[0]).toMatchObject({ errorCode: 'connection_refused' });
    });

    it('fails on a certificate it cannot verify', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, manager } = await setup({ tls: {}, retry: { delaysMs: [] } });
      const webhook = await subscribe(target.url());
      await dispatcher.start();
      await dispatcher.emit(pageview());
      const delivery = await latestDelivery(manager, webhook.id, 'failed');
      expect(delivery.attempts[0]).toMatchObject({ errorCode: 'tls', statusCode: null });
      expect(target.requests).toHaveLength(0);
    });

    it('never follows a redirect: a 3xx is a failed attempt', async () => {
      const target = await receiver();
      target.setHandler((request, response) =>
        request.url === '/webhook'
          ? redirect(target.url('/elsewhere'))(request, response)
          : status(200)(request, response),
      );
      const { dispatcher, subscribe, manager } = await setup();
      const webhook = await subscribe(target.url());
      await dispatcher.start();
      await dispatcher.emit(pageview());
      const delivery = await latestDelivery(manager, webhook.id, 'failed');
      expect(target.requests.map((r) => r.url)).toEqual(['/webhook']);
      expect(delivery.attempts[0]).toMatchObject({ statusCode: 302, errorCode: 'redirect', ok: false });
    });

    it('keeps at most 4 KiB of an endless response body and stops reading it', async () => {
      let written = 0;
      const target = await receiver(endlessBody({ onStop: (bytes) => (written = bytes) }));
      const { dispatcher, subscribe, manager } = await setup({ timeoutMs: 2000 });
      const webhook = await subscribe(target.url());
      await dispatcher.start();
      const heapBefore = process.memoryUsage().heapUsed;
      await dispatcher.emitMany(Array.from({ length: 5 }, () => pageview()));
      await until(async () => {
        const { deliveries } = await manager.deliveries(owner, { webhookId: webhook.id });
        return deliveries.every((d) => d.status === 'succeeded');
      });
      const { deliveries } = await manager.deliveries(owner, { webhookId: webhook.id });
      for (const delivery of deliveries) {
        expect(delivery.attempts[0]!.responseSnippet!.length).toBe(4096);
        expect(delivery.attempts[0]!.durationMs).toBeLessThan(2000);
      }
      await until(() => written > 0);
      expect(written).toBeLessThan(16 * 1024 * 1024);
      expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    });
  });
});
