// The endpoints this library adds to the spec's three: GET {base}/{id}, PATCH {base}?id=,
// POST {base}/rotate-secret?id=, GET {base}/deliveries and POST {base}/redeliver?id=.
import { describe, expect, it } from 'vitest';
import { verifyWebhook } from '../../src/verify.js';
import { pageview, receiver, setup } from '../dispatcher/harness.js';
import { describeEachStore } from '../postgres/stores.js';
import { status } from '../support/hostile.js';
import { type ApiServer, ISO_DATE, SITE, SPEC_CREATE_BODY, startApi } from './support.js';

interface WebhookBody {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  active: boolean;
  disabledReason: string | null;
  secret?: string;
}

async function created(call: ApiServer['call'], body: object = SPEC_CREATE_BODY): Promise<WebhookBody> {
  const answer = await call('POST', '/api/webhooks', { json: body });
  expect(answer.status).toBe(201);
  return (answer.body as { webhook: WebhookBody }).webhook;
}

/** The API over the dispatcher harness's store and manager, with a receiver answering `code`. */
async function withDeliveries(code = 200) {
  const { manager, store, dispatcher } = await setup();
  const target = await receiver(status(code, { 'content-type': 'text/plain' }, 'nope'));
  const server = await startApi({ manager, store });
  const webhook = await created(server.call, { ...SPEC_CREATE_BODY, url: target.url() });
  return { ...server, dispatcher, target, webhook };
}

