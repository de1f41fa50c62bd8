// What the memory store keeps per delivered event: JS heap and memory outside it.
//
//   npm run build && node bench/memory-store.mjs [--events 20000]
//   (or `npm run bench -- memory-store`, which builds first)
//
// One webhook, `Dispatcher` + `memoryStore()`, and a transport that answers 200 'OK' at once (no network:
// this measures the store, not the sending). N events of the dispatch benchmark's size (1 KiB bodies) are
// emitted one at a time and delivered; after a full GC, the growth of V8's used heap and of memory held by
// ArrayBuffers (the store's archive chunks live there) is divided by N. Three rounds on fresh stores.
import { existsSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';

if (!existsSync(new URL('../dist/index.js', import.meta.url))) {
  console.error('bench/memory-store.mjs: dist/ is missing. Build the package first:  npm run build');
  process.exit(1);
}
const { Dispatcher, WebhookManager } = await import('../dist/index.js');
const { memoryStore } = await import('../dist/memory.js');

const index = process.argv.indexOf('--events');
const N = index === -1 ? 20_000 : Number(process.argv[index + 1]);
if (!Number.isInteger(N) || N <= 0) {
  console.error('--events takes a positive integer');
  process.exit(1);
}
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
