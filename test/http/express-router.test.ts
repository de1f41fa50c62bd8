// webhooksRouter mounted in a real Express 5 app on a real HTTP server.
import { createServer } from 'node:http';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { webhooksRouter } from '../../src/express.js';
import { createStore, describeEachStore } from '../postgres/stores.js';
import { authenticate, listen, newManager, request, SITE, SPEC_CREATE_BODY } from './support.js';

/** An app `setup` mounts routes on; `manager` is over a fresh store of the block's kind. */
async function app(setup: (app: express.Express, manager: ReturnType<typeof newManager>) => void) {
  const application = express();
  setup(application, newManager(await createStore()));
  // Express's own 404, in plain text: anything JSON came from the router.
  application.use((_req, res) => {
    res.status(404).type('text/plain').send('express 404');
  });
  const origin = await listen(createServer(application));
  return {
    origin,
    call: (method: string, path: string, init = {}) => request(origin, method, path, init),
  };
}

describeEachStore('http: express router', () => {
  describe('webhooksRouter', () => {
    it('serves the spec endpoints: create, list, delete', async () => {
      const { call } = await app((a, manager) => {
        a.use(webhooksRouter({ manager, authenticate }));
      });
      const created = await call('POST', '/api/webhooks', { json: SPEC_CREATE_BODY });
      expect(created.status).toBe(201);
      const { webhook } = created.body as { webhook: { id: string; secret: string } };
      expect(webhook.secret).toMatch(/^whsec_/);
      expect(created.headers.get('location')).toBe(`/api/webhooks/${webhook.id}`);

      const listed = await call('GET', `/api/webhooks?siteId=${SITE}`);
      expect(listed.status).toBe(200);
      expect((listed.body as { webhooks: { id: string }[] }).webhooks.map((w) => w.id)).toEqual([webhook.id]);

      const deleted = await call('DELETE', `/api/webhooks?id=${webhook.id}`);
      expect(deleted.body).toStrictEqual({ success: true, message: 'Webhook deleted successfully' });

      const errors = [
        await call('GET', `/api/webhooks?siteId=${SITE}`, { token: null }),
        await call('PUT', '/api/webhooks'),
        await call('POST', '/api/webhooks', { body: 'x', headers: { 'content-type': 'text/plain' } }),
        await call('POST', '/api/webhooks', { body: '{', headers: { 'content-type': 'application/json' } }),
        await call('GET', '/api/webhooks/a/b'),
      ];
      expect(errors.map((e) => [e.status, e.body])).toEqual([
        [401, { error: 'Unauthorized' }],
        [405, { error: 'Method not allowed' }],
        [415, { error: 'Content-Type must be application/json' }],
        [400, { error: 'Malformed JSON body' }],
        [404, { error: 'Not found' }],
      ]);
    });

    it('hands requests outside basePath to the next middleware', async () => {
      const { origin } = await app((a, manager) => {
        a.use(webhooksRouter({ manager, authenticate }));
        a.get('/health', (_req, res) => {
          res.json({ ok: true });
        });
      });
      expect(await (await fetch(`${origin}/health`)).json()).toEqual({ ok: true });
      const other = await fetch(`${origin}/api/webhooksx`);
      expect(other.status).toBe(404);
      expect(await other.text()).toBe('express 404');
    });

    it('matches basePath against the full URL when mounted under a prefix', async () => {
      const { call } = await app((a, manager) => {
        a.use('/v1', webhooksRouter({ manager, authenticate, basePath: '/v1/hooks' }));
      });
      expect((await call('GET', `/v1/hooks?siteId=${SITE}`)).body).toEqual({ webhooks: [] });
      expect((await call('POST', '/v1/hooks', { json: SPEC_CREATE_BODY })).headers.get('location')).toMatch(
        /^\/v1\/hooks\/wh_/,
      );
    });

    it('uses the body express.json() already parsed, re-serialised', async () => {
      const { call } = await app((a, manager) => {
        a.use(express.json());
        a.use(webhooksRouter({ manager, authenticate }));
      });
      const created = await call('POST', '/api/webhooks', { json: SPEC_CREATE_BODY });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        webhook: { url: SPEC_CREATE_BODY.url, events: SPEC_CREATE_BODY.events },
      });
      const patched = await call(
        'PATCH',
        `/api/webhooks?id=${(created.body as { webhook: { id: string } }).webhook.id}`,
        {
          json: { description: 'changed' },
        },
      );
      expect(patched.body).toMatchObject({ webhook: { description: 'changed' } });
      const invalid = await call('POST', '/api/webhooks', {
        json: { ...SPEC_CREATE_BODY, events: ['nope'] },
      });
      expect(invalid.body).toStrictEqual({ error: 'Invalid event type: nope' });
    });

    it('answers a body express.json() parsed but nested too deep to encode again with 400, not 500', async () => {
      const { call } = await app((a, manager) => {
        a.use(express.json());
        a.use(webhooksRouter({ manager, authenticate }));
      });
      // 40 kB, under express.json()'s limit; JSON.stringify of it overflows the stack.
      const deep = {
        body: `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
        headers: { 'content-type': 'application/json' },
      };
      const answers = [
        await call('POST', '/api/webhooks', { ...deep, token: null }),
        await call('POST', '/api/webhooks', deep),
        await call('DELETE', '/api/webhooks?id=wh_u_PUuR6SirlzNB7KFrA9Gg', deep),
      ];
      expect(answers.map((answer) => [answer.status, answer.body])).toEqual([
        [401, { error: 'Unauthorized' }],
        [400, { error: 'Malformed JSON body' }],
        [404, { error: 'Webhook not found' }],
      ]);
    });

    it('uses a body express.text() or express.raw() consumed as is', async () => {
      const { call } = await app((a, manager) => {
        a.use(express.raw({ type: 'application/json' }));
        a.use(webhooksRouter({ manager, authenticate }));
      });
      expect((await call('POST', '/api/webhooks', { json: SPEC_CREATE_BODY })).status).toBe(201);
      const malformed = await call('POST', '/api/webhooks', {
        body: '{"siteId":',
        headers: { 'content-type': 'application/json' },
      });
      expect(malformed.body).toStrictEqual({ error: 'Malformed JSON body' });

      const text = await app((a, manager) => {
        a.use(express.text({ type: '*/*' }));
        a.use(webhooksRouter({ manager, authenticate }));
      });
      expect((await text.call('POST', '/api/webhooks', { json: SPEC_CREATE_BODY })).status).toBe(201);
    });

    it('enforces maxBodyBytes on a streamed body', async () => {
      const { call } = await app((a, manager) => {
        a.use(webhooksRouter({ manager, authenticate, maxBodyBytes: 100 }));
      });
      const answer = await call('POST', '/api/webhooks', { json: SPEC_CREATE_BODY });
      expect(answer.status).toBe(413);
      expect(answer.body).toStrictEqual({ error: 'Request body exceeds the 100 byte limit' });
      expect((await call('GET', `/api/webhooks?siteId=${SITE}`)).status).toBe(200);
    });

    it('gives authenticate a WHATWG Request with the full URL and headers', async () => {
      const seen: { url: string; method: string; auth: string | null; isRequest: boolean }[] = [];
      const { origin } = await app((a, manager) => {
        a.use(
          '/mounted',
          webhooksRouter({
            manager,
            basePath: '/mounted/api/webhooks',
            authenticate: (req) => {
              seen.push({
                url: req.url,
                method: req.method,
                auth: req.headers.get('authorization'),
                isRequest: req instanceof Request,
              });
              return authenticate(req);
            },
          }),
        );
      });
      await fetch(`${origin}/mounted/api/webhooks?siteId=${SITE}`, {
        headers: { authorization: 'Bearer alice-token' },
      });
      expect(seen).toEqual([
        {
          url: `${origin}/mounted/api/webhooks?siteId=${SITE}`,
          method: 'GET',
          auth: 'Bearer alice-token',
          isRequest: true,
        },
      ]);
    });
  });
});
