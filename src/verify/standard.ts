import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  fail,
  parseDelivery,
  readOptions,
  readStandardHeaders,
  type StandardHeaders,
  signedContent,
  standardKey,
  standardKeys,
  standardPrefix,
  timestampProblem,
  type VerifyResult,
  type VerifyStandardOptions,
  type WebhookHeaders,
  type WebhookSecret,
} from './shared.js';

/**
 * Verifies a delivery signed with the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`,
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed by the base64-decoded part of
 * the `whsec_` secret), then checks that the signed timestamp is within `toleranceSeconds` of now, then
 * parses the body.
 *
 * - `body`: the raw body (string, `Buffer`/`Uint8Array`/any `ArrayBuffer` view, `ArrayBuffer`), or the
 *   parsed JSON body, re-serialised with `JSON.stringify` as `verifyWebhook` does (raw is safer).
 * - `headers`: a WHATWG `Headers`, Node's `req.headers`, or a plain record with keys in any case.
 * - `secret`: a `whsec_…` secret or a list of them; `webhook-signature` may carry several `v1,` entries.
 *
 * Never throws. The signature is checked first, so `timestamp_*` and `bad_payload` are only ever reported
 * for authentic deliveries; digests are compared with `crypto.timingSafeEqual`.
 */
export function verifyStandardWebhook(
  body: unknown,
  headers: WebhookHeaders,
  secret: WebhookSecret,
  options?: VerifyStandardOptions,
): VerifyResult {
  let parsed: StandardHeaders | undefined;
  try {
    parsed = readStandardHeaders(headers);
  } catch {
    // A hostile headers object (throwing getter, revoked proxy) is as good as no headers.
  }
  if (parsed === undefined) return fail('missing_header');
  try {
    if (parsed.signatures.length === 0) return fail('bad_signature');
    const keys = standardKeys(secret);
    if (keys.length === 0) return fail('bad_signature');
    const content = signedContent(body);
    if (content === undefined) return fail('bad_signature');

    const prefix = standardPrefix(parsed.id, parsed.timestampText);
    let matched = false;
    for (const key of keys) {
      const digest = createHmac('sha256', key).update(prefix, 'utf8').update(content).digest();
      // Every entry is compared (no early exit inside one digest); both sides are always 32 bytes.
      for (const claimed of parsed.signatures) if (timingSafeEqual(digest, claimed)) matched = true;
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
    // Hostile bodies or secrets (throwing toJSON, detached buffers, revoked proxies) must not escape.
    return fail('bad_signature');
  }
}

/**
 * The `webhook-signature` value for one delivery: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed
 * by the base64-decoded part of the `whsec_` secret. With a list of secrets (a rotation), one `v1,` entry
 * per secret, space-separated, in the order given.
 *
 * - `timestamp` is the `webhook-timestamp` header: whole seconds since the epoch, or a `Date` (rounded
 *   down to the second). Send `String(seconds)` as the header.
 * - `body` is signed byte for byte: a string as UTF-8, a `Uint8Array` as it is.
 *
 * Throws a `TypeError` for an empty id, a timestamp that is not a non-negative whole number of seconds (or a
 * valid `Date` after 1970), a body that is neither a string nor bytes, or a secret that is not base64 after
 * `whsec_`: signing bad input is a programming error. Error messages never contain the secret.
 */
export function signStandardPayload(
  id: string,
  timestamp: number | Date,
  body: string | Uint8Array,
  secret: string | readonly string[],
): string {
  if (typeof id !== 'string' || id.length === 0) {
    throw new TypeError('signStandardPayload: id must be a non-empty string');
  }
  const seconds = timestamp instanceof Date ? Math.floor(timestamp.getTime() / 1000) : timestamp;
  if (typeof seconds !== 'number' || !Number.isSafeInteger(seconds) || seconds < 0) {
    throw new TypeError(
      'signStandardPayload: timestamp must be whole seconds since the epoch (>= 0) or a valid Date',
    );
  }
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) {
    throw new TypeError('signStandardPayload: body must be a string or a Uint8Array');
  }
  const secrets: readonly unknown[] =
    typeof secret === 'string' ? [secret] : Array.isArray(secret) ? secret : [];
  if (secrets.length === 0) {
    throw new TypeError('signStandardPayload: secret must be a string or a non-empty list of strings');
  }
  const keys = secrets.map((entry) => {
    const key = standardKey(entry);
    if (key === undefined) {
      throw new TypeError('signStandardPayload: each secret must be "whsec_" followed by non-empty base64');
    }
    return key;
  });
  const prefix = standardPrefix(id, String(seconds));
  return keys
    .map((key) => `v1,${createHmac('sha256', key).update(prefix, 'utf8').update(body).digest('base64')}`)
    .join(' ');
}
