// The express-backend example over real HTTPS: the spec's API calls with bearer tokens, POST /collect
// turned into signed deliveries to a real receiver, input validation, the alert rule, the Postgres store,
// and main.ts itself (env, HTTPS, shutdown on SIGTERM).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type Backend,
  type BackendOptions,
  createBackend,
  DEV_TOKENS,
} from '../../examples/express-backend/app.js';
import { openStore } from '../../examples/express-backend/store.js';
import type { Delivery, Webhook, WebhookWithSecret } from '../../src/index.js';
import { verifyWebhook } from '../../src/verify.js';
import { DATABASE_URL, describePostgres } from '../postgres/db.js';
import {
  certFiles,
  eventually,
  httpsClient,
  onCleanup,
  recorder,
  runMain,
  serverCert,
  testCA,
} from './support.js';

const SITE = 'site_abc123';
const alice = { Authorization: `Bearer ${DEV_TOKENS.alice}` };
const bob = { Authorization: `Bearer ${DEV_TOKENS.bob}` };

/** The backend on HTTPS, trusting the test CA for deliveries; closed after the test. */
async function startBackend(options: BackendOptions = {}) {
  const backend = createBackend({
    tls: { ca: (await testCA()).caCert },
    allowPrivateNetworks: true,
    retry: { delaysMs: [50, 100] },
    ...options,
  });
  onCleanup(() => backend.close());
  const server = await backend.listen({ tls: await serverCert() });
  const http = await httpsClient(server.origin);
  return { backend, origin: server.origin, http };
}

async function register(http: Awaited<ReturnType<typeof httpsClient>>, url: string, events: string[]) {
  const created = await http.raw<{ webhook: WebhookWithSecret }>('/api/webhooks', {
    method: 'POST',
    headers: alice,
    body: { siteId: SITE, url, events },
  });
  expect(created.status).toBe(201);
  return created._data!.webhook;
}

const pageview = {
  type: 'pageview',
  siteId: SITE,
  path: '/blog/my-article',
  referrer: 'https://google.com',
  country: 'US',
  device: 'desktop',
  browser: 'Chrome',
};
const customEvent = {
  type: 'event',
  siteId: SITE,
  action: 'signup_click',
  category: 'conversion',
  label: 'hero_button',
  value: 1,
  path: '/pricing',
};
const goal = {
  type: 'goal',
  siteId: SITE,
  goalId: 'goal_abc123',
  goalName: 'Newsletter Signup',
  path: '/thank-you',
  value: 1,
};

async function deliveries(backend: Backend): Promise<unknown[]> {
  return backend.store.listDeliveries({ siteId: SITE, limit: 100 });
}

