// Runtime-neutral pieces of receiver-side verification, shared by the Node.js verifiers (node:crypto) and
// the WebCrypto ones (`@zta/webhooks/verify/web`). Nothing here may use `Buffer`, `process` or any `node:*`
// module, import anything at runtime, or touch globals other than the ECMAScript built-ins and
// `TextEncoder`/`TextDecoder`: web bundlers load this file as it is.
import type { EventType, WebhookPayload } from './payload-types.js';

/**
 * The `X-ZTA-Signature` header as a server framework hands it over: a string, `undefined`/`null` when the
 * header is missing (Node's `req.headers[...]`, the web `Headers.get(...)`), or an array of values.
 */
export type SignatureHeader = string | readonly string[] | null | undefined;

/**
 * One webhook secret (`whsec_…`), or several during a secret rotation: the signature is accepted when it
 * matches any of them. Empty strings and non-strings in a list are skipped, so a list may hold an unset
 * environment variable (`[process.env.SECRET, process.env.SECRET_PREVIOUS]`).
 */
export type WebhookSecret = string | readonly (string | null | undefined)[];

/**
 * Request headers, in any of the forms servers hand them over:
 * - a WHATWG `Headers` (fetch, Next.js, Hono, Workers, Deno, Bun), or anything with a `get(name)` method
 *   (a `Map` with lower-case keys);
 * - Node's `req.headers` (`IncomingHttpHeaders`: lower-case keys, `string | string[]` values);
 * - a plain record whose keys may use any case (`{ 'Webhook-Id': '…' }`).
 */
export type WebhookHeaders =
  | { get(name: string): string | null | undefined }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** Why {@link VerifyResult} is not ok. See the README's table. */
export type VerifyFailureReason =
  | 'missing_header'
  | 'bad_signature'
  | 'timestamp_too_old'
  | 'timestamp_too_new'
  | 'bad_payload';

/**
 * The outcome of a Standard Webhooks verification. On success, `event` is the parsed delivery body, a union
 * narrowed by its `event` field; `id` is the `webhook-id` header (stable across retries of one delivery:
 * deduplicate on it) and `timestamp` the signed `webhook-timestamp`, in seconds since the epoch.
 */
export type VerifyResult =
  | { ok: true; event: WebhookPayload; id: string; timestamp: number }
  | { ok: false; reason: VerifyFailureReason };

export interface VerifyStandardOptions {
  /**
   * How far, in seconds, `webhook-timestamp` may be from now, either way; exactly at the limit is accepted.
   * Default 300 (the Standard Webhooks default). `Infinity` turns the check off. A value that is not a
   * non-negative number (NaN, negative, not a number) falls back to 300.
   */
  toleranceSeconds?: number;
  /**
   * The current time, for tests: a `Date` or milliseconds since the epoch (like `Date.now()`). Default: the
   * clock. An invalid value falls back to the clock.
   */
  now?: Date | number;
}

/** The Standard Webhooks default tolerance, in seconds. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** Prefix of Standard Webhooks secrets; the key is the base64-decoded rest. */
export const STANDARD_SECRET_PREFIX = 'whsec_';

export function fail(reason: VerifyFailureReason): VerifyResult {
  return { ok: false, reason };
}

// ---------------------------------------------------------------------------------------------------------
// Bytes

const encoder = new TextEncoder();

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Whether `value` is an `ArrayBuffer`, also one from another realm (an iframe, a `node:vm` context), where
 * `instanceof` fails. The `byteLength` getter throws for anything else, `SharedArrayBuffer` included.
 */
