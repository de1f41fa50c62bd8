// Dispatcher throughput and latency benchmark for @zta/webhooks.
//
//   npm run build && node bench/dispatch.mjs [--strict] [--concurrency 64] [--connections 16]
//       [--requests 20000] [--rounds 3] [--phase all|throughput|latency] [--rate 8000] [--verbose]
//   (or `npm run bench -- dispatch`, which builds first but passes no flags)
//
// A local HTTPS keep-alive receiver runs in a child process (bench/receiver.mjs, certificate from a CA
// generated for this run with test/support/tls.ts). It answers 200 'OK' at once and, for every request,
// takes emit-to-receipt latency as its receive time minus `data.sentAt` from the body, both on the clock
// the two processes share (performance.timeOrigin + performance.now(); the skew is measured and printed).
// Bodies are 1 KiB (the dispatcher's JSON.stringify({ event, timestamp, data }) padded to 1024 bytes).
//
//   ceiling  a raw undici.request loop: C workers POST the same bodies with the same headers (HMAC-signed
//            per request) through one undici Agent (connect: { ca }, as many connections per origin as
//            the library's transport keeps, 16, pipelining 1), reading each response body fully
//   library  memoryStore + WebhookManager + one webhook + Dispatcher({ tls: { ca }, allowPrivateNetworks,
//            concurrency: C, perWebhookConcurrency: C }); events go in with emitMany in batches of C,
//            with at most 8 C emitted but not yet delivered
// Both send the same N requests; throughput = N / (first send or emit -> last receipt at the receiver).
// Ceiling and library runs are interleaved, ROUNDS each; the best is used (load from other work only ever
// slows a run down) and the median is shown. A full GC runs between runs, outside the timing.
//
// Latency: single `emit` calls (one at a time, awaited, as an app would) paced at half the library's best
// rate, 5 runs of 4 s, and at 200/s, each after 1.5 s of the same load unmeasured (warm-up); p50/p90/p99/max
// of emit-to-receipt. A raw undici.request paced at the same half-peak rate (fire and forget, warmed up
// alike) is shown as the floor. Also printed: sender and receiver CPU time per request, the pacer's worst
// lag and the longest GC pause in the sending process.
//
// Targets: library >= 0.7x ceiling (best to best); p99 < 20 ms at half peak (median of the runs). With
// --strict the exit code is 1 when a target fails. Takes about 75 s.
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Agent, request } from 'undici';
import { createBenchCerts } from './lib/certs.mjs';
import { requireDist } from './lib/dist.mjs';
import { positiveOption } from './lib/options.mjs';
import { startReceiverProcess } from './lib/receiver-client.mjs';

