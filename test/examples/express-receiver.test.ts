// The express-receiver example over real HTTPS: fed by a real Dispatcher, it verifies every delivery,
// answers 200 before processing, processes each delivery id once (retries, and requests sent again as they
// were, are skipped),
// counts signature checks, lets a redelivery through when processing failed, and stays bounded.
import { describe, expect, it } from 'vitest';
import {
  createReceiver,
  type ReceivedDelivery,
  type ReceiverOptions,
} from '../../examples/express-receiver/app.js';
import { Dispatcher, WebhookManager } from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';
import { signPayload } from '../../src/verify.js';
import { certFiles, eventually, httpsClient, onCleanup, runMain, serverCert, testCA } from './support.js';

const SITE = 'site_abc123';
const owner = { sites: [SITE] };

async function startReceiver(options: ReceiverOptions) {
  const receiver = createReceiver(options);
  onCleanup(() => receiver.close());
  const server = await receiver.listen({ tls: await serverCert() });
  return { receiver, url: `${server.origin}/webhook`, http: await httpsClient() };
}

/** A store, manager and started dispatcher that trust the test CA. */
async function startSender(options: { delaysMs?: number[] } = {}) {
  const store = memoryStore();
  const manager = new WebhookManager({
    store,
    authorize: (p: typeof owner, siteId) => p.sites.includes(siteId),
    allowPrivateNetworks: true,
  });
  const dispatcher = new Dispatcher({
    store,
    tls: { ca: (await testCA()).caCert },
    allowPrivateNetworks: true,
    retry: { delaysMs: options.delaysMs ?? [50, 100] },
  });
  await dispatcher.start();
  onCleanup(() => dispatcher.stop());
  return { store, manager, dispatcher };
}

function signed(body: string, secret: string, headers: Record<string, string> = {}) {
  return {
    method: 'POST' as const,
    body,
    headers: {
      'content-type': 'application/json',
      'x-zta-signature': signPayload(body, secret),
      'x-zta-event': 'pageview',
      ...headers,
    },
  };
}

const body = (path = '/') =>
  JSON.stringify({ event: 'pageview', timestamp: new Date().toISOString(), data: { siteId: SITE, path } });

