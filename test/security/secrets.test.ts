// Webhook secrets are shown exactly twice (the create and rotate-secret answers) and nowhere else: not in
// logs (dispatcher logger, HTTP API logger, console), errors, events, list/get/update/deliveries results,
// delivery logs, what receivers get, nor in JSON.stringify / util.inspect of anything the library hands
// out. A run with successes, failures, retries, timeouts, TLS errors, blocked addresses, disables and API
// errors (4xx and a 500) is captured and grepped for every secret, for its base64 part and for its bytes.
// URL path tokens get the same treatment: the README says webhook URLs never appear in logs.
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createWebhooksApi } from '../../src/http/handler.js';
import { Dispatcher, type Store, type Transport, WebhookError, WebhookManager } from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';
import { hang, redirect, status } from '../support/hostile.js';
import type { Handler, Receiver } from '../support/receiver.js';
import { createTestCA } from '../support/tls.js';
import { capturingLogger, type LogLine, receiver, type SecurityCA, securityCA } from './support.js';

const TOKEN = 'alice-token';
const SITE = 'site_secrets';

/** Everything captured during the run, as text to grep. */
const captured: string[] = [];
const record = (label: string, value: unknown) => {
  captured.push(`${label} JSON: ${safeJson(value)}`);
  captured.push(`${label} inspect: ${inspect(value, { showHidden: true, depth: Number.POSITIVE_INFINITY })}`);
  captured.push(`${label} String: ${String(value)}`);
};
function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'undefined';
  } catch (error) {
    return `(not JSON: ${String(error)})`;
  }
}

/** Every secret handed out, and the URL path tokens, to look for. */
const secrets: string[] = [];
const urlTokens: string[] = [];
/** The forms a secret could leak in: whole, its base64 part, that part in base64url, its bytes in hex. */
function needles(secret: string): string[] {
  const base64 = secret.slice('whsec_'.length);
  const bytes = Buffer.from(base64, 'base64');
  return [secret, base64, bytes.toString('base64url'), bytes.toString('hex')];
}

const dispatcherLogs: LogLine[] = [];
const apiLogs: LogLine[] = [];
let ca: SecurityCA;
let throwFromStore: string | null = null;

/** The memory store, except that listWebhooks throws `throwFromStore` when set (a database error). */
function flakyStore(): Store {
  const inner = memoryStore();
  return {
    ...inner,
    async listWebhooks(siteId) {
      if (throwFromStore !== null) throw new Error(throwFromStore);
      return inner.listWebhooks(siteId);
    },
  };
}

const store = flakyStore();
const manager = new WebhookManager<string>({
  store,
  authorize: (user, siteId) => user === 'alice' && siteId === SITE,
  allowPrivateNetworks: true,
});
const api = createWebhooksApi({
  manager,
  authenticate: (request) => (request.headers.get('authorization') === `Bearer ${TOKEN}` ? 'alice' : null),
  logger: capturingLogger(apiLogs),
});

