import { createHmac } from 'node:crypto';

/** Prefix of every `X-ZTA-Signature` header value. */
export const SIGNATURE_PREFIX = 'sha256=';

/**
 * Signs a webhook body the way Zero Trust Analytics does: `'sha256=' + hex(HMAC-SHA256(body, secret))`.
 *
 * - `body` is signed byte for byte: a string is encoded as UTF-8, a `Uint8Array` (or `Buffer`) is used as is.
 *   Deliveries sign exactly `JSON.stringify({ event, timestamp, data })`.
 * - The key is the whole secret string as UTF-8, `whsec_` prefix included (as in the spec's snippets).
 *
 * Throws a `TypeError` when `secret` is not a non-empty string or `body` is neither a string nor bytes:
 * unlike {@link verifyWebhook}, signing with bad input is a programming error, not an untrusted request.
 */
export function signPayload(body: string | Uint8Array, secret: string): string {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new TypeError('signPayload: secret must be a non-empty string');
  }
  const hmac = createHmac('sha256', secret);
  if (typeof body === 'string') {
    hmac.update(body, 'utf8');
  } else if (body instanceof Uint8Array) {
    hmac.update(body);
  } else {
    throw new TypeError('signPayload: body must be a string or a Uint8Array');
  }
  return SIGNATURE_PREFIX + hmac.digest('hex');
}