const distIndex = new URL('../dist/index.js', import.meta.url);
const distMemory = new URL('../dist/memory.js', import.meta.url);
requireDist('dispatch.mjs', 'index', 'memory');
/** Another build may be rewriting dist/ right now (tsup empties it first): retry a few times. */
async function importDist() {
  for (let attempt = 1; ; attempt++) {
    try {
      // A query string per retry, so a failed load is not served again from the module cache.
      const query = attempt === 1 ? '' : `?retry=${attempt}`;
      return [await import(distIndex.href + query), await import(distMemory.href + query)];
    } catch (error) {
      if (attempt === 5) {
        console.error('bench/dispatch.mjs: could not load dist/; rebuild with  npm run build');
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}
const [{ Dispatcher, WebhookManager }, { memoryStore }] = await importDist();

// ---------------------------------------------------------------------------------------------- options
const strict = process.argv.includes('--strict');
const C = positiveOption('concurrency', 64);
/** The library's transport keeps this many connections per origin (undiciTransport's default). */
const CONNECTIONS = positiveOption('connections', 16);
const ROUNDS = positiveOption('rounds', 3);
/** Requests per throughput run, for the ceiling and the library alike. */
const N = positiveOption('requests', 20_000);
/** Events emitted but not yet delivered, at most, in a library throughput run. */
const BACKLOG = 8 * C;
/** `throughput`, `latency` (at half of --rate, default 8000/s) or `all`. */
const PHASE = (() => {
  const index = process.argv.indexOf('--phase');
  const phase = index === -1 ? 'all' : process.argv[index + 1];
  if (!['all', 'throughput', 'latency'].includes(phase)) {
    console.error('--phase takes all, throughput or latency');
    process.exit(1);
  }
  return phase;
})();
/** The library peak the latency phase assumes when the throughput phase is skipped. */
const RATE = positiveOption('rate', 8000);
const LATENCY_RUNS = 5;
const LATENCY_RUN_MS = 4000;
/** Unmeasured paced load before each latency run, at the same rate. */
const WARM_UP_MS = 1500;
const LOW_RATE = 200;
const LOW_RATE_RUN_MS = 2500;
const BODY_BYTES = 1024;
const SITE_ID = 'site_bench';

const clock = () => performance.timeOrigin + performance.now();
/** Garbage-collection pauses in this process: the total and the longest, since the last `gcSince()`. */
const gc = { total: 0, max: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.total += entry.duration;
    gc.max = Math.max(gc.max, entry.duration);
  }
}).observe({ entryTypes: ['gc'] });
/** A full collection between runs (not timed), so no run pays for the garbage of the one before. */
v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc');
const gcSince = () => {
  const seen = { ...gc };
  gc.total = 0;
  gc.max = 0;
  return seen;
};
const verbose = process.argv.includes('--verbose');
const t00 = performance.now();
const trace = (...args) => {
  if (verbose) console.error(`[${((performance.now() - t00) / 1000).toFixed(2)} s]`, ...args);
};

// ------------------------------------------------------------------------------------------------ bodies
const EXTRA = { path: '/blog/my-article', referrer: 'https://www.google.com/search?q=zta' };
/** Padding that makes the delivery body BODY_BYTES long (± a few digits of sentAt). */
const PADDING = (() => {
  const sample = JSON.stringify({
    event: 'pageview',
    timestamp: new Date().toISOString(),
    data: { siteId: SITE_ID, ...EXTRA, sentAt: roundUs(clock()), padding: '' },
  });
  return 'x'.repeat(BODY_BYTES - Buffer.byteLength(sample));
})();

function roundUs(ms) {
  return Math.round(ms * 1000) / 1000;
}
/** The `data` of an event; the dispatcher adds siteId first, giving the same body as rawBody below. */
const eventData = (sentAt) => ({ ...EXTRA, sentAt: roundUs(sentAt), padding: PADDING });
const rawBody = (sentAt) =>
  JSON.stringify({
    event: 'pageview',
    timestamp: new Date().toISOString(),
    data: { siteId: SITE_ID, ...eventData(sentAt) },
  });

// ----------------------------------------------------------------------------------------- environment
const certs = await createBenchCerts();
const receiver = await startReceiverProcess(certs);
const ca = certs.caCert;

const cpu = os.cpus()[0]?.model?.trim() ?? 'unknown CPU';
const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');
const skew = await receiver.skew();
console.log(
  `@zta/webhooks dispatcher benchmark: node ${process.version}, ${cpu} x${os.availableParallelism()}, loadavg ${loadBefore}`,
);
console.log(
  `concurrency C=${C}, ${CONNECTIONS} connections per origin, ~${BODY_BYTES} B bodies, receiver pid ${receiver.pid} on ${receiver.origin}`,
);
console.log(
  `receiver clock - bench clock: ${skew.offsetMs.toFixed(3)} ms (±${(skew.rttMs / 2).toFixed(3)} ms, IPC rtt ${skew.rttMs.toFixed(3)} ms)\n`,
);

// -------------------------------------------------------------------------------------------- ceiling
const rawSecret = `whsec_${randomBytes(24).toString('base64url')}`;
let rawSeq = 0;

function rawSend(agent, sentAt) {
  const body = rawBody(sentAt);
  const startedAt = Date.now();
  return request(receiver.url, {
    dispatcher: agent,
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'User-Agent': 'zta-webhooks-bench',
      'X-ZTA-Signature': `sha256=${createHmac('sha256', rawSecret).update(body, 'utf8').digest('hex')}`,
      'X-ZTA-Event': 'pageview',
      'X-ZTA-Webhook-ID': 'wh_raw',
      'X-ZTA-Delivery-ID': `dlv_${++rawSeq}`,
      'X-ZTA-Timestamp': String(Math.floor(startedAt / 1000)),
    },
    body,
  }).then(async (response) => {
    await response.body.text();
    return response.statusCode;
  });
}

const newAgent = () =>
  new Agent({ connect: { ca }, connections: CONNECTIONS, pipelining: 1, keepAliveTimeout: 30_000 });