const arrayBufferByteLength = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength')?.get;
function isArrayBuffer(value: unknown): value is ArrayBuffer {
  if (typeof value !== 'object' || value === null || arrayBufferByteLength === undefined) return false;
  try {
    arrayBufferByteLength.call(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The bytes a signature covers, as `verifyWebhook` defines them: a string as it is (encoded as UTF-8
 * by the caller), any `ArrayBuffer` view or `ArrayBuffer` as raw bytes, anything else as `JSON.stringify`
 * renders it (`undefined` when it cannot). May throw on hostile input; callers catch.
 */
export function signedContent(payload: unknown): string | Uint8Array | undefined {
  if (typeof payload === 'string' || payload instanceof Uint8Array) return payload;
  if (ArrayBuffer.isView(payload)) {
    return new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
  }
  if (isArrayBuffer(payload)) return new Uint8Array(payload);
  const json: unknown = JSON.stringify(payload);
  return typeof json === 'string' ? json : undefined;
}

/** Like {@link signedContent}, always as a fresh copy of the bytes (safe across `await`s). */
export function signedBytes(payload: unknown): Uint8Array | undefined {
  const content = signedContent(payload);
  if (content === undefined) return undefined;
  return typeof content === 'string' ? utf8(content) : content.slice();
}

/**
 * Compares two byte arrays in time that depends only on their lengths (public here: digests are 32 bytes),
 * never on where they differ.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

// ---------------------------------------------------------------------------------------------------------
// Hex and base64 (a tiny local codec: `atob` ignores whitespace and is not in every runtime's globals)

const HEX_PATTERN = /^sha256=[0-9a-f]{64}$/;

/** The 64 hex digits of a well-formed `X-ZTA-Signature` value, or `undefined` (same rules as verifyWebhook). */
export function ztaSignatureHex(signature: unknown): string | undefined {
  let value = signature;
  if (Array.isArray(value)) {
    if (value.length !== 1) return undefined;
    value = value[0];
  }
  if (typeof value !== 'string' || value.length !== 71 || !HEX_PATTERN.test(value)) return undefined;
  return value.slice(7);
}

/** Decodes validated lowercase hex. */
export function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64_VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE64_ALPHABET.length; i++) BASE64_VALUES[BASE64_ALPHABET.charCodeAt(i)] = i;

/**
 * Decodes standard base64 (`A–Z a–z 0–9 + /`), with or without `=` padding, or returns `undefined` for any
 * other character, misplaced padding or an impossible length. With `canonical`, the unused low bits of the
 * last character must be zero, so each byte string has exactly one accepted encoding; without it they are
 * ignored, as Node's `Buffer` and the `standardwebhooks` package do when decoding secrets.
 */
export function decodeBase64(text: string, canonical: boolean): Uint8Array | undefined {
  let end = text.length;
  if (end > 0 && text.charCodeAt(end - 1) === 61 /* = */) {
    end--;
    if (end > 0 && text.charCodeAt(end - 1) === 61) end--;
    if (text.length % 4 !== 0) return undefined;
  }
  if (end % 4 === 1) return undefined;
  const out = new Uint8Array((end * 3) >> 2);
  let bits = 0;
  let buffered = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? (BASE64_VALUES[code] as number) : -1;
    if (value < 0) return undefined;
    bits = (bits << 6) | value;
    buffered += 6;
    if (buffered >= 8) {
      buffered -= 8;
      out[o++] = (bits >> buffered) & 0xff;
      bits &= (1 << buffered) - 1;
    }
  }
  if (canonical && bits !== 0) return undefined;
  return out;
}

/** Standard base64 with padding (what `Buffer#toString('base64')` gives). */
export function encodeBase64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out +=
      BASE64_ALPHABET[n >> 18]! +
      BASE64_ALPHABET[(n >> 12) & 63]! +
      BASE64_ALPHABET[(n >> 6) & 63]! +
      BASE64_ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = (bytes[i] as number) << 16;
    out += `${BASE64_ALPHABET[n >> 18]}${BASE64_ALPHABET[(n >> 12) & 63]}==`;
  } else if (rest === 2) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8);
    out += `${BASE64_ALPHABET[n >> 18]}${BASE64_ALPHABET[(n >> 12) & 63]}${BASE64_ALPHABET[(n >> 6) & 63]}=`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Secrets

