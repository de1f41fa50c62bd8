// WebCrypto verification for runtimes without node:crypto or Buffer (Cloudflare Workers, Deno, Bun,
// browsers). Uses only `crypto.subtle`, `TextEncoder`/`TextDecoder` and ECMAScript built-ins: no `Buffer`,
// no `node:*` module, no Node-only global. Loaded by both `@zta/webhooks/verify` and
// `@zta/webhooks/verify/web`.
import {
  constantTimeEqual,
  fail,
  hexToBytes,
  parseDelivery,
  readOptions,
  readStandardHeaders,
  type SignatureHeader,
  type StandardHeaders,
  signedBytes,
  standardKeys,
  standardPrefix,
  timestampProblem,
  utf8,
  type VerifyResult,
  type VerifyStandardOptions,
  type WebhookHeaders,
  type WebhookSecret,
  ztaSecrets,
  ztaSignatureHex,
} from './shared.js';

type Subtle = (typeof globalThis)['crypto']['subtle'];

/** `crypto.subtle`, or `undefined` where the runtime has none (then nothing verifies). */
function subtleCrypto(): Subtle | undefined {
  const webCrypto = (globalThis as { crypto?: { subtle?: Subtle } }).crypto;
  return webCrypto?.subtle;
}

async function hmacSha256(subtle: Subtle, key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const cryptoKey = await subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', cryptoKey, data));
}

/**
 * `verifyWebhook` for web runtimes: checks an `X-ZTA-Signature` header with WebCrypto. Same inputs
 * and rules (raw body as string/bytes/`ArrayBuffer`, or a parsed body re-serialised with `JSON.stringify`;
 * exactly `sha256=` + 64 lowercase hex digits; a secret or a list of secrets, key = the whole `whsec_…`
 * string as UTF-8). Resolves to `true` or `false`; never rejects. Digests are compared byte by byte in
 * constant time.
 */
export async function verifyWebhookAsync(
  payload: unknown,
  signature: SignatureHeader,
  secret: WebhookSecret,
): Promise<boolean> {
  try {
    const hex = ztaSignatureHex(signature);
    if (hex === undefined) return false;
    const secrets = ztaSecrets(secret);
    if (secrets.length === 0) return false;
    // A copy: the caller cannot change the bytes between the awaits below.
    const body = signedBytes(payload);
    const subtle = subtleCrypto();
    if (body === undefined || subtle === undefined) return false;
    const claimed = hexToBytes(hex);
    for (const key of secrets) {
      if (constantTimeEqual(await hmacSha256(subtle, utf8(key), body), claimed)) return true;
    }
    return false;
  } catch {
    return false;
  }
}

/**
 * `verifyStandardWebhook` for web runtimes, with WebCrypto: same inputs, checks, order and result.
 * Never rejects.
 */
export async function verifyStandardWebhookAsync(
  body: unknown,
  headers: WebhookHeaders,
  secret: WebhookSecret,
  options?: VerifyStandardOptions,
): Promise<VerifyResult> {
  let parsed: StandardHeaders | undefined;
  try {
    parsed = readStandardHeaders(headers);
  } catch {
    // A hostile headers object is as good as no headers.
  }
  if (parsed === undefined) return fail('missing_header');
  try {
    if (parsed.signatures.length === 0) return fail('bad_signature');
    const keys = standardKeys(secret);
    if (keys.length === 0) return fail('bad_signature');
    const content = signedBytes(body);
    const subtle = subtleCrypto();
    if (content === undefined || subtle === undefined) return fail('bad_signature');

    const prefix = utf8(standardPrefix(parsed.id, parsed.timestampText));
    const signed = new Uint8Array(prefix.length + content.length);
    signed.set(prefix);
    signed.set(content, prefix.length);
    let matched = false;
    for (const key of keys) {
      const digest = await hmacSha256(subtle, key, signed);
      for (const claimed of parsed.signatures) if (constantTimeEqual(digest, claimed)) matched = true;
      if (matched) break;
    }
    if (!matched) return fail('bad_signature');

    const { toleranceSeconds, nowSeconds } = readOptions(options);
    const problem = timestampProblem(parsed.timestamp, nowSeconds, toleranceSeconds);
    if (problem !== undefined) return fail(problem);

    const event = parseDelivery(content);
    if (event === undefined) return fail('bad_payload');
    return { ok: true, event, id: parsed.id, timestamp: parsed.timestamp };
  } catch {
    return fail('bad_signature');
  }
}
