/**
 * The webhooks API on a real `node:http` server (127.0.0.1, port 0) through `toNodeHandler`, with
 * bearer-token users, and a small fetch client that checks the headers every answer must carry.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { afterEach, expect } from 'vitest';
import { createWebhooksApi, type WebhooksApi, type WebhooksApiOptions } from '../../src/http/handler.js';
import { toNodeHandler } from '../../src/http/node-adapter.js';
import { type Store, WebhookManager } from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';
import { createStore } from '../postgres/stores.js';
import { capturingLogger, type LogLine } from '../support/logger.js';

export interface User {
  name: string;
  sites: string[];
}

export const SITE = 'site_abc123';
export const alice: User = { name: 'alice', sites: [SITE, 'site_two'] };
export const bob: User = { name: 'bob', sites: ['site_bob'] };
export const TOKENS: Record<string, User> = { 'alice-token': alice, 'bob-token': bob };

/** `Authorization: Bearer <token>` → the token's user, anything else → null. */
export function authenticate(request: Request): User | null {
  const token = /^Bearer (\S+)$/.exec(request.headers.get('authorization') ?? '')?.[1];
  return token !== undefined && Object.hasOwn(TOKENS, token) ? TOKENS[token]! : null;
}

export { capturingLogger, type LogLine };

export function newManager(store: Store = memoryStore(), allowPrivateNetworks = false) {
  return new WebhookManager<User>({
    store,
    authorize: (user, siteId) => user.sites.includes(siteId),
    allowPrivateNetworks,
  });
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/**
 * Listens on 127.0.0.1:0 and closes (all connections included) after the test. Returns the origin,
 * `http://` or, for a `node:https` server, `https://`.
 */
export async function listen(
  server: Server | (NetServer & { closeAllConnections(): void }),
): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const scheme = 'setSecureContext' in server ? 'https' : 'http';
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export interface ApiServer {
  origin: string;
  api: WebhooksApi;
  manager: WebhookManager<User>;
  store: Store;
  logs: LogLine[];
  nodeErrors: unknown[];
  call: (method: string, path: string, init?: CallInit) => Promise<Answer>;
}

export interface CallInit {
  token?: string | null;
  /** An object or array is sent as JSON (with `Content-Type: application/json` unless set). */
  json?: unknown;
  body?: RequestInit['body'];
  headers?: Record<string, string>;
}

export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

/**
 * The API served over HTTP. Options override the defaults (a fresh store of the enclosing
 * `describeEachStore` block's kind, `authenticate` above, a logger).
 */
export async function startApi(
  options: Partial<WebhooksApiOptions<User>> & { store?: Store } = {},
): Promise<ApiServer> {
  const store = options.store ?? (await createStore());
  const manager = options.manager ?? newManager(store);
  const logs: LogLine[] = [];
  const api = createWebhooksApi<User>({
    authenticate,
    logger: capturingLogger(logs),
    ...options,
    manager,
  });
  const nodeErrors: unknown[] = [];
  const origin = await listen(createServer(toNodeHandler(api, { onError: (e) => nodeErrors.push(e) })));
  const call = (method: string, path: string, init: CallInit = {}) => request(origin, method, path, init);
  return { origin, api, manager, store, logs, nodeErrors, call };
}

/** One request; asserts the JSON + no-store headers every answer carries and parses the body. */
export async function request(origin: string, method: string, path: string, init: CallInit = {}) {
  const headers: Record<string, string> = { ...init.headers };
  const token = init.token === undefined ? 'alice-token' : init.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body = init.body;
  if (init.json !== undefined) body = JSON.stringify(init.json);
  // As the API asks of every POST, body or not (see the CSRF test in rotation.test.ts); a test that wants
  // none passes `'content-type': ''`.
  if (init.json !== undefined || method === 'POST') headers['content-type'] ??= 'application/json';
  if (headers['content-type'] === '') delete headers['content-type'];
  const response = await fetch(`${origin}${path}`, { method, headers, ...(body !== undefined && { body }) });
  return readAnswer(response);
}

export async function readAnswer(response: Response): Promise<Answer> {
  expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
  expect(response.headers.get('cache-control')).toBe('no-store');
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: JSON.parse(text) as unknown };
}

export const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** The spec's create request body, verbatim. */
export const SPEC_CREATE_BODY = {
  siteId: 'site_abc123',
  url: 'https://your-server.com/webhook',
  events: ['pageview', 'event', 'goal'],
  description: 'Production webhook for analytics events',
};