/** C workers send N requests in all; or, with `durationMs`, as many as fit. */
async function ceilingRun({ n = Number.POSITIVE_INFINITY, durationMs = Number.POSITIVE_INFINITY }) {
  collect();
  const agent = newAgent();
  await receiver.reset();
  let started = 0;
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const t0 = clock();
  const deadline = t0 + durationMs;
  const worker = async () => {
    while (started < n && clock() < deadline) {
      started++;
      try {
        if ((await rawSend(agent, clock())) !== 200) errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: C }, worker));
  const cpu = cpuPerRequest(cpu0, started);
  const stats = await receiver.stats();
  await agent.close();
  const rate = (stats.count * 1000) / (stats.last - t0);
  trace(`ceiling run: ${started} requests, ${Math.round(rate)}/s, ${cpu.toFixed(0)} us CPU/request`);
  return { n: started, errors, rate, cpu, receiverCpu: (stats.cpuMs * 1000) / stats.count, stats };
}

// -------------------------------------------------------------------------------------------- library
async function newLibrary() {
  const store = memoryStore();
  const manager = new WebhookManager({ store, authorize: () => true, allowPrivateNetworks: true });
  const { webhook } = await manager.create('bench', {
    siteId: SITE_ID,
    url: receiver.url,
    events: ['pageview'],
  });
  const dispatcher = new Dispatcher({
    store,
    tls: { ca },
    allowPrivateNetworks: true,
    concurrency: C,
    perWebhookConcurrency: C,
  });
  const lib = { dispatcher, webhook, done: 0, failed: 0, waiter: null, waitUntil: 0 };
  const wake = () => {
    if (lib.waiter !== null && lib.done + lib.failed >= lib.waitUntil) {
      const resolve = lib.waiter;
      lib.waiter = null;
      resolve();
    }
  };
  dispatcher.on('attempt:success', () => {
    lib.done++;
    wake();
  });
  dispatcher.on('attempt:failure', () => {
    lib.failed++;
    wake();
  });
  /** Resolves once `count` attempts have finished in all. */
  lib.finished = (count) => {
    if (lib.done + lib.failed >= count) return Promise.resolve();
    lib.waitUntil = count;
    return new Promise((resolve) => {
      lib.waiter = resolve;
    });
  };
  await dispatcher.start();
  return lib;
}

const batchOf = (n) => {
  const sentAt = clock();
  const data = eventData(sentAt);
  return Array.from({ length: n }, () => ({ siteId: SITE_ID, event: 'pageview', data }));
};

/** Emits N events with emitMany in batches of C, keeping at most BACKLOG of them undelivered. */
async function libraryRun({ n }) {
  collect();
  const lib = await newLibrary();
  const { dispatcher } = lib;
  const high = BACKLOG;
  await receiver.reset();
  const cpu0 = process.cpuUsage();
  const t0 = clock();
  let emitted = 0;
  while (emitted < n) {
    const count = Math.min(C, n - emitted);
    await dispatcher.emitMany(batchOf(count));
    emitted += count;
    if (emitted - lib.done - lib.failed >= high) await lib.finished(emitted - high + C);
  }
  await lib.finished(n);
  const cpu = cpuPerRequest(cpu0, n);
  const stats = await receiver.stats();
  await dispatcher.stop();
  const rate = (stats.count * 1000) / (stats.last - t0);
  trace(`library run: ${n} events, ${Math.round(rate)}/s, ${cpu.toFixed(0)} us CPU/request`);
  return { n, errors: lib.failed, rate, cpu, receiverCpu: (stats.cpuMs * 1000) / stats.count, stats };
}

// -------------------------------------------------------------------------------------------- latency
/** Calls `send(sentAt)` `rate` times a second for `durationMs`, awaiting each call before the next. */
async function paced(rate, durationMs, send) {
  const total = Math.round((rate * durationMs) / 1000);
  const interval = 1000 / rate;
  const t0 = clock();
  let maxLag = 0;
  for (let i = 0; i < total; ) {
    const now = clock();
    const due = Math.min(total, Math.floor((now - t0) / interval) + 1);
    while (i < due) {
      const sentAt = clock();
      maxLag = Math.max(maxLag, sentAt - (t0 + i * interval));
      await send(sentAt);
      i++;
    }
    // Sleep (at least one timer tick) until the next event is due; no busy-waiting, which would take CPU
    // from the dispatcher and the receiver. Events due within the same tick go out together.
    const wait = t0 + i * interval - clock();
    if (wait > 0) await sleep(Math.max(1, Math.floor(wait)));
    else await new Promise((resolve) => setImmediate(resolve));
  }
  return { total, maxLag };
}

