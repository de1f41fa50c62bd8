import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SIGNATURE_PREFIX, signPayload, verifyWebhook } from '../../src/verify.js';
import { anything } from '../support/arbitraries.js';

const SECRET = 'whsec_xyz789';
const OTHER_SECRET = 'whsec_other';

const delivery = {
  event: 'pageview',
  timestamp: '2024-12-12T16:30:00.000Z',
  data: {
    siteId: 'site_abc123',
    path: '/blog/my-article',
    referrer: 'https://google.com',
    country: 'US',
    device: 'desktop',
    browser: 'Chrome',
  },
};
const BODY = JSON.stringify(delivery);
const SIGNATURE = signPayload(BODY, SECRET);

function reference(body: string | Uint8Array, secret: string): string {
  return `sha256=${createHmac('sha256', Buffer.from(secret, 'utf8')).update(body).digest('hex')}`;
}

/** A well-formed signature that differs from `signature` in one hex digit. */
function flipDigit(signature: string, index = signature.length - 1): string {
  const c = signature[index];
  return signature.slice(0, index) + (c === '0' ? '1' : '0') + signature.slice(index + 1);
}

describe('signPayload', () => {
  it("is 'sha256=' + hex HMAC-SHA256 of the body bytes keyed with the whole secret string", () => {
    expect(SIGNATURE).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(SIGNATURE.startsWith(SIGNATURE_PREFIX)).toBe(true);
    expect(SIGNATURE).toBe(reference(BODY, SECRET));
    // The key is the whole `whsec_...` string, not the part after the prefix.
    expect(SIGNATURE).not.toBe(reference(BODY, 'xyz789'));
  });

  it('signs strings as UTF-8 and bytes as they are', () => {
    const body = '{"path":"/café ☕ 🚀"}';
    const bytes = Buffer.from(body, 'utf8');
    expect(signPayload(body, SECRET)).toBe(signPayload(bytes, SECRET));
    expect(signPayload(new Uint8Array(bytes), SECRET)).toBe(signPayload(body, SECRET));
    expect(signPayload(body, 'whsec_ünïcødé')).toBe(reference(body, 'whsec_ünïcødé'));
  });

  it('matches known vectors', () => {
    // printf '%s' '{"event":"pageview"}' | openssl dgst -sha256 -hmac whsec_xyz789
    expect(signPayload('{"event":"pageview"}', SECRET)).toBe(
      'sha256=e12c7ab3761ed4a2a4544e5d0660c805ec83039f2e274c1fe407114bc2b881db',
    );
    // printf '' | openssl dgst -sha256 -hmac whsec_xyz789
    expect(signPayload('', SECRET)).toBe(
      'sha256=0697786e6620151d19ebf3614d2e1e158dab209fac57ce3ffce61ef91263f0bb',
    );
  });

  it('throws a TypeError for an empty or non-string secret or a non-byte body', () => {
    expect(() => signPayload(BODY, '')).toThrow(TypeError);
    expect(() => signPayload(BODY, undefined as unknown as string)).toThrow(TypeError);
    expect(() => signPayload({ a: 1 } as unknown as string, SECRET)).toThrow(TypeError);
  });
});