async function call(method: string, path: string, body?: unknown, token = TOKEN) {
  const response = await api(
    new Request(`http://api.test/api/webhooks${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    }),
  );
  const json = (await response.json()) as Record<string, unknown>;
  return { status: response.status, json };
}

const consoleSpies: { mockRestore(): void }[] = [];
beforeAll(async () => {
  ca = await securityCA();
  // Anything the library prints goes to the captured text too (it should print nothing).
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    consoleSpies.push(
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        captured.push(`console.${method}: ${args.map((arg) => inspect(arg)).join(' ')}`);
      }),
    );
  }
});
afterAll(() => {
  for (const spy of consoleSpies) spy.mockRestore();
});

describe('a run with failures, timeouts, disables and API errors', () => {
  it('never shows a secret or a URL token outside create and rotate-secret', async () => {
    const echoHeaders: Handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.headers)); // the response snippet lands in the delivery log
    };
    const started: Record<string, Receiver> = {
      echo: await receiver({ ca: ca.forReceiver(), handler: echoHeaders }),
      failing: await receiver({ ca: ca.forReceiver(), handler: status(500, {}, 'upstream broke') }),
      hanging: await receiver({ ca: ca.forReceiver(), handler: hang() }),
      gone: await receiver({ ca: ca.forReceiver(), handler: status(410) }),
      moved: await receiver({ ca: ca.forReceiver(), handler: redirect('https://example.com/elsewhere') }),
      untrusted: await receiver({ ca: await createTestCA() }),
    };
    const receivers = Object.keys(started);
    const endpoints = Object.fromEntries(receivers.map((name) => [name, started[name]!.origin]));

    // Create one webhook per endpoint through the HTTP API, each URL carrying a token in its path.
    const ids: Record<string, string> = {};
    for (const name of receivers) {
      const token = `tok${randomBytes(12).toString('hex')}`;
      urlTokens.push(token);
      const created = await call('POST', '', {
        siteId: SITE,
        url: `${endpoints[name]}/hook/${token}?key=${token}`,
        events: ['pageview', 'goal'],
      });
      expect(created.status).toBe(201);
      const webhook = created.json.webhook as { id: string; secret: string };
      secrets.push(webhook.secret);
      ids[name] = webhook.id;
    }
    // Rotate one: the old and the new secret must both stay hidden.
    const rotated = await call('POST', `/rotate-secret?id=${ids.echo}`);
    expect(rotated.status).toBe(200);
    secrets.push((rotated.json.webhook as { secret: string }).secret);

    const dispatcher = new Dispatcher({
      store,
      tls: { ca: ca.caCert },
      allowPrivateNetworks: true,
      timeoutMs: 400,
      retry: { delaysMs: [10] },
      maxConsecutiveFailures: 2,
      logger: capturingLogger(dispatcherLogs),
    });
    for (const event of [
      'attempt:start',
      'attempt:success',
      'attempt:failure',
      'delivery:failed',
      'webhook:disabled',
    ] as const) {
      dispatcher.on(event, (info) => record(`event ${event}`, info));
    }
    // Two deliveries each (the failing endpoint is disabled after the second), each retried once.
    await dispatcher.emit({ siteId: SITE, event: 'pageview', data: { path: '/a' } });
    await dispatcher.emit({ siteId: SITE, event: 'goal', data: { goalId: 'signup' } });
    await dispatcher.runDue();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await dispatcher.runDue();
    await dispatcher.stop();

    // A dispatcher without allowPrivateNetworks: every loopback endpoint is a blocked address.
    const strict = new Dispatcher({
      store,
      logger: capturingLogger(dispatcherLogs),
      retry: { delaysMs: [] },
    });
    await strict.emit({ siteId: SITE, event: 'pageview', data: { path: '/blocked' } });
    await strict.runDue();
    await strict.stop();
    record('dispatcher', dispatcher);
    record('strict dispatcher', strict);
    record('manager', manager);
    record('api', api);

    // Everything the manager and the API hand out after creation.
    record('list', await manager.list('alice', SITE));
    for (const [name, id] of Object.entries(ids)) {
      record(`get ${name}`, await manager.get('alice', id));
      record(`deliveries ${name}`, await manager.deliveries('alice', { webhookId: id, limit: 100 }));
      record(`GET item ${name}`, (await call('GET', `/${id}`)).json);
      record(`GET deliveries ${name}`, (await call('GET', `/deliveries?webhookId=${id}`)).json);
    }
    record('GET list', (await call('GET', `?siteId=${SITE}`)).json);
    record('update', await manager.update('alice', ids.gone!, { active: true, description: 'back' }));
    record('PATCH', (await call('PATCH', `?id=${ids.moved}`, { events: ['goal'] })).json);
    const [failedDelivery] = (await manager.deliveries('alice', { webhookId: ids.gone!, status: 'failed' }))
      .deliveries;
    record('redeliver', await manager.redeliver('alice', failedDelivery!.id));

    // API and manager errors: 4xx of every kind, and a 500 from a store error that quotes a secret.
    for (const [method, path, body, token] of [
      ['POST', '', { siteId: SITE, url: 'http://example.com', events: ['pageview'] }, TOKEN],
      ['POST', '', { siteId: SITE, url: 'https://127.0.0.1/x', events: ['nope'] }, TOKEN],
      ['GET', '/wh_missing', undefined, TOKEN],
      ['GET', `?siteId=${SITE}`, undefined, 'wrong-token'],
      ['POST', `/redeliver?id=${failedDelivery!.id}`, undefined, TOKEN],
    ] as const) {
      record(`API ${method} ${path}`, (await call(method, path, body, token)).json);
    }
    for (const failing of [
      () => manager.get('bob', ids.echo!),
      () => manager.create('alice', { siteId: 'site_other', url: 'https://example.com', events: ['goal'] }),
      () => manager.update('alice', ids.echo!, { url: 'ftp://example.com/' }),
      () => manager.redeliver('alice', 'dlv_missing'),
    ]) {
      const error = await failing().then(
        () => null,
        (caught: unknown) => caught,
      );
      expect(WebhookError.is(error)).toBe(true);
      record('WebhookError', error);
      record('WebhookError toJSON', (error as WebhookError).toJSON());
      record('WebhookError stack', (error as Error).stack);
    }
    throwFromStore = `duplicate key value violates unique constraint "webhooks_secret_key": (secret)=(${secrets[0]})`;
    const crashed = await call('GET', `?siteId=${SITE}`);
    throwFromStore = null;
    expect(crashed).toEqual({ status: 500, json: { error: 'Internal server error' } });

    captured.push(`dispatcher logs: ${safeJson(dispatcherLogs)}`, `api logs: ${safeJson(apiLogs)}`);
    // What receivers got: signatures in the headers, never the secret.
    const received = Object.values(started).flatMap((r) => r.requests);
    expect(received.length).toBeGreaterThan(0);
    expect(
      received.every((request) => /^sha256=[0-9a-f]{64}$/.test(String(request.headers['x-zta-signature']))),
    ).toBe(true);
    captured.push(
      `received: ${safeJson(received.map(({ headers, body, url }) => ({ headers, body, url })))}`,
    );

    // The run really exercised what it claims to.
    const messages = dispatcherLogs.map((line) => line.message);
    expect(messages).toEqual(
      expect.arrayContaining([
        'webhook delivered',
        'webhook attempt failed; will retry',
        'webhook delivery failed',
        'webhook disabled',
      ]),
    );
    const codes = dispatcherLogs.map((line) => line.fields?.errorCode);
    expect(codes).toEqual(expect.arrayContaining(['timeout', 'tls', 'redirect', 'blocked_address']));
    expect(apiLogs.some((line) => line.level === 'error')).toBe(true);
    expect(secrets).toHaveLength(receivers.length + 1);

    const text = captured.join('\n');
    for (const secret of secrets) {
      for (const needle of needles(secret)) expect(text).not.toContain(needle);
    }
    for (const token of urlTokens) {
      expect(safeJson(dispatcherLogs)).not.toContain(token);
      expect(safeJson(apiLogs)).not.toContain(token);
    }
    // The logged 500 kept its message but masked the secret in it.
    expect(safeJson(apiLogs)).toContain('whsec_[redacted]');
  });
});

describe('store errors the dispatcher logs', () => {
  // 'could not claim deliveries' and 'could not record attempt outcomes' log the store error's message:
  // a database error that quotes a row must not put a secret in the logs.
  it('masks a secret quoted in a store error message', async () => {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const inner = memoryStore();
    const broken: Store = {
      ...inner,
      claimDeliveries: async () => {
        throw new Error(`could not serialize access: row (secret)=(${secret})`);
      },
    };
    const logs: LogLine[] = [];
    const dispatcher = new Dispatcher({ store: broken, logger: capturingLogger(logs), pollIntervalMs: 50 });
    await dispatcher.start();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await dispatcher.stop();
    expect(logs.some((line) => line.message.startsWith('could not claim deliveries'))).toBe(true);
    for (const needle of needles(secret)) expect(safeJson(logs)).not.toContain(needle);
  });
});

describe('transport errors the dispatcher logs', () => {
  // A custom transport's error message goes to the log as the attempt's `reason`: it may quote the
  // request, headers included.
  it('masks a secret quoted in the message of a failed attempt', async () => {
    const store = memoryStore();
    const manager = new WebhookManager({ store, authorize: () => true, allowPrivateNetworks: true });
    const { webhook } = await manager.create(null, {
      siteId: SITE,
      url: 'https://hooks.example.com/in',
      events: ['pageview'],
    });
    const transport: Transport = {
      send: async () => ({ kind: 'error', errorCode: 'network', message: `proxy refused ${webhook.secret}` }),
      close: async () => {},
    };
    const logs: LogLine[] = [];
    const dispatcher = new Dispatcher({
      store,
      transport,
      logger: capturingLogger(logs),
      retry: { delaysMs: [] },
    });
    await dispatcher.emit({ siteId: SITE, event: 'pageview', data: { path: '/a' } });
    await dispatcher.runDue();
    const failed = logs.find((line) => line.message === 'webhook delivery failed');
    expect(failed?.fields).toMatchObject({ reason: 'proxy refused whsec_[redacted]' });
    for (const needle of needles(webhook.secret)) expect(safeJson(logs)).not.toContain(needle);
  });
});
