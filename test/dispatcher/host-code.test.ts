// The host's code inside the delivery engine: loggers and listeners that fail, stores that take their time,
// callers that overlap. None of it may lose, duplicate or stall a delivery.
import { describe, expect, it } from 'vitest';
import { Dispatcher, type Logger, type Store, type Transport } from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';
import { undiciTransport } from '../../src/transport/undici-transport.js';
import { owner, pageview, receiver, SITE, setup, until } from './harness.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with `promise`'s value, or rejects if it takes longer than `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    sleep(ms).then(() => {
      throw new Error(`still pending after ${ms} ms`);
    }),
  ]);
}

const throwingLogger: Logger = {
  debug: () => {
    throw new Error('log sink closed');
  },
  info: () => {
    throw new Error('log sink closed');
  },
  warn: () => {
    throw new Error('log sink closed');
  },
  error: () => {
    throw new Error('log sink closed');
  },
};

describe('the host’s code in the engine', () => {
  it('a logger that throws at every level loses nothing: retries go out, outcomes are recorded, stop() returns', async () => {
    const failing = await receiver((_request, response) => {
      response.writeHead(500).end('down');
    });
    const { dispatcher, subscribe, store } = await setup({
      store: memoryStore(),
      logger: throwingLogger,
      perWebhookConcurrency: 2,
      retry: { delaysMs: [20, 20] },
    });
    await subscribe(failing.url());
    await dispatcher.emitMany([pageview('/1'), pageview('/2'), pageview('/3'), pageview('/4')]);
    await dispatcher.start();
    await failing.waitFor(12, 5000);
    await until(async () =>
      (await store.listDeliveries({ siteId: SITE, limit: 10 })).every((d) => d.status === 'failed'),
    );
    await within(dispatcher.stop(), 5000);
  });

  it('a logger that throws on warn still lets a disabled webhook be announced', async () => {
    const gone = await receiver((_request, response) => {
      response.writeHead(410).end('gone');
    });
    const disabled: string[] = [];
    const { dispatcher, subscribe } = await setup({
      store: memoryStore(),
      logger: { warn: throwingLogger.warn! },
      onWebhookDisabled: (info) => disabled.push(`callback ${info.reason}`),
    });
    dispatcher.on('webhook:disabled', (info) => disabled.push(`event ${info.reason}`));
    await subscribe(gone.url());
    await dispatcher.start();
    await dispatcher.emit(pageview());
    await until(() => disabled.length === 2);
    expect(disabled.map((line) => line.split(' ')[0]).sort()).toEqual(['callback', 'event']);
  });

  it('calls every listener when one throws, and logs a listener’s rejected promise', async () => {
    const target = await receiver();
    const { dispatcher, subscribe, logs } = await setup({ store: memoryStore() });
    await subscribe(target.url());
    const seen: string[] = [];
    dispatcher.on('attempt:start', () => {
      throw new Error('first listener bug');
    });
    dispatcher.on('attempt:start', () => seen.push('second listener'));
    dispatcher.on('attempt:success', async () => {
      await null;
      throw new Error('async listener bug');
    });
    dispatcher.on('attempt:success', () => seen.push('success'));
    await dispatcher.start();
    await dispatcher.emit(pageview());
    await until(() => seen.includes('success'));
    await until(() => logs.some((line) => line.message === "a 'attempt:success' listener threw"));
    expect(seen).toEqual(['second listener', 'success']);
    expect(logs.filter((line) => line.message === "a 'attempt:start' listener threw")).toHaveLength(1);
  });
});

describe('a scheduler or store that fails', () => {
  it('a scheduler that throws leaves retries to the poll: nothing crashes, the retry goes out', async () => {
    let calls = 0;
    const target = await receiver((_request, response) => {
      calls++;
      response.writeHead(calls === 1 ? 500 : 200).end();
    });
    const { dispatcher, subscribe, logs } = await setup({
      store: memoryStore(),
      pollIntervalMs: 100,
      retry: { delaysMs: [20] },
      scheduler: {
        wakeAt: () => {
          throw new Error('scheduler backend down');
        },
        cancel: () => {
          throw new Error('scheduler backend down');
        },
      },
    });
    await subscribe(target.url());
    await dispatcher.start();
    await dispatcher.emit(pageview());
    await target.waitFor(2, 5000);
    await within(dispatcher.stop(), 5000);
    expect(
      logs.some((line) => line.message === 'scheduler failed; next attempts start at the next poll'),
    ).toBe(true);
  });

  it('a store whose subscribe throws: start() rejects, and a later start() delivers', async () => {
    const inner = memoryStore();
    let failSubscribe = true;
    const store: Store = {
      ...inner,
      subscribe: (listener) => {
        if (failSubscribe) throw new Error('LISTEN refused');
        return inner.subscribe!(listener);
      },
    };
    const target = await receiver();
    const { dispatcher, subscribe } = await setup({ store, pollIntervalMs: 60_000 });
    await subscribe(target.url());
    await dispatcher.emit(pageview());
    await expect(dispatcher.start()).rejects.toThrow('LISTEN refused');
    failSubscribe = false;
    await dispatcher.start();
    await target.waitFor(1, 5000);
  });

  it('sends a delivery claimed again while its attempt runs once, and records that attempt under the new lease', async () => {
    const store = memoryStore();
    let sends = 0;
    let claimedAgain = false;
    const transport: Transport = {
      async send() {
        sends++;
        if (sends === 1) {
          // The event loop blocked past the 200 ms lease; then the poll claims the delivery again.
          const blockedUntil = Date.now() + 400;
          while (Date.now() < blockedUntil) {}
          await until(() => claimedAgain, 5000);
        }
        return { kind: 'response', statusCode: 200, headers: {}, bodySnippet: '' };
      },
      async close() {},
    };
    const { dispatcher, manager, logs } = await setup({
      store,
      transport,
      timeoutMs: 100,
      leaseMs: 200,
      pollIntervalMs: 20,
    });
    const reclaimLogged = () =>
      logs.filter((line) => line.message.startsWith('claimed a delivery whose attempt is still running'));
    const watching = setInterval(() => {
      claimedAgain = reclaimLogged().length > 0;
    }, 5);
    await manager.create(owner, { siteId: SITE, url: 'https://hooks.example.com/in', events: ['pageview'] });
    await dispatcher.start();
    const [id] = await dispatcher.emit(pageview());
    await until(async () => (await store.getDelivery(id!))?.status === 'succeeded', 5000);
    clearInterval(watching);
    await sleep(600); // time for a second send, had the new claim been left to run out
    expect(sends).toBe(1);
    expect(await store.listAttempts([id!])).toHaveLength(1);
    expect(reclaimLogged()).toHaveLength(1);
  });

  it('does not release a delivery whose attempt runs here when stop() lands during the claim that took it again', async () => {
    const inner = memoryStore();
    let sending = 0;
    let mostAtOnce = 0;
    let first: string | undefined;
    let reclaimed = false;
    let stopBegun!: () => void;
    const stopping = new Promise<void>((resolve) => {
      stopBegun = resolve;
    });
    const transport = (stall: boolean): Transport => {
      let calls = 0;
      return {
        async send() {
          mostAtOnce = Math.max(mostAtOnce, ++sending);
          if (stall && ++calls === 1) {
            const blockedUntil = Date.now() + 400; // the event loop blocked past the 200 ms lease
            while (Date.now() < blockedUntil) {}
            // Running on until the poll has claimed it again and stop() has begun, and a little longer
            // (well within the new lease), so that another worker could take it if it were released.
            await until(() => reclaimed, 5000);
            await stopping;
            await sleep(60);
          } else await sleep(20);
          sending--;
          return { kind: 'response', statusCode: 200, headers: {}, bodySnippet: '' };
        },
        async close() {},
      };
    };
    // This process's claim that takes the running delivery again answers only once stop() has begun.
    const store: Store = {
      ...inner,
      claimDeliveries: async (options) => {
        const claimed = await inner.claimDeliveries(options);
        if (first === undefined) first = claimed[0]?.delivery.id;
        else if (claimed.some((c) => c.delivery.id === first)) {
          reclaimed = true;
          await stopping;
        }
        return claimed;
      },
    };
    const options = { timeoutMs: 100, leaseMs: 200, pollIntervalMs: 20 };
    const { dispatcher, manager } = await setup({ store, transport: transport(true), ...options });
    const { dispatcher: other } = await setup({ store: inner, transport: transport(false), ...options });
    await manager.create(owner, { siteId: SITE, url: 'https://hooks.example.com/in', events: ['pageview'] });
    await dispatcher.start();
    const [id] = await dispatcher.emit(pageview());
    await until(() => reclaimed, 5000);
    const stopped = dispatcher.stop();
    stopBegun();
    await other.start(); // another worker, ready to take anything pending
    await stopped;
    await sleep(200);
    expect(mostAtOnce).toBe(1);
    expect(await inner.getDelivery(id!)).toMatchObject({ status: 'succeeded' });
    expect(await inner.listAttempts([id!])).toHaveLength(1);
  });

  it('refuses retry delays and a Retry-After cap beyond a year (a due time no Date holds)', () => {
    const store = memoryStore();
    const year = 365 * 24 * 60 * 60 * 1000;
    for (const retry of [{ delaysMs: [year + 1] }, { retryAfterCapMs: 1e300 }, { delaysMs: [-1] }]) {
      expect(() => new Dispatcher({ store, retry })).toThrow(
        'retry delays and retryAfterCapMs must be milliseconds from 0 to 365 days',
      );
    }
    expect(() => new Dispatcher({ store, retry: { delaysMs: [year], retryAfterCapMs: year } })).not.toThrow();
  });

  it('refuses a lease that ends before an attempt can', async () => {
    const store = memoryStore();
    expect(() => new Dispatcher({ store, timeoutMs: 5_000, leaseMs: 5_000 })).toThrow(
      'leaseMs (5000) must be longer than timeoutMs (5000): an attempt must end within its lease',
    );
    expect(() => new Dispatcher({ store, leaseMs: 1_000 })).toThrow(TypeError);
    expect(() => new Dispatcher({ store, timeoutMs: 500, leaseMs: 1_000 })).not.toThrow();
  });

  it("refuses a timeout or lease past Node's timer ceiling (such a timer fires after 1 ms)", () => {
    const store = memoryStore();
    const max = 2 ** 31 - 1;
    expect(() => new Dispatcher({ store, timeoutMs: max + 1 })).toThrow(
      `timeoutMs must be at most ${max} ms`,
    );
    expect(() => new Dispatcher({ store, leaseMs: max + 1 })).toThrow(`leaseMs must be at most ${max} ms`);
    expect(() => new Dispatcher({ store, timeoutMs: max - 1, leaseMs: max })).not.toThrow();
  });
});

describe('a store that takes its time', () => {
  it('arms a retry at its delay, also when its write queued behind another one', async () => {
    const inner = memoryStore();
    // Writes that take as long as a database round trip or two: the second outcome (a retry) is queued
    // while the first one's write is still running.
    const slowWrites: Store = {
      ...inner,
      completeAttempts: async (outcomes) => {
        await sleep(100);
        return inner.completeAttempts(outcomes);
      },
    };
    let failedOnce = false;
    const target = await receiver(async (request, response) => {
      if (request.url === '/b' && !failedOnce) {
        failedOnce = true;
        await sleep(30);
        response.writeHead(500).end('once');
        return;
      }
      response.writeHead(200).end('OK');
    });
    const { dispatcher, subscribe } = await setup({
      store: slowWrites,
      pollIntervalMs: 60_000,
      retry: { delaysMs: [200] },
    });
    await subscribe(target.url('/a'));
    await subscribe(target.url('/b'));
    await dispatcher.start();
    await dispatcher.emit(pageview());
    // Sent at about 200 ms plus a write; before the fix, at the next poll (a minute here).
    const requests = await target.waitFor(3, 5000);
    expect(requests.filter((request) => request.url === '/b')).toHaveLength(2);
  });
});

describe('a store that cannot record outcomes', () => {
  it('claims nothing more while writes fail, and sends each delivery once when they work again', async () => {
    const inner = memoryStore();
    let down = true;
    let dueLookups = 0;
    const store: Store = {
      ...inner,
      completeAttempts: async (outcomes) => {
        if (down) throw new Error('connection refused');
        return inner.completeAttempts(outcomes);
      },
      nextDueAt: async (options) => {
        dueLookups++;
        return inner.nextDueAt(options);
      },
    };
    const target = await receiver();
    const { dispatcher, subscribe, logs } = await setup({
      store,
      concurrency: 16,
      perWebhookConcurrency: 16,
    });
    await subscribe(target.url());
    await dispatcher.emitMany(Array.from({ length: 40 }, (_, i) => pageview(`/${i}`)));
    await dispatcher.start();
    await target.waitFor(1, 5000);
    const lookupsBefore = dueLookups;
    await sleep(1500);
    // Held back, the engine waits for the writer rather than asking for the next due time over and over.
    expect(dueLookups - lookupsBefore).toBeLessThan(10);
    // Once a write failed, nothing more is claimed: at most the attempts started before it came back.
    expect(target.requests.length).toBeLessThanOrEqual(32);
    expect(logs.some((line) => line.message === 'could not record attempt outcomes; retrying')).toBe(true);
    down = false;
    await until(async () => {
      const deliveries = await inner.listDeliveries({ siteId: SITE, limit: 100 });
      return deliveries.every((delivery) => delivery.status === 'succeeded');
    }, 15_000);
    await within(dispatcher.stop(), 5000);
    expect(target.requests).toHaveLength(40);
    expect(new Set(target.requests.map((request) => request.headers['x-zta-delivery-id'])).size).toBe(40);
  }, 30_000);

  it('writes a batch that grew too big for one statement in smaller ones', async () => {
    const inner = memoryStore();
    // The first write waits a second (a lock held elsewhere) while outcomes pile up behind it; past 4
    // outcomes a write always fails (a statement timeout the grown batch would hit for ever).
    const writes: number[] = [];
    const store: Store = {
      ...inner,
      completeAttempts: async (outcomes) => {
        writes.push(outcomes.length);
        if (writes.length === 1) await sleep(1000);
        else if (outcomes.length > 4) throw new Error('canceling statement due to statement timeout');
        return inner.completeAttempts(outcomes);
      },
    };
    const target = await receiver();
    const { dispatcher, subscribe } = await setup({ store, concurrency: 16, perWebhookConcurrency: 16 });
    await subscribe(target.url());
    await dispatcher.emitMany(Array.from({ length: 40 }, (_, i) => pageview(`/${i}`)));
    await dispatcher.start();
    await until(async () => {
      const deliveries = await inner.listDeliveries({ siteId: SITE, limit: 100 });
      return deliveries.every((delivery) => delivery.status === 'succeeded');
    }, 20_000);
    await within(dispatcher.stop(), 5000);
    expect(Math.max(...writes.slice(1))).toBeGreaterThan(4);
    expect(target.requests).toHaveLength(40);
  }, 30_000);

  it("an outcome the store always refuses holds up neither the others nor other webhooks' deliveries", async () => {
    const inner = memoryStore();
    let poison: string | undefined;
    const store: Store = {
      ...inner,
      completeAttempts: async (outcomes) => {
        if (outcomes.some((outcome) => outcome.attempt.deliveryId === poison))
          throw new Error('value too long');
        return inner.completeAttempts(outcomes);
      },
    };
    const target = await receiver();
    const { dispatcher, subscribe } = await setup({ store, concurrency: 8, perWebhookConcurrency: 8 });
    const stalled = await subscribe(target.url('/a'));
    const healthy = await subscribe(target.url('/b'));
    await dispatcher.emitMany(Array.from({ length: 4 }, (_, i) => pageview(`/${i}`)));
    const byWebhook = async (webhookId: string) => inner.listDeliveries({ webhookId, limit: 100 });
    poison = (await byWebhook(stalled.id))[0]!.id;
    await dispatcher.start();
    const statuses = async (webhookId: string) => (await byWebhook(webhookId)).map((d) => d.status).sort();
    await until(async () => (await statuses(healthy.id)).every((status) => status === 'succeeded'), 15_000);
    await until(
      async () => (await statuses(stalled.id)).filter((s) => s === 'succeeded').length === 3,
      15_000,
    );
    expect((await inner.getDelivery(poison))?.status).toBe('delivering');

    // Emitted while it is still refused: the other webhook's deliveries go out; the stalled webhook's wait
    // (its outcomes are not being written: sent now, they might only be sent again later).
    await dispatcher.emitMany([pageview('/later1'), pageview('/later2')]);
    await until(
      async () => (await statuses(healthy.id)).filter((s) => s === 'succeeded').length === 6,
      10_000,
    );
    await sleep(500);
    expect(await statuses(stalled.id)).toEqual([
      'delivering',
      'pending',
      'pending',
      'succeeded',
      'succeeded',
      'succeeded',
    ]);
    expect(target.requests.filter((request) => request.url === '/a')).toHaveLength(4);

    poison = undefined; // written at its next try; then the stalled webhook's deliveries go out
    await until(async () => (await statuses(stalled.id)).every((status) => status === 'succeeded'), 20_000);
    await within(dispatcher.stop(), 5000);
    expect(target.requests).toHaveLength(12);
  }, 60_000);
});

describe('a transport that cannot send', () => {
  it('a delivery not sent waits a moment before it is claimed again, then goes out', async () => {
    const target = await receiver();
    const real = undiciTransport({ tls: { ca: target.caCert }, allowPrivateNetworks: true });
    let refusing = true;
    let sends = 0;
    const transport: Transport = {
      send: async (request) => {
        sends++;
        if (refusing) return { kind: 'not_sent', message: 'no connection' };
        return real.send(request);
      },
      close: () => real.close(),
    };
    const inner = memoryStore();
    let claims = 0;
    const store: Store = {
      ...inner,
      claimDeliveries: async (options) => {
        claims++;
        return inner.claimDeliveries(options);
      },
    };
    const { dispatcher, subscribe } = await setup({ store, transport });
    await subscribe(target.url());
    await dispatcher.start();
    const [id] = await dispatcher.emit(pageview());
    await sleep(1500);
    // Once or twice in 1.5 s, not in a loop.
    expect(sends).toBeGreaterThanOrEqual(1);
    expect(sends).toBeLessThanOrEqual(3);
    expect(claims).toBeLessThan(10);
    refusing = false;
    await target.waitFor(1, 5000);
    await until(async () => (await inner.getDelivery(id!))?.status === 'succeeded');
    await dispatcher.stop();
    await transport.close();
  });
});

describe('a delivery not sent', () => {
  it("keeps its place: with one attempt at a time, its webhook's later deliveries still come after it", async () => {
    const delivered: string[] = [];
    let refuseFirst = true;
    const transport: Transport = {
      send: async (request) => {
        if (refuseFirst) {
          refuseFirst = false;
          return { kind: 'not_sent', message: 'no connection' };
        }
        delivered.push((JSON.parse(request.body) as { data: { path: string } }).data.path);
        return { kind: 'response', statusCode: 200, headers: {}, bodySnippet: 'OK' };
      },
      close: async () => {},
    };
    const { dispatcher, subscribe, store } = await setup({
      store: memoryStore(),
      transport,
      perWebhookConcurrency: 1,
    });
    const webhook = await subscribe('https://hooks.example.com/x');
    for (const path of ['/1', '/2', '/3']) {
      await dispatcher.emit(pageview(path));
      await sleep(5);
    }
    await dispatcher.start();
    await until(
      async () =>
        (await store.listDeliveries({ webhookId: webhook.id, limit: 10 })).every(
          (d) => d.status === 'succeeded',
        ),
      5000,
    );
    expect(delivered).toEqual(['/1', '/2', '/3']);
  });
});

describe('overlapping callers', () => {
  it('runDue() calls that overlap, and runDue() beside start(), keep to perWebhookConcurrency', async () => {
    let open = 0;
    let peak = 0;
    const target = await receiver(async (_request, response) => {
      open++;
      peak = Math.max(peak, open);
      await sleep(100);
      open--;
      response.writeHead(200).end('OK');
    });
    const { dispatcher, subscribe, store } = await setup({ store: memoryStore(), perWebhookConcurrency: 2 });
    await subscribe(target.url());
    await dispatcher.emitMany(Array.from({ length: 12 }, (_, i) => pageview(`/${i}`)));
    const [first, second] = await Promise.all([dispatcher.runDue(), dispatcher.runDue()]);
    expect(first.attempted + second.attempted).toBe(12);
    expect(peak).toBe(2);

    await dispatcher.emitMany(Array.from({ length: 8 }, (_, i) => pageview(`/again/${i}`)));
    peak = 0;
    await dispatcher.start();
    await dispatcher.runDue();
    await until(async () =>
      (await store.listDeliveries({ siteId: SITE, limit: 30 })).every((d) => d.status === 'succeeded'),
    );
    expect(peak).toBe(2);
  });
});