describe('verifyWebhook: round trips', () => {
  it('accepts the raw body as a string', () => {
    expect(verifyWebhook(BODY, SIGNATURE, SECRET)).toBe(true);
  });

  it('accepts the raw body as a Buffer (express.raw) and as a Uint8Array', () => {
    const buffer = Buffer.from(BODY, 'utf8');
    expect(verifyWebhook(buffer, SIGNATURE, SECRET)).toBe(true);
    expect(verifyWebhook(new Uint8Array(buffer), SIGNATURE, SECRET)).toBe(true);
  });

  it('accepts an ArrayBuffer and a view onto part of a larger buffer (fetch Request.arrayBuffer)', () => {
    const bytes = Buffer.from(BODY, 'utf8');
    const arrayBuffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    expect(verifyWebhook(arrayBuffer, SIGNATURE, SECRET)).toBe(true);
    const big = new Uint8Array(bytes.length + 20);
    big.set(bytes, 7);
    expect(verifyWebhook(new DataView(big.buffer, 7, bytes.length), SIGNATURE, SECRET)).toBe(true);
    expect(verifyWebhook(big.subarray(7, 7 + bytes.length), SIGNATURE, SECRET)).toBe(true);
  });

  it('takes an ArrayBuffer from another realm (node:vm, a test environment) as raw bytes too', () => {
    const foreign = (text: string): unknown =>
      vm.runInNewContext('new Uint8Array(bytes).buffer', { bytes: [...Buffer.from(text, 'utf8')] });
    const arrayBuffer = foreign(BODY);
    expect(arrayBuffer instanceof ArrayBuffer).toBe(false);
    expect(verifyWebhook(arrayBuffer, SIGNATURE, SECRET)).toBe(true);
    // Not re-serialised as an object: JSON.stringify would render it as "{}".
    expect(verifyWebhook(foreign('{"forged":true}'), signPayload('{}', SECRET), SECRET)).toBe(false);
  });

  it('accepts the parsed JSON body (express.json), re-serialised with JSON.stringify', () => {
    expect(verifyWebhook(JSON.parse(BODY), SIGNATURE, SECRET)).toBe(true);
    expect(verifyWebhook(delivery, SIGNATURE, SECRET)).toBe(true);
  });

  it('handles non-ASCII bodies and secrets', () => {
    const body = JSON.stringify({ event: 'event', data: { label: 'café ☕ 🚀 \u2028' } });
    const secret = 'whsec_ünïcødé🔑';
    const signature = signPayload(body, secret);
    expect(verifyWebhook(body, signature, secret)).toBe(true);
    expect(verifyWebhook(Buffer.from(body), signature, secret)).toBe(true);
    expect(verifyWebhook(JSON.parse(body), signature, secret)).toBe(true);
  });

  it('accepts a single-element header array', () => {
    expect(verifyWebhook(BODY, [SIGNATURE], SECRET)).toBe(true);
  });
});