describe('express-backend example', () => {
  it("serves the spec's create, list and delete calls over HTTPS, per bearer token", async () => {
    const { http } = await startBackend({ allowPrivateNetworks: false });
    const spec = {
      siteId: 'site_abc123',
      url: 'https://your-server.com/webhook',
      events: ['pageview', 'event', 'goal'],
      description: 'Production webhook for analytics events',
    };
    const created = await http.raw<{ webhook: WebhookWithSecret }>('/api/webhooks', {
      method: 'POST',
      headers: alice,
      body: spec,
    });
    expect(created.status).toBe(201);
    const { webhook } = created._data!;
    expect(webhook).toMatchObject({ url: spec.url, events: spec.events, active: true });
    expect(webhook.secret).toMatch(/^whsec_/);

    const listed = await http.raw<{ webhooks: Webhook[] }>('/api/webhooks', {
      query: { siteId: SITE },
      headers: alice,
    });
    expect(listed.status).toBe(200);
    expect(listed._data!.webhooks.map((w) => w.id)).toEqual([webhook.id]);
    expect(listed._data!.webhooks[0]).not.toHaveProperty('secret');

    const refused = await Promise.all([
      http.raw('/api/webhooks', { query: { siteId: SITE } }),
      http.raw('/api/webhooks', { query: { siteId: SITE }, headers: { Authorization: 'Bearer nope' } }),
      http.raw('/api/webhooks', { query: { siteId: SITE }, headers: bob }),
      http.raw('/api/webhooks', { method: 'DELETE', query: { id: webhook.id }, headers: bob }),
      http.raw('/api/webhooks', {
        method: 'POST',
        headers: alice,
        body: { ...spec, url: 'http://your-server.com/webhook' },
      }),
    ]);
    expect(refused.map((r) => [r.status, r._data])).toEqual([
      [401, { error: 'Unauthorized' }],
      [401, { error: 'Unauthorized' }],
      [403, { error: 'Access denied' }],
      [404, { error: 'Webhook not found' }],
      [400, { error: 'URL must use HTTPS' }],
    ]);

    const deleted = await http.raw('/api/webhooks', {
      method: 'DELETE',
      query: { id: webhook.id },
      headers: alice,
    });
    expect([deleted.status, deleted._data]).toEqual([
      200,
      { success: true, message: 'Webhook deleted successfully' },
    ]);
  });

  it('turns POST /collect into signed deliveries to a real HTTPS receiver, answering 202', async () => {
    const { http } = await startBackend();
    const receiver = await recorder();
    const webhook = await register(http, receiver.url(), ['pageview', 'event', 'goal']);

    for (const hit of [pageview, customEvent, goal]) {
      const answer = await http.raw('/collect', { method: 'POST', body: hit });
      expect([answer.status, answer._data]).toEqual([202, { accepted: true }]);
    }
    const received = await receiver.waitFor(3);
    const bodies = received.map((request) => {
      expect(verifyWebhook(request.body, request.headers['x-zta-signature'], webhook.secret)).toBe(true);
      expect(request.headers['x-zta-webhook-id']).toBe(webhook.id);
      expect(request.headers['x-zta-delivery-id']).toMatch(/^dlv_/);
      const body = JSON.parse(request.body) as { event: string; timestamp: string; data: unknown };
      expect(request.headers['x-zta-event']).toBe(body.event);
      return body;
    });
    // The data of each event is as in the spec's payload examples.
    const { type: _p, ...pageviewData } = pageview;
    const { type: _e, ...eventData } = customEvent;
    const { type: _g, ...goalData } = goal;
    expect(bodies.map((b) => [b.event, b.data]).sort()).toEqual(
      [
        ['event', eventData],
        ['goal', goalData],
        ['pageview', pageviewData],
      ].sort(),
    );
  });

  it('leaves out optional fields the tracker did not send', async () => {
    const { http } = await startBackend();
    const receiver = await recorder();
    await register(http, receiver.url(), ['pageview']);
    await http('/collect', {
      method: 'POST',
      body: { type: 'pageview', siteId: SITE, path: '/', country: null },
    });
    const [request] = await receiver.waitFor(1);
    expect(JSON.parse(request!.body).data).toStrictEqual({ siteId: SITE, path: '/' });
  });

  it('validates /collect input and records nothing for a bad request', async () => {
    const { backend, http } = await startBackend();
    const receiver = await recorder();
    await register(http, receiver.url(), ['pageview', 'event', 'goal']);
    const post = async (body: unknown, headers: Record<string, string> = {}) => {
      const answer = await http.raw<{ error: string }>('/collect', {
        method: 'POST',
        body: body as Record<string, unknown>,
        headers,
      });
      return [answer.status, answer._data?.error];
    };
    expect(await post({})).toEqual([400, 'type is required']);
    expect(await post([pageview])).toEqual([400, 'Request body must be a JSON object']);
    expect(await post({ ...pageview, type: 'alert' })).toEqual([400, 'Invalid event type: alert']);
    expect(await post({ ...pageview, type: 'invalid_event' })).toEqual([
      400,
      'Invalid event type: invalid_event',
    ]);
    expect(await post({ ...pageview, path: 'blog' })).toEqual([400, 'path: must be a path starting with /']);
    expect(await post({ ...pageview, siteId: undefined })).toEqual([400, expect.stringMatching(/^siteId: /)]);
    expect(await post({ ...pageview, country: 'usa' })).toEqual([400, expect.stringMatching(/^country: /)]);
    expect(await post({ ...pageview, referrer: 'javascript:alert(1)' })).toEqual([
      400,
      expect.stringMatching(/^referrer: /),
    ]);
    expect(await post({ ...customEvent, value: '1' })).toEqual([400, expect.stringMatching(/^value: /)]);
    expect(await post({ ...goal, goalName: '' })).toEqual([400, expect.stringMatching(/^goalName: /)]);
    expect(await post({ ...pageview, admin: true })).toEqual([400, expect.stringContaining('admin')]);
    expect(await post({ ...pageview, siteId: 'site_unknown' })).toEqual([404, 'Unknown site']);
    expect(await post('x', { 'content-type': 'text/plain' })).toEqual([
      415,
      'Content-Type must be application/json',
    ]);
    expect(await post('{"type":', { 'content-type': 'application/json' })).toEqual([
      400,
      'Malformed JSON body',
    ]);
    expect(await post({ ...pageview, browser: 'x'.repeat(20_000) })).toEqual([
      413,
      'Request body is too large',
    ]);

    expect(await deliveries(backend)).toEqual([]);
    expect(receiver.requests).toEqual([]);
  });

  it('emits the Traffic Spike alert once when pageviews pass the threshold', async () => {
    const alerts: unknown[] = [];
    const { http } = await startBackend({ trafficSpike: { threshold: 3 }, onAlert: (a) => alerts.push(a) });
    const receiver = await recorder();
    await register(http, receiver.url(), ['alert']);
    for (let i = 0; i < 6; i++) await http('/collect', { method: 'POST', body: pageview });

    const [request] = await receiver.waitFor(1);
    const body = JSON.parse(request!.body);
    expect(body.event).toBe('alert');
    expect(body.data).toStrictEqual({
      siteId: SITE,
      alertId: 'alert_traffic_spike',
      alertName: 'Traffic Spike',
      condition: 'pageviews > 3',
      currentValue: 4,
      threshold: 3,
    });
    expect(alerts).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.requests).toHaveLength(1);
  });

  it('serves health checks and answers unknown paths with JSON 404', async () => {
    const { http } = await startBackend();
    expect((await http.raw('/healthz'))._data).toEqual({ ok: true });
    const missing = await http.raw('/nope');
    expect([missing.status, missing._data]).toEqual([404, { error: 'Not found' }]);
  });

  it('main.ts serves HTTPS from TLS_CERT_FILE / TLS_KEY_FILE, takes tokens from env, stops on SIGTERM', async () => {
    const main = await runMain(
      'examples/express-backend/main.ts',
      {
        ...(await certFiles()),
        PORT: '0',
        ALICE_TOKEN: 'alice-from-env',
        BOB_TOKEN: 'bob-from-env',
        DATABASE_URL: '',
      },
      'analytics backend on',
    );
    expect(main.origin).toMatch(/^https:/);
    expect(main.output()).toContain('(memory store)');
    expect(main.output()).not.toContain(DEV_TOKENS.alice);

    const http = await httpsClient(main.origin);
    expect((await http.raw('/healthz')).status).toBe(200);
    const devToken = await http.raw('/api/webhooks', { query: { siteId: SITE }, headers: alice });
    expect(devToken.status).toBe(401);
    const envToken = await http.raw('/api/webhooks', {
      query: { siteId: SITE },
      headers: { Authorization: 'Bearer alice-from-env' },
    });
    expect([envToken.status, envToken._data]).toEqual([200, { webhooks: [] }]);

    expect(await main.stop()).toBe(0);
    expect(main.output()).toContain('SIGTERM: shutting down');
  });

  it('main.ts serves plain HTTP without a certificate, with the dev tokens', async () => {
    const main = await runMain(
      'examples/express-backend/main.ts',
      { PORT: '0', DATABASE_URL: '' },
      'analytics backend on',
    );
    expect(main.origin).toMatch(/^http:/);
    expect(main.output()).toContain(`dev tokens: ${DEV_TOKENS.alice}`);
    const answer = await fetch(`${main.origin}/api/webhooks?siteId=${SITE}`, { headers: alice });
    expect(answer.status).toBe(200);
    expect(await main.stop()).toBe(0);
  });
});

