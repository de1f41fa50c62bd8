// What the memory store keeps per delivered event: JS heap and memory outside it.
//
//   npm run build && node bench/memory-store.mjs [--events 20000]
//   (or `npm run bench -- memory-store`, which builds first)
//
// One webhook, `Dispatcher` + `memoryStore()`, and a transport that answers 200 'OK' at once (no network:
// this measures the store, not the sending). N events of the dispatch benchmark's size (1 KiB bodies) are
// emitted one at a time and delivered; after a full GC, the growth of V8's used heap and of memory held by
// ArrayBuffers (the store's archive chunks live there) is divided by N. Three rounds on fresh stores.
// Then the activity log: a store holding L finished deliveries (--log 200000, written with
// `insertDeliveries`) is asked for the newest 50 of the site, and for the page after that of the webhook,
// 5 times each (the median shown); then retention prunes the older half of it, timed once.
import v8 from 'node:v8';
import vm from 'node:vm';
import { tsImport } from 'tsx/esm/api';
import { requireDist } from './lib/dist.mjs';
import { positiveOption } from './lib/options.mjs';

requireDist('memory-store.mjs', 'index');
const { Dispatcher, WebhookManager } = await import('../dist/index.js');
const { memoryStore } = await import('../dist/memory.js');

const N = positiveOption('events', 20_000);
const L = positiveOption('log', 200_000);
v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc');
const settle = () => new Promise((resolve) => setImmediate(resolve));

const transport = {
  async send() {
    return { kind: 'response', statusCode: 200, headers: {}, bodySnippet: 'OK' };
  },
  async close() {},
};
const padding = 'x'.repeat(850);

async function round() {
  const store = memoryStore();
  const manager = new WebhookManager({ store, authorize: () => true });
  await manager.create('bench', {
    siteId: 'site_bench',
    url: 'https://receiver.example/hook',
    events: ['pageview'],
  });
  const dispatcher = new Dispatcher({ store, transport, concurrency: 64 });
  let delivered = 0;
  dispatcher.on('attempt:success', () => delivered++);
  await dispatcher.start();
  collect();
  const before = process.memoryUsage();
  let bodyBytes = 0;
  for (let i = 0; i < N; i++) {
    const data = { path: '/blog/my-article', sentAt: i, padding };
    const [id] = await dispatcher.emit({ siteId: 'site_bench', event: 'pageview', data });
    if (i === 0) bodyBytes = Buffer.byteLength((await store.getDelivery(id)).body);
    if (i % 64 === 63) await settle();
  }
  while (delivered < N) await settle();
  await dispatcher.stop();
  collect();
  const after = process.memoryUsage();
  const kept = (await store.listDeliveries({ limit: N + 1 })).length;
  return {
    heap: (after.heapUsed - before.heapUsed) / N,
    offHeap: (after.arrayBuffers - before.arrayBuffers) / N,
    bodyBytes,
    kept,
    store,
  };
}

console.log(`memoryStore: memory kept per delivered event, ${N.toLocaleString('en-US')} events per round`);
const stores = [];
for (let r = 1; r <= 3; r++) {
  const result = await round();
  stores.push(result.store); // kept alive until the end, so the next round's figures are its own
  console.log(
    `  round ${r}: JS heap ${result.heap.toFixed(0)} B, ArrayBuffers (archive chunks) ${result.offHeap.toFixed(0)} B per event; body ${result.bodyBytes} B; ${result.kept} deliveries listed`,
  );
}

async function listing() {
  const store = memoryStore();
  const now = Date.now();
  // The test suite's record builders (TypeScript, loaded through tsx as bench/lib/certs.mjs does).
  const { delivery, webhook } = await tsImport('../src/testing/fixtures.ts', import.meta.url);
  const hook = webhook({ siteId: 'site_bench' });
  await store.createWebhook(hook, { maxPerSite: 10 });
  const body = JSON.stringify({ event: 'pageview', data: { padding } });
  for (let i = 0; i < L; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(L, i + 1000); j++) {
      const at = new Date(now + j);
      batch.push(delivery(hook, { body, status: 'succeeded', attempts: 1, createdAt: at, updatedAt: at }));
    }
    await store.insertDeliveries(batch);
  }
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const bySite = [];
  const byWebhook = [];
  for (let r = 0; r < 5; r++) {
    let t0 = performance.now();
    const first = await store.listDeliveries({ siteId: hook.siteId, limit: 50 });
    bySite.push(performance.now() - t0);
    const last = first.at(-1);
    t0 = performance.now();
    await store.listDeliveries({
      webhookId: hook.id,
      limit: 50,
      after: { createdAt: last.createdAt, id: last.id },
    });
    byWebhook.push(performance.now() - t0);
  }
  const t0 = performance.now();
  const pruned = await store.pruneDeliveries({ olderThan: new Date(now + L / 2) });
  const pruneMs = performance.now() - t0;
  console.log(
    `activity log of ${L.toLocaleString('en-US')} finished deliveries: newest 50 of the site ${median(bySite).toFixed(1)} ms, next 50 of the webhook ${median(byWebhook).toFixed(1)} ms (median of 5); retention pruning the older half (${pruned.toLocaleString('en-US')}) ${pruneMs.toFixed(1)} ms`,
  );
}
await listing();
