// verifyStandardWebhook / signStandardPayload: the Standard Webhooks scheme, checked against the real
// `standardwebhooks` package in both directions, every failure reason, the tolerance edges, rotation
// (several `v1,` entries, several secrets), every header form, and properties: never throws, sign → verify.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { GoalData, PageviewData } from '../../src/core/events.js';
import {
  signStandardPayload,
  type VerifyResult,
  verifyStandardWebhook,
  verifyStandardWebhookAsync,
  type WebhookPayload,
} from '../../src/verify.js';
import { anything } from '../support/arbitraries.js';

const KEY = Buffer.from('6b2f1c0e9a8d7c6b5a4f3e2d1c0b0a99887766554433221100ffeeddccbbaa01', 'hex');
const SECRET = `whsec_${KEY.toString('base64')}`;
const OTHER_SECRET = `whsec_${Buffer.alloc(32, 0x5a).toString('base64')}`;
const ID = 'dlv_2xQk9TzN0aJm4sVb8cRw1e';
const NOW = new Date('2025-06-01T12:00:00.000Z');
const TS = Math.floor(NOW.getTime() / 1000);

const delivery: WebhookPayload<'pageview'> = {
  event: 'pageview',
  timestamp: '2025-06-01T11:59:58.120Z',
  data: { siteId: 'site_abc123', path: '/blog/café', referrer: null, country: 'US' },
};
const BODY = JSON.stringify(delivery);

/** The spec's definition, computed independently: base64 HMAC-SHA256 of "id.timestamp.body". */
function reference(
  id: string,
  timestamp: number | string,
  body: string | Uint8Array,
  secret: string,
): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const hmac = createHmac('sha256', key).update(`${id}.${timestamp}.`);
  return `v1,${hmac.update(body).digest('base64')}`;
}

function headersFor(
  overrides: Partial<Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string>> = {},
  body: string | Uint8Array = BODY,
): Record<string, string> {
  const id = overrides['webhook-id'] ?? ID;
  const timestamp = overrides['webhook-timestamp'] ?? String(TS);
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': overrides['webhook-signature'] ?? reference(id, timestamp, body, SECRET),
  };
}

const at = { now: NOW };

/** Runs the sync and the async verifier and checks they agree; returns the sync result. */
async function both(
  body: unknown,
  headers: unknown,
  secret: unknown,
  ...rest: [options?: unknown]
): Promise<VerifyResult> {
  // `at` unless options are passed, even as `undefined`.
  const options = rest.length > 0 ? rest[0] : at;
  const sync = verifyStandardWebhook(
    body,
    headers as Record<string, string>,
    secret as string,
    options as typeof at,
  );
  const web = await verifyStandardWebhookAsync(
    body,
    headers as Record<string, string>,
    secret as string,
    options as typeof at,
  );
  expect(web).toEqual(sync);
  return sync;
}

function reasonOf(result: VerifyResult): string {
  return result.ok ? 'ok' : result.reason;
}

