// Child processes of bench/postgres.mjs: the receiver (./pg-receiver.mjs) and the worker processes
// (./pg-worker.mjs for the library, ./pg-boss-worker.mjs for the pg-boss build), all over IPC.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tsImport } from 'tsx/esm/api';

/** A per-run CA and a loopback leaf, from the test suite's generator (test/support/tls.ts, via tsx). */
export async function createCerts() {
  const { createTestCA } = await tsImport('../../test/support/tls.ts', import.meta.url);
  const ca = await createTestCA();
  const leaf = await ca.issue();
  return { caCert: ca.caCert, cert: leaf.cert, key: leaf.key };
}

/** A forked module that answers `{ type, id }` requests with `{ type, id, ... }`. */
function child(module, args = []) {
  const proc = fork(new URL(module, import.meta.url), args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map();
  const waiting = new Map();
  let nextId = 1;
  proc.on('message', (message) => {
    if (message.id !== undefined && pending.has(message.id)) {
      pending.get(message.id)(message);
      pending.delete(message.id);
      return;
    }
    const resolve = waiting.get(message.type);
    if (resolve) {
      waiting.delete(message.type);
      resolve(message);
    }
  });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal)));
  return {
    proc,
    exited,
    /** Sends `message` and resolves with the answer carrying the same id. */
    ask(message) {
      const id = nextId++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        proc.send({ ...message, id });
      });
    },
    /** Resolves with the next message of this type (rejects if the process exits first). */
    next(type) {
      return new Promise((resolve, reject) => {
        waiting.set(type, resolve);
        exited.then((code) => reject(new Error(`${module} exited (${code}) before '${type}'`)));
      });
    },
    send(message) {
      proc.send(message);
    },
  };
}

/** CPU time used so far by these processes (the Postgres backends of a run), ms; null without Linux /proc. */
export function processCpuMs(pids) {
  const ticks = 100; // USER_HZ on Linux
  let total = 0;
  for (const pid of pids) {
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return null;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += Number(fields[11]) + Number(fields[12]); // utime, stime
  }
  return (total / ticks) * 1000;
}

export async function startReceiver({ cert, key }) {
  const receiver = child('./pg-receiver.mjs');
  const listening = receiver.next('listening');
  receiver.send({ type: 'listen', cert, key });
  const { port } = await listening;
  return {
    url: (path = '/webhook') => `https://127.0.0.1:${port}${path}`,
    reset: () => receiver.ask({ type: 'reset' }),
    count: async () => (await receiver.ask({ type: 'count' })).stats,
    stats: async () => (await receiver.ask({ type: 'stats' })).stats,
    close: async () => {
      receiver.proc.disconnect();
      await receiver.exited;
    },
  };
}

/**
 * A worker process (`kind`: 'library' or 'pg-boss'), connected and idle until `go()`. `config` is passed
 * to it as JSON. `stop()` stops it gracefully and waits for it to exit.
 */
export async function startWorker(kind, config) {
  const module = kind === 'library' ? './pg-worker.mjs' : './pg-boss-worker.mjs';
  const worker = child(module, [JSON.stringify(config)]);
  await worker.next('ready');
  return {
    go: () => worker.ask({ type: 'go' }),
    /** CPU time the process has used so far, ms. */
    cpuMs: async () => (await worker.ask({ type: 'cpu' })).ms,
    async stop() {
      const stopped = worker.next('stopped').catch(() => {});
      worker.send({ type: 'stop' });
      await stopped;
      if (worker.proc.connected) worker.proc.disconnect();
      await Promise.race([worker.exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (worker.proc.exitCode === null) worker.proc.kill('SIGKILL');
    },
  };
}
