import { createHmac, timingSafeEqual } from 'node:crypto';

import { type SignatureHeader, signedContent, type WebhookSecret } from './shared.js';

export type { SignatureHeader, WebhookSecret };

/** `'sha256='` + 64 lowercase hex digits. */
const SIGNATURE_LENGTH = 71;
const PREFIX_LENGTH = 7;
const SIGNATURE_PATTERN = /^sha256=[0-9a-f]{64}$/;

/**
 * Checks an `X-ZTA-Signature` header against a webhook body.
 *
 * `payload` is, preferably, the raw request body exactly as received: a string (taken as UTF-8), a `Buffer`
 * or `Uint8Array`, any other `ArrayBuffer` view, or an `ArrayBuffer` (all taken as raw bytes). Any other
 * value is treated as the parsed JSON body and re-serialised with `JSON.stringify(payload)`, as the spec's
 * Node.js snippet does; that only matches when the re-serialisation reproduces the sent bytes, which holds
 * for bodies the library sends but is not guaranteed once a proxy or your own code has rewritten the JSON.
 *
 * Never throws: a missing or malformed signature, a bad secret, or a payload `JSON.stringify` rejects
 * (BigInt, cycles, throwing `toJSON`) or cannot represent (`undefined`, functions) all give `false`.
 *
 * Decisions, documented in the README:
 * - the signature must be exactly `sha256=` followed by 64 **lowercase** hex digits (what we send, and what
 *   the spec's Node.js and Python snippets accept); uppercase hex, whitespace or any other shape is `false`;
 * - an array of header values is accepted only when it holds exactly one value: several `X-ZTA-Signature`
 *   headers never come from us, so the request is ambiguous and is rejected (Node itself joins repeated
 *   custom headers into one `"a, b"` string, which fails the shape check in the same way);
 * - the comparison is `crypto.timingSafeEqual` on the 32 decoded digest bytes.
 */
export function verifyWebhook(payload: unknown, signature: SignatureHeader, secret: WebhookSecret): boolean {
  try {
    // The cheap shape check runs first, so malformed requests never cost an HMAC or a JSON.stringify. It
    // looks only at the attacker-supplied header, never at the secret or the expected digest: it leaks nothing.
    const hex = signatureHex(signature);
    if (hex === undefined) return false;

    const keys: unknown = secret;
    if (typeof keys === 'string') {
      if (keys.length === 0) return false;
      const body = signedContent(payload);
      return body !== undefined && digestMatches(body, hex, keys);
    }
    if (!Array.isArray(keys) || keys.length === 0) return false;

    let body = signedContent(payload);
    if (body === undefined) return false;
    // Encode a string body once rather than once per secret.
    if (typeof body === 'string' && keys.length > 1) body = Buffer.from(body, 'utf8');
    for (const key of keys as readonly unknown[]) {
      // Returning on the first match only tells a caller who already holds a valid signature which secret
      // it was made with; rejections always try every secret.
      if (typeof key === 'string' && key.length > 0 && digestMatches(body, hex, key)) return true;
    }
    return false;
  } catch {
    // Hostile inputs (revoked proxies, throwing getters, detached buffers, ...) must not escape.
    return false;
  }
}

/** The 64 hex digits of a well-formed signature header, or `undefined` for anything else. */
function signatureHex(signature: unknown): string | undefined {
  let value = signature;
  if (Array.isArray(value)) {
    if (value.length !== 1) return undefined;
    value = value[0];
  }
  if (typeof value !== 'string' || value.length !== SIGNATURE_LENGTH || !SIGNATURE_PATTERN.test(value)) {
    return undefined;
  }
  return value.slice(PREFIX_LENGTH);
}

/**
 * Scratch space for the comparison: the claimed digest and the computed one, 32 bytes each. Reusing one pair
 * keeps the hot path free of Buffer allocations. It is safe because digestMatches fills and compares both
 * without running any caller code in between (JSON.stringify, which may run toJSON or getters, is over by
 * then), and verification is synchronous; each worker thread has its own module instance.
 */
const claimed = Buffer.alloc(32);
const computed = Buffer.alloc(32);

function digestMatches(body: string | Uint8Array, hex: string, secret: string): boolean {
  // 64 validated lowercase hex digits always decode to exactly 32 bytes.
  claimed.write(hex, 'hex');
  // On Node 20, digest() into a fresh Buffer costs ~0.5 µs more than a 32-char 'binary' (latin1) string:
  // the Buffer gets its own backing store. latin1 maps each byte to one char, so writing it back is lossless.
  computed.write(createHmac('sha256', secret).update(body).digest('binary'), 'binary');
  // Both sides are exactly 32 bytes, so timingSafeEqual cannot throw on a length mismatch.
  return timingSafeEqual(computed, claimed);
}
