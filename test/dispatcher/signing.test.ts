// Signature schemes and secret rotation on real HTTPS deliveries: the Standard Webhooks headers checked by
// the real `standardwebhooks` and `svix` packages and by our verifyStandardWebhook; the dispatcher default
// and the per-webhook override; during a rotation overlap the spec's snippet keeps working with the OLD
// secret on X-ZTA-Signature, X-ZTA-Signature-Next carries the new one, and the standard scheme has a `v1,`
// entry for each; after revoke or expiry only the new secret signs.

import type { IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:https';
import { createRequire } from 'node:module';
import express from 'express';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { describe, expect, it } from 'vitest';
import { verifyWebhookMiddleware } from '../../src/express.js';
import { Dispatcher, type SignatureScheme, WebhookManager } from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';
import { verifyStandardWebhook, verifyWebhook } from '../../src/verify.js';
import { listen } from '../http/support.js';
import { createStore, describeEachStore } from '../postgres/stores.js';
import type { RecordedRequest } from '../support/receiver.js';
import { createTestCA } from '../support/tls.js';
import { latestDelivery, owner, pageview, receiver, SITE, setup } from './harness.js';

const require = createRequire(import.meta.url);
const specNodeVerify = require('../fixtures/spec-node-verify.cjs') as (
  payload: unknown,
  signature: unknown,
  secret: string,
) => boolean;

/** The spec snippet throws on a signature of another length (timingSafeEqual); a receiver sees a 500. */
const spec = (request: RecordedRequest, secret: string): boolean => {
  try {
    return specNodeVerify(JSON.parse(request.body), request.headers['x-zta-signature'], secret);
  } catch {
    return false;
  }
};

const standardOk = (request: RecordedRequest, secret: string): boolean => {
  try {
    new StandardWebhook(secret).verify(request.body, request.headers as Record<string, string>);
    return true;
  } catch {
    return false;
  }
};

const svixOk = (request: RecordedRequest, secret: string): boolean => {
  try {
    new SvixWebhook(secret).verify(request.body, request.headers as Record<string, string>);
    return true;
  } catch {
    return false;
  }
};

const STANDARD_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature'];
const headerNames = (headers: IncomingHttpHeaders) => Object.keys(headers);

/** The 3-line migration helper for receivers that copied the spec's snippet (docs: signing.md). */
function specHelper(request: RecordedRequest, newSecret: string): boolean {
  const signature = request.headers['x-zta-signature-next'] ?? request.headers['x-zta-signature'];
  try {
    return specNodeVerify(JSON.parse(request.body), signature, newSecret);
  } catch {
    return false;
  }
}

describeEachStore('dispatcher: signing', () => {
  describe('the standard scheme', () => {
    it('is verified by standardwebhooks, svix and verifyStandardWebhook in the receiver; webhook-id is stable across retries', async () => {
      const secret: { value: string } = { value: '' };
      const verdicts: { standard: boolean; svix: boolean; ours: boolean; spec: boolean }[] = [];
      const target = await receiver((request, res) => {
        const ours = verifyStandardWebhook(request.body, request.headers, secret.value);
        verdicts.push({
          standard: standardOk(request, secret.value),
          svix: svixOk(request, secret.value),
          ours: ours.ok,
          spec: spec(request, secret.value),
        });
        // The first attempt fails so that the retry shows webhook-id staying the same.
        res.writeHead(verdicts.length === 1 ? 500 : ours.ok ? 204 : 401).end();
      });
      const { dispatcher, subscribe, manager } = await setup({ signatureSchemes: ['zta', 'standard'] });
      const webhook = await subscribe(target.url());
      secret.value = webhook.secret;
      await dispatcher.start();
      const [deliveryId] = await dispatcher.emit(pageview());
      const delivery = await latestDelivery(manager, webhook.id, 'succeeded');
      expect(delivery.attempts.map((a) => a.statusCode)).toEqual([500, 204]);
      const [first, second] = await target.waitFor(2);
      expect(verdicts).toEqual([
        { standard: true, svix: true, ours: true, spec: true },
        { standard: true, svix: true, ours: true, spec: true },
      ]);
      for (const request of [first!, second!]) {
        expect(request.headers['webhook-id']).toBe(deliveryId);
        expect(request.headers['x-zta-delivery-id']).toBe(deliveryId);
        expect(request.headers['webhook-timestamp']).toBe(request.headers['x-zta-timestamp']);
        expect(request.headers['webhook-timestamp']).toMatch(/^\d{10}$/);
        expect(
          Math.abs(Number(request.headers['webhook-timestamp']) - request.receivedDate.getTime() / 1000),
        ).toBeLessThan(5);
        expect(request.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
        expect(verifyWebhook(request.body, request.headers['x-zta-signature'], webhook.secret)).toBe(true);
      }
    });

    it("standard alone: no X-ZTA-Signature, but the spec's other X-ZTA headers stay", async () => {
      const target = await receiver();
      const { dispatcher, subscribe } = await setup({ signatureSchemes: ['standard'] });
      const webhook = await subscribe(target.url());
      await dispatcher.emit(pageview());
      await dispatcher.runDue();
      const [request] = await target.waitFor(1);
      const names = headerNames(request!.headers);
      expect(names).not.toContain('x-zta-signature');
      expect(names).not.toContain('x-zta-signature-next');
      expect(names).toEqual(
        expect.arrayContaining([
          'x-zta-event',
          'x-zta-webhook-id',
          'x-zta-delivery-id',
          'x-zta-timestamp',
          ...STANDARD_HEADERS,
        ]),
      );
      expect(request!.headers['x-zta-webhook-id']).toBe(webhook.id);
      expect(standardOk(request!, webhook.secret)).toBe(true);
    });

    it('is off by default: only the spec headers', async () => {
      const target = await receiver();
      const { dispatcher, subscribe } = await setup();
      const webhook = await subscribe(target.url());
      await dispatcher.emit(pageview());
      await dispatcher.runDue();
      const [request] = await target.waitFor(1);
      for (const name of [...STANDARD_HEADERS, 'x-zta-signature-next']) {
        expect(headerNames(request!.headers)).not.toContain(name);
      }
      expect(spec(request!, webhook.secret)).toBe(true);
      expect(webhook.signatureSchemes).toBeNull();
    });

    it("a webhook's own schemes beat the dispatcher default; null goes back to it", async () => {
      const target = await receiver();
      const { dispatcher, manager } = await setup({ signatureSchemes: ['standard'] });
      const { webhook } = await manager.create(owner, {
        siteId: SITE,
        url: target.url(),
        events: ['pageview'],
        signatureSchemes: ['zta'],
      });
      expect(webhook.signatureSchemes).toEqual(['zta']);
      expect((await manager.get(owner, webhook.id)).webhook.signatureSchemes).toEqual(['zta']);

      await dispatcher.emit(pageview('/own'));
      await dispatcher.runDue();
      const [own] = await target.waitFor(1);
      expect(spec(own!, webhook.secret)).toBe(true);
      expect(headerNames(own!.headers)).not.toContain('webhook-signature');

      const updated = await manager.update(owner, webhook.id, { signatureSchemes: null });
      expect(updated.webhook.signatureSchemes).toBeNull();
      await dispatcher.emit(pageview('/default'));
      await dispatcher.runDue();
      const [, fallback] = await target.waitFor(2);
      expect(headerNames(fallback!.headers)).not.toContain('x-zta-signature');
      expect(standardOk(fallback!, webhook.secret)).toBe(true);

      await manager.update(owner, webhook.id, { signatureSchemes: ['standard', 'zta'] });
      await dispatcher.emit(pageview('/both'));
      await dispatcher.runDue();
      const [, , both] = await target.waitFor(3);
      expect(spec(both!, webhook.secret)).toBe(true);
      expect(standardOk(both!, webhook.secret)).toBe(true);
    });

    it('refuses a bad signatureSchemes option', () => {
      const store = memoryStore();
      for (const bad of [[], ['zta', 'zta'], ['hmac'], 'zta', [null]]) {
        expect(
          () => new Dispatcher({ store, signatureSchemes: bad as unknown as SignatureScheme[] }),
        ).toThrow(/signatureSchemes must be a non-empty list of distinct schemes among: zta, standard/);
      }
    });
  });

  describe('secret rotation', () => {
    /** One delivery of a fresh event, as the receiver got it. */
    async function deliverOne(
      dispatcher: Dispatcher,
      target: Awaited<ReturnType<typeof receiver>>,
    ): Promise<RecordedRequest> {
      const before = target.requests.length;
      await dispatcher.emit(pageview());
      await dispatcher.runDue();
      return (await target.waitFor(before + 1))[before]!;
    }

    it('signs with both secrets during the overlap, and with the new one only after revoke', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, manager } = await setup({ signatureSchemes: ['zta', 'standard'] });
      const webhook = await subscribe(target.url());
      const old = webhook.secret;
      const started = Date.now();
      const { webhook: rotated } = await manager.rotateSecret(owner, webhook.id);
      const fresh = rotated.secret;
      expect(fresh).not.toBe(old);
      const expiresAt = Date.parse(rotated.secretRotation!.previousSecretExpiresAt);
      expect(expiresAt - started).toBeGreaterThanOrEqual(86_400_000 - 1000);
      expect(expiresAt - started).toBeLessThanOrEqual(86_400_000 + 5000);

      // Neither secret is ever shown again; the rotation is, without secret material.
      const shown = JSON.stringify([await manager.get(owner, webhook.id), await manager.list(owner, SITE)]);
      expect(shown).not.toContain(old);
      expect(shown).not.toContain(fresh);
      expect((await manager.get(owner, webhook.id)).webhook.secretRotation).toEqual(rotated.secretRotation);

      const during = await deliverOne(dispatcher, target);
      // Receivers that copied the spec's snippet keep working with the old secret, unchanged.
      expect(spec(during, old)).toBe(true);
      expect(spec(during, fresh)).toBe(false);
      const next = during.headers['x-zta-signature-next'];
      expect(next).toMatch(/^sha256=[0-9a-f]{64}$/);
      expect(verifyWebhook(during.body, next, fresh)).toBe(true);
      expect(verifyWebhook(during.body, next, old)).toBe(false);
      expect(specHelper(during, fresh)).toBe(true);
      // Standard Webhooks: one v1 entry per secret, the new one first; either secret verifies.
      const entries = String(during.headers['webhook-signature']).split(' ');
      expect(entries).toHaveLength(2);
      for (const secret of [old, fresh]) {
        expect(standardOk(during, secret)).toBe(true);
        expect(svixOk(during, secret)).toBe(true);
        expect(verifyStandardWebhook(during.body, during.headers, secret).ok).toBe(true);
      }
      expect(
        standardOk({ ...during, headers: { ...during.headers, 'webhook-signature': entries[0] } }, fresh),
      ).toBe(true);

      const revoked = await manager.revokePreviousSecret(owner, webhook.id);
      expect(revoked.webhook.secretRotation).toBeNull();
      expect(JSON.stringify(revoked)).not.toContain(old);
      // Revoking again is a no-op.
      expect((await manager.revokePreviousSecret(owner, webhook.id)).webhook.secretRotation).toBeNull();

      const after = await deliverOne(dispatcher, target);
      expect(headerNames(after.headers)).not.toContain('x-zta-signature-next');
      expect(spec(after, fresh)).toBe(true);
      expect(spec(after, old)).toBe(false);
      expect(specHelper(after, fresh)).toBe(true);
      expect(String(after.headers['webhook-signature']).split(' ')).toHaveLength(1);
      expect(standardOk(after, fresh)).toBe(true);
      expect(standardOk(after, old)).toBe(false);
      expect(svixOk(after, old)).toBe(false);
      expect(verifyStandardWebhook(after.body, after.headers, old)).toEqual({
        ok: false,
        reason: 'bad_signature',
      });
    });

    it('stops signing with the previous secret when the overlap expires (injected clock)', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, store } = await setup({ signatureSchemes: ['zta', 'standard'] });
      const webhook = await subscribe(target.url());
      // A manager whose clock is an hour behind: a 60 s overlap it grants has already ended for the dispatcher.
      const hourAgo = new WebhookManager<typeof owner>({
        store,
        authorize: (principal, siteId) => principal.sites.includes(siteId),
        allowPrivateNetworks: true,
        now: () => new Date(Date.now() - 3_600_000),
      });
      const { webhook: rotated } = await hourAgo.rotateSecret(owner, webhook.id, { overlapSeconds: 60 });
      expect(rotated.secretRotation).not.toBeNull();
      const request = await deliverOne(dispatcher, target);
      expect(headerNames(request.headers)).not.toContain('x-zta-signature-next');
      expect(spec(request, rotated.secret)).toBe(true);
      expect(spec(request, webhook.secret)).toBe(false);
      expect(standardOk(request, webhook.secret)).toBe(false);
      expect(standardOk(request, rotated.secret)).toBe(true);
      // With the real clock the rotation is over, and the view says so.
      const current = new WebhookManager<typeof owner>({
        store,
        authorize: (principal, siteId) => principal.sites.includes(siteId),
      });
      expect((await current.get(owner, webhook.id)).webhook.secretRotation).toBeNull();
    });

    it('a 1 s overlap ends on its own', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, manager } = await setup();
      const webhook = await subscribe(target.url());
      const { webhook: rotated } = await manager.rotateSecret(owner, webhook.id, { overlapSeconds: 1 });
      const during = await deliverOne(dispatcher, target);
      expect(spec(during, webhook.secret)).toBe(true);
      expect(verifyWebhook(during.body, during.headers['x-zta-signature-next'], rotated.secret)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const after = await deliverOne(dispatcher, target);
      expect(headerNames(after.headers)).not.toContain('x-zta-signature-next');
      expect(spec(after, rotated.secret)).toBe(true);
    });

    it('overlapSeconds 0 replaces the secret at once and keeps no previous secret', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, manager, store } = await setup();
      const webhook = await subscribe(target.url());
      const { webhook: rotated } = await manager.rotateSecret(owner, webhook.id, { overlapSeconds: 0 });
      expect(rotated.secretRotation).toBeNull();
      expect(await store.getWebhook(webhook.id)).toMatchObject({
        previousSecret: null,
        previousSecretExpiresAt: null,
      });
      const request = await deliverOne(dispatcher, target);
      expect(headerNames(request.headers)).not.toContain('x-zta-signature-next');
      expect(spec(request, rotated.secret)).toBe(true);
    });

    it('rotating during an overlap drops the oldest secret', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, manager } = await setup({ signatureSchemes: ['standard'] });
      const first = await subscribe(target.url());
      const { webhook: second } = await manager.rotateSecret(owner, first.id);
      const { webhook: third } = await manager.rotateSecret(owner, first.id);
      const request = await deliverOne(dispatcher, target);
      expect(standardOk(request, third.secret)).toBe(true);
      expect(standardOk(request, second.secret)).toBe(true);
      expect(standardOk(request, first.secret)).toBe(false);
    });

    it('verifyWebhookMiddleware with [new, old] accepts deliveries before, during and after the overlap', async () => {
      const ca = await createTestCA();
      const { cert, key } = await ca.issue();
      const secrets: string[] = [];
      const paths: string[] = [];
      const app = express();
      app.post('/webhook', verifyWebhookMiddleware({ getSecret: () => secrets }), (req, res) => {
        paths.push((req.body as { data: { path: string } }).data.path);
        res.status(200).send('OK');
      });
      const origin = await listen(createServer({ cert, key }, app));
      const { dispatcher, subscribe, manager } = await setup({ tls: { ca: ca.caCert } });
      const webhook = await subscribe(`${origin}/webhook`);

      const send = async (path: string) => {
        await dispatcher.emit(pageview(path));
        await dispatcher.runDue();
      };
      secrets.push(webhook.secret);
      await send('/before');
      const { webhook: rotated } = await manager.rotateSecret(owner, webhook.id);
      await send('/during-old-only');
      secrets.unshift(rotated.secret); // [new, old]
      await send('/during-both');
      secrets.pop(); // [new]: X-ZTA-Signature-Next carries it
      await send('/during-new-only');
      secrets.push(webhook.secret);
      await manager.revokePreviousSecret(owner, webhook.id);
      await send('/after');
      secrets.pop();
      await send('/after-new-only');
      expect(paths).toEqual([
        '/before',
        '/during-old-only',
        '/during-both',
        '/during-new-only',
        '/after',
        '/after-new-only',
      ]);
      // And a wrong secret alone still fails, during an overlap too.
      await manager.rotateSecret(owner, webhook.id);
      secrets.splice(0, secrets.length, webhook.secret);
      await send('/refused');
      expect(paths).not.toContain('/refused');
    });
  });
});

describe('dispatcher: signing (store-independent)', () => {
  it('never shows either secret in list/get, even mid-rotation', async () => {
    const store = await createStore();
    const manager = new WebhookManager<typeof owner>({
      store,
      authorize: (principal, siteId) => principal.sites.includes(siteId),
    });
    const { webhook } = await manager.create(owner, {
      siteId: SITE,
      url: 'https://receiver.example/hook',
      events: ['pageview'],
    });
    const { webhook: rotated } = await manager.rotateSecret(owner, webhook.id, { overlapSeconds: 600 });
    const text = JSON.stringify([await manager.list(owner, SITE), await manager.get(owner, webhook.id)]);
    expect(text).not.toContain(webhook.secret);
    expect(text).not.toContain(rotated.secret);
    expect(text).not.toContain('whsec_');
  });
});
