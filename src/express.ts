/**
 * Entry point `@zta/webhooks/express`: the `/api/webhooks` endpoints as Express middleware, and signature
 * verification for receivers. Only types come from `express` (an optional peer dependency): this module
 * loads, and its middleware works with any `(req, res, next)` framework built on `node:http`, without it.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { WebhookError } from './core/errors.js';
import { createWebhooksApi, type WebhooksApiOptions } from './http/handler.js';
import { handleNodeRequest, requestPathname, sendWebResponse } from './http/node-adapter.js';
import { discardUnreadBody, readNodeBody } from './http/node-body.js';
import { errorResponse } from './http/responses.js';
import { DEFAULT_BASE_PATH, isUnderBase, normaliseBasePath } from './http/routes.js';
import { verifyWebhook, type WebhookSecret } from './verify/verify.js';

declare global {
  namespace Express {
    interface Request {
      /** The exact bytes of a webhook delivery, set by `verifyWebhookMiddleware`. */
      rawBody?: Buffer;
    }
  }
}

export type WebhooksRouterOptions<P> = WebhooksApiOptions<P>;

/**
 * The spec's `/api/webhooks` endpoints (see `createWebhooksApi`) as Express middleware:
 * `app.use(webhooksRouter({ manager, authenticate }))`. Requests outside `basePath` go to `next()`.
 *
 * `basePath` is the full path clients use (matched against `req.originalUrl`), wherever the middleware is
 * mounted. The body is streamed from the request; mount it before `express.json()` (or scope that parser
 * to other routes). If a body parser has already consumed the stream, its result is used instead:
 * a Buffer (`express.raw`) or string (`express.text`) as is, a parsed object (`express.json`)
 * re-serialised with `JSON.stringify`; that parser's own errors and limits then apply first.
 */
export function webhooksRouter<P>(options: WebhooksRouterOptions<P>): RequestHandler {
  const api = createWebhooksApi(options);
  const base = normaliseBasePath(options.basePath ?? DEFAULT_BASE_PATH);
  return (req: Request, res: Response, next: NextFunction) => {
    const target = req.originalUrl || req.url;
    if (!isUnderBase(requestPathname(target), base)) {
      next();
      return;
    }
    const body = consumedBody(req);
    handleNodeRequest(api, req, res, { url: target, ...(body !== undefined && { body }) }).catch(
      (error: unknown) => (res.headersSent ? res.destroy() : next(error)),
    );
  };
}

/** Whether middleware has already read the request body stream (body-parser marks it with `_body`). */
function streamConsumed(req: Request): boolean {
  return req.readableEnded || (req as { _body?: unknown })._body === true;
}

/** What a body parser left in `req.body`, as bytes or text, when the stream itself is gone. */
function consumedBody(req: Request): Uint8Array | string | undefined {
  if (!streamConsumed(req)) return undefined;
  const body: unknown = req.body;
  if (body === undefined) return '';
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  return reencode(body) ?? NOT_JSON;
}

/** A body that no JSON parser takes: the API answers it 400 `Malformed JSON body` (after authentication). */
const NOT_JSON = '\u0000';

/**
 * `JSON.stringify` of what a body parser left; undefined if it cannot be encoded again. A parsed body
 * nested some thousands deep (40 kB is enough, under `express.json()`'s limit) overflows the stack there.
 */
function reencode(body: unknown): string | undefined {
  try {
    return JSON.stringify(body);
  } catch {
    return undefined;
  }
}

/** Where the webhook secret(s) come from: fixed, or looked up per request (e.g. by `X-ZTA-Webhook-ID`). */
export type WebhookSecretSource =
  | { secret: WebhookSecret }
  | {
      getSecret: (
        req: Request,
      ) => WebhookSecret | null | undefined | Promise<WebhookSecret | null | undefined>;
    };

export interface VerifyWebhookMiddlewareOptions {
  /** Largest body read (413 beyond); default 1 MiB + 64 KiB, above the spec's 1MB payload limit. */
  maxBodyBytes?: number;
}

/** The spec limits payloads to 1MB; a little room on top for future top-level fields. */
export const DEFAULT_RECEIVER_MAX_BODY_BYTES = 1024 * 1024 + 64 * 1024;

