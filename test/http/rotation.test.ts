// POST {base}/rotate-secret?id= with an optional { overlapSeconds } body, POST
// {base}/revoke-previous-secret?id=, and signatureSchemes through create/update/get.
import { describe, expect, it } from 'vitest';
import { describeEachStore } from '../postgres/stores.js';
import { ISO_DATE, SPEC_CREATE_BODY, startApi } from './support.js';

interface WebhookBody {
  id: string;
  secret?: string;
  signatureSchemes: string[] | null;
  secretRotation: { previousSecretExpiresAt: string } | null;
}

describeEachStore('http: secret rotation and signature schemes', () => {
  async function created() {
    const server = await startApi();
    const answer = await server.call('POST', '/api/webhooks', { json: SPEC_CREATE_BODY });
    expect(answer.status).toBe(201);
    return { ...server, webhook: (answer.body as { webhook: WebhookBody }).webhook };
  }

  describe('POST {base}/rotate-secret?id=', () => {
    it('without a body rotates with the default overlap of a day', async () => {
      const { call, webhook } = await created();
      expect(webhook.secretRotation).toBeNull();
      const started = Date.now();
      const answer = await call('POST', `/api/webhooks/rotate-secret?id=${webhook.id}`);
      expect(answer.status).toBe(200);
      const rotated = (answer.body as { webhook: WebhookBody }).webhook;
      expect(rotated.secret).toMatch(/^whsec_/);
      expect(rotated.secretRotation!.previousSecretExpiresAt).toMatch(ISO_DATE);
      const overlap = Date.parse(rotated.secretRotation!.previousSecretExpiresAt) - started;
      expect(overlap).toBeGreaterThan(86_400_000 - 5000);
      expect(overlap).toBeLessThan(86_400_000 + 5000);
      const got = await call('GET', `/api/webhooks/${webhook.id}`);
      expect((got.body as { webhook: WebhookBody }).webhook.secretRotation).toEqual(rotated.secretRotation);
      expect(JSON.stringify(got.body)).not.toContain('whsec_');
    });

    it('takes { overlapSeconds }; 0 means no overlap', async () => {
      const { call, webhook } = await created();
      const started = Date.now();
      const hour = await call('POST', `/api/webhooks/rotate-secret?id=${webhook.id}`, {
        json: { overlapSeconds: 3600 },
      });
      expect(hour.status).toBe(200);
      const expires = (hour.body as { webhook: WebhookBody }).webhook.secretRotation!.previousSecretExpiresAt;
      expect(Math.abs(Date.parse(expires) - started - 3_600_000)).toBeLessThan(5000);

      const none = await call('POST', `/api/webhooks/rotate-secret?id=${webhook.id}`, {
        json: { overlapSeconds: 0 },
      });
      expect(none.status).toBe(200);
      expect((none.body as { webhook: WebhookBody }).webhook.secretRotation).toBeNull();
    });

    it.each([
      [{ overlapSeconds: -1 }, 'overlapSeconds must be between 0 and 2592000'],
      [{ overlapSeconds: 2_592_001 }, 'overlapSeconds must be between 0 and 2592000'],
      [{ overlapSeconds: 1.5 }, 'overlapSeconds must be an integer'],
      [{ overlapSeconds: '60' }, 'overlapSeconds must be a number'],
      [{ overlapSeconds: null }, 'overlapSeconds must be a number'],
      [{ overlap: 60 }, 'Unknown field: overlap (expected overlapSeconds)'],
      [[], 'Request body must be a JSON object'],
      [null, 'Request body must be a JSON object'],
    ])('answers 400 for %j', async (json, error) => {
      const { call, webhook } = await created();
      const answer = await call('POST', `/api/webhooks/rotate-secret?id=${webhook.id}`, {
        body: JSON.stringify(json),
        headers: { 'content-type': 'application/json' },
      });
      expect(answer.status).toBe(400);
      expect(answer.body).toEqual({ error: error });
    });

    it('answers 415 for a non-empty body that is not JSON, 404 for an unknown id', async () => {
      const { call, webhook } = await created();
      const form = await call('POST', `/api/webhooks/rotate-secret?id=${webhook.id}`, {
        body: 'overlapSeconds=0',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(form.status).toBe(415);
      const unknown = await call('POST', '/api/webhooks/rotate-secret?id=wh_unknown', {
        json: { overlapSeconds: 0 },
      });
      expect(unknown.status).toBe(404);
    });
  });

  describe('POST {base}/revoke-previous-secret?id=', () => {
    it('ends the overlap at once; repeating it is harmless', async () => {
      const { call, webhook } = await created();
      await call('POST', `/api/webhooks/rotate-secret?id=${webhook.id}`);
      for (let i = 0; i < 2; i++) {
        const answer = await call('POST', `/api/webhooks/revoke-previous-secret?id=${webhook.id}`);
        expect(answer.status).toBe(200);
        const body = answer.body as { webhook: WebhookBody };
        expect(body.webhook.id).toBe(webhook.id);
        expect(body.webhook.secretRotation).toBeNull();
        expect(JSON.stringify(body)).not.toContain('whsec_');
      }
    });

    it('answers 404, 405 and 400 like the other extensions', async () => {
      const { call } = await created();
      expect((await call('POST', '/api/webhooks/revoke-previous-secret?id=wh_unknown')).status).toBe(404);
      const get = await call('GET', '/api/webhooks/revoke-previous-secret?id=wh_unknown');
      expect(get.status).toBe(405);
      expect(get.headers.get('allow')).toBe('POST');
      const missing = await call('POST', '/api/webhooks/revoke-previous-secret');
      expect(missing.status).toBe(400);
      expect(missing.body).toEqual({ error: 'id is required' });
      expect((await call('POST', '/api/webhooks/revoke-previous-secret?id=x', { token: null })).status).toBe(
        401,
      );
    });

    it("refuses another tenant's webhook as not found", async () => {
      const { call, webhook } = await created();
      const answer = await call('POST', `/api/webhooks/revoke-previous-secret?id=${webhook.id}`, {
        token: 'bob-token',
      });
      expect(answer.status).toBe(404);
    });
  });

  describe('signatureSchemes', () => {
    it('is null by default, set on create, changed and reset by PATCH, shown by GET', async () => {
      const { call, webhook } = await created();
      expect(webhook.signatureSchemes).toBeNull();
      const withSchemes = await call('POST', '/api/webhooks', {
        json: { ...SPEC_CREATE_BODY, signatureSchemes: ['standard', 'zta'] },
      });
      expect(withSchemes.status).toBe(201);
      const id = (withSchemes.body as { webhook: WebhookBody }).webhook.id;
      expect((withSchemes.body as { webhook: WebhookBody }).webhook.signatureSchemes).toEqual([
        'standard',
        'zta',
      ]);
      const patched = await call('PATCH', `/api/webhooks?id=${id}`, {
        json: { signatureSchemes: ['standard'] },
      });
      expect((patched.body as { webhook: WebhookBody }).webhook.signatureSchemes).toEqual(['standard']);
      const reset = await call('PATCH', `/api/webhooks?id=${id}`, { json: { signatureSchemes: null } });
      expect((reset.body as { webhook: WebhookBody }).webhook.signatureSchemes).toBeNull();
      const got = await call('GET', `/api/webhooks/${id}`);
      expect((got.body as { webhook: WebhookBody }).webhook.signatureSchemes).toBeNull();
    });

    it.each([
      [[], 'signatureSchemes must contain at least one scheme'],
      [['zta', 'zta'], 'Duplicate signature scheme: zta'],
      [['svix'], 'Invalid signature scheme: svix (expected one of: zta, standard)'],
      [[1], 'Invalid signature scheme: 1 (expected one of: zta, standard)'],
      ['zta', 'signatureSchemes must be an array of signature schemes or null'],
    ])('answers 400 for %j on create and on update', async (signatureSchemes, error) => {
      const { call, webhook } = await created();
      const create = await call('POST', '/api/webhooks', { json: { ...SPEC_CREATE_BODY, signatureSchemes } });
      expect(create.status).toBe(400);
      expect(create.body).toEqual({ error });
      const update = await call('PATCH', `/api/webhooks?id=${webhook.id}`, { json: { signatureSchemes } });
      expect(update.status).toBe(400);
      expect(update.body).toEqual({ error });
    });
  });
});

describe('http: rotation routes', () => {
  it('are listed among the extensions', async () => {
    const { ALLOWED_METHODS } = await import('../../src/http/routes.js');
    expect(ALLOWED_METHODS['revoke-previous-secret']).toEqual(['POST']);
    expect(ALLOWED_METHODS['rotate-secret']).toEqual(['POST']);
  });
});