/**
 * The HMAC key of a Standard Webhooks secret: the base64-decoded part after `whsec_` (the whole string when
 * there is no prefix), or `undefined` when it is not a string, not base64 or decodes to nothing.
 */
export function standardKey(secret: unknown): Uint8Array | undefined {
  if (typeof secret !== 'string') return undefined;
  const encoded = secret.startsWith(STANDARD_SECRET_PREFIX)
    ? secret.slice(STANDARD_SECRET_PREFIX.length)
    : secret;
  const key = decodeBase64(encoded, false);
  return key !== undefined && key.length > 0 ? key : undefined;
}

/** The usable keys of a secret or list of secrets (bad entries skipped). */
export function standardKeys(secret: unknown): Uint8Array[] {
  const list: readonly unknown[] = Array.isArray(secret) ? secret : [secret];
  const keys: Uint8Array[] = [];
  for (const entry of list) {
    const key = standardKey(entry);
    if (key !== undefined) keys.push(key);
  }
  return keys;
}

/** The non-empty string secrets of a ZTA secret or list (bad entries skipped). */
export function ztaSecrets(secret: unknown): string[] {
  if (typeof secret === 'string') return secret.length > 0 ? [secret] : [];
  if (!Array.isArray(secret)) return [];
  return (secret as readonly unknown[]).filter((s): s is string => typeof s === 'string' && s.length > 0);
}

// ---------------------------------------------------------------------------------------------------------
// Headers

/** Every value of header `name` (lower-case), in whichever form `headers` comes. May throw; callers catch. */
function headerValues(headers: unknown, name: string): string[] {
  if (typeof headers !== 'object' || headers === null) return [];
  const values: string[] = [];
  const push = (value: unknown): void => {
    if (typeof value === 'string') values.push(value);
    else if (Array.isArray(value)) {
      for (const item of value as readonly unknown[]) if (typeof item === 'string') values.push(item);
    }
  };
  const get = (headers as { get?: unknown }).get;
  if (typeof get === 'function') {
    push(get.call(headers, name));
    return values;
  }
  const record = headers as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key.length === name.length && key.toLowerCase() === name) push(record[key]);
  }
  return values;
}

/** One-valued header: absent, empty or repeated (ambiguous) gives `undefined`. */
function singleHeader(headers: unknown, name: string): string | undefined {
  const values = headerValues(headers, name);
  return values.length === 1 && values[0] !== '' ? values[0] : undefined;
}

const TIMESTAMP_PATTERN = /^[0-9]{1,16}$/;
const SIGNATURE_BYTES = 32;
/** `v1,` + 32 bytes in padded base64 (43 characters and one `=`). */
const SIGNATURE_ENTRY_LENGTH = 47;

export interface StandardHeaders {
  id: string;
  /** The header exactly as received (it is part of the signed content). */
  timestampText: string;
  timestamp: number;
  /** The decoded digests of every well-formed `v1,` entry (possibly none). */
  signatures: Uint8Array[];
}

/**
 * Reads `webhook-id`, `webhook-timestamp` and `webhook-signature`, or returns `undefined` when one is
 * missing, empty, repeated (id, timestamp) or the timestamp is not a whole number of seconds.
 */