describeEachStore('http: extensions', () => {
  describe('GET {base}/{id}', () => {
    it('answers { webhook } without the secret', async () => {
      const { call } = await startApi();
      const webhook = await created(call);
      const answer = await call('GET', `/api/webhooks/${webhook.id}`);
      expect(answer.status).toBe(200);
      const { secret: _, ...withoutSecret } = webhook;
      expect(answer.body).toStrictEqual({ webhook: withoutSecret });
    });

    it('answers 404 for an unknown id', async () => {
      const { call } = await startApi();
      const answer = await call('GET', '/api/webhooks/wh_unknown');
      expect(answer.status).toBe(404);
      expect(answer.body).toStrictEqual({ error: 'Webhook not found' });
    });
  });

  describe('PATCH {base}?id=', () => {
    it('changes url, events and description', async () => {
      const { call } = await startApi();
      const webhook = await created(call);
      const answer = await call('PATCH', `/api/webhooks?id=${webhook.id}`, {
        json: { url: 'https://other.example/hook', events: ['alert'], description: null },
      });
      expect(answer.status).toBe(200);
      expect((answer.body as { webhook: WebhookBody }).webhook).toMatchObject({
        id: webhook.id,
        url: 'https://other.example/hook',
        events: ['alert'],
        description: null,
      });
      expect(answer.body).not.toHaveProperty('webhook.secret');
      expect((await call('GET', `/api/webhooks/${webhook.id}`)).body).toEqual(answer.body);
    });

    it('disables and re-enables a webhook', async () => {
      const { call } = await startApi();
      const webhook = await created(call);
      const off = await call('PATCH', `/api/webhooks?id=${webhook.id}`, { json: { active: false } });
      expect(off.body).toMatchObject({ webhook: { active: false, disabledReason: 'Disabled by user' } });
      const on = await call('PATCH', `/api/webhooks?id=${webhook.id}`, { json: { active: true } });
      expect(on.body).toMatchObject({ webhook: { active: true, disabledReason: null } });
    });

    it('validates like create', async () => {
      const { call } = await startApi();
      const webhook = await created(call);
      for (const [json, error] of [
        [{ url: 'http://x.example' }, 'URL must use HTTPS'],
        [{ events: ['nope'] }, 'Invalid event type: nope'],
        [{ active: 'yes' }, 'active must be a boolean'],
        [[], 'Request body must be a JSON object'],
      ] as const) {
        const answer = await call('PATCH', `/api/webhooks?id=${webhook.id}`, { json });
        expect(answer.status).toBe(400);
        expect(answer.body).toStrictEqual({ error });
      }
    });

    it('answers 404 for an unknown id', async () => {
      const { call } = await startApi();
      const answer = await call('PATCH', '/api/webhooks?id=wh_unknown', { json: { active: true } });
      expect(answer.status).toBe(404);
      expect(answer.body).toStrictEqual({ error: 'Webhook not found' });
    });
  });

  describe('POST {base}/rotate-secret?id=', () => {
    it('answers the new secret once, and deliveries are signed with it from then on', async () => {
      const { call, dispatcher, target, webhook } = await withDeliveries(200);
      // No overlap: the old secret stops at once (the default overlap is covered in test/dispatcher/signing).
      const answer = await call('POST', `/api/webhooks/rotate-secret?id=${webhook.id}`, {
        json: { overlapSeconds: 0 },
      });
      expect(answer.status).toBe(200);
      const rotated = (answer.body as { webhook: WebhookBody }).webhook;
      expect(rotated.id).toBe(webhook.id);
      expect(rotated.secret).toMatch(/^whsec_/);
      expect(rotated.secret).not.toBe(webhook.secret);

      await dispatcher.emit(pageview());
      await dispatcher.runDue();
      const [request] = await target.waitFor(1);
      const signature = request!.headers['x-zta-signature'];
      expect(verifyWebhook(request!.body, signature, rotated.secret!)).toBe(true);
      expect(verifyWebhook(request!.body, signature, webhook.secret!)).toBe(false);
    });

    it('answers 404 for an unknown id', async () => {
      const { call } = await startApi();
      const answer = await call('POST', '/api/webhooks/rotate-secret?id=wh_unknown');
      expect(answer.status).toBe(404);
      expect(answer.body).toStrictEqual({ error: 'Webhook not found' });
    });
  });

  describe('GET {base}/deliveries and POST {base}/redeliver?id=', () => {
    it('lists deliveries with their attempts, by webhook or by site, filtered and paged', async () => {
      const { call, dispatcher, webhook } = await withDeliveries(400);
      for (const path of ['/a', '/b', '/c']) await dispatcher.emit(pageview(path));
      await dispatcher.runDue();

      const byWebhook = await call('GET', `/api/webhooks/deliveries?webhookId=${webhook.id}`);
      expect(byWebhook.status).toBe(200);
      const { deliveries, nextCursor } = byWebhook.body as {
        deliveries: Record<string, unknown>[];
        nextCursor: string | null;
      };
      expect(nextCursor).toBeNull();
      expect(deliveries).toHaveLength(3);
      expect(deliveries[0]).toMatchObject({
        webhookId: webhook.id,
        siteId: SITE,
        event: 'pageview',
        status: 'failed',
        lastStatusCode: 400,
        nextAttemptAt: null,
        attempts: [{ attempt: 1, ok: false, statusCode: 400, errorCode: null, responseSnippet: 'nope' }],
      });
      expect(deliveries[0]!.createdAt).toMatch(ISO_DATE);

      const bySite = await call('GET', `/api/webhooks/deliveries?siteId=${SITE}&status=failed`);
      expect((bySite.body as { deliveries: unknown[] }).deliveries).toHaveLength(3);
      const none = await call('GET', `/api/webhooks/deliveries?siteId=${SITE}&status=succeeded`);
      expect(none.body).toStrictEqual({ deliveries: [], nextCursor: null });
      const future = new Date(Date.now() + 60_000).toISOString();
      const later = await call('GET', `/api/webhooks/deliveries?siteId=${SITE}&since=${future}`);
      expect((later.body as { deliveries: unknown[] }).deliveries).toHaveLength(0);

      const first = await call('GET', `/api/webhooks/deliveries?webhookId=${webhook.id}&limit=2`);
      const page1 = first.body as { deliveries: { id: string }[]; nextCursor: string };
      expect(page1.deliveries).toHaveLength(2);
      expect(page1.nextCursor).toEqual(expect.any(String));
      const second = await call(
        'GET',
        `/api/webhooks/deliveries?webhookId=${webhook.id}&limit=2&cursor=${encodeURIComponent(page1.nextCursor)}`,
      );
      const page2 = second.body as { deliveries: { id: string }[]; nextCursor: string | null };
      expect(page2.deliveries).toHaveLength(1);
      expect(page2.nextCursor).toBeNull();
      expect([...page1.deliveries, ...page2.deliveries].map((d) => d.id)).toEqual(
        deliveries.map((d) => d.id),
      );
      // A page that holds exactly what is left has no next page.
      const whole = await call('GET', `/api/webhooks/deliveries?webhookId=${webhook.id}&limit=3`);
      expect(whole.body).toMatchObject({
        deliveries: deliveries.map((d) => ({ id: d.id })),
        nextCursor: null,
      });
    });

    it('redelivers a failed delivery (202), which then succeeds; a succeeded one again (a resend), not a pending one', async () => {
      const { call, dispatcher, target, webhook } = await withDeliveries(400);
      const [deliveryId] = await dispatcher.emit(pageview());
      await dispatcher.runDue();

      target.setHandler(status(200));
      const answer = await call('POST', `/api/webhooks/redeliver?id=${deliveryId}`);
      expect(answer.status).toBe(202);
      expect(answer.body).toMatchObject({
        delivery: { id: deliveryId, webhookId: webhook.id, status: 'pending' },
      });

      await dispatcher.runDue();
      const log = await call('GET', `/api/webhooks/deliveries?webhookId=${webhook.id}`);
      expect(log.body).toMatchObject({
        deliveries: [{ id: deliveryId, status: 'succeeded', lastStatusCode: 200 }],
      });

      // The receiver answered 200 and then lost the event: send it again, with the same delivery id.
      const resend = await call('POST', `/api/webhooks/redeliver?id=${deliveryId}`);
      expect(resend.status).toBe(202);
      expect(resend.body).toMatchObject({ delivery: { id: deliveryId, status: 'pending' } });
      const pending = await call('POST', `/api/webhooks/redeliver?id=${deliveryId}`);
      expect(pending.status).toBe(409);
      expect(pending.body).toStrictEqual({ error: 'Only finished deliveries can be redelivered' });
      await dispatcher.runDue();
      expect(target.requests.map((r) => r.headers['x-zta-delivery-id'])).toEqual([
        deliveryId,
        deliveryId,
        deliveryId,
      ]);
    });

    it('refuses to redeliver to a disabled webhook (409) and an unknown delivery (404)', async () => {
      const { call, dispatcher, webhook } = await withDeliveries(400);
      const [deliveryId] = await dispatcher.emit(pageview());
      await dispatcher.runDue();
      await call('PATCH', `/api/webhooks?id=${webhook.id}`, { json: { active: false } });

      const disabled = await call('POST', `/api/webhooks/redeliver?id=${deliveryId}`);
      expect(disabled.status).toBe(409);
      expect(disabled.body).toStrictEqual({ error: 'Webhook is disabled; re-enable it before redelivering' });

      const unknown = await call('POST', '/api/webhooks/redeliver?id=dl_unknown');
      expect(unknown.status).toBe(404);
      expect(unknown.body).toStrictEqual({ error: 'Delivery not found' });
    });
  });
});
