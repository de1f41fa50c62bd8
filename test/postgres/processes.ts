/**
 * Helpers for the multi-process tests: dispatcher worker processes (./worker.ts) and an HTTPS receiver in
 * the test process that notes, for every request, which worker sent it and when it started and ended.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { type Receiver, startReceiver } from '../support/receiver.js';
import type { TestCA } from '../support/tls.js';
import { DATABASE_URL } from './db.js';
import type { WorkerConfig, WorkerMessage } from './worker.js';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

export interface Worker {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything the worker logged (errors and warnings of its dispatcher, pool and LISTEN connection). */
  readonly logs: Extract<WorkerMessage, { type: 'log' }>[];
  /** Resolves with the exit code, or the signal that ended it. */
  readonly exited: Promise<number | string | null>;
  /** Stops the dispatcher (draining), closes the store and the pool, and waits for the process to end. */
  stop(): Promise<void>;
  /** `kill -9`, and waits for the process to be gone. */
  kill(): Promise<void>;
}

const running = new Set<Worker>();
afterEach(async () => {
  await Promise.all([...running].map((worker) => worker.kill()));
});

export async function startWorker(
  config: Pick<WorkerConfig, 'name' | 'schema' | 'caCert'> & Partial<WorkerConfig>,
): Promise<Worker> {
  const full: WorkerConfig = {
    databaseUrl: DATABASE_URL,
    concurrency: 16,
    perWebhookConcurrency: 8,
    leaseMs: 60_000,
    retryDelaysMs: [50, 100],
    poolSize: 4,
    ...config,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(full)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const logs: Worker['logs'] = [];
  let onStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    onStopped = resolve;
  });
  const exited = new Promise<number | string | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal));
  });
  const pid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${config.name} did not start`)), 20_000);
    child.on('message', (message: WorkerMessage) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve(message.pid);
      } else if (message.type === 'log') {
        logs.push(message);
      } else if (message.type === 'stopped') {
        onStopped();
      }
    });
    child.once('exit', (code) => reject(new Error(`worker ${config.name} exited with ${code}`)));
  });
  const worker: Worker = {
    name: config.name,
    child,
    pid,
    logs,
    exited,
    async stop() {
      child.send({ type: 'stop' });
      await stopped;
      await exited;
      running.delete(worker);
    },
    async kill() {
      running.delete(worker);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  running.add(worker);
  return worker;
}

/** One request as the receiver saw it. */
export interface Hit {
  deliveryId: string;
  /** The worker's name, from its User-Agent. */
  worker: string;
  status: number;
  /** `performance.now()` when the request head arrived, and when the response was sent (or abandoned). */
  start: number;
  end: number | null;
  /** Wall-clock time the request arrived. */
  receivedAt: Date;
}

export interface TrackingReceiver {
  receiver: Receiver;
  hits: Hit[];
  /** Requests per delivery id. */
  counts(): Map<string, number>;
  /** Ids of deliveries some request of which started before an earlier one of the same delivery ended. */
  overlapping(): string[];
}

/**
 * Answers each request with the status and after the delay `answer` picks for it (`n` counts the
 * requests for that delivery id, from 1).
 */
export async function trackingReceiver(
  ca: TestCA,
  answer: (deliveryId: string, n: number) => { status: number; delayMs: number },
): Promise<TrackingReceiver> {
  const hits: Hit[] = [];
  const seen = new Map<string, number>();
  const receiver = await startReceiver({
    ca,
    handler: (request, response) => {
      const deliveryId = String(request.headers['x-zta-delivery-id']);
      const n = (seen.get(deliveryId) ?? 0) + 1;
      seen.set(deliveryId, n);
      const { status, delayMs } = answer(deliveryId, n);
      const hit: Hit = {
        deliveryId,
        worker: String(request.headers['user-agent']).replace('zta-test-worker/', ''),
        status,
        start: request.receivedAt,
        end: null,
        receivedAt: request.receivedDate,
      };
      hits.push(hit);
      const ended = () => {
        hit.end ??= performance.now();
      };
      response.once('finish', ended);
      response.once('close', ended);
      const reply = () => {
        if (!response.destroyed) response.writeHead(status, { 'content-type': 'text/plain' }).end('OK');
      };
      if (delayMs <= 0) {
        reply();
        return;
      }
      const timer = setTimeout(reply, delayMs);
      response.once('close', () => clearTimeout(timer));
    },
  });
  return {
    receiver,
    hits,
    counts() {
      const counts = new Map<string, number>();
      for (const hit of hits) counts.set(hit.deliveryId, (counts.get(hit.deliveryId) ?? 0) + 1);
      return counts;
    },
    overlapping() {
      const byId = new Map<string, Hit[]>();
      for (const hit of hits) byId.set(hit.deliveryId, [...(byId.get(hit.deliveryId) ?? []), hit]);
      const bad: string[] = [];
      for (const [id, list] of byId) {
        list.sort((a, b) => a.start - b.start);
        for (let i = 1; i < list.length; i++) {
          const previousEnd = list[i - 1]!.end;
          if (previousEnd === null || list[i]!.start < previousEnd) bad.push(id);
        }
      }
      return bad;
    },
  };
}

export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