async function libraryLatency(rate, durationMs) {
  collect();
  const lib = await newLibrary();
  const { dispatcher } = lib;
  // Open connections, then run the same paced load for WARM_UP_MS unmeasured, so the figures are of a
  // warm process (a cold one's first second is slower while V8 optimises the single-emit path).
  await dispatcher.emitMany(batchOf(C));
  await lib.finished(C);
  const { total: warmUp } = await paced(rate, WARM_UP_MS, (sentAt) =>
    dispatcher.emit({ siteId: SITE_ID, event: 'pageview', data: eventData(sentAt) }),
  );
  await lib.finished(C + warmUp);
  trace(`library paced at ${rate}/s: warmed up`);
  await receiver.reset();
  gcSince();
  const cpu0 = process.cpuUsage();
  const base = lib.done + lib.failed;
  const { total, maxLag } = await paced(rate, durationMs, (sentAt) =>
    dispatcher.emit({ siteId: SITE_ID, event: 'pageview', data: eventData(sentAt) }),
  );
  trace(`library paced at ${rate}/s: emitted ${total}, max lag ${maxLag.toFixed(1)} ms`);
  await lib.finished(base + total);
  const gcPauses = gcSince();
  const cpu = cpuPerRequest(cpu0, total);
  const stats = await receiver.stats();
  trace(`  worst latency per 100 ms: ${stats.timeline.join(' ')}`);
  await dispatcher.stop();
  trace('  stopped');
  return { rate, total, maxLag, gcPauses, cpu, errors: lib.failed, stats };
}

