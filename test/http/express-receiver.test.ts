// verifyWebhookMiddleware in a real Express receiver on HTTPS (certificate from a test CA), fed real
// deliveries by the Dispatcher: valid ones reach the route with the parsed body and the raw bytes;
// tampered, unsigned or wrongly signed ones get 401 { error: 'Invalid signature' }.
import { createServer } from 'node:https';
import express, { type RequestHandler } from 'express';
import { Agent, fetch as undiciFetch } from 'undici';
import { describe, expect, it } from 'vitest';
import { verifyWebhookMiddleware } from '../../src/express.js';
import { signPayload } from '../../src/verify.js';
import { owner, pageview, SITE, setup } from '../dispatcher/harness.js';
import { describeEachStore } from '../postgres/stores.js';
import { createTestCA } from '../support/tls.js';
import { listen } from './support.js';

interface Received {
  body: unknown;
  rawBody: Buffer | undefined;
  signature: string | undefined;
  webhookId: string | undefined;
}

/** An Express app on HTTPS whose POST /webhook runs `middleware`, then records what it let through. */
async function expressReceiver(middleware: RequestHandler, before?: (app: express.Express) => void) {
  const ca = await createTestCA();
  const { cert, key } = await ca.issue();
  const received: Received[] = [];
  const app = express();
  before?.(app);
  app.post('/webhook', middleware, (req, res) => {
    received.push({
      body: req.body,
      rawBody: req.rawBody,
      signature: req.get('x-zta-signature'),
      webhookId: req.get('x-zta-webhook-id'),
    });
    res.status(200).send('OK');
  });
  app.use(((error, _req, res, _next) => {
    res
      .status(500)
      .type('text/plain')
      .send(`express error handler: ${String(error)}`);
  }) as express.ErrorRequestHandler);
  const origin = await listen(createServer({ cert, key }, app));
  const agent = new Agent({ connect: { ca: ca.caCert } });
  /** POST to the receiver as an attacker would, outside the dispatcher. */
  const post = async (body: string | Buffer, headers: Record<string, string>) => {
    const response = await undiciFetch(`${origin}/webhook`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
      dispatcher: agent,
    });
    return {
      status: response.status,
      text: await response.text(),
      type: response.headers.get('content-type'),
    };
  };
  return { caCert: ca.caCert, url: `${origin}/webhook`, received, post };
}

const timestamp = '2024-12-12T16:30:00.000Z';
const SPEC_EVENTS = [
  pageview(),
  {
    siteId: SITE,
    event: 'event' as const,
    data: {
      action: 'signup_click',
      category: 'conversion',
      label: 'hero_button',
      value: 1,
      path: '/pricing',
    },
  },
  {
    siteId: SITE,
    event: 'goal' as const,
    data: { goalId: 'goal_abc123', goalName: 'Newsletter Signup', path: '/thank-you', value: 1 },
  },
  {
    siteId: SITE,
    event: 'alert' as const,
    data: {
      alertId: 'alert_abc123',
      alertName: 'Traffic Spike',
      condition: 'pageviews > 1000',
      currentValue: 1543,
      threshold: 1000,
    },
  },
];

const INVALID = JSON.stringify({ error: 'Invalid signature' });

