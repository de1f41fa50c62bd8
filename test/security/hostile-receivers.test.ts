// Hostile receivers against the real Dispatcher and default transport: every attempt ends within the
// timeout with a sensible error code, and one endpoint's misbehaviour never holds up the others.
import { once } from 'node:events';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AttemptInfo,
  Dispatcher,
  type DispatcherOptions,
  type EmitInput,
  WebhookManager,
} from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';
import { undiciTransport } from '../../src/transport/undici-transport.js';
import { delay, endlessBody, hang, reset, slowDripHeaders } from '../support/hostile.js';
import { createTestCA } from '../support/tls.js';
import {
  capturingLogger,
  hugeHeaders,
  type LogLine,
  onCleanup,
  rawServer,
  receiver,
  type SecurityCA,
  securityCA,
  slowDripBody,
} from './support.js';

/** The attempt timeout used here; a loaded CI machine gets SLACK_MS on top before we call it a hang. */
const TIMEOUT_MS = 1000;
const SLACK_MS = 750;
const HOUR = 60 * 60 * 1000;

let ca: SecurityCA;
beforeAll(async () => {
  ca = await securityCA();
});

const event = (siteId: string, path = '/'): EmitInput => ({ siteId, event: 'pageview', data: { path } });

function harness(options: Partial<DispatcherOptions> = {}) {
  const store = memoryStore();
  const logs: LogLine[] = [];
  const manager = new WebhookManager<string>({ store, authorize: () => true, allowPrivateNetworks: true });
  const dispatcher = new Dispatcher({
    store,
    tls: { ca: ca.caCert },
    allowPrivateNetworks: true,
    timeoutMs: TIMEOUT_MS,
    retry: { delaysMs: [] },
    maxConsecutiveFailures: 1000,
    logger: capturingLogger(logs),
    ...options,
  });
  onCleanup(() => dispatcher.stop());
  return { store, manager, dispatcher, logs };
}

interface Kind {
  name: string;
  /** Starts the hostile endpoint and returns the webhook URL. */
  start(): Promise<string>;
  expected: { errorCode: string | null; statusCode: number | null };
  /** Slow kinds run to the timeout; fast ones must end well before it. */
  slow: boolean;
}

