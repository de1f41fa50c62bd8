// Starts bench/receiver.mjs in a child process and talks to it over IPC.
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';

const clock = () => performance.timeOrigin + performance.now();

/**
 * Forks the receiver with the given certificate and waits until it listens.
 * Returns { port, origin, url, reset(), stats(), skew(), close() }.
 */
export async function startReceiverProcess({ cert, key }) {
  const child = fork(new URL('../receiver.mjs', import.meta.url), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map();
  let nextId = 1;
  let listening;
  const ready = new Promise((resolve, reject) => {
    listening = resolve;
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`receiver exited early (code ${code})`)));
  });
  child.on('message', (message) => {
    if (message.type === 'listening') {
      listening(message.port);
      return;
    }
    const waiter = pending.get(message.id);
    if (waiter) {
      pending.delete(message.id);
      waiter(message);
    }
  });
  const call = (type) =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      child.send({ type, id });
    });

  child.send({ type: 'listen', cert, key });
  const port = await ready;
  child.removeAllListeners('exit');
  const origin = `https://127.0.0.1:${port}`;

  return {
    pid: child.pid,
    port,
    origin,
    url: `${origin}/webhook`,
    /** Clears the receiver's counters and latency samples: a new phase starts. */
    async reset() {
      await call('reset');
    },
    /**
     * { count, bad, cpuMs, meanBodyBytes, first, last, latency: { n, p50, p90, p99, max }, timeline } for
     * the phase; timeline: the worst latency of each 100 ms of it.
     */
    async stats() {
      return (await call('stats')).stats;
    },
    /**
     * Estimates the receiver's clock minus ours (ms), from the IPC round trip with the smallest delay.
     * Returns { offsetMs, rttMs }; the offset is uncertain by about rttMs / 2.
     */
    async skew(samples = 25) {
      let best = { offsetMs: 0, rttMs: Number.POSITIVE_INFINITY };
      for (let i = 0; i < samples; i++) {
        const t0 = clock();
        const { now } = await call('clock');
        const t2 = clock();
        if (t2 - t0 < best.rttMs) best = { offsetMs: now - (t0 + t2) / 2, rttMs: t2 - t0 };
      }
      return best;
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send({ type: 'exit' });
      const timer = setTimeout(() => child.kill(), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}