describe('signStandardPayload', () => {
  it('is v1,<base64 HMAC-SHA256 of "id.timestamp.body"> keyed by the decoded secret', () => {
    const value = signStandardPayload(ID, TS, BODY, SECRET);
    expect(value).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(value).toBe(reference(ID, TS, BODY, SECRET));
    // The key is the base64-decoded part, not the secret string (that is the X-ZTA-Signature scheme).
    const asString = createHmac('sha256', SECRET).update(`${ID}.${TS}.${BODY}`).digest('base64');
    expect(value).not.toBe(`v1,${asString}`);
  });

  it('matches the standardwebhooks package, for a Date and for seconds, strings and bytes', () => {
    const theirs = new Webhook(SECRET).sign(ID, NOW, BODY);
    expect(signStandardPayload(ID, NOW, BODY, SECRET)).toBe(theirs);
    expect(signStandardPayload(ID, TS, BODY, SECRET)).toBe(theirs);
    expect(signStandardPayload(ID, TS, Buffer.from(BODY), SECRET)).toBe(theirs);
    expect(
      signStandardPayload(ID, new Date(NOW.getTime() + 999), new TextEncoder().encode(BODY), SECRET),
    ).toBe(theirs);
  });

  it('accepts a secret without the whsec_ prefix, as standardwebhooks does', () => {
    expect(signStandardPayload(ID, TS, BODY, KEY.toString('base64'))).toBe(reference(ID, TS, BODY, SECRET));
  });

  it('gives one space-separated v1 entry per secret of a list, in order', () => {
    const value = signStandardPayload(ID, TS, BODY, [SECRET, OTHER_SECRET]);
    expect(value).toBe(`${reference(ID, TS, BODY, SECRET)} ${reference(ID, TS, BODY, OTHER_SECRET)}`);
  });

  const badCalls: Array<[string, () => unknown]> = [
    ['an empty id', () => signStandardPayload('', TS, BODY, SECRET)],
    ['a non-string id', () => signStandardPayload(1 as unknown as string, TS, BODY, SECRET)],
    ['a fractional timestamp', () => signStandardPayload(ID, 1.5, BODY, SECRET)],
    ['a negative timestamp', () => signStandardPayload(ID, -1, BODY, SECRET)],
    ['NaN', () => signStandardPayload(ID, Number.NaN, BODY, SECRET)],
    ['an invalid Date', () => signStandardPayload(ID, new Date('nope'), BODY, SECRET)],
    ['a Date before 1970', () => signStandardPayload(ID, new Date(-5000), BODY, SECRET)],
    ['a string timestamp', () => signStandardPayload(ID, String(TS) as unknown as number, BODY, SECRET)],
    ['an object body', () => signStandardPayload(ID, TS, delivery as unknown as string, SECRET)],
    ['an empty secret', () => signStandardPayload(ID, TS, BODY, '')],
    ['a bare whsec_', () => signStandardPayload(ID, TS, BODY, 'whsec_')],
    ['a secret that is not base64', () => signStandardPayload(ID, TS, BODY, 'whsec_not base64!')],
    ['an empty list', () => signStandardPayload(ID, TS, BODY, [])],
    ['a list with a bad entry', () => signStandardPayload(ID, TS, BODY, [SECRET, ''])],
  ];
  it.each(badCalls)('throws a TypeError for %s', (_name, call) => {
    expect(call).toThrow(TypeError);
  });

  it('never puts the secret in an error message', () => {
    const secret = 'whsec_this is not base64 but secret';
    expect(() => signStandardPayload(ID, TS, BODY, secret)).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('secret but') }),
    );
  });
});

describe('a signature wrong in one byte', () => {
  it('is refused whichever byte it is, by the sync and the async verifier alike', async () => {
    const digest = Buffer.from(signStandardPayload(ID, TS, BODY, SECRET).slice(3), 'base64');
    for (let i = 0; i < digest.length; i++) {
      const wrong = Buffer.from(digest);
      wrong[i]! ^= 0x01;
      const headers = headersFor({ 'webhook-signature': `v1,${wrong.toString('base64')}` });
      expect(reasonOf(await both(BODY, headers, SECRET))).toBe('bad_signature');
    }
  });
});