const KINDS: Kind[] = [
  {
    name: 'never answers (hang)',
    start: async () => (await receiver({ ca: ca.forReceiver(), handler: hang() })).url(),
    expected: { errorCode: 'timeout', statusCode: null },
    slow: true,
  },
  {
    name: 'slow-drip headers (one header line every 50 ms)',
    start: async () => (await receiver({ ca: ca.forReceiver(), handler: slowDripHeaders(50) })).url(),
    expected: { errorCode: 'timeout', statusCode: null },
    slow: true,
  },
  {
    name: 'slow-drip body (200, then one byte every 50 ms)',
    start: async () => (await receiver({ ca: ca.forReceiver(), handler: slowDripBody(50) })).url(),
    expected: { errorCode: 'timeout', statusCode: null },
    slow: true,
  },
  {
    name: 'TLS handshake never completes (TCP accepted, silence)',
    start: async () => `https://127.0.0.1:${(await rawServer(() => {})).port}/`,
    expected: { errorCode: 'timeout', statusCode: null },
    slow: true,
  },
  {
    name: 'huge headers (64 KiB; undici allows 16 KiB)',
    start: async () => (await receiver({ ca: ca.forReceiver(), handler: hugeHeaders(64 * 1024) })).url(),
    // undici's UND_ERR_HEADERS_OVERFLOW: no dedicated code, recorded as a network error.
    expected: { errorCode: 'network', statusCode: null },
    slow: false,
  },
  {
    name: 'endless body (200, chunked, never ends)',
    start: async () => (await receiver({ ca: ca.forReceiver(), handler: endlessBody() })).url(),
    // The receiver did answer 200: read 4 KiB for the log, drain 64 KiB more, then hang up.
    expected: { errorCode: null, statusCode: 200 },
    slow: false,
  },
  {
    name: 'connection reset after the request',
    start: async () => (await receiver({ ca: ca.forReceiver(), handler: reset() })).url(),
    expected: { errorCode: 'connection_reset', statusCode: null },
    slow: false,
  },
  {
    name: 'connection reset during the TLS handshake',
    start: async () => `https://127.0.0.1:${(await rawServer((socket) => socket.resetAndDestroy())).port}/`,
    expected: { errorCode: 'connection_reset', statusCode: null },
    slow: false,
  },
  {
    name: 'certificate from an untrusted CA',
    start: async () => (await receiver({ ca: await createTestCA() })).url(),
    expected: { errorCode: 'tls', statusCode: null },
    slow: false,
  },
  {
    name: 'expired certificate',
    start: async () => {
      const expired = { notBefore: new Date(Date.now() - 48 * HOUR), notAfter: new Date(Date.now() - HOUR) };
      return (await receiver({ ca: ca.forReceiver([], expired) })).url();
    },
    expected: { errorCode: 'tls', statusCode: null },
    slow: false,
  },
  {
    name: 'certificate for another name',
    start: async () => {
      const other = { caCert: ca.caCert, issue: () => ca.issue({ names: ['other.example'], exact: true }) };
      return (await receiver({ ca: other })).url();
    },
    expected: { errorCode: 'tls', statusCode: null },
    slow: false,
  },
  {
    name: 'plain HTTP on the HTTPS port',
    start: async () => {
      const { port } = await rawServer((socket) =>
        socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK')),
      );
      return `https://127.0.0.1:${port}/`;
    },
    expected: { errorCode: 'tls', statusCode: null },
    slow: false,
  },
  {
    name: 'nothing listening',
    start: async () => {
      const server = createServer().listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as { port: number };
      await new Promise((resolve) => server.close(resolve));
      return `https://127.0.0.1:${port}/`;
    },
    expected: { errorCode: 'connection_refused', statusCode: null },
    slow: false,
  },
];

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('each hostile receiver: the attempt ends within the timeout with a sensible code', () => {
  it(`${KINDS.length} kinds at once, timeout ${TIMEOUT_MS} ms`, async () => {
    const { manager, dispatcher } = harness();
    const webhooks = [];
    for (const [index, kind] of KINDS.entries()) {
      const url = await kind.start();
      const siteId = `site_${index}`;
      const { webhook } = await manager.create('owner', { siteId, url, events: ['pageview'] });
      webhooks.push({ kind, webhook, siteId });
    }
    await dispatcher.emitMany(webhooks.map(({ siteId }) => event(siteId)));
    const started = performance.now();
    await dispatcher.runDue();
    const elapsed = performance.now() - started;
    const stopStarted = performance.now();
    await dispatcher.stop();
    const stopMs = performance.now() - stopStarted;

    const results = await Promise.all(
      webhooks.map(async ({ kind, webhook }) => {
        const [delivery] = (await manager.deliveries('owner', { webhookId: webhook.id })).deliveries;
        return { kind, delivery: delivery!, attempt: delivery!.attempts[0]! };
      }),
    );
    expect(
      results.map(({ kind, attempt }) => ({
        kind: kind.name,
        errorCode: attempt.errorCode,
        statusCode: attempt.statusCode,
      })),
    ).toEqual(KINDS.map((kind) => ({ kind: kind.name, ...kind.expected })));
    for (const { kind, attempt, delivery } of results) {
      expect(delivery.status, kind.name).toBe(kind.expected.statusCode === 200 ? 'succeeded' : 'failed');
      expect(attempt.durationMs, kind.name).toBeLessThanOrEqual(TIMEOUT_MS + SLACK_MS);
      if (kind.slow) expect(attempt.durationMs, kind.name).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      else expect(attempt.durationMs, kind.name).toBeLessThan(TIMEOUT_MS);
    }
    const endless = results.find(({ kind }) => kind.name.startsWith('endless'))!;
    expect(endless.attempt.responseSnippet).toBe('x'.repeat(4096));
    // All in parallel: the whole batch took one timeout, and stopping did not wait for anything else.
    expect(elapsed).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    expect(stopMs).toBeLessThan(SLACK_MS);
  });
});