describePostgres('express-backend example on Postgres', () => {
  it('migrates, stores webhooks and deliveries in Postgres, and delivers', async () => {
    const schema = `zta_example_${randomBytes(6).toString('hex')}`;
    const opened = await openStore({ databaseUrl: DATABASE_URL, schema });
    onCleanup(async () => {
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    });
    onCleanup(() => opened.close());
    expect(opened.kind).toBe('postgres');

    const { http } = await startBackend({ store: opened.store });
    const receiver = await recorder();
    const webhook = await register(http, receiver.url(), ['goal']);
    expect((await http.raw('/collect', { method: 'POST', body: goal })).status).toBe(202);
    const [request] = await receiver.waitFor(1);
    expect(verifyWebhook(request!.body, request!.headers['x-zta-signature'], webhook.secret)).toBe(true);

    // The activity log, read back from Postgres through the API.
    await eventually(async () => {
      const { deliveries } = await http<{ deliveries: Delivery[] }>('/api/webhooks/deliveries', {
        query: { webhookId: webhook.id },
        headers: alice,
      });
      return deliveries.length === 1 && deliveries[0]!.status === 'succeeded';
    }, 'the delivery to be recorded as succeeded');
    const rows = await opened.store.listDeliveries({ webhookId: webhook.id, limit: 10 });
    expect(rows.map((row) => row.status)).toEqual(['succeeded']);
  });
});
