import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { Dispatcher, type Store } from '../../src/index.js';
import { createStore, describeEachStore } from '../postgres/stores.js';
import { delay } from '../support/hostile.js';
import type { RecordedRequest } from '../support/receiver.js';
import { latestDelivery, owner, pageview, receiver, SITE, setup, until } from './harness.js';

/** A handler that holds every request until released, counting how many are open at once. */
function gate() {
  let open = 0;
  let peak = 0;
  const waiting: (() => void)[] = [];
  const handler = (_request: RecordedRequest, response: ServerResponse) => {
    open++;
    peak = Math.max(peak, open);
    waiting.push(() => {
      open--;
      response.writeHead(200).end('OK');
    });
  };
  return {
    handler,
    get peak() {
      return peak;
    },
    get waiting() {
      return waiting.length;
    },
    releaseAll() {
      for (const release of waiting.splice(0)) release();
    },
  };
}

describeEachStore('dispatcher: engine', () => {
  describe('engine', () => {
    it('never has more attempts in flight than `concurrency`', async () => {
      const slow = gate();
      const target = await receiver(slow.handler);
      const { dispatcher, subscribe } = await setup({ concurrency: 3, perWebhookConcurrency: 10 });
      await subscribe(target.url());
      await dispatcher.emitMany(Array.from({ length: 12 }, () => pageview()));
      await dispatcher.start();
      for (let released = 0; released < 12; ) {
        await until(() => slow.waiting > 0);
        await new Promise((resolve) => setTimeout(resolve, 30));
        released += slow.waiting;
        slow.releaseAll();
      }
      await target.waitFor(12);
      expect(slow.peak).toBe(3);
    });

    it('keeps one slow endpoint from starving the others', async () => {
      const slow = gate();
      const slowTarget = await receiver(slow.handler);
      const fastTarget = await receiver();
      const { dispatcher, manager } = await setup({ concurrency: 8, perWebhookConcurrency: 2 });
      await manager.create(owner, { siteId: SITE, url: slowTarget.url(), events: ['pageview'] });
      await manager.create(owner, { siteId: 'site_two', url: fastTarget.url(), events: ['pageview'] });

      await dispatcher.emitMany(Array.from({ length: 50 }, () => pageview()));
      await dispatcher.start();
      await until(() => slow.waiting === 2);
      await dispatcher.emitMany(Array.from({ length: 20 }, () => ({ ...pageview(), siteId: 'site_two' })));
      await fastTarget.waitFor(20);
      expect(slow.peak).toBe(2);
      expect(slowTarget.requests).toHaveLength(2);

      slow.releaseAll();
      const drain = setInterval(() => slow.releaseAll(), 5);
      await slowTarget.waitFor(50, 10_000);
      // Answer the last ones too, or stop() after the test would wait for them to time out (5 s).
      await until(() => slow.waiting === 0);
      await new Promise((resolve) => setTimeout(resolve, 20));
      clearInterval(drain);
      slow.releaseAll();
      expect(slow.peak).toBe(2);
    });

    it('stop() drains: in-flight attempts finish, nothing is lost, the rest waits', async () => {
      const target = await receiver(delay(150));
      const store = await createStore();
      const { dispatcher, subscribe, manager } = await setup({ store, concurrency: 4 });
      const webhook = await subscribe(target.url());
      const ids = await dispatcher.emitMany(Array.from({ length: 20 }, (_, i) => pageview(`/${i}`)));
      await dispatcher.start();
      await until(() => target.requests.length > 0 || false, 5000);
      await dispatcher.stop();

      const after = await store.listDeliveries({ webhookId: webhook.id, limit: 100 });
      expect(after.filter((d) => d.status === 'delivering')).toEqual([]);
      const succeeded = after.filter((d) => d.status === 'succeeded').length;
      expect(succeeded).toBeGreaterThan(0);
      expect(succeeded).toBeLessThan(20);
      expect(after.filter((d) => d.status === 'pending')).toHaveLength(20 - succeeded);
      const receivedAtStop = target.requests.length;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(target.requests.length).toBe(receivedAtStop);

      const second = new Dispatcher({ store, tls: { ca: target.caCert }, allowPrivateNetworks: true });
      await second.start();
      await until(
        async () =>
          (await manager.deliveries(owner, { webhookId: webhook.id, status: 'succeeded' })).deliveries
            .length === 20,
      );
      await second.stop();
      const received = new Set(target.requests.map((r) => r.headers['x-zta-delivery-id']));
      expect(received).toEqual(new Set(ids));
    });

    it('stop() during a claim gives what that claim took back to pending', async () => {
      const target = await receiver();
      const inner = await createStore();
      let openGate: () => void = () => {};
      const gateOpen = new Promise<void>((resolve) => {
        openGate = resolve;
      });
      let claiming = false;
      const store: Store = {
        ...inner,
        claimDeliveries: async (options) => {
          claiming = true;
          const claimed = await inner.claimDeliveries(options);
          await gateOpen; // the claim has committed; its answer is on the way
          return claimed;
        },
      };
      const { dispatcher, subscribe } = await setup({ store });
      const webhook = await subscribe(target.url());
      await dispatcher.emitMany([pageview('/1'), pageview('/2')]);
      await dispatcher.start();
      await until(() => claiming);
      const stopped = dispatcher.stop();
      openGate();
      await stopped;
      const after = await inner.listDeliveries({ webhookId: webhook.id, limit: 10 });
      expect(after.map((d) => d.status)).toEqual(['pending', 'pending']);
      expect(target.requests).toHaveLength(0);
    });

    it('runDue() sends what is due and waits for it, without start()', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, store } = await setup();
      const webhook = await subscribe(target.url());
      await dispatcher.emitMany([pageview('/a'), pageview('/b')]);
      expect(await dispatcher.runDue()).toEqual({ attempted: 2 });
      expect(target.requests).toHaveLength(2);
      const deliveries = await store.listDeliveries({ webhookId: webhook.id, limit: 10 });
      expect(deliveries.map((d) => d.status)).toEqual(['succeeded', 'succeeded']);
      expect(await dispatcher.runDue()).toEqual({ attempted: 0 });
    });

    it('fires attempt events, and a throwing listener does not break delivery', async () => {
      const target = await (await import('./harness.js')).receiver();
      const { dispatcher, subscribe, logs } = await setup();
      await subscribe(target.url());
      const seen: string[] = [];
      dispatcher.on('attempt:start', (info) => seen.push(`start ${info.attempt}`));
      dispatcher.on('attempt:success', (info) => seen.push(`success ${info.statusCode}`));
      dispatcher.on('attempt:start', () => {
        throw new Error('listener bug');
      });
      await dispatcher.start();
      await dispatcher.emit(pageview());
      await until(() => seen.includes('success 200'));
      expect(seen).toEqual(['start 1', 'success 200']);
      expect(logs.some((line) => line.message.includes("'attempt:start' listener threw"))).toBe(true);
    });
  });

  describe('per-site cap', () => {
    it('keeps each webhook’s deliveries in order when claims beyond the cap go back', async () => {
      const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
      const target = await receiver(async (_request, response) => {
        await sleep(20);
        response.writeHead(200).end('OK');
      });
      // One at a time per webhook, two at a time for the site: claims of three webhooks overshoot the cap.
      const { dispatcher, subscribe } = await setup({ perWebhookConcurrency: 1, perSiteConcurrency: 2 });
      for (const path of ['/a', '/b', '/c']) await subscribe(target.url(path), ['pageview']);
      for (let seq = 1; seq <= 8; seq++) {
        await dispatcher.emit(pageview(`/${seq}`));
        await sleep(3); // distinct due times
      }
      await dispatcher.start();
      const requests = await target.waitFor(24, 10_000);
      for (const path of ['/a', '/b', '/c']) {
        const order = requests
          .filter((request) => request.url === path)
          .map((request) => Number(JSON.parse(request.body).data.path.slice(1)));
        expect(order, path).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      }
    });
  });

  describe('connect-time address guard', () => {
    it('refuses a loopback IP literal without allowPrivateNetworks (blocked_address)', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, manager } = await setup({ allowPrivateNetworks: false });
      const webhook = await subscribe(target.url());
      await dispatcher.start();
      await dispatcher.emit(pageview());
      const delivery = await latestDelivery(manager, webhook.id, 'failed');
      expect(delivery.attempts).toHaveLength(1);
      expect(delivery.attempts[0]).toMatchObject({ errorCode: 'blocked_address', statusCode: null });
      expect(target.requests).toHaveLength(0);
    });

    it('refuses a hostname that resolves to loopback at connect time (DNS rebinding)', async () => {
      const target = await receiver();
      const { dispatcher, subscribe, manager } = await setup({ allowPrivateNetworks: false });
      // The manager let this in (it allows private networks here, as a public name would pass); the
      // dispatcher checks the address the name resolves to when it connects.
      const webhook = await subscribe(`https://localhost:${target.port}/webhook`);
      await dispatcher.start();
      await dispatcher.emit(pageview());
      const delivery = await latestDelivery(manager, webhook.id, 'failed');
      expect(delivery.attempts[0]).toMatchObject({ errorCode: 'blocked_address' });
      expect(target.requests).toHaveLength(0);
    });

    it('reaches the same name with allowPrivateNetworks', async () => {
      const target = await receiver();
      const { dispatcher, subscribe } = await setup({ allowPrivateNetworks: true });
      await subscribe(`https://localhost:${target.port}/webhook`);
      await dispatcher.start();
      await dispatcher.emit(pageview());
      await target.waitFor(1);
    });
  });
});
