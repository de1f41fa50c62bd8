/**
 * Runs a WHATWG fetch handler (`(Request) => Response`) on `node:http`: converts the incoming request
 * (streaming its body, never buffering it) and writes the Response back with backpressure.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { discardUnreadBody, nodeBodyStream } from './node-body.js';
import { errorResponse } from './responses.js';

export type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface WebRequestInit {
  /** Path and query to use instead of `req.url` (Express passes `req.originalUrl`). */
  url?: string;
  /**
   * A body to use instead of reading `req`, for when middleware already consumed the stream. The
   * Content-Length header is set to match and Content-Encoding / Transfer-Encoding are dropped.
   */
  body?: Uint8Array | string;
}

export interface NodeHandlerOptions {
  /**
   * Receives errors the handler throws (answered with a 500 JSON error) and errors while writing the
   * response. Without it they are swallowed; the fetch handler is expected to answer its own errors.
   */
  onError?: (error: unknown) => void;
}

export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** Methods the WHATWG `Request` refuses to represent. */
const UNREPRESENTABLE_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

/** The path of a request target (`/a/b?x=1` → `/a/b`), for origin-form and absolute-form targets alike. */
export function requestPathname(target: string): string {
  return targetUrl(target).pathname;
}

function targetUrl(target: string, origin = 'http://localhost'): URL {
  try {
    // Concatenated, not resolved: `//evil.example/x` is a path here, not another host.
    if (target.startsWith('/')) return new URL(origin + target);
    const absolute = new URL(target);
    return new URL(origin + absolute.pathname + absolute.search);
  } catch {
    return new URL(`${origin}/`);
  }
}

function originOf(req: IncomingMessage): string {
  const protocol = (req.socket as Partial<TLSSocket> | undefined)?.encrypted ? 'https' : 'http';
  const host = req.headers.host;
  if (host !== undefined && /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)) {
    const origin = `${protocol}://${host}`;
    if (URL.canParse(origin)) return origin;
  }
  return `${protocol}://localhost`;
}

/** The WHATWG Request for a `node:http` request. Throws a TypeError for CONNECT and TRACE. */
export function toWebRequest(req: IncomingMessage, init: WebRequestInit = {}): Request {
  const method = req.method ?? 'GET';
  const url = targetUrl(init.url ?? req.url ?? '/', originOf(req));
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i]!, raw[i + 1]!);
    } catch {
      // A header the fetch Headers class refuses is left out.
    }
  }
  const requestInit: RequestInit & { duplex?: 'half' } = { method, headers };
  if (method !== 'GET' && method !== 'HEAD') {
    if (init.body !== undefined) {
      const body = typeof init.body === 'string' ? new TextEncoder().encode(init.body) : init.body;
      headers.delete('content-encoding');
      headers.delete('transfer-encoding');
      headers.set('content-length', String(body.byteLength));
      requestInit.body = body;
    } else {
      requestInit.body = nodeBodyStream(req);
      requestInit.duplex = 'half';
    }
  }
  return new Request(url, requestInit);
}

/**
 * Writes a WHATWG Response to a `node:http` response: status, headers (several Set-Cookie kept apart) and
 * the body, streamed with backpressure; stops reading the body if the client goes away.
 */
export async function sendWebResponse(res: ServerResponse, response: Response): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText !== '') res.statusMessage = response.statusText;
  for (const [name, value] of response.headers) {
    if (name !== 'set-cookie') res.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  if (response.body === null) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  const stop = (): void => {
    reader.cancel().catch(() => {});
  };
  res.once('close', stop);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || res.destroyed) break;
      if (!res.write(value)) await drained(res);
    }
    res.end();
  } finally {
    res.off('close', stop);
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/**
 * Answers one `node:http` request with `handler`: a thrown error becomes a 500 JSON error, a body the
 * handler left unread is discarded after the answer (see `discardUnreadBody`), CONNECT/TRACE get 501.
 * Never rejects for request problems; rejects only if writing the response fails.
 */
export async function handleNodeRequest(
  handler: FetchHandler,
  req: IncomingMessage,
  res: ServerResponse,
  init: WebRequestInit = {},
  options: NodeHandlerOptions = {},
): Promise<void> {
  discardUnreadBody(req, res);
  let response: Response;
  if (UNREPRESENTABLE_METHODS.has(req.method ?? '')) {
    response = errorResponse(501, 'Method not implemented');
  } else {
    try {
      response = await handler(toWebRequest(req, init));
    } catch (error) {
      report(options, error);
      response = errorResponse(500, 'Internal server error');
    }
  }
  await sendWebResponse(res, response);
}

/**
 * A `node:http` request listener serving `handler`:
 * `http.createServer(toNodeHandler(createWebhooksApi({ manager, authenticate })))`.
 */
export function toNodeHandler(handler: FetchHandler, options: NodeHandlerOptions = {}): NodeHandler {
  return (req, res) => {
    handleNodeRequest(handler, req, res, {}, options).catch((error: unknown) => {
      report(options, error);
      res.destroy();
    });
  };
}

function report(options: NodeHandlerOptions, error: unknown): void {
  try {
    options.onError?.(error);
  } catch {
    // An error reporter that throws must not take the server down.
  }
}
