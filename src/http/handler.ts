import { WebhookError } from '../core/errors.js';
import { type Logger, safeLogger } from '../core/logger.js';
import type {
  CreateWebhookInput,
  DeliveriesInput,
  RotateSecretOptions,
  UpdateWebhookInput,
  WebhookManager,
} from '../core/manager.js';
import { redactSecrets } from '../core/redact.js';
import { DEFAULT_MAX_BODY_BYTES, isJsonContentType, readJsonBody } from './json-body.js';
import { queryParam, requiredQueryParam } from './query.js';
import { errorResponse, jsonResponse } from './responses.js';
import { ALLOWED_METHODS, DEFAULT_BASE_PATH, matchRoute, normaliseBasePath, type Route } from './routes.js';

/**
 * Identifies the caller from the request (headers, cookies, URL). Returns the principal handed to the
 * manager, or `null`/`undefined` for "not authenticated" (401). It must not read the request body. A
 * `WebhookError` it throws is answered with its status; any other error is a 500.
 */
export type Authenticate<P> = (request: Request) => P | null | undefined | Promise<P | null | undefined>;

export interface WebhooksApiOptions<P> {
  manager: WebhookManager<P>;
  authenticate: Authenticate<P>;
  /** Where the API is served; default `/api/webhooks`, as in the spec. */
  basePath?: string;
  /** Largest JSON body accepted (413 beyond); default 64 KiB. */
  maxBodyBytes?: number;
  /** Receives unexpected (500) errors: method, path and the error's name, code and message; never bodies. */
  logger?: Logger;
}

/** A WHATWG fetch handler: runs on Node, Deno, Bun, workers, or behind `toNodeHandler`. */
export type WebhooksApi = (request: Request) => Promise<Response>;

/**
 * The spec's `/api/webhooks` endpoints (plus documented extensions) as one `(request) => Promise<Response>`
 * handler. Every answer is JSON with `cache-control: no-store`; errors are `{ "error": message }` with the
 * status of the `WebhookError` behind them; nothing a client sends can produce a 500.
 */
export function createWebhooksApi<P>(options: WebhooksApiOptions<P>): WebhooksApi {
  const { manager, authenticate } = options;
  const logger = safeLogger(options.logger ?? {});
  if (typeof manager !== 'object' || manager === null) {
    throw new TypeError('createWebhooksApi: manager is required');
  }
  if (typeof authenticate !== 'function') {
    throw new TypeError('createWebhooksApi: authenticate must be a function');
  }
  const base = normaliseBasePath(options.basePath ?? DEFAULT_BASE_PATH);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new TypeError('createWebhooksApi: maxBodyBytes must be a positive integer');
  }

  async function serve(request: Request, url: URL): Promise<Response> {
    const route = matchRoute(url.pathname, base);
    if (route === null) return errorResponse(404, 'Not found');
    const allowed = ALLOWED_METHODS[route.name];
    if (!allowed.includes(request.method)) {
      return errorResponse(405, 'Method not allowed', { allow: allowed.join(', ') });
    }
    const principal = await authenticate(request);
    if (principal === null || principal === undefined) {
      return errorResponse(401, 'Unauthorized', { 'www-authenticate': 'Bearer' });
    }
    // Also where the body is optional or unused: an HTML form on another site can POST with a user's
    // cookies, but only as a form or text/plain; a JSON request from another origin needs CORS consent.
    if (request.method === 'POST' && !isJsonContentType(request.headers.get('content-type'))) {
      return errorResponse(415, 'Content-Type must be application/json');
    }
    return dispatch(route, request, url.searchParams, principal);
  }

  async function dispatch(
    route: Route,
    request: Request,
    query: URLSearchParams,
    principal: P,
  ): Promise<Response> {
    switch (route.name) {
      case 'collection':
        switch (request.method) {
          case 'GET':
            return jsonResponse(200, await manager.list(principal, requiredQueryParam(query, 'siteId')));
          case 'POST': {
            const input = (await readJsonBody(request, maxBodyBytes)) as CreateWebhookInput;
            const created = await manager.create(principal, input);
            return jsonResponse(201, created, {
              location: `${base}/${encodeURIComponent(created.webhook.id)}`,
            });
          }
          case 'PATCH': {
            const id = requiredQueryParam(query, 'id');
            const input = (await readJsonBody(request, maxBodyBytes)) as UpdateWebhookInput;
            return jsonResponse(200, await manager.update(principal, id, input));
          }
          default: // DELETE, the only method left
            return jsonResponse(200, await manager.delete(principal, requiredQueryParam(query, 'id')));
        }
      case 'item':
        return jsonResponse(200, await manager.get(principal, route.id));
      case 'rotate-secret': {
        const id = requiredQueryParam(query, 'id');
        // The body is optional: a bare POST rotates with the default overlap, as before.
        const input = await readJsonBody(request, maxBodyBytes, { optional: true });
        const options = (input === undefined ? {} : input) as RotateSecretOptions;
        return jsonResponse(200, await manager.rotateSecret(principal, id, options));
      }
      case 'revoke-previous-secret':
        return jsonResponse(
          200,
          await manager.revokePreviousSecret(principal, requiredQueryParam(query, 'id')),
        );
      case 'redeliver':
        return jsonResponse(202, await manager.redeliver(principal, requiredQueryParam(query, 'id')));
      case 'deliveries':
        return jsonResponse(200, await manager.deliveries(principal, deliveriesInput(query)));
    }
  }

  return async (request) => {
    let url: URL | undefined;
    try {
      url = new URL(request.url);
      return await serve(request, url);
    } catch (error) {
      if (WebhookError.is(error) && error.status < 500) {
        const headers: Record<string, string> | undefined =
          error.status === 401 ? { 'www-authenticate': 'Bearer' } : undefined;
        return errorResponse(error.status, error.message, headers);
      }
      // Safe: a failing logger must not turn a 500 into a rejected promise.
      logger.error?.('webhooks api: unexpected error', {
        method: request.method,
        path: url?.pathname,
        error: describe(error),
      });
      return errorResponse(500, 'Internal server error');
    }
  };
}

const DELIVERY_PARAMS = ['siteId', 'webhookId', 'status', 'since', 'limit', 'cursor'] as const;

function deliveriesInput(query: URLSearchParams): DeliveriesInput {
  const input: DeliveriesInput = {};
  for (const name of DELIVERY_PARAMS) {
    const value = queryParam(query, name);
    if (value !== undefined) input[name] = value;
  }
  return input;
}

/** What is logged of an unexpected error: its kind and message, with anything secret-looking masked. */
function describe(error: unknown): { name: string; code?: string; message: string } {
  try {
    if (!(error instanceof Error)) return { name: typeof error, message: redactSecrets(String(error)) };
    const code = (error as { code?: unknown }).code;
    return {
      name: String(error.name),
      ...(typeof code === 'string' && { code }),
      message: redactSecrets(String(error.message)),
    };
  } catch {
    return { name: 'unknown', message: '(unprintable error)' };
  }
}