describe('interoperability with the standardwebhooks package', () => {
  it('verifies deliveries the standardwebhooks package signed', async () => {
    const signature = new Webhook(SECRET).sign(ID, NOW, BODY);
    const result = await both(BODY, headersFor({ 'webhook-signature': signature }), SECRET);
    expect(result).toEqual({ ok: true, event: delivery, id: ID, timestamp: TS });
  });

  it('produces deliveries that the standardwebhooks package verifies', () => {
    const now = new Date();
    const headers = {
      'webhook-id': ID,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': signStandardPayload(ID, now, BODY, SECRET),
    };
    expect(new Webhook(SECRET).verify(BODY, headers)).toEqual(delivery);
    expect(() => new Webhook(OTHER_SECRET).verify(BODY, headers)).toThrow();
    // During a rotation, an entry per secret: receivers holding either secret accept it.
    headers['webhook-signature'] = signStandardPayload(ID, now, BODY, [OTHER_SECRET, SECRET]);
    expect(new Webhook(SECRET).verify(BODY, headers)).toEqual(delivery);
    expect(new Webhook(OTHER_SECRET).verify(BODY, headers)).toEqual(delivery);
  });

  // Arbitrary deliveries, ids, times and 32-byte keys, both directions.
  const key = fc
    .uint8Array({ minLength: 1, maxLength: 64 })
    .map((k) => `whsec_${Buffer.from(k).toString('base64')}`);
  const id = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/[\s]/.test(s));
  const body = fc
    .record({
      event: fc.constantFrom('pageview', 'event', 'goal', 'alert', 'session_end'),
      timestamp: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      data: fc.dictionary(fc.string(), fc.jsonValue()),
    })
    .map((value) => JSON.stringify(value));

  it('agrees with standardwebhooks on arbitrary deliveries, in both directions (property)', async () => {
    await fc.assert(
      fc.asyncProperty(key, id, body, async (secret, msgId, text) => {
        const now = new Date();
        const timestamp = String(Math.floor(now.getTime() / 1000));
        const theirs = new Webhook(secret).sign(msgId, now, text);
        const ours = signStandardPayload(msgId, now, text, secret);
        expect(ours).toBe(theirs);
        const headers = { 'webhook-id': msgId, 'webhook-timestamp': timestamp, 'webhook-signature': theirs };
        const result = await both(text, headers, secret, {});
        expect(result).toEqual({
          ok: true,
          event: JSON.parse(text),
          id: msgId,
          timestamp: Number(timestamp),
        });
        expect(new Webhook(secret).verify(text, { ...headers, 'webhook-signature': ours })).toEqual(
          JSON.parse(text),
        );
      }),
      { numRuns: 200 },
    );
  });
});