describe('verifyWebhook: rejections', () => {
  it('rejects a tampered body', () => {
    expect(verifyWebhook(`${BODY} `, SIGNATURE, SECRET)).toBe(false);
    expect(verifyWebhook(BODY.replace('pageview', 'goal'), SIGNATURE, SECRET)).toBe(false);
    expect(verifyWebhook({ ...delivery, event: 'goal' }, SIGNATURE, SECRET)).toBe(false);
    const bytes = Buffer.from(BODY);
    bytes[10] = (bytes[10] ?? 0) ^ 1;
    expect(verifyWebhook(bytes, SIGNATURE, SECRET)).toBe(false);
  });

  it('rejects a parsed body whose key order differs from the sent bytes (use the raw body)', () => {
    const { data, timestamp, event } = delivery;
    expect(verifyWebhook({ data, timestamp, event }, SIGNATURE, SECRET)).toBe(false);
    expect(verifyWebhook(JSON.stringify(delivery, null, 2), SIGNATURE, SECRET)).toBe(false);
  });

  it('rejects a wrong secret, including the secret without its whsec_ prefix', () => {
    expect(verifyWebhook(BODY, SIGNATURE, OTHER_SECRET)).toBe(false);
    expect(verifyWebhook(BODY, SIGNATURE, 'xyz789')).toBe(false);
    expect(verifyWebhook(BODY, SIGNATURE, `${SECRET} `)).toBe(false);
  });

  const hex = SIGNATURE.slice(7);
  const badSignatures: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['null', null],
    ['empty string', ''],
    ['prefix only', 'sha256='],
    ['hex without prefix', hex],
    ['wrong algorithm prefix', `sha512=${hex}`],
    ['prefix in uppercase', `SHA256=${hex}`],
    ['hex in uppercase', `sha256=${hex.toUpperCase()}`],
    ['one uppercase digit', `sha256=${hex.replace(/[a-f]/, (c) => c.toUpperCase())}`],
    ['one digit short', SIGNATURE.slice(0, -1)],
    ['one digit long', `${SIGNATURE}0`],
    ['odd trailing nibble', `${SIGNATURE.slice(0, -1)}g`],
    ['non-hex character', `sha256=${'z'.repeat(64)}`],
    ['base64 digest', `sha256=${Buffer.from(hex, 'hex').toString('base64')}`],
    ['leading space', ` ${SIGNATURE}`],
    ['trailing newline', `${SIGNATURE}\n`],
    ['space after prefix', `sha256= ${hex.slice(1)}`],
    ['two joined headers', `${SIGNATURE}, ${SIGNATURE}`],
    ['one flipped digit', flipDigit(SIGNATURE)],
    ['first digit flipped', flipDigit(SIGNATURE, 7)],
    ['all zeros', `sha256=${'0'.repeat(64)}`],
    ['non-ASCII of the right length', `sha256=${'é'.repeat(64)}`],
    ['empty array', []],
    ['two identical values', [SIGNATURE, SIGNATURE]],
    ['a valid and an invalid value', [SIGNATURE, 'sha256=00']],
    ['an invalid and a valid value', ['sha256=00', SIGNATURE]],
    ['nested array', [[SIGNATURE]]],
    ['array of a non-string', [42]],
    ['number', 42],
    ['object', { toString: () => SIGNATURE }],
    ['Buffer of the header', Buffer.from(SIGNATURE)],
    ['boxed string', Object(SIGNATURE)],
  ];
  it.each(badSignatures)('rejects a signature that is: %s', (_name, signature) => {
    expect(verifyWebhook(BODY, signature as string, SECRET)).toBe(false);
    expect(verifyWebhook(delivery, signature as string, SECRET)).toBe(false);
  });

  const badSecrets: Array<[string, unknown]> = [
    ['empty string', ''],
    ['undefined', undefined],
    ['null', null],
    ['number', 42],
    ['Buffer of the secret', Buffer.from(SECRET)],
    ['empty list', []],
    ['list of empty strings', ['', '']],
    ['list of non-strings', [undefined, null, 1, Buffer.from(SECRET)]],
    ['nested list', [[SECRET]]],
    ['object', { secret: SECRET }],
  ];
  it.each(badSecrets)('rejects a secret that is: %s', (_name, secret) => {
    expect(verifyWebhook(BODY, SIGNATURE, secret as string)).toBe(false);
  });

  it('takes a list with an unset entry (an environment variable not set), typed as such', () => {
    const unset: string | undefined = process.env.ZTA_TEST_UNSET_SECRET_VARIABLE;
    expect(unset).toBeUndefined();
    expect(verifyWebhook(BODY, SIGNATURE, [unset, SECRET])).toBe(true);
    expect(verifyWebhook(BODY, SIGNATURE, [unset, null])).toBe(false);
  });

  it('rejects an empty secret even when the signature was made with it', () => {
    const signature = reference(BODY, '');
    expect(verifyWebhook(BODY, signature, '')).toBe(false);
    expect(verifyWebhook(BODY, signature, [''])).toBe(false);
  });

  it('does not mistake a JSON string value for its serialisation: strings are raw bodies', () => {
    // JSON.stringify('hello') is '"hello"'; a string payload is always the raw body itself.
    const signature = signPayload('"hello"', SECRET);
    expect(verifyWebhook('"hello"', signature, SECRET)).toBe(true);
    expect(verifyWebhook('hello', signature, SECRET)).toBe(false);
  });
});

