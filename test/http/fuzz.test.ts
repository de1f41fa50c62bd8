// Arbitrary methods, paths, query strings, headers and bodies thrown at the handler directly: every answer
// must be a JSON 2xx/4xx with no-store, never a 500, a thrown error or a rejected promise.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createWebhooksApi, type WebhooksApi } from '../../src/http/handler.js';
import { EVENT_TYPES } from '../../src/index.js';
import { createStore, describeEachStore } from '../postgres/stores.js';
import {
  alice,
  authenticate,
  capturingLogger,
  type LogLine,
  newManager,
  SITE,
  SPEC_CREATE_BODY,
} from './support.js';

const BASE = '/api/webhooks';
/** Stands for the id of a webhook alice owns; replaced when the request is built. */
const KNOWN = '{known}';
const logs: LogLine[] = [];
let api: WebhooksApi;
let knownId = '';

const text = fc.string({ unit: 'binary', maxLength: 40 });

/** Mostly routes with a method they allow, so requests get past 404/405 to the manager. */
const endpoint = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom<[string, string]>(
      ['GET', BASE],
      ['POST', BASE],
      ['PATCH', BASE],
      ['DELETE', BASE],
      ['GET', `${BASE}/${KNOWN}`],
      ['GET', `${BASE}/deliveries`],
      ['POST', `${BASE}/rotate-secret`],
      ['POST', `${BASE}/redeliver`],
    ),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(
      fc.oneof(
        fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'HEAD', 'OPTIONS', 'get', 'Post'),
        fc.stringMatching(/^[A-Za-z!#$%&'*+.^_`|~-]{1,10}$/),
      ),
      fc.oneof(
        fc.constantFrom(BASE, `${BASE}/`, `${BASE}//`, `${BASE}/deliveries/`, '/', '/api', `${BASE}x`),
        text.map((segment) => `${BASE}/${encodeURIComponent(segment)}`),
        text.map((segment) => `${BASE}/${segment}`),
        fc.webPath(),
      ),
    ),
  },
);

const paramName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('siteId', 'id', 'webhookId') },
  { weight: 2, arbitrary: fc.constantFrom('status', 'since', 'limit', 'cursor') },
  { weight: 1, arbitrary: text },
);
const paramValue = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(SITE, 'site_two', KNOWN) },
  {
    weight: 4,
    arbitrary: fc.oneof(
      fc.constantFrom('site_bob', '', 'failed', 'pending', '2024-01-01', '1e308', '-1', '100', '101'),
      fc.integer().map(String),
      fc.double().map(String),
      fc.date({ noInvalidDate: false }).map((d) => (Number.isNaN(d.getTime()) ? 'Invalid' : d.toISOString())),
      fc.base64String({ maxLength: 60 }),
      // Cursors: base64url JSON, some shaped like real ones ([createdAt ms, id]).
      fc.jsonValue({ maxDepth: 2 }).map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')),
      fc
        .tuple(fc.oneof(fc.double(), fc.integer(), fc.constant(8.64e15 + 1)), fc.string({ maxLength: 10 }))
        .map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')),
      text,
    ),
  },
);
const query = fc.array(fc.tuple(paramName, paramValue), { maxLength: 4 });

const contentType = fc.option(
  fc.oneof(
    { weight: 8, arbitrary: fc.constant('application/json') },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        'application/json; charset=utf-8',
        'APPLICATION/JSON;charset="UTF-8"',
        'application/json; charset=latin1',
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/json;',
        ';',
      ),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  ),
  { freq: 10 },
);

const json = fc.jsonValue({ maxDepth: 1 });
const createLike = fc.record(
  {
    siteId: fc.oneof(fc.constantFrom(SITE, 'site_bob'), json),
    url: fc.oneof(
      fc.constant('https://your-server.com/webhook'),
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      json,
    ),
    events: fc.oneof(fc.array(fc.oneof(fc.constantFrom(...EVENT_TYPES), json), { maxLength: 7 }), json),
    description: fc.oneof(fc.string({ maxLength: 600 }), json),
    active: json,
  },
  { requiredKeys: [] },
);
const body = fc.option(
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc
        .subarray([...EVENT_TYPES], { minLength: 1 })
        .map((events) => JSON.stringify({ ...SPEC_CREATE_BODY, events })),
    },
    { weight: 4, arbitrary: createLike.map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: fc.jsonValue().map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.constant('x'.repeat(5000)) },
  ),
  { freq: 10 },
);
const token = fc.option(
  fc.oneof({ weight: 8, arbitrary: fc.constant('alice-token') }, fc.constantFrom('bob-token', 'garbage', '')),
  { freq: 10 },
);
const extraHeaders = fc.array(
  fc.tuple(fc.constantFrom('content-length', 'content-encoding', 'x-anything'), fc.string({ maxLength: 12 })),
  { maxLength: 2 },
);

const requestCase = fc.record({ endpoint, query, contentType, body, token, extraHeaders });
type Case = typeof requestCase extends fc.Arbitrary<infer T> ? T : never;

/** The Request for one generated case, or null when the fetch API itself refuses to build it. */
function build({ endpoint: [method, path], query, contentType, body, token, extraHeaders }: Case) {
  const known = (value: string) => value.replaceAll(KNOWN, knownId);
  try {
    const url = new URL(`http://api.test${known(path)}`);
    for (const [name, value] of query) url.searchParams.append(name, known(value));
    const headers = new Headers();
    if (contentType !== null) headers.set('content-type', contentType);
    if (token !== null) headers.set('authorization', `Bearer ${token}`);
    for (const [name, value] of extraHeaders) headers.set(name, value);
    const withBody = body !== null && !['GET', 'HEAD'].includes(method.toUpperCase());
    return new Request(url, { method, headers, ...(withBody && { body }) });
  } catch {
    return null;
  }
}

describeEachStore('http: fuzz', () => {
  beforeAll(async () => {
    logs.length = 0;
    const manager = newManager(await createStore());
    api = createWebhooksApi({ manager, authenticate, logger: capturingLogger(logs), maxBodyBytes: 4096 });
    knownId = (await manager.create(alice, SPEC_CREATE_BODY)).webhook.id;
  });

  describe('fuzz: createWebhooksApi', () => {
    it('answers everything with a 2xx/4xx JSON response, never a 500 or a throw', async () => {
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(requestCase, async (generated) => {
          const request = build(generated);
          fc.pre(request !== null);
          const response = await api(request!);
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          expect(response.status).toBeGreaterThanOrEqual(200);
          expect(response.status).toBeLessThan(500);
          expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
          expect(response.headers.get('cache-control')).toBe('no-store');
          const parsed = JSON.parse(await response.text()) as Record<string, unknown>;
          expect(parsed).toBeTypeOf('object');
          if (response.status >= 400) {
            expect(Object.keys(parsed)).toEqual(['error']);
            expect(parsed.error).toEqual(expect.any(String));
          }
          if (response.status === 405) expect(response.headers.get('allow')).toBeTruthy();
        }),
        { numRuns: 4000 },
      );
      expect(logs).toEqual([]);
      // The cases reach every outcome, the manager's included, so the property means something.
      // (202 and 409 need deliveries in the store; extensions.test.ts covers them.)
      for (const status of [200, 201, 400, 401, 403, 404, 405, 413, 415]) {
        expect(statuses.get(status) ?? 0, `${status} in ${JSON.stringify([...statuses])}`).toBeGreaterThan(0);
      }
    });
  });
});