describe('other endpoints keep flowing while hostile ones hang', () => {
  it('a healthy webhook gets all its deliveries while every hostile slot is still in flight', async () => {
    const timeoutMs = 2500;
    const perWebhook = 2;
    const { manager, dispatcher } = harness({
      timeoutMs,
      concurrency: 16,
      perWebhookConcurrency: perWebhook,
    });
    const hostile = [
      (await receiver({ ca: ca.forReceiver(), handler: hang() })).url(),
      (await receiver({ ca: ca.forReceiver(), handler: slowDripHeaders(50) })).url(),
      (await receiver({ ca: ca.forReceiver(), handler: slowDripBody(50) })).url(),
      `https://127.0.0.1:${(await rawServer(() => {})).port}/`,
    ];
    const healthy = await receiver({ ca: ca.forReceiver() });

    const hostileIds = new Set<string>();
    for (const [index, url] of hostile.entries()) {
      const { webhook } = await manager.create('owner', {
        siteId: `site_h${index}`,
        url,
        events: ['pageview'],
      });
      hostileIds.add(webhook.id);
    }
    const { webhook: good } = await manager.create('owner', {
      siteId: 'site_good',
      url: healthy.url(),
      events: ['pageview'],
    });

    const inFlight = new Map<string, number>();
    let maxPerWebhook = 0;
    let firstHostileEnd = Number.POSITIVE_INFINITY;
    const hostileEnds: AttemptInfo[] = [];
    let healthyDoneAt = Number.POSITIVE_INFINITY;
    let hostileInFlightWhenHealthyDone = -1;
    let healthyDone = 0;
    const HEALTHY = 20;
    dispatcher.on('attempt:start', ({ webhookId }) => {
      const count = (inFlight.get(webhookId) ?? 0) + 1;
      inFlight.set(webhookId, count);
      maxPerWebhook = Math.max(maxPerWebhook, count);
    });
    const finished = (info: AttemptInfo) => {
      inFlight.set(info.webhookId, inFlight.get(info.webhookId)! - 1);
      if (hostileIds.has(info.webhookId)) {
        firstHostileEnd = Math.min(firstHostileEnd, performance.now());
        hostileEnds.push(info);
      } else if (info.ok && ++healthyDone === HEALTHY) {
        healthyDoneAt = performance.now();
        hostileInFlightWhenHealthyDone = [...hostileIds].reduce(
          (sum, id) => sum + (inFlight.get(id) ?? 0),
          0,
        );
      }
    };
    dispatcher.on('attempt:success', finished);
    dispatcher.on('attempt:failure', finished);

    await dispatcher.start();
    const begun = performance.now();
    // A backlog for every hostile endpoint first (twice its slots), then the healthy traffic.
    await dispatcher.emitMany(
      [...hostile.keys()].flatMap((index) =>
        Array.from({ length: 2 * perWebhook }, () => event(`site_h${index}`)),
      ),
    );
    await dispatcher.emitMany(Array.from({ length: HEALTHY }, (_, i) => event('site_good', `/p${i}`)));
    await healthy.waitFor(HEALTHY, timeoutMs);
    await until(() => healthyDone === HEALTHY, timeoutMs);

    expect(healthy.requests).toHaveLength(HEALTHY);
    expect(healthyDoneAt).toBeLessThan(firstHostileEnd);
    expect(hostileInFlightWhenHealthyDone).toBe(hostile.length * perWebhook);
    expect(maxPerWebhook).toBe(perWebhook);
    expect(healthyDoneAt - begun).toBeLessThan(timeoutMs);

    await dispatcher.stop(); // waits for the hostile attempts in flight; releases the rest
    expect(hostileEnds).toHaveLength(hostile.length * perWebhook);
    for (const info of hostileEnds) {
      expect(info.errorCode).toBe('timeout');
      expect(info.durationMs).toBeLessThanOrEqual(timeoutMs + SLACK_MS);
    }
    const { deliveries } = await manager.deliveries('owner', { webhookId: good.id, limit: 100 });
    expect(deliveries.map((delivery) => delivery.status)).toEqual(Array(HEALTHY).fill('succeeded'));
  });
});

describe('a receiver that never completes the TLS handshake (or a TCP black hole)', () => {
  // undici defers an abort until the request has a connection, so without a bound every attempt that gave
  // up would stay queued in the pool, and undici would keep reconnecting to the black hole for it long
  // after the dispatcher moved on (found by bench/hostile.mjs: sockets and queued requests grew with
  // the attempt rate). The transport hands undici at most `connectionsPerOrigin` requests per origin.
  it('abandoned attempts do not pile up: no reconnects for them once they gave up', async () => {
    let accepted = 0;
    const { port } = await rawServer(() => {
      accepted++;
    });
    const connections = 4;
    const transport = undiciTransport({
      tls: { ca: ca.caCert },
      allowPrivateNetworks: true,
      connectionsPerOrigin: connections,
      connectTimeoutMs: 300,
    });
    onCleanup(() => transport.close());
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 100 }, () =>
        transport.send({ url: `https://127.0.0.1:${port}/`, headers: {}, body: '{}', timeoutMs: 100 }),
      ),
    );
    expect(performance.now() - started).toBeLessThan(100 + SLACK_MS);
    // The first `connections` were sent and timed out; the rest never got a connection and were not sent.
    const outcomes = results.map((result) => (result.kind === 'error' ? result.errorCode : result.kind));
    expect(outcomes.filter((outcome) => outcome === 'timeout')).toHaveLength(connections);
    expect(outcomes.filter((outcome) => outcome === 'not_sent')).toHaveLength(100 - connections);
    // Several connect timeouts later, undici has made no connection beyond the first `connections`:
    // the attempts that waited were never handed to it, the ones it had were dropped with their connects.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(accepted).toBeLessThanOrEqual(connections);
    const closing = performance.now();
    await transport.close();
    expect(performance.now() - closing).toBeLessThan(SLACK_MS);
  });
});