describe('express-receiver example', () => {
  it('verifies and processes real deliveries, with the delivery id and the exact signed bytes', async () => {
    const processed: ReceivedDelivery[] = [];
    const secrets = new Map<string, string>();
    const { receiver, url } = await startReceiver({
      getSecret: (webhookId) => secrets.get(webhookId),
      process: (delivery) => {
        processed.push(delivery);
      },
    });
    const { manager, dispatcher } = await startSender();
    const { webhook } = await manager.create(owner, { siteId: SITE, url, events: ['pageview', 'goal'] });
    secrets.set(webhook.id, webhook.secret);

    const ids = [
      ...(await dispatcher.emit({ siteId: SITE, event: 'pageview', data: { path: '/blog/my-article' } })),
      ...(await dispatcher.emit({
        siteId: SITE,
        event: 'goal',
        data: { goalId: 'goal_abc123', goalName: 'Newsletter Signup' },
      })),
    ];
    await eventually(() => receiver.stats.processed === 2, 'two processed deliveries');
    expect(processed.map((d) => d.deliveryId).sort()).toEqual([...ids].sort());
    for (const delivery of processed) {
      expect(delivery.webhookId).toBe(webhook.id);
      expect(JSON.parse(delivery.rawBody.toString('utf8'))).toEqual(delivery.payload);
    }
    expect(processed.map((d) => d.payload.event).sort()).toEqual(['goal', 'pageview']);
    expect(receiver.stats).toMatchObject({ signaturesPassed: 2, signaturesFailed: 0, duplicates: 0 });
  });

  it('answers 401 to bad signatures and counts them; nothing is processed', async () => {
    const processed: unknown[] = [];
    const { receiver, url, http } = await startReceiver({
      secret: 'whsec_right',
      process: (d) => {
        processed.push(d);
      },
    });
    const payload = body();
    const answers = await Promise.all([
      http.raw(url, signed(payload, 'whsec_wrong', { 'x-zta-delivery-id': 'dlv_1' })),
      http.raw(url, { ...signed(payload, 'whsec_right'), body: payload.replace('/"', '/admin"') }),
      http.raw(url, { method: 'POST', body: payload, headers: { 'content-type': 'application/json' } }),
    ]);
    expect(answers.map((a) => [a.status, a._data])).toEqual([
      [401, { error: 'Invalid signature' }],
      [401, { error: 'Invalid signature' }],
      [401, { error: 'Invalid signature' }],
    ]);
    const good = await http.raw(url, signed(payload, 'whsec_right', { 'x-zta-delivery-id': 'dlv_2' }));
    expect([good.status, good._data]).toEqual([200, 'OK']);
    await receiver.idle();
    expect(receiver.stats).toMatchObject({ signaturesPassed: 1, signaturesFailed: 3, processed: 1 });
    expect(processed).toHaveLength(1);
  });

  it('processes a delivery id once: a retry, or the same request again, gets 200 and is skipped', async () => {
    const processed: string[] = [];
    const { receiver, url, http } = await startReceiver({
      secret: 'whsec_s',
      process: (d) => {
        processed.push(d.deliveryId);
      },
    });
    const payload = body();
    for (let i = 0; i < 3; i++) {
      const answer = await http.raw(url, signed(payload, 'whsec_s', { 'x-zta-delivery-id': 'dlv_same' }));
      expect(answer.status).toBe(200);
    }
    // Same body, another delivery id (the same event sent to a second webhook, say): processed.
    await http.raw(url, signed(payload, 'whsec_s', { 'x-zta-delivery-id': 'dlv_other' }));
    await receiver.idle();
    expect(processed).toEqual(['dlv_same', 'dlv_other']);
    expect(receiver.stats).toMatchObject({ signaturesPassed: 4, duplicates: 2, processed: 2 });
  });

  it('without X-ZTA-Delivery-ID, recognises a retry by its signed body', async () => {
    const processed: string[] = [];
    const { url, http, receiver } = await startReceiver({
      secret: 'whsec_s',
      process: (d) => {
        processed.push(d.payload.timestamp);
      },
    });
    const first = body('/a');
    await http.raw(url, signed(first, 'whsec_s'));
    await http.raw(url, signed(first, 'whsec_s'));
    await http.raw(url, signed(body('/b'), 'whsec_s'));
    await receiver.idle();
    expect(processed).toHaveLength(2);
    expect(receiver.stats.duplicates).toBe(1);
  });

  it('answers 200 at once while processing runs on', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { receiver, url, http } = await startReceiver({ secret: 'whsec_s', process: () => gate });
    const started = performance.now();
    const answer = await http.raw(url, signed(body(), 'whsec_s', { 'x-zta-delivery-id': 'dlv_slow' }));
    expect(answer.status).toBe(200);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(receiver.stats).toMatchObject({ inFlight: 1, processed: 0 });
    release();
    await receiver.idle();
    expect(receiver.stats).toMatchObject({ inFlight: 0, processed: 1 });
  });

  it('forgets a delivery whose processing failed, so a redelivery of it is processed', async () => {
    let failNext = true;
    const errors: unknown[] = [];
    const processed: string[] = [];
    const secrets = new Map<string, string>();
    const { receiver, url } = await startReceiver({
      getSecret: (webhookId) => secrets.get(webhookId),
      process: (d) => {
        if (failNext) {
          failNext = false;
          throw new Error('database down');
        }
        processed.push(d.deliveryId);
      },
      onError: (error) => errors.push(error),
    });
    const { manager, dispatcher, store } = await startSender();
    const { webhook } = await manager.create(owner, { siteId: SITE, url, events: ['pageview'] });
    secrets.set(webhook.id, webhook.secret);
    const [id] = await dispatcher.emit({ siteId: SITE, event: 'pageview', data: { path: '/' } });
    await eventually(() => errors.length === 1, 'the failed processing');
    await receiver.idle();
    // The receiver answered 200 before processing, so for the sender the delivery succeeded.
    await eventually(async () => (await store.getDelivery(id!))?.status === 'succeeded', 'succeeded');
    expect(errors).toEqual([new Error('database down')]);

    // The owner resends it (POST /api/webhooks/redeliver does the same): same delivery id, same body.
    await manager.redeliver(owner, id!);
    await eventually(() => processed.length === 1, 'the redelivery processed');
    expect(processed).toEqual([id]);
    expect(receiver.stats).toMatchObject({ processingFailed: 1, processed: 1, duplicates: 0 });
  });

  it('keeps its idempotency memory bounded', async () => {
    const processed: string[] = [];
    const { url, http, receiver } = await startReceiver({
      secret: 'whsec_s',
      dedupe: { maxEntries: 2 },
      process: (d) => {
        processed.push(d.deliveryId);
      },
    });
    for (const id of ['dlv_1', 'dlv_2', 'dlv_3', 'dlv_1']) {
      await http.raw(url, signed(body(), 'whsec_s', { 'x-zta-delivery-id': id }));
    }
    await receiver.idle();
    // dlv_1 was evicted by dlv_3 (maxEntries 2), so its replay is processed again: the documented trade-off.
    expect(processed).toEqual(['dlv_1', 'dlv_2', 'dlv_3', 'dlv_1']);
  });

  it('main.ts takes the secret and certificate from env, accepts the previous secret, stops on SIGTERM', async () => {
    const main = await runMain(
      'examples/express-receiver/main.ts',
      {
        ...(await certFiles()),
        PORT: '0',
        ZTA_WEBHOOK_SECRET: 'whsec_new',
        ZTA_WEBHOOK_SECRET_PREVIOUS: 'whsec_old',
      },
      'receiver on',
    );
    const http = await httpsClient();
    const url = `${main.origin}/webhook`;
    const statuses = [];
    for (const [secret, id] of [
      ['whsec_new', 'dlv_1'],
      ['whsec_old', 'dlv_2'],
      ['whsec_other', 'dlv_3'],
    ] as const) {
      statuses.push(
        (await http.raw(url, signed(body(`/${id}`), secret, { 'x-zta-delivery-id': id }))).status,
      );
    }
    expect(statuses).toEqual([200, 200, 401]);
    await eventually(() => main.output().includes('(dlv_2)'), 'both deliveries logged');
    expect(main.output()).toContain(`pageview ${SITE} /dlv_1 (dlv_1)`);
    expect(main.output()).not.toContain('dlv_3');
    expect(await main.stop()).toBe(0);
  });

  it('main.ts refuses to start without a secret or a certificate', async () => {
    await expect(
      runMain('examples/express-receiver/main.ts', { ZTA_WEBHOOK_SECRET: '' }, 'receiver on'),
    ).rejects.toThrow(/Set ZTA_WEBHOOK_SECRET, TLS_CERT_FILE and TLS_KEY_FILE/);
  });

  it('needs a secret', () => {
    expect(() => createReceiver({ process: () => {} })).toThrow(TypeError);
  });
});