async function rawLatency(rate, durationMs) {
  collect();
  const agent = newAgent();
  await Promise.all(Array.from({ length: C }, () => rawSend(agent, clock())));
  const warm = [];
  await paced(rate, WARM_UP_MS, (sentAt) => {
    warm.push(rawSend(agent, sentAt).catch(() => {}));
  });
  await Promise.all(warm);
  await receiver.reset();
  gcSince();
  const cpu0 = process.cpuUsage();
  const inFlight = new Set();
  let errors = 0;
  const { total, maxLag } = await paced(rate, durationMs, (sentAt) => {
    const p = rawSend(agent, sentAt)
      .then((status) => {
        if (status !== 200) errors++;
      })
      .catch(() => {
        errors++;
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  });
  await Promise.all(inFlight);
  const gcPauses = gcSince();
  const cpu = cpuPerRequest(cpu0, total);
  const stats = await receiver.stats();
  await agent.close();
  return { rate, total, maxLag, gcPauses, cpu, errors, stats };
}

// ----------------------------------------------------------------------------------------------- stats
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
};
/** This process's CPU time (user + system) since `since`, in µs per request. */
const cpuPerRequest = (since, n) => {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / n;
};
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const ms = (n) => (n === null ? '-' : n.toFixed(2));

// ----------------------------------------------------------------------------------------------- runs
const started = performance.now();
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');
const checks = [];
try {
  let bestLibrary = RATE;
  let throughputFailures = 0;
  if (PHASE !== 'latency') {
    // Warm-up: JIT, TLS, both paths.
    await ceilingRun({ n: Math.min(N, 5000) });
    await libraryRun({ n: Math.min(N, 5000) });

    const ceiling = [];
    const library = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which goes first, so neither always follows the other.
      if (round % 2 === 0) {
        ceiling.push(await ceilingRun({ n: N }));
        library.push(await libraryRun({ n: N }));
      } else {
        library.push(await libraryRun({ n: N }));
        ceiling.push(await ceilingRun({ n: N }));
      }
    }
    const errors = [...ceiling, ...library].reduce((sum, r) => sum + r.errors, 0);
    const missing = [...ceiling, ...library].filter((r) => r.stats.count !== r.n).length;
    throughputFailures = errors + missing;
    const bestCeiling = Math.max(...ceiling.map((r) => r.rate));
    bestLibrary = Math.max(...library.map((r) => r.rate));
    const ratio = bestLibrary / bestCeiling;
    const medianRatio = median(library.map((r) => r.rate)) / median(ceiling.map((r) => r.rate));

    console.log(`throughput: ${fmt(N)} requests per run, ${ROUNDS} interleaved runs each`);
    console.log(
      `  ${'case'.padEnd(34)}${'best/s'.padStart(10)}${'median/s'.padStart(10)}${'worst/s'.padStart(10)}${'x ceil'.padStart(8)}${'p50 ms*'.padStart(9)}${'p99 ms*'.padStart(9)}${'cpu us'.padStart(8)}${'rcv us'.padStart(8)}`,
    );
    for (const [name, runs] of [
      [`ceiling: raw undici.request (C=${C})`, ceiling],
      [`library: Dispatcher (C=${C})`, library],
    ]) {
      const rates = runs.map((r) => r.rate);
      const best = runs[rates.indexOf(Math.max(...rates))];
      console.log(
        `  ${name.padEnd(34)}${fmt(best.rate).padStart(10)}${fmt(median(rates)).padStart(10)}${fmt(Math.min(...rates)).padStart(10)}${(best.rate / bestCeiling).toFixed(2).padStart(8)}${ms(best.stats.latency.p50).padStart(9)}${ms(best.stats.latency.p99).padStart(9)}${fmt(median(runs.map((r) => r.cpu))).padStart(8)}${fmt(median(runs.map((r) => r.receiverCpu))).padStart(8)}`,
      );
    }
    console.log(
      `  * send/emit-to-receipt latency while saturated (the library's includes waiting in its backlog of up to ${BACKLOG} events); informational`,
    );
    console.log(
      '  cpu us / rcv us: CPU time (user + system) per request in the sending process / in the receiver, median of the runs',
    );
    console.log(
      `  library / ceiling: ${ratio.toFixed(2)}x best, ${medianRatio.toFixed(2)}x median; bodies ${Math.round(library[0].stats.meanBodyBytes)} B; ${errors} failed requests, ${missing} runs with a receipt count mismatch; loadavg ${loadavg()}\n`,
    );
    checks.push([`library >= 0.7x ceiling (${ratio.toFixed(2)}x best-to-best)`, ratio >= 0.7]);
  }

  if (PHASE !== 'throughput') {
    const half = Math.max(1, Math.round(bestLibrary / 2));
    const halfRuns = [];
    for (let i = 0; i < LATENCY_RUNS; i++) halfRuns.push(await libraryLatency(half, LATENCY_RUN_MS));
    const rawHalf = await rawLatency(half, LATENCY_RUN_MS / 2);
    const lowRuns = [];
    for (let i = 0; i < 2; i++) lowRuns.push(await libraryLatency(LOW_RATE, LOW_RATE_RUN_MS));

    console.log('emit-to-receipt latency (ms), single awaited emit() calls at a steady rate');
    console.log(
      `  ${'case'.padEnd(40)}${'rate/s'.padStart(8)}${'n'.padStart(8)}${'p50'.padStart(8)}${'p90'.padStart(8)}${'p99'.padStart(8)}${'max'.padStart(8)}${'lag'.padStart(8)}${'gc max'.padStart(8)}${'cpu us'.padStart(8)}`,
    );
    const row = (name, r) =>
      console.log(
        `  ${name.padEnd(40)}${fmt(r.rate).padStart(8)}${fmt(r.stats.latency.n).padStart(8)}${ms(r.stats.latency.p50).padStart(8)}${ms(r.stats.latency.p90).padStart(8)}${ms(r.stats.latency.p99).padStart(8)}${ms(r.stats.latency.max).padStart(8)}${ms(r.maxLag).padStart(8)}${ms(r.gcPauses.max).padStart(8)}${fmt(r.cpu).padStart(8)}`,
      );
    for (const [i, r] of halfRuns.entries()) row(`library at half peak, run ${i + 1}`, r);
    row('raw undici.request at half peak (floor)', rawHalf);
    for (const [i, r] of lowRuns.entries()) row(`library at ${LOW_RATE}/s, run ${i + 1}`, r);
    const latencyErrors = [...halfRuns, rawHalf, ...lowRuns].reduce((sum, r) => sum + r.errors, 0);
    console.log(
      `  lag: how far the pacer fell behind its schedule at worst (latency counts from the actual emit);\n  gc max: the longest garbage-collection pause in the sending process during the run;\n  cpu us: CPU time of the sending process per event (pacer included).\n  ${latencyErrors} failed requests; loadavg ${loadavg()}\n`,
    );
    const halfP99 = median(halfRuns.map((r) => r.stats.latency.p99));
    const bestHalfP99 = Math.min(...halfRuns.map((r) => r.stats.latency.p99));
    checks.push([
      `p99 < 20 ms at half peak, ${fmt(half)}/s (median of ${LATENCY_RUNS} runs ${ms(halfP99)} ms, best ${ms(bestHalfP99)} ms)`,
      halfP99 < 20,
    ]);
    throughputFailures += latencyErrors;
  }
  checks.push(['every request delivered and answered 200', throughputFailures === 0]);

  console.log(`targets (took ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  let failed = 0;
  for (const [label, pass] of checks) {
    if (!pass) failed++;
    console.log(`  ${pass ? 'PASS' : 'FAIL'}  ${label}`);
  }
  if (strict && failed > 0) process.exitCode = 1;
} finally {
  await receiver.close();
}