export function readStandardHeaders(headers: unknown): StandardHeaders | undefined {
  const id = singleHeader(headers, 'webhook-id');
  const timestampText = singleHeader(headers, 'webhook-timestamp');
  const signatureValues = headerValues(headers, 'webhook-signature');
  if (id === undefined || timestampText === undefined || !TIMESTAMP_PATTERN.test(timestampText))
    return undefined;
  // Repeated headers: Node joins them as "a, b"; `Headers.get` too; `headersDistinct` gives an array.
  const joined = signatureValues.join(' ');
  if (joined.trim() === '') return undefined;
  const signatures: Uint8Array[] = [];
  for (let token of joined.split(' ')) {
    if (!token.startsWith('v1,')) continue;
    // A comma left over from joining repeated headers ("v1,abc=, v1,def=").
    if (token.endsWith(',')) token = token.slice(0, -1);
    // Exactly one accepted spelling per digest: padded, canonical, standard alphabet (what we and the
    // standardwebhooks package send; that package compares the strings themselves).
    if (token.length !== SIGNATURE_ENTRY_LENGTH) continue;
    const digest = decodeBase64(token.slice(3), true);
    if (digest !== undefined && digest.length === SIGNATURE_BYTES) signatures.push(digest);
  }
  return { id, timestampText, timestamp: Number(timestampText), signatures };
}

/** `"<id>.<timestamp>."`: what precedes the body in the signed content. */
export function standardPrefix(id: string, timestampText: string): string {
  return `${id}.${timestampText}.`;
}

// ---------------------------------------------------------------------------------------------------------
// Timestamp and payload

const getTime = Date.prototype.getTime;

/** `now` in milliseconds: a number, or a `Date` (also from another realm); anything else is the clock. */
function nowMilliseconds(now: unknown): number {
  // Date.prototype.getTime throws for anything that is not a Date; the caller catches.
  const value = typeof now === 'object' && now !== null ? getTime.call(now) : now;
  return typeof value === 'number' && Number.isFinite(value) ? value : Date.now();
}

/** Reads the options defensively: any value, including a hostile proxy, gives usable numbers. */
export function readOptions(options: unknown): { toleranceSeconds: number; nowSeconds: number } {
  let tolerance: unknown;
  let now: unknown;
  try {
    if (typeof options === 'object' && options !== null) {
      ({ toleranceSeconds: tolerance, now } = options as VerifyStandardOptions);
    }
  } catch {
    // Fall back to the defaults.
  }
  let nowMs: number;
  try {
    nowMs = nowMilliseconds(now);
  } catch {
    nowMs = Date.now();
  }
  return {
    toleranceSeconds: typeof tolerance === 'number' && tolerance >= 0 ? tolerance : DEFAULT_TOLERANCE_SECONDS,
    nowSeconds: Math.floor(nowMs / 1000),
  };
}

/** `undefined` when `timestamp` is within `toleranceSeconds` of `nowSeconds` (inclusive). */
export function timestampProblem(
  timestamp: number,
  nowSeconds: number,
  toleranceSeconds: number,
): 'timestamp_too_old' | 'timestamp_too_new' | undefined {
  if (nowSeconds - timestamp > toleranceSeconds) return 'timestamp_too_old';
  if (timestamp - nowSeconds > toleranceSeconds) return 'timestamp_too_new';
  return undefined;
}

/** The event types this version knows; `Record<EventType, …>` keeps it in step with the union. */
const KNOWN_EVENT_TYPES: Readonly<Record<EventType, true>> = {
  pageview: true,
  event: true,
  goal: true,
  alert: true,
  session_end: true,
};

const strictDecoder = new TextDecoder('utf-8', { fatal: true });

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses an authenticated body into a delivery, or `undefined` when it is not UTF-8 JSON of the shape
 * `{ event: <known event type>, timestamp: string, data: object }`. The data fields are not checked: the
 * signature already proves the sender wrote them.
 */
export function parseDelivery(content: string | Uint8Array): WebhookPayload | undefined {
  let value: unknown;
  try {
    value = JSON.parse(typeof content === 'string' ? content : strictDecoder.decode(content));
  } catch {
    return undefined;
  }
  if (
    !isObject(value) ||
    typeof value.event !== 'string' ||
    !Object.hasOwn(KNOWN_EVENT_TYPES, value.event) ||
    typeof value.timestamp !== 'string' ||
    !isObject(value.data)
  ) {
    return undefined;
  }
  return value as unknown as WebhookPayload;
}
