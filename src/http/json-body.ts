import { WebhookError } from '../core/errors.js';

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/**
 * Whether a Content-Type header names JSON: `application/json`, in any letter case, with any parameters;
 * a `charset` parameter, when present, must be UTF-8 (the only encoding JSON allows on the wire).
 */
export function isJsonContentType(header: string | null): boolean {
  if (header === null) return false;
  const [essence = '', ...params] = header.split(';');
  if (essence.trim().toLowerCase() !== 'application/json') return false;
  for (const param of params) {
    const separator = param.indexOf('=');
    if (separator === -1) continue;
    if (param.slice(0, separator).trim().toLowerCase() !== 'charset') continue;
    const charset = param
      .slice(separator + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8') return false;
  }
  return true;
}

/**
 * Reads a request body as JSON without trusting the client:
 * - 415 unless the Content-Type is JSON (see {@link isJsonContentType}) and the body is not content-encoded;
 * - 413 when Content-Length announces more than `maxBytes`, or as soon as the stream has delivered more
 *   (the rest is never read; the stream is cancelled), so at most `maxBytes` plus one chunk is ever held;
 * - 400 for an empty body, bytes that are not UTF-8, or text that is not JSON.
 * The JSON value is returned as is; its shape is the manager's to validate. With `optional`, an empty body
 * is `undefined` instead of a 400 (the Content-Type must still be JSON).
 */
export async function readJsonBody(
  request: Request,
  maxBytes: number,
  options: { optional?: boolean } = {},
): Promise<unknown> {
  const optional = options.optional === true;
  if (!isJsonContentType(request.headers.get('content-type'))) {
    throw new WebhookError('unsupported_media_type', 'Content-Type must be application/json');
  }
  const encoding = request.headers.get('content-encoding');
  if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') {
    throw new WebhookError('unsupported_media_type', 'Content-Encoding is not supported');
  }
  const declared = request.headers.get('content-length');
  if (declared !== null && /^\s*\d+\s*$/.test(declared) && Number(declared) > maxBytes) {
    throw tooLarge(maxBytes);
  }
  const bytes = await readBounded(request, maxBytes);
  if (bytes.byteLength === 0) {
    if (optional) return undefined;
    throw new WebhookError('validation_failed', 'Request body is required');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new WebhookError('validation_failed', 'Request body must be UTF-8 encoded JSON');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // The parser's message quotes the body; it is neither returned nor logged.
    throw new WebhookError('validation_failed', 'Malformed JSON body');
  }
}

function tooLarge(maxBytes: number): WebhookError {
  return new WebhookError('payload_too_large', `Request body exceeds the ${maxBytes} byte limit`);
}

async function readBounded(request: Request, maxBytes: number): Promise<Uint8Array> {
  if (request.body === null) return new Uint8Array(0);
  if (request.bodyUsed) throw new WebhookError('validation_failed', 'Request body was already read');
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!(value instanceof Uint8Array)) throw new TypeError('body chunk is not a Uint8Array');
      total += value.byteLength;
      if (total > maxBytes) {
        reader.cancel().catch(() => {});
        throw tooLarge(maxBytes);
      }
      chunks.push(value);
    }
  } catch (error) {
    if (WebhookError.is(error)) throw error;
    // The client went away or sent a broken stream: its problem, not a server error.
    throw new WebhookError('validation_failed', 'Request body could not be read', { cause: error });
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
