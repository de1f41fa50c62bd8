// One tenant cannot see or touch another's webhooks through the API: site-level requests for a site the
// caller does not own are 403 `Access denied`; requests naming another tenant's webhook or delivery by id
// are 404, exactly as for an id that does not exist, so ids do not leak.
import { describe, expect, it } from 'vitest';
import { pageview, receiver, setup } from '../dispatcher/harness.js';
import { describeEachStore } from '../postgres/stores.js';
import { status } from '../support/hostile.js';
import { SITE, SPEC_CREATE_BODY, startApi } from './support.js';

async function aliceWithADelivery() {
  const { manager, store, dispatcher } = await setup();
  const target = await receiver(status(400));
  const server = await startApi({ manager, store });
  const created = await server.call('POST', '/api/webhooks', {
    json: { ...SPEC_CREATE_BODY, url: target.url() },
  });
  const webhook = (created.body as { webhook: { id: string; url: string } }).webhook;
  const [deliveryId] = await dispatcher.emit(pageview());
  await dispatcher.runDue();
  return { ...server, webhook, deliveryId: deliveryId! };
}

const asBob = { token: 'bob-token' } as const;

describeEachStore('http: tenancy', () => {
  describe("bob and alice's site", () => {
    it('cannot list, create on, or read the activity log of a site he does not own: 403', async () => {
      const { call } = await aliceWithADelivery();
      for (const [method, path, json] of [
        ['GET', `/api/webhooks?siteId=${SITE}`, undefined],
        ['POST', '/api/webhooks', SPEC_CREATE_BODY],
        ['GET', `/api/webhooks/deliveries?siteId=${SITE}`, undefined],
      ] as const) {
        const answer = await call(method, path, { ...asBob, ...(json && { json }) });
        expect(answer.status, `${method} ${path}`).toBe(403);
        expect(answer.body).toStrictEqual({ error: 'Access denied' });
      }
    });

    it('cannot get, patch, delete, rotate or see deliveries of her webhook: 404 as if it did not exist', async () => {
      const { call, webhook } = await aliceWithADelivery();
      const id = webhook.id;
      for (const [method, path, json] of [
        ['GET', `/api/webhooks/${id}`, undefined],
        ['PATCH', `/api/webhooks?id=${id}`, { url: 'https://evil.example/steal', active: true }],
        ['DELETE', `/api/webhooks?id=${id}`, undefined],
        ['POST', `/api/webhooks/rotate-secret?id=${id}`, undefined],
        ['GET', `/api/webhooks/deliveries?webhookId=${id}`, undefined],
      ] as const) {
        const mine = await call(method, path, { ...asBob, ...(json && { json }) });
        const unknown = await call(method, path.replace(id, 'wh_doesnotexist'), {
          ...asBob,
          ...(json && { json }),
        });
        expect(mine.status, `${method} ${path}`).toBe(404);
        expect(mine.body).toStrictEqual({ error: 'Webhook not found' });
        expect(unknown).toEqual({ ...mine, headers: unknown.headers });
      }
    });

    it('cannot redeliver her deliveries: 404', async () => {
      const { call, deliveryId } = await aliceWithADelivery();
      const answer = await call('POST', `/api/webhooks/redeliver?id=${deliveryId}`, asBob);
      expect(answer.status).toBe(404);
      expect(answer.body).toStrictEqual({ error: 'Delivery not found' });
    });

    it("leaves alice's webhook, secret and deliveries as they were", async () => {
      const { call, webhook, deliveryId, manager } = await aliceWithADelivery();
      const before = await call('GET', `/api/webhooks/${webhook.id}`);
      await call('PATCH', `/api/webhooks?id=${webhook.id}`, { ...asBob, json: { active: false } });
      await call('DELETE', `/api/webhooks?id=${webhook.id}`, asBob);
      await call('POST', `/api/webhooks/rotate-secret?id=${webhook.id}`, asBob);
      await call('POST', `/api/webhooks/redeliver?id=${deliveryId}`, asBob);

      expect((await call('GET', `/api/webhooks/${webhook.id}`)).body).toEqual(before.body);
      const { deliveries } = await manager.deliveries(
        { name: 'alice', sites: [SITE] },
        { webhookId: webhook.id },
      );
      expect(deliveries).toMatchObject([{ id: deliveryId, status: 'failed' }]);
    });

    it('sees only his own site', async () => {
      const { call } = await aliceWithADelivery();
      const own = await call('POST', '/api/webhooks', {
        ...asBob,
        json: { ...SPEC_CREATE_BODY, siteId: 'site_bob' },
      });
      expect(own.status).toBe(201);
      const listed = await call('GET', '/api/webhooks?siteId=site_bob', asBob);
      expect((listed.body as { webhooks: unknown[] }).webhooks).toHaveLength(1);
      const alices = await call('GET', `/api/webhooks?siteId=${SITE}`);
      expect((alices.body as { webhooks: { url: string }[] }).webhooks).toHaveLength(1);
    });
  });
});
