// The WebCrypto verifiers (`@zta/webhooks/verify/web`): the same answers as the node:crypto ones, never a
// rejection, and a bundle of the web entry that runs where there is no Buffer, no process, no require and no
// node:* module: a fresh `node:vm` context holding only crypto, TextEncoder, TextDecoder, atob and btoa.
import { webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { build } from 'esbuild';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  signPayload,
  signStandardPayload,
  verifyStandardWebhook,
  verifyStandardWebhookAsync,
  verifyWebhook,
  verifyWebhookAsync,
} from '../../src/verify.js';
import * as webEntry from '../../src/verify-web.js';
import { anything } from '../support/arbitraries.js';

const SECRET = 'whsec_xyz789';
const OTHER_SECRET = 'whsec_other';
const STANDARD_SECRET = `whsec_${Buffer.alloc(32, 0x42).toString('base64')}`;
const BODY = JSON.stringify({
  event: 'alert',
  timestamp: '2025-06-01T12:00:00.000Z',
  data: {
    siteId: 'site_1',
    alertId: 'a1',
    alertName: 'Spike ☕',
    condition: '>',
    currentValue: 9,
    threshold: 5,
  },
});
const SIGNATURE = signPayload(BODY, SECRET);

describe('verifyWebhookAsync', () => {
  it('accepts what signPayload signs, in every body form, and rejects tampering', async () => {
    const bytes = Buffer.from(BODY);
    for (const body of [
      BODY,
      bytes,
      new Uint8Array(bytes),
      Uint8Array.from(bytes).buffer,
      JSON.parse(BODY),
    ]) {
      expect(await verifyWebhookAsync(body, SIGNATURE, SECRET)).toBe(true);
      expect(await verifyWebhookAsync(body, [SIGNATURE], [OTHER_SECRET, SECRET])).toBe(true);
      expect(await verifyWebhookAsync(body, SIGNATURE, OTHER_SECRET)).toBe(false);
    }
    expect(await verifyWebhookAsync(`${BODY} `, SIGNATURE, SECRET)).toBe(false);
    expect(await verifyWebhookAsync(BODY, SIGNATURE.toUpperCase(), SECRET)).toBe(false);
    expect(await verifyWebhookAsync(BODY, [SIGNATURE, SIGNATURE], SECRET)).toBe(false);
    expect(await verifyWebhookAsync(BODY, SIGNATURE, '')).toBe(false);
    expect(await verifyWebhookAsync(BODY, SIGNATURE, 'xyz789')).toBe(false);
  });

  it('refuses a signature wrong in any one byte, as verifyWebhook does', async () => {
    const hex = SIGNATURE.slice('sha256='.length);
    for (let i = 0; i < hex.length; i += 2) {
      const flipped = (Number.parseInt(hex[i + 1]!, 16) ^ 1).toString(16);
      const wrong = `sha256=${hex.slice(0, i + 1)}${flipped}${hex.slice(i + 2)}`;
      expect(await verifyWebhookAsync(BODY, wrong, SECRET)).toBe(false);
      expect(verifyWebhook(BODY, wrong, SECRET)).toBe(false);
    }
  });

  it('copies the body before awaiting: later changes to the caller buffer do not matter', async () => {
    const bytes = new TextEncoder().encode(BODY);
    const pending = verifyWebhookAsync(bytes, SIGNATURE, [OTHER_SECRET, 'whsec_third', SECRET]);
    bytes.fill(0);
    expect(await pending).toBe(true);
  });

  it('gives the same answer as verifyWebhook, and never rejects, for arbitrary arguments (property)', async () => {
    const payload = fc.oneof(fc.string({ unit: 'binary' }), fc.uint8Array(), fc.jsonValue(), anything);
    const signature = fc.oneof(
      anything,
      fc.constant(SIGNATURE),
      fc.stringMatching(/^sha256=[0-9a-f]{64}$/),
      fc.array(fc.oneof(fc.string(), fc.constant(SIGNATURE))),
    );
    const secret = fc.oneof(anything, fc.string(), fc.array(anything), fc.constant(SECRET));
    await fc.assert(
      fc.asyncProperty(payload, signature, secret, async (body, sig, key) => {
        const expected = verifyWebhook(body, sig as string, key as string);
        expect(await verifyWebhookAsync(body, sig as string, key as string)).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('sign (node:crypto) → verify (WebCrypto) holds for arbitrary bodies and secrets (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ unit: 'binary' }), fc.uint8Array({ maxLength: 2048 })),
        fc.string({ minLength: 1, unit: 'binary' }),
        async (body, key) => {
          expect(await verifyWebhookAsync(body, signPayload(body, key), key)).toBe(true);
          expect(await verifyWebhookAsync(body, signPayload(body, key), `${key}x`)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never rejects for hostile arguments', async () => {
    const boom = (): never => {
      throw new Error('boom');
    };
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const detached = new Uint8Array(new ArrayBuffer(8));
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    const hostile: unknown[] = [
      revoked.proxy,
      { toJSON: boom },
      new Proxy([SIGNATURE], { get: boom }),
      detached,
    ];
    for (const value of hostile) {
      await expect(verifyWebhookAsync(value, SIGNATURE, SECRET)).resolves.toBe(false);
      await expect(verifyWebhookAsync(BODY, value as string, SECRET)).resolves.toBe(false);
      await expect(verifyWebhookAsync(BODY, SIGNATURE, value as string)).resolves.toBe(false);
    }
  });
});

describe('the @zta/webhooks/verify/web entry', () => {
  it('exports exactly the WebCrypto verifiers', () => {
    expect(Object.keys(webEntry).sort()).toEqual(['verifyStandardWebhookAsync', 'verifyWebhookAsync']);
  });

  it('references no Buffer, process, require or node:* module in its sources', () => {
    const srcDir = new URL('../../src/', import.meta.url);
    for (const file of ['verify-web.ts', 'verify/web.ts', 'verify/shared.ts', 'verify/payload-types.ts']) {
      const code = readFileSync(new URL(file, srcDir), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
      expect(code, file).not.toMatch(/\bBuffer\b|\bprocess\b|\brequire\b|node:|\bglobal\./);
    }
  });
});

describe('the bundled web entry, in a context without Node.js globals', () => {
  async function bundle(): Promise<string> {
    const result = await build({
      entryPoints: [fileURLToPath(new URL('../../src/verify-web.ts', import.meta.url))],
      bundle: true,
      write: false,
      format: 'iife',
      globalName: 'ztaVerifyWeb',
      // `neutral`: no Node built-ins to resolve, so importing one fails the build.
      platform: 'neutral',
      target: 'es2022',
      logLevel: 'silent',
    });
    return result.outputFiles[0]!.text;
  }

  /** Runs `script` (an async function body) in a fresh context that has only the five web globals. */
  async function runIsolated(code: string, script: string, input: unknown): Promise<unknown> {
    const context = vm.createContext({ crypto: webcrypto, TextEncoder, TextDecoder, atob, btoa });
    vm.runInContext(code, context, { filename: 'verify-web.bundle.js' });
    context.inputJson = JSON.stringify(input);
    const output: unknown = await vm.runInContext(
      `(async () => { const input = JSON.parse(inputJson); ${script} })()`,
      context,
    );
    return JSON.parse(output as string);
  }

  it('bundles without any node:* import and without Buffer, process or require in the code', async () => {
    const code = await bundle();
    expect(code).not.toMatch(/\bBuffer\b|\bprocess\b|\brequire\b|node:/);
  });

  it('verifies node-signed deliveries, and rejects forged ones, with Buffer, require and process undefined', async () => {
    const code = await bundle();
    const timestamp = Math.floor(Date.now() / 1000);
    const id = 'dlv_web_1';
    const input = {
      body: BODY,
      bodyBytes: [...Buffer.from(BODY)],
      zta: { signature: SIGNATURE, secret: SECRET, other: OTHER_SECRET },
      standard: {
        id,
        timestamp: String(timestamp),
        signature: signStandardPayload(id, timestamp, BODY, STANDARD_SECRET),
        rotated: signStandardPayload(id, timestamp, BODY, [`whsec_${btoa('old key')}`, STANDARD_SECRET]),
        secret: STANDARD_SECRET,
        nowMs: timestamp * 1000,
      },
    };
    const script = `
      const { verifyWebhookAsync, verifyStandardWebhookAsync } = ztaVerifyWeb;
      const { zta, standard } = input;
      const bytes = Uint8Array.from(input.bodyBytes);
      const headers = (signature, ts = standard.timestamp) => ({
        'Webhook-Id': standard.id, 'webhook-timestamp': ts, 'webhook-signature': signature,
      });
      const options = { now: standard.nowMs };
      const out = {
        globals: [typeof Buffer, typeof require, typeof process, typeof module, typeof setTimeout, typeof Headers],
        zta: {
          string: await verifyWebhookAsync(input.body, zta.signature, zta.secret),
          bytes: await verifyWebhookAsync(bytes, zta.signature, zta.secret),
          arrayBuffer: await verifyWebhookAsync(bytes.buffer, zta.signature, zta.secret),
          parsed: await verifyWebhookAsync(JSON.parse(input.body), zta.signature, zta.secret),
          list: await verifyWebhookAsync(input.body, [zta.signature], [zta.other, zta.secret]),
          tampered: await verifyWebhookAsync(input.body + ' ', zta.signature, zta.secret),
          wrongSecret: await verifyWebhookAsync(input.body, zta.signature, zta.other),
          noSignature: await verifyWebhookAsync(input.body, undefined, zta.secret),
        },
        standard: {
          string: await verifyStandardWebhookAsync(input.body, headers(standard.signature), standard.secret, options),
          bytes: await verifyStandardWebhookAsync(bytes, new Map(Object.entries({
            'webhook-id': standard.id, 'webhook-timestamp': standard.timestamp, 'webhook-signature': standard.signature,
          })), standard.secret, options),
          rotated: await verifyStandardWebhookAsync(bytes.buffer, headers(standard.rotated), [standard.secret], options),
          tampered: await verifyStandardWebhookAsync(input.body + ' ', headers(standard.signature), standard.secret, options),
          forgedTime: await verifyStandardWebhookAsync(input.body, headers(standard.signature, '1'), standard.secret, options),
          late: await verifyStandardWebhookAsync(input.body, headers(standard.signature), standard.secret, { now: standard.nowMs + 301000 }),
          early: await verifyStandardWebhookAsync(input.body, headers(standard.signature), standard.secret, { now: new Date(standard.nowMs - 301000) }),
          missing: await verifyStandardWebhookAsync(input.body, {}, standard.secret, options),
          hostile: await verifyStandardWebhookAsync(undefined, null, Symbol('x'), NaN),
        },
      };
      return JSON.stringify(out);
    `;
    const out = await runIsolated(code, script, input);
    const event = JSON.parse(BODY);
    expect(out).toEqual({
      globals: ['undefined', 'undefined', 'undefined', 'undefined', 'undefined', 'undefined'],
      zta: {
        string: true,
        bytes: true,
        arrayBuffer: true,
        parsed: true,
        list: true,
        tampered: false,
        wrongSecret: false,
        noSignature: false,
      },
      standard: {
        string: { ok: true, event, id, timestamp },
        bytes: { ok: true, event, id, timestamp },
        rotated: { ok: true, event, id, timestamp },
        tampered: { ok: false, reason: 'bad_signature' },
        forgedTime: { ok: false, reason: 'bad_signature' },
        late: { ok: false, reason: 'timestamp_too_old' },
        early: { ok: false, reason: 'timestamp_too_new' },
        missing: { ok: false, reason: 'missing_header' },
        hostile: { ok: false, reason: 'missing_header' },
      },
    });
    // And the same deliveries through the node:crypto verifier, for comparison.
    const headers = {
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': input.standard.signature,
    };
    expect(verifyStandardWebhook(BODY, headers, STANDARD_SECRET)).toEqual({ ok: true, event, id, timestamp });
    expect(await verifyStandardWebhookAsync(BODY, headers, STANDARD_SECRET)).toEqual({
      ok: true,
      event,
      id,
      timestamp,
    });
  });
});
