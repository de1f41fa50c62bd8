// The HTTPS keep-alive webhook receiver of bench/postgres.mjs, run as a child process (fork).
//
//   parent -> { type: 'listen', cert, key }   child -> { type: 'listening', port }
//   parent -> { type: 'reset', id }           child -> { type: 'reset', id }    (a new phase: counts from 0)
//   parent -> { type: 'stats', id }           child -> { type: 'stats', id, stats }   (latencies included)
//   parent -> { type: 'count', id }           child -> { type: 'count', id, stats }   (cheap: counts only)
//
// Every request is read fully and answered 200 'OK' at once. Its emit-to-receipt latency is the receive
// time (when the body has arrived) minus `data.sentAt` from the JSON body, both on the clock every process
// of the benchmark shares: performance.timeOrigin + performance.now(), in ms. Requests without a valid
// signature header or delivery id are counted as bad.
import { createServer } from 'node:https';
import { performance } from 'node:perf_hooks';

const clock = () => performance.timeOrigin + performance.now();

let count = 0;
let bad = 0;
let first = 0;
let last = 0;
let latencies = new Float64Array(1 << 16);
let sampled = 0;
const ids = new Set();
let duplicates = 0;

function onRequest(req, res) {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => {
    body += chunk;
  });
  req.on('end', () => {
    const now = clock();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('OK');
    count++;
    if (first === 0) first = now;
    last = now;
    const id = req.headers['x-zta-delivery-id'];
    if (!/^sha256=[0-9a-f]{64}$/.test(req.headers['x-zta-signature'] ?? '') || typeof id !== 'string') bad++;
    if (ids.has(id)) duplicates++;
    else ids.add(id);
    let sentAt;
    try {
      sentAt = JSON.parse(body).data?.sentAt;
    } catch {}
    if (typeof sentAt !== 'number') {
      bad++;
      return;
    }
    if (sampled === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[sampled++] = now - sentAt;
  });
}

function cpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function stats() {
  const sorted = latencies.slice(0, sampled).sort();
  return {
    count,
    bad,
    duplicates,
    first,
    last,
    now: clock(),
    latency: {
      n: sampled,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sampled > 0 ? sorted[sampled - 1] : null,
    },
    /** The latencies themselves, for callers that drop a warm-up (ms, in arrival order). */
    samples: Array.from(latencies.subarray(0, sampled)),
  };
}

let server;
process.on('message', (message) => {
  switch (message.type) {
    case 'listen':
      server = createServer({ cert: message.cert, key: message.key }, onRequest);
      server.keepAliveTimeout = 120_000;
      server.headersTimeout = 130_000;
      server.requestTimeout = 0;
      server.maxRequestsPerSocket = 0;
      server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }));
      break;
    case 'reset':
      count = 0;
      bad = 0;
      first = 0;
      last = 0;
      sampled = 0;
      duplicates = 0;
      ids.clear();
      process.send({ type: 'reset', id: message.id });
      break;
    case 'stats':
      process.send({ type: 'stats', id: message.id, stats: stats() });
      break;
    case 'count':
      process.send({
        type: 'count',
        id: message.id,
        stats: { count, bad, duplicates, now: clock(), cpuMs: cpuMs() },
      });
      break;
  }
});
process.on('disconnect', () => process.exit(0));