describe('verifyStandardWebhook: body and header forms', () => {
  it('accepts the raw body as a string, Buffer, Uint8Array, ArrayBuffer or DataView, or the parsed body', async () => {
    const headers = headersFor();
    const bytes = Buffer.from(BODY);
    const forms: unknown[] = [
      BODY,
      bytes,
      new Uint8Array(bytes),
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
      new DataView(Uint8Array.from(bytes).buffer),
      JSON.parse(BODY),
    ];
    for (const form of forms) {
      expect(await both(form, headers, SECRET)).toEqual({ ok: true, event: delivery, id: ID, timestamp: TS });
    }
  });

  it('reads a WHATWG Headers, a Map, Node-style lower-case records and records in any case', async () => {
    const plain = headersFor();
    const upper = Object.fromEntries(Object.entries(plain).map(([k, v]) => [k.toUpperCase(), v]));
    const title = {
      'Webhook-Id': plain['webhook-id'],
      'WEBHOOK-timestamp': plain['webhook-timestamp'],
      'webhook-Signature': [plain['webhook-signature']],
    };
    const forms: unknown[] = [plain, new Headers(plain), new Map(Object.entries(plain)), upper, title];
    for (const headers of forms) expect(reasonOf(await both(BODY, headers, SECRET))).toBe('ok');
  });

  it("accepts Node's req.headers over real HTTP (IncomingHttpHeaders, raw body)", async () => {
    const results: VerifyResult[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const headers: IncomingHttpHeaders = req.headers;
        results.push(verifyStandardWebhook(Buffer.concat(chunks), headers, SECRET));
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const now = new Date();
      await fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        headers: {
          'Webhook-Id': ID,
          'Webhook-Timestamp': String(Math.floor(now.getTime() / 1000)),
          'Webhook-Signature': new Webhook(SECRET).sign(ID, now, BODY),
          'content-type': 'application/json',
        },
        body: BODY,
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(results).toEqual([{ ok: true, event: delivery, id: ID, timestamp: expect.any(Number) }]);
  });

  it('accepts Headers, a Map and IncomingHttpHeaders in its type', () => {
    const incoming: IncomingHttpHeaders = headersFor();
    const results: VerifyResult[] = [
      verifyStandardWebhook(BODY, new Headers(headersFor()), SECRET, at),
      verifyStandardWebhook(BODY, new Map(Object.entries(headersFor())), SECRET, at),
      verifyStandardWebhook(BODY, incoming, [SECRET], at),
    ];
    expect(results.map(reasonOf)).toEqual(['ok', 'ok', 'ok']);
  });

  it('narrows the event by its type', () => {
    const result = verifyStandardWebhook(BODY, headersFor(), SECRET, at);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expectTypeOf(result.id).toEqualTypeOf<string>();
    expectTypeOf(result.timestamp).toEqualTypeOf<number>();
    switch (result.event.event) {
      case 'pageview':
        expectTypeOf(result.event.data).toEqualTypeOf<PageviewData>();
        expect(result.event.data.path).toBe('/blog/café');
        break;
      case 'goal':
        expectTypeOf(result.event.data).toEqualTypeOf<GoalData>();
        break;
    }
  });
});

describe('verifyStandardWebhook: failure reasons', () => {
  const good = headersFor();
  const without = (name: string) => Object.fromEntries(Object.entries(good).filter(([k]) => k !== name));

  const missing: Array<[string, unknown]> = [
    ['no webhook-id', without('webhook-id')],
    ['no webhook-timestamp', without('webhook-timestamp')],
    ['no webhook-signature', without('webhook-signature')],
    ['an empty webhook-id', { ...good, 'webhook-id': '' }],
    ['a blank webhook-signature', { ...good, 'webhook-signature': '  ' }],
    ['two webhook-id values', { ...good, 'webhook-id': [ID, ID] }],
    ['webhook-id in two spellings', { ...good, 'Webhook-Id': ID }],
    ['an empty webhook-id array', { ...good, 'webhook-id': [] }],
    ['a timestamp that is not an integer', { ...good, 'webhook-timestamp': `${TS}.5` }],
    ['a timestamp with text', { ...good, 'webhook-timestamp': `${TS}abc` }],
    ['a negative timestamp', { ...good, 'webhook-timestamp': `-${TS}` }],
    ['a timestamp in ISO form', { ...good, 'webhook-timestamp': NOW.toISOString() }],
    ['a timestamp with spaces', { ...good, 'webhook-timestamp': ` ${TS}` }],
    ['a timestamp of 17 digits', { ...good, 'webhook-timestamp': '1'.repeat(17) }],
    ['a number instead of a string', { ...good, 'webhook-timestamp': TS }],
    ['no headers at all', {}],
    ['undefined', undefined],
    ['null', null],
    ['a string', 'webhook-id: x'],
    ['an array', [good]],
    ['a Headers without them', new Headers({ 'x-zta-signature': 'sha256=00' })],
  ];
  it.each(missing)('missing_header for %s', async (_name, headers) => {
    expect(reasonOf(await both(BODY, headers, SECRET))).toBe('missing_header');
  });

  const sig = good['webhook-signature'] as string;
  const digest = sig.slice(3);
  // An id whose digest contains '+' or '/', so that its base64url spelling differs from the base64 one.
  const urlId = Array.from({ length: 100 }, (_, i) => `${ID}-${i}`).find((id) =>
    /[+/]/.test(reference(id, TS, BODY, SECRET)),
  ) as string;
  const urlDigest = reference(urlId, TS, BODY, SECRET).slice(3);
  const badSignatures: Array<[string, unknown, unknown, unknown]> = [
    ['a wrong secret', BODY, good, OTHER_SECRET],
    [
      'the secret used as a string key (ZTA style)',
      BODY,
      headersFor({
        'webhook-signature': `v1,${createHmac('sha256', SECRET).update(`${ID}.${TS}.${BODY}`).digest('base64')}`,
      }),
      SECRET,
    ],
    ['a tampered body', `${BODY} `, good, SECRET],
    ['a body for another event', BODY.replace('pageview', 'goal'), good, SECRET],
    ['another webhook-id (replayed under a new id)', BODY, { ...good, 'webhook-id': `${ID}x` }, SECRET],
    [
      'another webhook-timestamp (replayed with a fresh time)',
      BODY,
      { ...good, 'webhook-timestamp': String(TS + 1) },
      SECRET,
    ],
    ['a v2 entry only', BODY, { ...good, 'webhook-signature': `v2,${digest}` }, SECRET],
    ['no version', BODY, { ...good, 'webhook-signature': digest }, SECRET],
    ['V1 in capitals', BODY, { ...good, 'webhook-signature': `V1,${digest}` }, SECRET],
    ['a truncated digest', BODY, { ...good, 'webhook-signature': sig.slice(0, -2) }, SECRET],
    ['a digest without padding', BODY, { ...good, 'webhook-signature': sig.slice(0, -1) }, SECRET],
    [
      'a hex digest',
      BODY,
      { ...good, 'webhook-signature': `v1,${Buffer.from(digest, 'base64').toString('hex')}` },
      SECRET,
    ],
    [
      'a base64url digest',
      BODY,
      {
        ...good,
        'webhook-id': urlId,
        'webhook-signature': `v1,${Buffer.from(urlDigest, 'base64').toString('base64url')}=`,
      },
      SECRET,
    ],
    [
      'an all-zero digest',
      BODY,
      { ...good, 'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')}` },
      SECRET,
    ],
    [
      'a 64-byte digest',
      BODY,
      { ...good, 'webhook-signature': `v1,${Buffer.alloc(64).toString('base64')}` },
      SECRET,
    ],
    ['an empty secret', BODY, good, ''],
    ['a secret that is not base64', BODY, good, 'whsec_***'],
    ['a bare whsec_', BODY, good, 'whsec_'],
    ['an empty list of secrets', BODY, good, []],
    ['a list of unusable secrets', BODY, good, ['', undefined, 42, 'whsec_!']],
    ['a Buffer secret', BODY, good, KEY],
    ['an undefined body', undefined, good, SECRET],
    ['a function body', () => BODY, good, SECRET],
    ['a BigInt body', 1n, good, SECRET],
  ];
  it.each(badSignatures)('bad_signature for %s', async (_name, body, headers, secret) => {
    expect(reasonOf(await both(body, headers, secret))).toBe('bad_signature');
  });

  it('bad_signature for a non-canonical digest (unused low bits set) of the right bytes', async () => {
    // 32 bytes = 43 base64 characters + '='; the last character carries 2 bits that must be zero.
    const last = digest.charAt(42);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const twin = alphabet.charAt(alphabet.indexOf(last) ^ 1);
    const malleated = `v1,${digest.slice(0, 42)}${twin}=`;
    expect(Buffer.from(malleated.slice(3), 'base64')).toEqual(Buffer.from(digest, 'base64'));
    expect(reasonOf(await both(BODY, { ...good, 'webhook-signature': malleated }, SECRET))).toBe(
      'bad_signature',
    );
  });

  it('timestamp_too_old and timestamp_too_new, for authentic deliveries only', async () => {
    const old = headersFor({ 'webhook-timestamp': String(TS - 3600) });
    const future = headersFor({ 'webhook-timestamp': String(TS + 3600) });
    expect(reasonOf(await both(BODY, old, SECRET))).toBe('timestamp_too_old');
    expect(reasonOf(await both(BODY, future, SECRET))).toBe('timestamp_too_new');
    // A forged delivery is reported as such, whatever its timestamp says.
    expect(reasonOf(await both(BODY, old, OTHER_SECRET))).toBe('bad_signature');
    expect(reasonOf(await both(BODY, { ...old, 'webhook-timestamp': String(TS) }, SECRET))).toBe(
      'bad_signature',
    );
  });

  const signedBodies: Array<[string, string | Uint8Array]> = [
    ['not JSON', 'event=pageview'],
    ['empty', ''],
    ['JSON null', 'null'],
    ['a JSON array', `[${BODY}]`],
    ['a JSON string', JSON.stringify(BODY)],
    ['an unknown event type', JSON.stringify({ ...delivery, event: 'purchase' })],
    ['an inherited event name', JSON.stringify({ ...delivery, event: 'toString' })],
    ['no data', JSON.stringify({ event: 'goal', timestamp: delivery.timestamp })],
    ['null data', JSON.stringify({ ...delivery, data: null })],
    ['array data', JSON.stringify({ ...delivery, data: [] })],
    ['a numeric timestamp', JSON.stringify({ ...delivery, timestamp: 1 })],
    ['invalid UTF-8', Uint8Array.from([...Buffer.from(BODY.slice(0, -2)), 0xff, 0x7d])],
  ];
  it.each(signedBodies)('bad_payload for an authentic body that is %s', async (_name, body) => {
    expect(reasonOf(await both(body, headersFor({}, body), SECRET))).toBe('bad_payload');
  });
});

describe('verifyStandardWebhook: tolerance', () => {
  const sentAt = (seconds: number) => headersFor({ 'webhook-timestamp': String(seconds) });
  const seconds = (s: number) => ({ now: new Date(s * 1000) });

  it('accepts exactly ±toleranceSeconds and rejects one second beyond (default 300)', async () => {
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, seconds(TS + 300)))).toBe('ok');
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, seconds(TS + 301)))).toBe('timestamp_too_old');
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, seconds(TS - 300)))).toBe('ok');
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, seconds(TS - 301)))).toBe('timestamp_too_new');
  });

  it('compares whole seconds: milliseconds past the limit still count as the limit', async () => {
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, { now: (TS + 300) * 1000 + 999 }))).toBe('ok');
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, { now: (TS - 300) * 1000 - 1 }))).toBe(
      'timestamp_too_new',
    );
  });

  it('honours a custom tolerance, down to 0 (the same second only)', async () => {
    const tolerance = (toleranceSeconds: number, now: number) => ({ toleranceSeconds, ...seconds(now) });
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, tolerance(10, TS + 10)))).toBe('ok');
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, tolerance(10, TS + 11)))).toBe('timestamp_too_old');
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, tolerance(10, TS - 11)))).toBe('timestamp_too_new');
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, tolerance(0, TS)))).toBe('ok');
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, tolerance(0, TS + 1)))).toBe('timestamp_too_old');
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, tolerance(0, TS - 1)))).toBe('timestamp_too_new');
  });

  it('turns the check off with Infinity', async () => {
    const options = { toleranceSeconds: Number.POSITIVE_INFINITY, ...seconds(TS + 10 * 365 * 86400) };
    expect(reasonOf(await both(BODY, sentAt(TS), SECRET, options))).toBe('ok');
    expect(reasonOf(await both(BODY, sentAt(0), SECRET, options))).toBe('ok');
  });

  it('falls back to 300 s for an invalid tolerance, and to the clock for an invalid now', async () => {
    for (const toleranceSeconds of [-1, Number.NaN, '600', null]) {
      const options = { toleranceSeconds, ...seconds(TS + 301) };
      expect(reasonOf(await both(BODY, sentAt(TS), SECRET, options))).toBe('timestamp_too_old');
      expect(reasonOf(await both(BODY, sentAt(TS), SECRET, { toleranceSeconds, ...seconds(TS + 300) }))).toBe(
        'ok',
      );
    }
    const live = headersFor({ 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) });
    for (const now of [new Date('nope'), Number.NaN, '2025-01-01', {}]) {
      expect(reasonOf(await both(BODY, live, SECRET, { now }))).toBe('ok');
    }
    expect(reasonOf(await both(BODY, live, SECRET, undefined))).toBe('ok');
    expect(reasonOf(await both(BODY, headersFor(), SECRET, undefined))).toBe('timestamp_too_old');
  });

  it('uses the clock by default', async () => {
    const live = headersFor({ 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 290) });
    expect(reasonOf(await both(BODY, live, SECRET, {}))).toBe('ok');
    const stale = headersFor({ 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 400) });
    expect(reasonOf(await both(BODY, stale, SECRET, {}))).toBe('timestamp_too_old');
  });
});

describe('verifyStandardWebhook: rotation', () => {
  const ours = reference(ID, TS, BODY, SECRET);
  const theirs = reference(ID, TS, BODY, OTHER_SECRET);
  const withSignature = (value: unknown) => ({ ...headersFor(), 'webhook-signature': value });

  it('accepts a header with several v1 entries when any one matches, wherever it is', async () => {
    for (const value of [`${ours} ${theirs}`, `${theirs} ${ours}`, `v2,abc ${theirs} ${ours} v1,garbage`]) {
      expect(reasonOf(await both(BODY, withSignature(value), SECRET))).toBe('ok');
    }
    expect(reasonOf(await both(BODY, withSignature(theirs), SECRET))).toBe('bad_signature');
  });

  it('accepts repeated signature headers: an array, or joined by Node / Headers with ", "', async () => {
    expect(reasonOf(await both(BODY, withSignature([theirs, ours]), SECRET))).toBe('ok');
    expect(reasonOf(await both(BODY, withSignature(`${theirs}, ${ours}`), SECRET))).toBe('ok');
    expect(reasonOf(await both(BODY, withSignature(`${ours}, ${theirs}`), SECRET))).toBe('ok');
    const headers = new Headers(headersFor({ 'webhook-signature': theirs }));
    headers.append('webhook-signature', ours);
    expect(reasonOf(await both(BODY, headers, SECRET))).toBe('ok');
  });

  it('accepts a list of secrets, and skips unusable entries', async () => {
    const signedWithOther = withSignature(theirs);
    expect(reasonOf(await both(BODY, signedWithOther, [SECRET, OTHER_SECRET]))).toBe('ok');
    expect(reasonOf(await both(BODY, signedWithOther, [OTHER_SECRET, SECRET]))).toBe('ok');
    expect(reasonOf(await both(BODY, signedWithOther, ['', undefined, 'whsec_!', OTHER_SECRET]))).toBe('ok');
    expect(reasonOf(await both(BODY, signedWithOther, [SECRET]))).toBe('bad_signature');
  });

  it('matches the sender rotating: signStandardPayload with [new, old] verifies with either', async () => {
    const value = signStandardPayload(ID, TS, BODY, [OTHER_SECRET, SECRET]);
    expect(reasonOf(await both(BODY, withSignature(value), SECRET))).toBe('ok');
    expect(reasonOf(await both(BODY, withSignature(value), OTHER_SECRET))).toBe('ok');
    const third = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
    expect(reasonOf(await both(BODY, withSignature(value), third))).toBe('bad_signature');
  });
});

describe('verifyStandardWebhook: properties', () => {
  const REASONS = [
    'missing_header',
    'bad_signature',
    'timestamp_too_old',
    'timestamp_too_new',
    'bad_payload',
  ];

  function checkShape(result: VerifyResult): void {
    if (result.ok) expect(typeof result.event.event).toBe('string');
    else expect(REASONS).toContain(result.reason);
  }

  it('never throws, never rejects, and always returns a result, for arbitrary arguments', async () => {
    const headers = fc.oneof(
      anything,
      fc.constant(headersFor()),
      fc.record({
        'webhook-id': fc.oneof(fc.string(), anything),
        'webhook-timestamp': fc.oneof(fc.string(), fc.nat().map(String), anything),
        'webhook-signature': fc.oneof(fc.string(), fc.array(fc.string()), anything),
      }),
    );
    const secret = fc.oneof(anything, fc.string(), fc.array(anything), fc.constant(SECRET));
    await fc.assert(
      fc.asyncProperty(anything, headers, secret, anything, async (body, hdrs, key, options) => {
        const h = hdrs as Record<string, string>;
        checkShape(verifyStandardWebhook(body, h, key as string, options as typeof at));
        checkShape(await verifyStandardWebhookAsync(body, h, key as string, options as typeof at));
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws for hostile objects (revoked proxies, throwing getters and toJSON)', async () => {
    const boom = (): never => {
      throw new Error('boom');
    };
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const throwing = new Proxy({}, { get: boom, ownKeys: boom, getPrototypeOf: boom, has: boom });
    const hostile: unknown[] = [
      revoked.proxy,
      throwing,
      { toJSON: boom },
      Object.defineProperty({}, 'webhook-id', { enumerable: true, get: boom }),
      { get: boom },
    ];
    for (const value of hostile) {
      for (const args of [
        [value, headersFor(), SECRET, at],
        [BODY, value, SECRET, at],
        [BODY, headersFor(), value, at],
        [BODY, headersFor(), SECRET, value],
      ] as const) {
        const [b, h, s, o] = args as unknown as [unknown, Record<string, string>, string, typeof at];
        expect(() => verifyStandardWebhook(b, h, s, o)).not.toThrow();
        await expect(verifyStandardWebhookAsync(b, h, s, o)).resolves.toHaveProperty('ok');
      }
    }
    // An options object whose getters throw is read as the defaults.
    const options = Object.defineProperty({}, 'now', { get: boom }) as typeof at;
    expect(verifyStandardWebhook(BODY, headersFor(), SECRET, options)).toEqual({
      ok: false,
      reason: 'timestamp_too_old',
    });
  });

  it('sign → verify holds for arbitrary bodies, ids, times and keys (strings and bytes)', async () => {
    const key = fc
      .uint8Array({ minLength: 1, maxLength: 64 })
      .map((k) => `whsec_${Buffer.from(k).toString('base64')}`);
    const body = fc.oneof(fc.string({ unit: 'binary' }), fc.uint8Array({ maxLength: 2048 }));
    await fc.assert(
      fc.asyncProperty(
        body,
        fc.string({ minLength: 1, unit: 'grapheme-ascii' }).filter((s) => s.trim() === s && !s.includes(' ')),
        fc.integer({ min: 0, max: 4_000_000_000 }),
        key,
        async (payload, id, timestamp, secret) => {
          const headers = {
            'webhook-id': id,
            'webhook-timestamp': String(timestamp),
            'webhook-signature': signStandardPayload(id, timestamp, payload, secret),
          };
          const options = { now: timestamp * 1000 };
          // The signature is accepted: the result is ok, or bad_payload when the body is not a delivery.
          const result = await both(payload, headers, secret, options);
          expect(['ok', 'bad_payload']).toContain(reasonOf(result));
          const other = `whsec_${Buffer.alloc(16, 3).toString('base64')}`;
          if (other !== secret)
            expect(reasonOf(await both(payload, headers, other, options))).toBe('bad_signature');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sign → verify gives back the delivery for arbitrary delivery bodies', async () => {
    const deliveryBody = fc
      .record({
        event: fc.constantFrom('pageview', 'event', 'goal', 'alert', 'session_end'),
        timestamp: fc.string(),
        data: fc.dictionary(fc.string(), fc.jsonValue()),
      })
      .map((value) => JSON.stringify(value));
    await fc.assert(
      fc.asyncProperty(deliveryBody, async (text) => {
        const headers = headersFor({ 'webhook-signature': signStandardPayload(ID, TS, text, SECRET) }, text);
        expect(await both(text, headers, SECRET)).toEqual({
          ok: true,
          event: JSON.parse(text),
          id: ID,
          timestamp: TS,
        });
      }),
      { numRuns: 300 },
    );
  });
});
