// Why the delivery hot path uses undici's dispatcher API: undici.request against fetch and ofetch on top of
// it, same HTTPS keep-alive receiver (another process), same Agent (16 connections), same concurrency and
// 1 KiB bodies. Run: `npm run bench -- transport` (about 20 s).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { createFetch } from 'ofetch';
import { Agent, request, fetch as undiciFetch } from 'undici';
import { createBenchCerts } from './lib/certs.mjs';
import { startReceiverProcess } from './lib/receiver-client.mjs';

const CONCURRENCY = 64;
const REQUESTS = 10_000;
const ROUNDS = 3;

const certs = await createBenchCerts();
const receiver = await startReceiverProcess(certs);
const agent = new Agent({ connect: { ca: certs.caCert }, connections: 16, pipelining: 1 });
const body = JSON.stringify({ event: 'pageview', data: { padding: 'x'.repeat(1024 - 40) } }).slice(0, 1024);
const headers = { 'content-type': 'application/json' };
const ofetch = createFetch({ fetch: undiciFetch });

const clients = {
  'undici.request': async () => {
    const response = await request(receiver.url, { method: 'POST', headers, body, dispatcher: agent });
    await response.body.text();
  },
  'fetch (undici.fetch)': async () => {
    const response = await undiciFetch(receiver.url, { method: 'POST', headers, body, dispatcher: agent });
    await response.text();
  },
  ofetch: async () => {
    await ofetch(receiver.url, { method: 'POST', headers, body, dispatcher: agent, responseType: 'text' });
  },
};

async function run(send) {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next++ < REQUESTS) await send();
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return REQUESTS / ((performance.now() - started) / 1000);
}

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`${os.cpus().length} × ${os.cpus()[0]?.model?.trim()}, Node ${process.version}, load ${load}`);
console.log(
  `${REQUESTS} POSTs of 1 KiB, concurrency ${CONCURRENCY}, 16 keep-alive connections, best of ${ROUNDS}\n`,
);
for (const send of Object.values(clients)) await run(send); // warm-up
const best = Object.fromEntries(Object.keys(clients).map((name) => [name, 0]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, send] of Object.entries(clients)) best[name] = Math.max(best[name], await run(send));
}
const ceiling = best['undici.request'];
for (const [name, rate] of Object.entries(best)) {
  console.log(
    `${name.padEnd(22)} ${Math.round(rate).toLocaleString('en-US').padStart(7)} req/s  ${(rate / ceiling).toFixed(2)}×`,
  );
}
await agent.close();
await receiver.close();
