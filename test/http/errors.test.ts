// What the API answers to bad requests, over HTTP: 401, 404, 405, 415, 413, 400 (malformed, wrong types,
// missing or repeated parameters) and 500 for unexpected failures, always as JSON with no-store.
import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { Store } from '../../src/index.js';
import { delivery } from '../../src/testing/fixtures.js';
import { createStore, describeEachStore } from '../postgres/stores.js';
import { SITE, SPEC_CREATE_BODY, startApi } from './support.js';

const ROUTES: [method: string, path: string][] = [
  ['GET', `/api/webhooks?siteId=${SITE}`],
  ['POST', '/api/webhooks'],
  ['PATCH', '/api/webhooks?id=wh_x'],
  ['DELETE', '/api/webhooks?id=wh_x'],
  ['GET', '/api/webhooks/wh_x'],
  ['POST', '/api/webhooks/rotate-secret?id=wh_x'],
  ['GET', `/api/webhooks/deliveries?siteId=${SITE}`],
  ['POST', '/api/webhooks/redeliver?id=dl_x'],
];

describeEachStore('http: errors', () => {
  describe('401 Unauthorized', () => {
    it.each(ROUTES)('%s %s without credentials', async (method, path) => {
      const { call } = await startApi();
      const headerSets: Record<string, string>[] = [
        {},
        { authorization: 'Bearer nope' },
        { authorization: 'Basic YTpi' },
      ];
      for (const headers of headerSets) {
        const answer = await call(method, path, { token: null, headers });
        expect(answer.status).toBe(401);
        expect(answer.body).toStrictEqual({ error: 'Unauthorized' });
        expect(answer.headers.get('www-authenticate')).toBe('Bearer');
      }
    });

    it('authenticates before reading the body or checking its type', async () => {
      const { call } = await startApi();
      const answer = await call('POST', '/api/webhooks', { token: null, body: 'not json' });
      expect(answer.status).toBe(401);
    });

    it('answers a WebhookError thrown by authenticate with its status', async () => {
      const { WebhookError } = await import('../../src/index.js');
      const { call } = await startApi({
        authenticate: () => {
          throw new WebhookError('unauthorized', 'Token expired');
        },
      });
      const answer = await call('GET', `/api/webhooks?siteId=${SITE}`);
      expect(answer.status).toBe(401);
      expect(answer.body).toStrictEqual({ error: 'Token expired' });
      expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    });
  });

  describe('404 Not found', () => {
    it.each([
      '/',
      '/api',
      '/api/webhook',
      '/api/webhooksx',
      '/api/webhooks/a/b',
      '/api/webhooks/deliveries/x',
      '/api/webhooks//',
      '/API/WEBHOOKS',
      '/api/webhooks/%E0%A4%A',
    ])('%s', async (path) => {
      const { call } = await startApi();
      for (const method of ['GET', 'POST', 'DELETE']) {
        const answer = await call(method, path, { token: null });
        expect(answer.status).toBe(404);
        expect(answer.body).toStrictEqual({ error: 'Not found' });
      }
    });

    it('serves the collection with a trailing slash too', async () => {
      const { call } = await startApi();
      expect((await call('GET', `/api/webhooks/?siteId=${SITE}`)).status).toBe(200);
    });

    it('honours a custom basePath', async () => {
      const { call } = await startApi({ basePath: '/v2/hooks/' });
      expect((await call('GET', `/v2/hooks?siteId=${SITE}`)).status).toBe(200);
      expect((await call('GET', `/api/webhooks?siteId=${SITE}`)).status).toBe(404);
    });

    it('refuses a basePath that is not a path', async () => {
      const { createWebhooksApi } = await import('../../src/http/handler.js');
      const { manager } = await startApi();
      for (const basePath of [
        'api/webhooks',
        '',
        '/a?b',
        'https://x/api',
        '/api/wébhooks',
        '/api/./x',
        '/a/../b',
        '/api\\x',
      ]) {
        expect(() => createWebhooksApi({ manager, authenticate: () => null, basePath })).toThrow(TypeError);
      }
      // One the URL parser would write differently could never match a request.
      expect(() => createWebhooksApi({ manager, authenticate: () => null, basePath: '/api/./x' })).toThrow(
        'basePath must be written as a URL path is (percent-encoded, without dot segments or backslashes), got "/api/./x"',
      );
    });
  });

  describe('405 Method not allowed', () => {
    it.each([
      ['PUT', '/api/webhooks', 'GET, POST, PATCH, DELETE'],
      ['OPTIONS', '/api/webhooks', 'GET, POST, PATCH, DELETE'],
      ['HEAD', '/api/webhooks', 'GET, POST, PATCH, DELETE'],
      ['POST', '/api/webhooks/deliveries', 'GET'],
      ['DELETE', '/api/webhooks/deliveries', 'GET'],
      ['GET', '/api/webhooks/rotate-secret', 'POST'],
      ['GET', '/api/webhooks/redeliver', 'POST'],
      ['DELETE', '/api/webhooks/wh_x', 'GET'],
      ['PATCH', '/api/webhooks/wh_x', 'GET'],
    ])('%s %s (Allow: %s), before authentication', async (method, path, allow) => {
      const { origin } = await startApi();
      const response = await fetch(`${origin}${path}`, { method });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe(allow);
      expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
      if (method !== 'HEAD') expect(await response.json()).toStrictEqual({ error: 'Method not allowed' });
    });

    it('answers TRACE, which a fetch Request cannot carry, with 501 from the node adapter', async () => {
      const { origin } = await startApi();
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${origin}/api/webhooks`, { method: 'TRACE' }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(501);
      expect(JSON.parse(body)).toStrictEqual({ error: 'Method not implemented' });
    });
  });

  describe('415 Unsupported media type', () => {
    const json = JSON.stringify(SPEC_CREATE_BODY);

    it.each([
      ['text/plain'],
      ['application/x-www-form-urlencoded'],
      ['multipart/form-data; boundary=x'],
      ['application/jsonp'],
      ['application/json-patch+json'],
      ['text/json'],
      ['application/json; charset=latin1'],
      ['application/json; charset=utf-16'],
    ])('Content-Type: %s', async (type) => {
      const { call } = await startApi();
      const answer = await call('POST', '/api/webhooks', { body: json, headers: { 'content-type': type } });
      expect(answer.status).toBe(415);
      expect(answer.body).toStrictEqual({ error: 'Content-Type must be application/json' });
    });

    it('no Content-Type at all', async () => {
      const { call } = await startApi();
      const answer = await call('PATCH', '/api/webhooks?id=wh_x', { body: new Blob([json]) });
      expect(answer.status).toBe(415);
    });

    it.each([
      [''],
      ['application/x-www-form-urlencoded'],
      ['text/plain'],
      ['multipart/form-data; boundary=x'],
    ])('POSTs without a body as an HTML form sends them (Content-Type %j): nothing changes', async (type) => {
      // A form on another site posting with the user's cookies: it cannot send application/json.
      const { call, store } = await startApi();
      const created = await call('POST', '/api/webhooks', { json: SPEC_CREATE_BODY });
      const { id } = (created.body as { webhook: { id: string } }).webhook;
      expect((await call('POST', `/api/webhooks/rotate-secret?id=${id}`)).status).toBe(200);
      const before = await store.getWebhook(id);
      const finished = delivery(before!, { status: 'failed', nextAttemptAt: null, attempts: 3 });
      await store.insertDeliveries([finished]);
      const form = { headers: { 'content-type': type } };
      for (const path of [
        `/api/webhooks/rotate-secret?id=${id}`,
        `/api/webhooks/revoke-previous-secret?id=${id}`,
        `/api/webhooks/redeliver?id=${finished.id}`,
      ]) {
        const answer = await call('POST', path, form);
        expect(answer.status).toBe(415);
        expect(answer.body).toStrictEqual({ error: 'Content-Type must be application/json' });
      }
      expect(await store.getWebhook(id)).toEqual(before);
      expect((await store.getDelivery(finished.id))!.status).toBe('failed');
    });

    it('a content-encoded body', async () => {
      const { call } = await startApi();
      const answer = await call('POST', '/api/webhooks', {
        body: json,
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      });
      expect(answer.status).toBe(415);
      expect(answer.body).toStrictEqual({ error: 'Content-Encoding is not supported' });
    });

    it.each([
      ['application/json'],
      ['application/json; charset=utf-8'],
      ['Application/JSON; Charset="UTF-8"'],
      ['application/json ; charset=utf8'],
      ['application/json; foo=bar'],
    ])('accepts Content-Type: %s', async (type) => {
      const { call } = await startApi();
      const answer = await call('POST', '/api/webhooks', { body: json, headers: { 'content-type': type } });
      expect(answer.status).toBe(201);
    });
  });

  describe('413 Payload too large', () => {
    const big = (bytes: number) => JSON.stringify({ ...SPEC_CREATE_BODY, description: 'x'.repeat(bytes) });

    it('refuses a body whose Content-Length is over the limit without reading it', async () => {
      const { call } = await startApi({ maxBodyBytes: 1024 });
      const answer = await call('POST', '/api/webhooks', {
        json: undefined,
        body: big(20 * 1024 * 1024),
        headers: { 'content-type': 'application/json' },
      });
      expect(answer.status).toBe(413);
      expect(answer.body).toStrictEqual({ error: 'Request body exceeds the 1024 byte limit' });
    });

    it('stops reading a chunked body as soon as it passes the limit', async () => {
      const { origin, call } = await startApi({ maxBodyBytes: 64 * 1024 });
      let sent = 0;
      const chunk = new TextEncoder().encode('x'.repeat(16 * 1024));
      // An endless body without Content-Length: only the server stopping early can end this request.
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
      });
      const response = await fetch(`${origin}/api/webhooks`, {
        method: 'POST',
        headers: { authorization: 'Bearer alice-token', 'content-type': 'application/json' },
        body,
        duplex: 'half',
      } as RequestInit);
      expect(response.status).toBe(413);
      expect(await response.json()).toStrictEqual({ error: 'Request body exceeds the 65536 byte limit' });
      expect(sent).toBeLessThan(16 * 1024 * 1024);
      // The server is fine afterwards.
      expect((await call('GET', `/api/webhooks?siteId=${SITE}`)).status).toBe(200);
    });

    it('accepts a body right at the limit', async () => {
      const body = JSON.stringify({ ...SPEC_CREATE_BODY, description: 'd' });
      const { call } = await startApi({ maxBodyBytes: Buffer.byteLength(body) });
      expect(
        (await call('POST', '/api/webhooks', { body, headers: { 'content-type': 'application/json' } }))
          .status,
      ).toBe(201);
      const over = JSON.stringify({ ...SPEC_CREATE_BODY, description: 'dd' });
      expect(
        (await call('POST', '/api/webhooks', { body: over, headers: { 'content-type': 'application/json' } }))
          .status,
      ).toBe(413);
    });

    it('uses 64 KiB by default', async () => {
      const { call } = await startApi();
      const answer = await call('POST', '/api/webhooks', {
        body: big(64 * 1024),
        headers: { 'content-type': 'application/json' },
      });
      expect(answer.status).toBe(413);
      expect(answer.body).toStrictEqual({ error: 'Request body exceeds the 65536 byte limit' });
    });
  });

  describe('400 Bad request', () => {
    const post = (body: string | Uint8Array) => ({ body, headers: { 'content-type': 'application/json' } });

    it.each([
      ['{', 'Malformed JSON body'],
      ['{"siteId": "site_abc123",}', 'Malformed JSON body'],
      ["{'siteId': 1}", 'Malformed JSON body'],
      ['', 'Request body is required'],
      ['null', 'Request body must be a JSON object'],
      ['[]', 'Request body must be a JSON object'],
      ['"text"', 'Request body must be a JSON object'],
      ['42', 'Request body must be a JSON object'],
      ['{}', 'siteId is required'],
      ['{"siteId": 42, "url": "https://a.example", "events": ["goal"]}', 'siteId must be a string'],
      ['{"siteId": "site_abc123", "events": ["goal"]}', 'url is required'],
      ['{"siteId": "site_abc123", "url": 1, "events": ["goal"]}', 'url must be a string'],
      ['{"siteId": "site_abc123", "url": "https://a.example"}', 'events is required'],
      [
        '{"siteId": "site_abc123", "url": "https://a.example", "events": "goal"}',
        'events must be an array of event types',
      ],
      [
        '{"siteId": "site_abc123", "url": "https://a.example", "events": []}',
        'events must contain at least one event type',
      ],
      ['{"siteId": "site_abc123", "url": "https://a.example", "events": [1]}', 'Invalid event type: 1'],
      [
        '{"siteId": "site_abc123", "url": "https://a.example", "events": ["goal"], "description": 5}',
        'description must be a string',
      ],
      ['{"siteId": "site_abc123", "url": "not a url", "events": ["goal"]}', 'URL must be an absolute URL'],
      [
        '{"siteId": "site_abc123", "url": "https://127.0.0.1/x", "events": ["goal"]}',
        'URL must not point to a private or reserved address',
      ],
    ])('create with %s', async (body, message) => {
      const { call } = await startApi();
      const answer = await call('POST', '/api/webhooks', post(body));
      expect(answer.status).toBe(400);
      expect(answer.body).toStrictEqual({ error: message });
    });

    it('a body that is not UTF-8', async () => {
      const { call } = await startApi();
      const answer = await call('POST', '/api/webhooks', post(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])));
      expect(answer.status).toBe(400);
      expect(answer.body).toStrictEqual({ error: 'Request body must be UTF-8 encoded JSON' });
    });

    it.each([
      ['GET', '/api/webhooks', 'siteId is required'],
      ['GET', '/api/webhooks?siteId=', 'siteId is required'],
      ['GET', '/api/webhooks?siteid=site_abc123', 'siteId is required'],
      ['GET', '/api/webhooks?siteId=a%20b', 'siteId may contain only letters, digits, "_", "-", "." and ":"'],
      ['DELETE', '/api/webhooks', 'id is required'],
      ['DELETE', '/api/webhooks?id=', 'id is required'],
      ['POST', '/api/webhooks/rotate-secret', 'id is required'],
      ['POST', '/api/webhooks/redeliver', 'id is required'],
      ['GET', '/api/webhooks/deliveries', 'Exactly one of siteId or webhookId is required'],
      [
        'GET',
        `/api/webhooks/deliveries?siteId=${SITE}&webhookId=wh_x`,
        'Exactly one of siteId or webhookId is required',
      ],
      [
        'GET',
        `/api/webhooks/deliveries?siteId=${SITE}&status=lost`,
        'status must be one of: pending, delivering, succeeded, failed, discarded',
      ],
      ['GET', `/api/webhooks/deliveries?siteId=${SITE}&limit=0`, 'limit must be between 1 and 100'],
      ['GET', `/api/webhooks/deliveries?siteId=${SITE}&limit=101`, 'limit must be between 1 and 100'],
      ['GET', `/api/webhooks/deliveries?siteId=${SITE}&limit=ten`, 'limit must be a number'],
      ['GET', `/api/webhooks/deliveries?siteId=${SITE}&since=yesterday`, 'since must be a date'],
      ['GET', `/api/webhooks/deliveries?siteId=${SITE}&cursor=zzz`, 'cursor is invalid'],
      [
        'GET',
        `/api/webhooks/deliveries?siteId=${SITE}&cursor=${Buffer.from(JSON.stringify([Date.now(), '\u0000'])).toString('base64url')}`,
        'cursor is invalid',
      ],
    ])('%s %s', async (method, path, message) => {
      const { call } = await startApi();
      const answer = await call(method, path);
      expect(answer.status).toBe(400);
      expect(answer.body).toStrictEqual({ error: message });
    });

    it('PATCH without id, checked before the body', async () => {
      const { call } = await startApi();
      const answer = await call('PATCH', '/api/webhooks', { json: { active: true } });
      expect(answer.status).toBe(400);
      expect(answer.body).toStrictEqual({ error: 'id is required' });
    });

    it.each([
      ['GET', `/api/webhooks?siteId=${SITE}&siteId=site_bob`, 'siteId'],
      ['GET', `/api/webhooks?siteId=${SITE}&siteId=${SITE}`, 'siteId'],
      ['DELETE', '/api/webhooks?id=a&id=b', 'id'],
      ['POST', '/api/webhooks/rotate-secret?id=a&id=', 'id'],
      ['GET', `/api/webhooks/deliveries?siteId=${SITE}&limit=1&limit=2`, 'limit'],
    ])('a repeated query parameter: %s %s', async (method, path, name) => {
      const { call } = await startApi();
      const answer = await call(method, path);
      expect(answer.status).toBe(400);
      expect(answer.body).toStrictEqual({ error: `Duplicate query parameter: ${name}` });
    });

    it('ignores unknown query parameters', async () => {
      const { call } = await startApi();
      expect((await call('GET', `/api/webhooks?siteId=${SITE}&x=1&x=2`)).status).toBe(200);
    });
  });

  describe('500 Internal server error', () => {
    const SECRET_MESSAGE = 'connection lost while writing whsec_c2VjcmV0IGRvIG5vdCBsb2cgbWU=';

    async function failingStore(): Promise<Store> {
      const store = await createStore();
      return new Proxy(store, {
        get(target, name, receiver) {
          if (name === 'listWebhooks' || name === 'createWebhook') {
            return () => Promise.reject(new Error(SECRET_MESSAGE));
          }
          return Reflect.get(target, name, receiver);
        },
      });
    }

    it('answers { error: "Internal server error" } and logs no secret and no body', async () => {
      const { call, logs } = await startApi({ store: await failingStore() });
      const list = await call('GET', `/api/webhooks?siteId=${SITE}`);
      expect(list.status).toBe(500);
      expect(list.body).toStrictEqual({ error: 'Internal server error' });

      const create = await call('POST', '/api/webhooks', {
        json: { ...SPEC_CREATE_BODY, description: 'body-marker-7f3a' },
      });
      expect(create.status).toBe(500);
      expect(create.body).toStrictEqual({ error: 'Internal server error' });

      expect(logs).toHaveLength(2);
      expect(logs[0]).toMatchObject({
        level: 'error',
        message: 'webhooks api: unexpected error',
        fields: { method: 'GET', path: '/api/webhooks', error: { name: 'Error' } },
      });
      const logged = JSON.stringify(logs);
      expect(logged).toContain('whsec_[redacted]');
      expect(logged).not.toContain('c2VjcmV0');
      expect(logged).not.toContain('body-marker-7f3a');
      expect(logged).not.toContain('alice-token');
    });

    it('answers an authenticate that throws with a 500', async () => {
      const { call, logs } = await startApi({
        authenticate: () => {
          throw new Error('session store down');
        },
      });
      const answer = await call('GET', `/api/webhooks?siteId=${SITE}`);
      expect(answer.status).toBe(500);
      expect(answer.body).toStrictEqual({ error: 'Internal server error' });
      expect(logs[0]?.fields?.error).toEqual({ name: 'Error', message: 'session store down' });
    });

    it('survives a logger that throws', async () => {
      const { call } = await startApi({
        store: await failingStore(),
        logger: {
          error: () => {
            throw new Error('logger broke');
          },
        },
      });
      expect((await call('GET', `/api/webhooks?siteId=${SITE}`)).status).toBe(500);
    });
  });
});