describeEachStore('http: express receiver', () => {
  describe('verifyWebhookMiddleware', () => {
    it('lets real deliveries through with req.body parsed and req.rawBody the exact bytes', async () => {
      const secrets = new Map<string, string>();
      const target = await expressReceiver(
        verifyWebhookMiddleware({ getSecret: (req) => secrets.get(req.get('x-zta-webhook-id') ?? '') }),
      );
      const { dispatcher, subscribe, manager } = await setup({ tls: { ca: target.caCert } });
      const webhook = await subscribe(target.url);
      secrets.set(webhook.id, webhook.secret);

      for (const event of SPEC_EVENTS) await dispatcher.emit({ ...event, timestamp });
      await dispatcher.runDue();

      expect(target.received).toHaveLength(4);
      // Deliveries run concurrently: match them up by event type.
      for (const sent of SPEC_EVENTS) {
        const got = target.received.find((r) => (r.body as { event: string }).event === sent.event);
        const expected = { event: sent.event, timestamp, data: { siteId: SITE, ...sent.data } };
        expect(got?.body).toStrictEqual(expected);
        expect(Buffer.isBuffer(got?.rawBody)).toBe(true);
        expect(got!.rawBody!.toString('utf8')).toBe(JSON.stringify(expected));
        expect(got!.webhookId).toBe(webhook.id);
      }
      const { deliveries } = await manager.deliveries(owner, { webhookId: webhook.id });
      expect(deliveries.map((d) => [d.status, d.lastStatusCode])).toEqual(Array(4).fill(['succeeded', 200]));
    });

    it('answers tampered, unsigned and wrongly signed requests with 401 Invalid signature', async () => {
      const secrets = new Map<string, string>();
      const target = await expressReceiver(
        verifyWebhookMiddleware({ getSecret: (req) => secrets.get(req.get('x-zta-webhook-id') ?? '') }),
      );
      const { dispatcher, subscribe } = await setup({ tls: { ca: target.caCert } });
      const webhook = await subscribe(target.url);
      const other = await subscribe(target.url.replace('/webhook', '/other'));
      secrets.set(webhook.id, webhook.secret);
      await dispatcher.emit({ ...pageview(), timestamp });
      await dispatcher.runDue();
      // One genuine delivery (the other webhook's went to a path without a route).
      expect(target.received).toHaveLength(1);
      const [genuine] = target.received as [Received];
      const body = genuine.rawBody!.toString('utf8');
      const signature = genuine.signature!;
      const headers = { 'x-zta-webhook-id': webhook.id };

      // The genuine bytes and signature, sent again, still verify (replay protection is the receiver's).
      const replay = await target.post(body, { ...headers, 'x-zta-signature': signature });
      expect(replay.status).toBe(200);

      const cases: [string, string, Record<string, string>][] = [
        ['tampered path', body.replace('/blog/my-article', '/admin'), { 'x-zta-signature': signature }],
        ['tampered event', body.replace('"pageview"', '"goal"'), { 'x-zta-signature': signature }],
        ['re-encoded JSON', JSON.stringify(JSON.parse(body), null, 2), { 'x-zta-signature': signature }],
        ['trailing newline', `${body}\n`, { 'x-zta-signature': signature }],
        ['no signature', body, {}],
        ['empty signature', body, { 'x-zta-signature': '' }],
        ['signed with another webhook secret', body, { 'x-zta-signature': signPayload(body, other.secret) }],
        ['uppercase hex', body, { 'x-zta-signature': `sha256=${signature.slice(7).toUpperCase()}` }],
        ['sha1 prefix', body, { 'x-zta-signature': `sha1=${signature.slice(7)}` }],
      ];
      for (const [name, sent, extra] of cases) {
        const answer = await target.post(sent, { ...headers, ...extra });
        expect(answer, name).toEqual({ status: 401, text: INVALID, type: 'application/json; charset=utf-8' });
      }
      // A webhook the receiver has no secret for.
      const unknown = await target.post(body, {
        'x-zta-webhook-id': 'wh_unknown',
        'x-zta-signature': signature,
      });
      expect(unknown.status).toBe(401);
      expect(target.received).toHaveLength(2);
    });

    it('makes a delivery signed with another secret fail at the dispatcher with 401, not retried', async () => {
      const target = await expressReceiver(verifyWebhookMiddleware({ secret: 'whsec_not_the_right_one' }));
      const { dispatcher, subscribe, manager } = await setup({ tls: { ca: target.caCert } });
      const webhook = await subscribe(target.url);
      await dispatcher.emit(pageview());
      await dispatcher.runDue();
      const { deliveries } = await manager.deliveries(owner, { webhookId: webhook.id });
      expect(deliveries).toMatchObject([
        { status: 'failed', lastStatusCode: 401, attempts: [{ statusCode: 401, responseSnippet: INVALID }] },
      ]);
      expect(target.received).toHaveLength(0);
    });

    it('accepts old and new secret during a rotation', async () => {
      const secrets: string[] = [];
      const target = await expressReceiver(verifyWebhookMiddleware({ getSecret: () => secrets }));
      const { dispatcher, subscribe, manager } = await setup({ tls: { ca: target.caCert } });
      const webhook = await subscribe(target.url);
      secrets.push(webhook.secret);
      await dispatcher.emit(pageview('/before'));
      await dispatcher.runDue();
      const { webhook: rotated } = await manager.rotateSecret(owner, webhook.id);
      secrets.push(rotated.secret);
      await dispatcher.emit(pageview('/after'));
      await dispatcher.runDue();
      secrets.shift();
      await dispatcher.emit(pageview('/only-new'));
      await dispatcher.runDue();
      expect(target.received.map((r) => (r.body as { data: { path: string } }).data.path)).toEqual([
        '/before',
        '/after',
        '/only-new',
      ]);
    });

    it('verifies JSON.stringify(req.body) when express.json() ran first, as the spec snippet does', async () => {
      const secret = { value: '' };
      const target = await expressReceiver(
        verifyWebhookMiddleware({ getSecret: () => secret.value }),
        (app) => app.use(express.json()),
      );
      const { dispatcher, subscribe } = await setup({ tls: { ca: target.caCert } });
      const webhook = await subscribe(target.url);
      secret.value = webhook.secret;
      await dispatcher.emit({ ...pageview(), timestamp });
      await dispatcher.runDue();
      expect(target.received).toHaveLength(1);
      const [got] = target.received as [Received];
      expect(got.body).toMatchObject({ event: 'pageview', timestamp });
      expect(got.rawBody!.toString()).toBe(JSON.stringify(got.body));

      const body = got.rawBody!.toString();
      const tampered = await target.post(body.replace('Chrome', 'Firefox'), {
        'x-zta-signature': got.signature!,
      });
      expect(tampered.status).toBe(401);
    });

    it('answers a body express.json() parsed but nested too deep to encode again with 401, not 500', async () => {
      const target = await expressReceiver(verifyWebhookMiddleware({ secret: 'whsec_deep' }), (app) =>
        app.use(express.json()),
      );
      const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
      const answer = await target.post(deep, { 'x-zta-signature': signPayload(deep, 'whsec_deep') });
      expect(answer.status).toBe(401);
    });

    it('uses the raw bytes express.raw() kept', async () => {
      const secret = 'whsec_raw';
      const target = await expressReceiver(verifyWebhookMiddleware({ secret }), (app) =>
        app.use(express.raw({ type: 'application/json' })),
      );
      const body = '{ "event": "goal",  "timestamp": "2024-12-12T16:30:00.000Z", "data": {} }';
      expect((await target.post(body, { 'x-zta-signature': signPayload(body, secret) })).status).toBe(200);
      expect(target.received[0]!.rawBody!.toString()).toBe(body);
      expect(target.received[0]!.body).toEqual({ event: 'goal', timestamp, data: {} });
    });

    it('refuses a body over the limit with 413 and a signed non-JSON body with 400', async () => {
      const secret = 'whsec_limit';
      const target = await expressReceiver(verifyWebhookMiddleware({ secret }, { maxBodyBytes: 1024 }));
      const big = JSON.stringify({ event: 'pageview', data: { path: 'x'.repeat(2000) } });
      const tooLarge = await target.post(big, { 'x-zta-signature': signPayload(big, secret) });
      expect(tooLarge).toEqual({
        status: 413,
        text: JSON.stringify({ error: 'Request body exceeds the 1024 byte limit' }),
        type: 'application/json; charset=utf-8',
      });
      const notJson = 'not json';
      const answer = await target.post(notJson, { 'x-zta-signature': signPayload(notJson, secret) });
      expect(answer).toEqual({
        status: 400,
        text: JSON.stringify({ error: 'Invalid JSON body' }),
        type: 'application/json; charset=utf-8',
      });
      expect(target.received).toHaveLength(0);
    });

    it('accepts the largest payload the dispatcher may send by default', async () => {
      const secret = 'whsec_big';
      const target = await expressReceiver(verifyWebhookMiddleware({ secret }));
      const body = JSON.stringify({
        event: 'pageview',
        timestamp,
        data: { path: 'x'.repeat(1024 * 1024 - 100) },
      });
      expect((await target.post(body, { 'x-zta-signature': signPayload(body, secret) })).status).toBe(200);
    });

    it('passes errors from getSecret to the Express error handler', async () => {
      const target = await expressReceiver(
        verifyWebhookMiddleware({
          getSecret: async () => {
            throw new Error('vault unreachable');
          },
        }),
      );
      const answer = await target.post('{}', { 'x-zta-signature': signPayload('{}', 'whsec_x') });
      expect(answer.status).toBe(500);
      expect(answer.text).toBe('express error handler: Error: vault unreachable');
    });

    it('refuses a configuration without a secret', () => {
      for (const source of [{}, { secret: 42 }, { getSecret: 'x' }, null]) {
        expect(() => verifyWebhookMiddleware(source as never)).toThrow(TypeError);
      }
      expect(() => verifyWebhookMiddleware({ secret: 'x' }, { maxBodyBytes: 0 })).toThrow(TypeError);
    });
  });
});
