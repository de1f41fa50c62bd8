// The spec's own Node.js and Python verification snippets, run verbatim (test/fixtures), must accept every
// delivery this library signs, and reject tampered bodies and wrong secrets. Deliveries are signed over
// exactly JSON.stringify({ event, timestamp, data }), as the dispatcher sends them.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signPayload, verifyWebhook } from '../../src/verify.js';

const require = createRequire(import.meta.url);
const specNodeVerify = require('../fixtures/spec-node-verify.cjs') as (
  payload: unknown,
  signature: unknown,
  secret: string,
) => boolean;
const pythonHarness = fileURLToPath(new URL('../fixtures/spec_python_harness.py', import.meta.url));

const timestamp = '2024-12-12T16:30:00.000Z';
const deliveries: Array<{ event: string; timestamp: string; data: Record<string, unknown> }> = [
  {
    event: 'pageview',
    timestamp,
    data: {
      siteId: 'site_abc123',
      path: '/blog/my-article',
      referrer: 'https://google.com',
      country: 'US',
      device: 'desktop',
      browser: 'Chrome',
    },
  },
  {
    event: 'event',
    timestamp,
    data: {
      siteId: 'site_abc123',
      action: 'signup_click',
      category: 'conversion',
      label: 'hero_button',
      value: 1,
      path: '/pricing',
    },
  },
  {
    event: 'goal',
    timestamp,
    data: {
      siteId: 'site_abc123',
      goalId: 'goal_abc123',
      goalName: 'Newsletter Signup',
      path: '/thank-you',
      value: 1,
    },
  },
  {
    event: 'alert',
    timestamp,
    data: {
      siteId: 'site_abc123',
      alertId: 'alert_abc123',
      alertName: 'Traffic Spike',
      condition: 'pageviews > 1000',
      currentValue: 1543,
      threshold: 1000,
    },
  },
  { event: 'session_end', timestamp, data: { siteId: 'site_abc123', duration: 12.5, pages: 3 } },
  {
    event: 'event',
    timestamp,
    data: {
      siteId: 'site_abc123',
      label: 'café ☕ 🚀 "quoted" \\ back\nslash \u2028 <script>',
      path: '/ünïcødé?q=1&r=2',
      value: -0.000123,
      nested: { list: [1, null, true, 'x'], empty: {} },
    },
  },
];
const bodies = deliveries.map((delivery) => JSON.stringify(delivery));
const secrets = ['whsec_xyz789', 'whsec_Zm9vYmFyYmF6cXV4LV8rLz0', 'whsec_ünïcødé🔑'];
const WRONG_SECRET = 'whsec_wrong';

/** The same delivery with one character of the site id changed (still valid JSON, same length). */
function tamper(body: string): string {
  const at = body.indexOf('site_abc123');
  return `${body.slice(0, at)}site_abc124${body.slice(at + 'site_abc123'.length)}`;
}

const cases = bodies.flatMap((body) => secrets.map((secret) => ({ body, secret })));

describe("the spec's Node.js verifyWebhook (verbatim, verifies JSON.stringify(req.body))", () => {
  it.each(cases)('accepts our signature: $secret / $body', ({ body, secret }) => {
    const signature = signPayload(body, secret);
    expect(specNodeVerify(JSON.parse(body), signature, secret)).toBe(true);
    expect(verifyWebhook(JSON.parse(body), signature, secret)).toBe(true);
    expect(verifyWebhook(body, signature, secret)).toBe(true);
  });

  it.each(cases)('rejects a tampered body and a wrong secret: $secret / $body', ({ body, secret }) => {
    const signature = signPayload(body, secret);
    expect(specNodeVerify(JSON.parse(tamper(body)), signature, secret)).toBe(false);
    expect(specNodeVerify(JSON.parse(body), signature, WRONG_SECRET)).toBe(false);
    expect(verifyWebhook(tamper(body), signature, secret)).toBe(false);
    expect(verifyWebhook(body, signature, WRONG_SECRET)).toBe(false);
  });

  it('agrees with verifyWebhook on every well-formed signature (property)', () => {
    const delivery = fc.record({
      event: fc.constantFrom('pageview', 'event', 'goal', 'alert', 'session_end'),
      timestamp: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      data: fc.dictionary(fc.string(), fc.jsonValue()),
    });
    fc.assert(
      fc.property(
        delivery,
        fc.constantFrom(...secrets),
        fc.boolean(),
        fc.nat(63),
        (value, secret, good, at) => {
          const body = JSON.stringify(value);
          let signature = signPayload(body, secret);
          if (!good) {
            const i = 7 + at;
            signature = signature.slice(0, i) + (signature[i] === 'a' ? 'b' : 'a') + signature.slice(i + 1);
          }
          const parsed = JSON.parse(body);
          expect(specNodeVerify(parsed, signature, secret)).toBe(good);
          expect(verifyWebhook(parsed, signature, secret)).toBe(good);
          expect(verifyWebhook(body, signature, secret)).toBe(good);
        },
      ),
    );
  });

  it('rejects uppercase hex, as verifyWebhook does', () => {
    const body = bodies[0] ?? '';
    const secret = secrets[0] ?? '';
    const upper = `sha256=${signPayload(body, secret).slice(7).toUpperCase()}`;
    expect(specNodeVerify(JSON.parse(body), upper, secret)).toBe(false);
    expect(verifyWebhook(body, upper, secret)).toBe(false);
  });

  it('throws (where verifyWebhook returns false) on a missing or wrong-length signature: that is the spec code', () => {
    const body = bodies[0] ?? '';
    const secret = secrets[0] ?? '';
    const signature = signPayload(body, secret);
    // timingSafeEqual refuses buffers of different lengths; Buffer.from(undefined) is a TypeError.
    expect(() => specNodeVerify(JSON.parse(body), signature.slice(0, -1), secret)).toThrow(RangeError);
    expect(() => specNodeVerify(JSON.parse(body), `${signature}0`, secret)).toThrow(RangeError);
    expect(() => specNodeVerify(JSON.parse(body), undefined, secret)).toThrow(TypeError);
    expect(verifyWebhook(body, signature.slice(0, -1), secret)).toBe(false);
    expect(verifyWebhook(body, `${signature}0`, secret)).toBe(false);
    expect(verifyWebhook(body, undefined, secret)).toBe(false);
  });

  it('needs the parsed body: given the raw string it signs JSON.stringify(string) and fails', () => {
    const body = bodies[0] ?? '';
    const secret = secrets[0] ?? '';
    expect(specNodeVerify(body, signPayload(body, secret), secret)).toBe(false);
  });
});