describe('requests waiting for a connection to their origin', () => {
  it('get their whole timeout once sent, and leave unsent at their queue deadline', async () => {
    const slow = await receiver({ ca: ca.forReceiver(), handler: delay(200) });
    const transport = undiciTransport({
      tls: { ca: ca.caCert },
      allowPrivateNetworks: true,
      connectionsPerOrigin: 1,
    });
    onCleanup(() => transport.close());
    const send = (queueTimeoutMs: number) =>
      transport.send({ url: slow.url(), headers: {}, body: '{}', timeoutMs: 300, queueTimeoutMs });
    // One connection, 200 ms per answer: the third request waits about 400 ms for it, longer than its
    // 300 ms timeout, and is still answered, as its timeout starts only when it is sent.
    const answered = await Promise.all([send(5000), send(5000), send(5000)]);
    expect(answered.map((result) => (result.kind === 'response' ? result.statusCode : result.kind))).toEqual([
      200, 200, 200,
    ]);
    // The third waited for two answers before it was sent, and says so (it is not the receiver's time).
    expect(answered[2]!.kind === 'response' && answered[2]!.waitedMs).toBeGreaterThanOrEqual(300);
    // With a queue deadline shorter than one answer, the second request is never sent.
    const received = slow.requests.length;
    const [first, second] = await Promise.all([send(5000), send(50)]);
    expect(first.kind).toBe('response');
    expect(second).toEqual({ kind: 'not_sent', message: 'no free connection to the origin in time' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(slow.requests.length).toBe(received + 1);
  });
});

describe('one host that many sites share cannot hold every slot', () => {
  it("a slow shared host gets at most perOriginConcurrency slots, and other hosts' deliveries go out meanwhile", async () => {
    const timeoutMs = 2500;
    const perOrigin = 6;
    const { manager, dispatcher } = harness({
      timeoutMs,
      concurrency: 16,
      perWebhookConcurrency: 4,
      perSiteConcurrency: 16,
      perOriginConcurrency: perOrigin,
    });
    // Four sites' webhooks on one host that never answers (think a chat service having a bad day): 16
    // attempts would fill every slot.
    const shared = await receiver({ ca: ca.forReceiver(), handler: hang() });
    const sharedIds = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const { webhook } = await manager.create('owner', {
        siteId: `site_${i}`,
        url: shared.url(`/hook/${i}`),
        events: ['pageview'],
      });
      sharedIds.add(webhook.id);
    }
    const healthy = await receiver({ ca: ca.forReceiver() });
    await manager.create('owner', { siteId: 'site_good', url: healthy.url(), events: ['pageview'] });

    let sharedInFlight = 0;
    let maxSharedInFlight = 0;
    dispatcher.on('attempt:start', ({ webhookId }) => {
      if (sharedIds.has(webhookId)) maxSharedInFlight = Math.max(maxSharedInFlight, ++sharedInFlight);
    });
    const finished = (info: AttemptInfo) => {
      if (sharedIds.has(info.webhookId)) sharedInFlight--;
    };
    dispatcher.on('attempt:success', finished);
    dispatcher.on('attempt:failure', finished);

    await dispatcher.start();
    const begun = performance.now();
    for (let i = 0; i < 4; i++) {
      await dispatcher.emitMany(Array.from({ length: 8 }, (_, j) => event(`site_${i}`, `/s${j}`)));
    }
    await dispatcher.emitMany(Array.from({ length: 20 }, (_, i) => event('site_good', `/p${i}`)));
    await healthy.waitFor(20, timeoutMs);
    expect(performance.now() - begun).toBeLessThan(timeoutMs);
    expect(sharedInFlight).toBe(perOrigin);
    await dispatcher.stop();
    expect(maxSharedInFlight).toBe(perOrigin);
  });
});

describe('the default caps', () => {
  it('16 attempts in flight per site and 32 per origin, with the default concurrency of 64', async () => {
    const { manager, dispatcher } = harness({ timeoutMs: 2000 });
    // One site with three webhooks on three hosts (24 deliveries could go at once), and five sites with a
    // webhook each on one shared host (40 could): every host hangs.
    for (let i = 0; i < 3; i++) {
      const host = await receiver({ ca: ca.forReceiver(), handler: hang() });
      await manager.create('owner', { siteId: 'site_big', url: host.url(), events: ['pageview'] });
    }
    const shared = await receiver({ ca: ca.forReceiver(), handler: hang() });
    const sharedSites = ['site_1', 'site_2', 'site_3', 'site_4', 'site_5'];
    for (const siteId of sharedSites) {
      await manager.create('owner', { siteId, url: shared.url(`/${siteId}`), events: ['pageview'] });
    }
    const inFlight = new Map<string, number>();
    dispatcher.on('attempt:start', ({ siteId }) => {
      const group = siteId === 'site_big' ? 'site' : 'origin';
      inFlight.set(group, (inFlight.get(group) ?? 0) + 1);
    });
    await dispatcher.start();
    await dispatcher.emitMany(Array.from({ length: 8 }, (_, i) => event('site_big', `/${i}`)));
    for (const siteId of sharedSites) {
      await dispatcher.emitMany(Array.from({ length: 8 }, (_, i) => event(siteId, `/${i}`)));
    }
    await shared.waitFor(16, 1500);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Nothing has finished yet (the hosts hang for the 2 s timeout): these are the attempts in flight. Of
    // the shared host's 32, 16 are sent (the transport's connections to it) and 16 wait for a connection.
    expect(Object.fromEntries(inFlight)).toEqual({ site: 16, origin: 32 });
    expect(shared.requests).toHaveLength(16);
    await dispatcher.stop();
  });
});

describe('one site cannot hold every slot', () => {
  it('ten slow webhooks of one site, enough to fill every slot, leave room for other sites', async () => {
    const timeoutMs = 2500;
    const perSite = 6;
    const { manager, dispatcher } = harness({
      timeoutMs,
      concurrency: 16,
      perWebhookConcurrency: 4,
      perSiteConcurrency: perSite,
    });
    // Ten webhooks (the spec's maximum per site) answering just inside the timeout would take 40 slots.
    const slowIds = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const slow = await receiver({ ca: ca.forReceiver(), handler: hang() });
      const { webhook } = await manager.create('owner', {
        siteId: 'site_slow',
        url: slow.url(),
        events: ['pageview'],
      });
      slowIds.add(webhook.id);
    }
    const healthy = await receiver({ ca: ca.forReceiver() });
    await manager.create('owner', { siteId: 'site_good', url: healthy.url(), events: ['pageview'] });

    let slowInFlight = 0;
    let maxSlowInFlight = 0;
    let firstSlowEnd = Number.POSITIVE_INFINITY;
    dispatcher.on('attempt:start', ({ webhookId }) => {
      if (!slowIds.has(webhookId)) return;
      maxSlowInFlight = Math.max(maxSlowInFlight, ++slowInFlight);
    });
    const finished = (info: AttemptInfo) => {
      if (!slowIds.has(info.webhookId)) return;
      slowInFlight--;
      firstSlowEnd = Math.min(firstSlowEnd, performance.now());
    };
    dispatcher.on('attempt:success', finished);
    dispatcher.on('attempt:failure', finished);

    await dispatcher.start();
    const begun = performance.now();
    // The slow site's backlog first (each event makes ten deliveries), then the other site's traffic.
    await dispatcher.emitMany(Array.from({ length: 8 }, (_, i) => event('site_slow', `/s${i}`)));
    await dispatcher.emitMany(Array.from({ length: 20 }, (_, i) => event('site_good', `/p${i}`)));
    await healthy.waitFor(20, timeoutMs);
    const healthyDoneAt = performance.now();

    expect(healthyDoneAt).toBeLessThan(firstSlowEnd);
    expect(healthyDoneAt - begun).toBeLessThan(timeoutMs);
    expect(slowInFlight).toBe(perSite);
    await dispatcher.stop();
    expect(maxSlowInFlight).toBe(perSite);
    // Nothing of the slow site was lost: attempted (timed out) or back to pending, none left delivering.
    const { deliveries } = await manager.deliveries('owner', { siteId: 'site_slow', limit: 100 });
    expect(deliveries).toHaveLength(80);
    expect(deliveries.filter((d) => d.status === 'failed')).toHaveLength(perSite);
    expect(deliveries.filter((d) => d.status === 'pending')).toHaveLength(80 - perSite);
  });
});