describe('verifyWebhook: never throws', () => {
  const boom = (): never => {
    throw new Error('boom');
  };
  const cyclic: Record<string, unknown> = { event: 'pageview' };
  cyclic.self = cyclic;
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const detached = new Uint8Array(new ArrayBuffer(8));
  structuredClone(detached.buffer, { transfer: [detached.buffer] });

  const hostilePayloads: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('x')],
    ['a BigInt', 10n],
    ['an object holding a BigInt', { value: 10n }],
    ['a cyclic object', cyclic],
    ['a throwing toJSON', { toJSON: boom }],
    ['a throwing getter', Object.defineProperty({}, 'x', { enumerable: true, get: boom })],
    ['a revoked proxy', revoked.proxy],
    ['a proxy with throwing traps', new Proxy({}, { ownKeys: boom, getPrototypeOf: boom, get: boom })],
    ['a detached buffer view', detached],
  ];
  it.each(hostilePayloads)('returns false for a payload that is %s', (_name, payload) => {
    expect(verifyWebhook(payload, SIGNATURE, SECRET)).toBe(false);
    expect(verifyWebhook(payload, SIGNATURE, [OTHER_SECRET, SECRET])).toBe(false);
  });

  it('returns false for hostile signature and secret arguments', () => {
    const throwingArray = new Proxy([SIGNATURE], { get: boom });
    expect(verifyWebhook(BODY, throwingArray as unknown as string[], SECRET)).toBe(false);
    expect(verifyWebhook(BODY, revoked.proxy as unknown as string, SECRET)).toBe(false);
    expect(verifyWebhook(BODY, SIGNATURE, revoked.proxy as unknown as string)).toBe(false);
    expect(verifyWebhook(BODY, SIGNATURE, throwingArray as unknown as string[])).toBe(false);
  });

  it('is not fooled by a toJSON that verifies another delivery while the payload is serialised', () => {
    let innerResult: boolean | undefined;
    const payload = {
      toJSON: () => {
        innerResult = verifyWebhook(BODY, SIGNATURE, SECRET);
        return delivery;
      },
    };
    expect(verifyWebhook(payload, flipDigit(SIGNATURE), SECRET)).toBe(false);
    expect(innerResult).toBe(true);
    expect(verifyWebhook(payload, SIGNATURE, [OTHER_SECRET, SECRET])).toBe(true);
  });

  it('signs and verifies a JSON null, like the spec snippet would', () => {
    // JSON.stringify(null) is 'null': consistent with the spec's re-serialisation rule.
    expect(verifyWebhook(null, signPayload('null', SECRET), SECRET)).toBe(true);
  });

  it('never throws and returns a boolean for arbitrary inputs (property)', () => {
    const signature = fc.oneof(
      anything,
      fc.string(),
      fc.constant(SIGNATURE),
      fc.array(fc.oneof(fc.string(), fc.constant(SIGNATURE))),
      fc.stringMatching(/^sha256=[0-9a-fA-F]{64}$/),
    );
    const secret = fc.oneof(anything, fc.string(), fc.array(anything), fc.constant(SECRET));
    fc.assert(
      fc.property(anything, signature, secret, (payload, sig, key) => {
        const result = verifyWebhook(payload, sig as string, key as string);
        expect(typeof result).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});

describe('verifyWebhook: secret lists (rotation)', () => {
  it('accepts when any secret in the list matches, wherever it is', () => {
    expect(verifyWebhook(BODY, SIGNATURE, [SECRET])).toBe(true);
    expect(verifyWebhook(BODY, SIGNATURE, [OTHER_SECRET, SECRET])).toBe(true);
    expect(verifyWebhook(BODY, SIGNATURE, [SECRET, OTHER_SECRET])).toBe(true);
    expect(verifyWebhook(Buffer.from(BODY), SIGNATURE, ['a', 'b', SECRET])).toBe(true);
    expect(verifyWebhook(delivery, SIGNATURE, [OTHER_SECRET, SECRET])).toBe(true);
  });

  it('rejects when no secret matches', () => {
    expect(verifyWebhook(BODY, SIGNATURE, [OTHER_SECRET])).toBe(false);
    expect(verifyWebhook(BODY, SIGNATURE, [OTHER_SECRET, 'whsec_third'])).toBe(false);
    expect(verifyWebhook(`${BODY}x`, SIGNATURE, [OTHER_SECRET, SECRET])).toBe(false);
  });

  it('skips empty and non-string entries (e.g. an unset old secret) instead of failing', () => {
    const oldSecret = undefined as unknown as string;
    expect(verifyWebhook(BODY, SIGNATURE, [SECRET, oldSecret])).toBe(true);
    expect(verifyWebhook(BODY, SIGNATURE, ['', oldSecret, SECRET])).toBe(true);
    expect(verifyWebhook(BODY, SIGNATURE, ['', oldSecret])).toBe(false);
  });

  it('verifies each delivery with whichever secret signed it (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.string(),
        (secrets, pick, body) => {
          const signer = secrets[pick % secrets.length] ?? '';
          const signature = signPayload(body, signer);
          expect(verifyWebhook(body, signature, secrets)).toBe(true);
          const others = secrets.filter((s) => s !== signer);
          expect(verifyWebhook(body, signature, others)).toBe(false);
        },
      ),
    );
  });
});