type PythonCase = { payload: string; signature: string; secret: string };
type PythonResult = { ok: boolean } | { error: string };

function runPython(batch: PythonCase[]): PythonResult[] {
  const run = spawnSync('python3', ['-B', pythonHarness], {
    input: JSON.stringify(batch),
    encoding: 'utf8',
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONIOENCODING: 'utf-8' },
    timeout: 15_000,
  });
  if (run.status !== 0) throw new Error(`python3 harness failed (${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout) as PythonResult[];
}

// python3 is part of the supported dev and CI machine: without it these tests fail rather than skip.
describe("the spec's Python verify_webhook (verbatim, verifies request.data.decode())", () => {
  it('accepts our signatures and rejects tampered bodies, wrong secrets and malformed signatures', () => {
    const batch: Array<PythonCase & { expected: boolean; label: string }> = [];
    for (const { body, secret } of cases) {
      const signature = signPayload(body, secret);
      const hex = signature.slice(7);
      batch.push(
        { label: 'valid', payload: body, signature, secret, expected: true },
        { label: 'tampered body', payload: tamper(body), signature, secret, expected: false },
        { label: 'wrong secret', payload: body, signature, secret: WRONG_SECRET, expected: false },
        {
          label: 'uppercase hex',
          payload: body,
          signature: `sha256=${hex.toUpperCase()}`,
          secret,
          expected: false,
        },
        { label: 'no prefix', payload: body, signature: hex, secret, expected: false },
        { label: 'too short', payload: body, signature: signature.slice(0, -1), secret, expected: false },
        { label: 'empty', payload: body, signature: '', secret, expected: false },
      );
    }
    const results = runPython(batch);
    expect(results).toHaveLength(batch.length);
    batch.forEach((c, i) => {
      const ours = verifyWebhook(c.payload, c.signature, c.secret);
      expect(ours, `verifyWebhook, ${c.label}: ${c.payload}`).toBe(c.expected);
      expect(results[i], `python, ${c.label}: ${c.payload}`).toEqual({ ok: c.expected });
    });
  });

  it('accepts arbitrary deliveries signed by signPayload (sampled property)', () => {
    const delivery = fc.record({
      event: fc.constantFrom('pageview', 'event', 'goal', 'alert', 'session_end'),
      timestamp: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      data: fc.dictionary(fc.string({ unit: 'grapheme' }), fc.jsonValue({ stringUnit: 'grapheme' })),
    });
    const secret = fc.string({ minLength: 1, unit: 'grapheme' }).map((s) => `whsec_${s}`);
    const batch = fc.sample(fc.tuple(delivery, secret), { numRuns: 300, seed: 42 }).map(([value, key]) => {
      const body = JSON.stringify(value);
      return { payload: body, signature: signPayload(body, key), secret: key };
    });
    const results = runPython(batch);
    batch.forEach((c, i) => {
      expect(results[i], `python: ${c.payload} / ${c.secret}`).toEqual({ ok: true });
      expect(verifyWebhook(c.payload, c.signature, c.secret)).toBe(true);
    });
  });
});