/**
 * Receiver-side middleware: reads the raw body (bounded), checks `X-ZTA-Signature` with `verifyWebhook`
 * against the secret (or any of several, during a rotation), and answers 401 `{ "error": "Invalid
 * signature" }` on mismatch. `X-ZTA-Signature-Next` (sent during a rotation overlap, signed with the new
 * secret) is checked too, so `{ secret: [newSecret, oldSecret] }` accepts deliveries before, during and
 * after the overlap. On success `req.body` is the parsed event and `req.rawBody` the exact bytes.
 *
 * ```ts
 * app.post('/webhook', verifyWebhookMiddleware({ secret: process.env.ZTA_WEBHOOK_SECRET! }), (req, res) => {
 *   res.status(200).send('OK');
 * });
 * ```
 *
 * Mount it before any JSON parser. If one already ran: a `req.rawBody` Buffer it left, or a Buffer/string
 * `req.body` (`express.raw`/`express.text`), is verified as the raw body; a parsed object is verified as
 * `JSON.stringify(req.body)`, the spec's own approach, which matches deliveries from this library but not a
 * body re-encoded on the way. Errors from `getSecret` go to `next(error)`.
 */
export function verifyWebhookMiddleware(
  source: WebhookSecretSource,
  options: VerifyWebhookMiddlewareOptions = {},
): RequestHandler {
  const getSecret = secretGetter(source);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_RECEIVER_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new TypeError('verifyWebhookMiddleware: maxBodyBytes must be a positive integer');
  }

  async function verify(req: Request, res: Response, next: NextFunction): Promise<void> {
    let raw: Buffer;
    try {
      raw = await rawBodyOf(req, maxBodyBytes);
    } catch (error) {
      if (!WebhookError.is(error)) throw error;
      discardUnreadBody(req, res);
      await sendWebResponse(res, errorResponse(error.status, error.message));
      return;
    }
    const secret = await getSecret(req);
    // During a rotation overlap X-ZTA-Signature carries the previous secret's signature and
    // X-ZTA-Signature-Next the new one's: a valid signature in either, with any accepted secret, will do.
    if (
      secret === null ||
      secret === undefined ||
      !(
        verifyWebhook(raw, req.headers['x-zta-signature'], secret) ||
        (req.headers['x-zta-signature-next'] !== undefined &&
          verifyWebhook(raw, req.headers['x-zta-signature-next'], secret))
      )
    ) {
      await sendWebResponse(res, errorResponse(401, 'Invalid signature'));
      return;
    }
    let event: unknown;
    try {
      event = JSON.parse(raw.toString('utf8'));
    } catch {
      await sendWebResponse(res, errorResponse(400, 'Invalid JSON body'));
      return;
    }
    req.rawBody = raw;
    req.body = event;
    next();
  }

  return (req: Request, res: Response, next: NextFunction) => {
    verify(req, res, next).catch((error: unknown) => (res.headersSent ? res.destroy() : next(error)));
  };
}

function secretGetter(
  source: WebhookSecretSource,
): (req: Request) => Promise<WebhookSecret | null | undefined> {
  if (typeof source === 'object' && source !== null) {
    if ('getSecret' in source && typeof source.getSecret === 'function') {
      const { getSecret } = source;
      return async (req) => getSecret(req);
    }
    if ('secret' in source && (typeof source.secret === 'string' || Array.isArray(source.secret))) {
      const { secret } = source;
      return async () => secret;
    }
  }
  throw new TypeError('verifyWebhookMiddleware: pass { secret } or { getSecret }');
}

/** The raw body: read from the stream, or recovered from what a body parser already did with it. */
async function rawBodyOf(req: Request, maxBytes: number): Promise<Buffer> {
  if (!streamConsumed(req)) return readNodeBody(req, maxBytes);
  if (Buffer.isBuffer(req.rawBody)) return req.rawBody;
  const body: unknown = req.body;
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  // One that cannot be encoded again is no delivery of ours (their bodies are flat): it fails verification.
  return Buffer.from(reencode(body) ?? '', 'utf8');
}