describe('sign → verify (properties)', () => {
  const secret = fc.string({ minLength: 1, unit: 'binary' });

  it('holds for arbitrary strings, including lone surrogates', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), secret, (body, key) => {
        const signature = signPayload(body, key);
        expect(verifyWebhook(body, signature, key)).toBe(true);
        expect(verifyWebhook(Buffer.from(body, 'utf8'), signature, key)).toBe(true);
        expect(signature).toBe(reference(body, key));
      }),
    );
  });

  it('holds for arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), secret, (body, key) => {
        const signature = signPayload(body, key);
        expect(verifyWebhook(body, signature, key)).toBe(true);
        expect(verifyWebhook(Buffer.from(body), signature, key)).toBe(true);
      }),
    );
  });

  it('holds for parsed JSON bodies re-serialised with JSON.stringify', () => {
    // A top-level JSON string is the one exception: a string payload is always taken as the raw body.
    const parsedBody = fc.jsonValue().filter((value) => typeof value !== 'string');
    fc.assert(
      fc.property(parsedBody, secret, (value, key) => {
        const body = JSON.stringify(value);
        const signature = signPayload(body, key);
        expect(verifyWebhook(JSON.parse(body), signature, key)).toBe(true);
      }),
    );
  });

  it('rejects any single-bit change of the body or any other well-formed signature', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 512 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (body, at, bit) => {
          const signature = signPayload(body, SECRET);
          const tampered = Uint8Array.from(body);
          const i = at % tampered.length;
          tampered[i] = (tampered[i] ?? 0) ^ (1 << bit);
          expect(verifyWebhook(tampered, signature, SECRET)).toBe(false);
          expect(verifyWebhook(body, flipDigit(signature, 7 + (at % 64)), SECRET)).toBe(false);
        },
      ),
    );
  });
});

describe('the @zta/webhooks/verify entry', () => {
  it('exports exactly the receiver-side API', async () => {
    const entry = await import('../../src/verify.js');
    expect(Object.keys(entry).sort()).toEqual([
      'SIGNATURE_PREFIX',
      'signPayload',
      'signStandardPayload',
      'verifyStandardWebhook',
      'verifyStandardWebhookAsync',
      'verifyWebhook',
      'verifyWebhookAsync',
    ]);
  });

  it('imports nothing but node:crypto and its own files', () => {
    const srcDir = fileURLToPath(new URL('../../src/', import.meta.url));
    const files = ['verify.ts', 'verify-web.ts', ...readdirSync(`${srcDir}verify`).map((f) => `verify/${f}`)];
    // Modules the web entry loads: not even node:crypto.
    const webFiles = ['verify-web.ts', 'verify/web.ts', 'verify/shared.ts', 'verify/payload-types.ts'];
    for (const file of files) {
      const source = readFileSync(`${srcDir}${file}`, 'utf8');
      const specifiers = [
        ...source.matchAll(/\bfrom\s+['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]/g),
      ].map((m) => m[1] ?? m[2]);
      for (const specifier of specifiers) {
        const allowed =
          (specifier === 'node:crypto' && !webFiles.includes(file)) ||
          (file === 'verify.ts'
            ? specifier === './verify/index.js'
            : file === 'verify-web.ts'
              ? /^\.\/verify\/[\w-]+\.js$/.test(specifier ?? '')
              : /^\.\/[\w-]+\.js$/.test(specifier ?? ''));
        expect(allowed, `${file} imports ${specifier}`).toBe(true);
      }
      expect(source, `${file} uses require`).not.toMatch(/\brequire\s*\(/);
    }
  });
});
