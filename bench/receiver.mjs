// The HTTPS keep-alive webhook receiver for bench/dispatch.mjs, run as a child process (child_process.fork).
//
// Protocol over IPC:
//   parent -> { type: 'listen', cert, key }     child -> { type: 'listening', port }
//   parent -> { type: 'reset', id }             child -> { type: 'reset', id }          (starts a new phase)
//   parent -> { type: 'stats', id }             child -> { type: 'stats', id, stats }   (the phase so far,
//                                                                                    CPU time included)
//   parent -> { type: 'clock', id }             child -> { type: 'clock', id, now }     (clock skew probe)
// Every request is read fully and answered 200 'OK' at once. Its receive time is taken when the body has
// arrived, on the clock both processes share (performance.timeOrigin + performance.now(), in ms), and its
// emit-to-receipt latency is that minus `data.sentAt` from the JSON body.
import { createServer } from 'node:https';
import { performance } from 'node:perf_hooks';

const clock = () => performance.timeOrigin + performance.now();

let count = 0;
let bytes = 0;
let bad = 0;
let first = 0;
let last = 0;
let latencies = new Float64Array(1 << 16);
let arrivals = new Float64Array(1 << 16);
let sampled = 0;
let cpuAtReset = process.cpuUsage();

function record(now, latency) {
  if (sampled === latencies.length) {
    const grown = new Float64Array(latencies.length * 2);
    grown.set(latencies);
    latencies = grown;
    const grownArrivals = new Float64Array(arrivals.length * 2);
    grownArrivals.set(arrivals);
    arrivals = grownArrivals;
  }
  arrivals[sampled] = now;
  latencies[sampled++] = latency;
}

/** The worst latency among requests received in each 100 ms of the phase, in order. */
function timeline() {
  const worst = [];
  for (let i = 0; i < sampled; i++) {
    const bucket = Math.floor((arrivals[i] - first) / 100);
    worst[bucket] = Math.max(worst[bucket] ?? 0, latencies[i]);
  }
  return Array.from(worst, (value) => (value === undefined ? null : Math.round(value * 10) / 10));
}

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
    bytes += Buffer.byteLength(body);
    if (first === 0) first = now;
    last = now;
    let sentAt;
    try {
      sentAt = JSON.parse(body).data?.sentAt;
    } catch {}
    if (typeof sentAt === 'number') record(now, now - sentAt);
    else bad++;
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

function stats() {
  const sorted = latencies.slice(0, sampled).sort();
  const cpu = process.cpuUsage(cpuAtReset);
  return {
    count,
    bad,
    cpuMs: (cpu.user + cpu.system) / 1000,
    meanBodyBytes: count > 0 ? bytes / count : 0,
    first,
    last,
    latency: {
      n: sampled,
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sampled > 0 ? sorted[sampled - 1] : null,
    },
    timeline: timeline(),
  };
}

function reset() {
  count = 0;
  bytes = 0;
  bad = 0;
  first = 0;
  last = 0;
  sampled = 0;
  cpuAtReset = process.cpuUsage();
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
      server.listen(0, '127.0.0.1', () => {
        process.send({ type: 'listening', port: server.address().port });
      });
      break;
    case 'reset':
      reset();
      process.send({ type: 'reset', id: message.id });
      break;
    case 'stats':
      process.send({ type: 'stats', id: message.id, stats: stats() });
      break;
    case 'clock':
      process.send({ type: 'clock', id: message.id, now: clock() });
      break;
    case 'exit':
      process.exit(0);
  }
});
// Never outlive the bench.
process.on('disconnect', () => process.exit(0));
