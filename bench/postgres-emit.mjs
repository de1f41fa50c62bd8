// Concurrent emits through @zta/webhooks/postgres: how much the wake-up of idle workers costs the emitters.
//
//   npm run build && node bench/postgres-emit.mjs [--callers 32] [--seconds 4] [--rounds 2]
//   (or `npm run bench -- postgres-emit`). Needs PostgreSQL at DATABASE_URL (default
//   postgres://postgres@127.0.0.1:5432/test); works in a scratch schema it drops.
//
// C callers (a pool of C connections) each call `dispatcher.emit()` in a loop, one event at a time and
// awaited, as request handlers of a busy app do; one webhook, so each emit is one single-row transaction.
// Two stores on the same table alternate, `rounds` times each: the default (`notify: true`: dispatchers
// in other processes are woken at once) and `notify: false` (nothing sent: the ceiling; workers would
// poll). Printed: emits per second of each and their ratio (best of the rounds). No dispatcher runs, so
// the deliveries stay pending; the table is emptied between runs.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { requireDist } from './lib/dist.mjs';
import { positiveOption } from './lib/options.mjs';

requireDist('postgres-emit.mjs', 'index', 'postgres');
const { Dispatcher, WebhookManager } = await import('../dist/index.js');
const { migrate, postgresStore } = await import('../dist/postgres.js');

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CALLERS = positiveOption('callers', 32);
const SECONDS = positiveOption('seconds', 4);
const ROUNDS = positiveOption('rounds', 2);
const SCHEMA = `zta_bench_emit_${randomBytes(4).toString('hex')}`;

const pool = new pg.Pool({ connectionString: DATABASE_URL, max: CALLERS + 2 });
pool.on('error', () => {});
const pgVersion = (await pool.query('SHOW server_version')).rows[0].server_version;
const loadBefore = os.loadavg();
await migrate(pool, { schema: SCHEMA });
try {
  const setup = postgresStore({ pool, schema: SCHEMA, notify: false });
  const manager = new WebhookManager({ store: setup, authorize: () => true, allowPrivateNetworks: true });
  await manager.create(null, { siteId: 'site_bench', url: 'https://127.0.0.1:9/hook', events: ['pageview'] });
  await Promise.all(Array.from({ length: CALLERS + 2 }, () => pool.query('SELECT 1')));

  /** Emits per second from CALLERS concurrent callers for SECONDS, through a store made with `notify`. */
  const run = async (notify) => {
    await pool.query(`TRUNCATE "${SCHEMA}".deliveries, "${SCHEMA}".attempts`);
    const store = postgresStore({ pool, schema: SCHEMA, notify });
    const app = new Dispatcher({ store, retention: false });
    let emitted = 0;
    const started = performance.now();
    const end = started + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        while (performance.now() < end) {
          await app.emit({ siteId: 'site_bench', event: 'pageview', data: { path: '/' } });
          emitted++;
        }
      }),
    );
    const rate = (emitted * 1000) / (performance.now() - started);
    await store.close();
    return rate;
  };

  const rates = { true: [], false: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const notify of [true, false]) rates[notify].push(await run(notify));
  }
  const best = (list) => Math.max(...list);
  const fmt = (list) => list.map((r) => r.toFixed(0)).join(', ');
  console.log(
    `Machine: ${os.cpus()[0]?.model.trim()}, ${os.cpus().length} cores; Node ${process.version}; PostgreSQL ${pgVersion}`,
  );
  console.log(
    `Date: ${new Date().toISOString()}; load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`,
  );
  console.log(`${CALLERS} concurrent callers of emit(), ${SECONDS} s per run, one delivery per emit\n`);
  console.log('| store | emits/s (best) | every run |');
  console.log('| --- | ---: | --- |');
  console.log(`| notify: true (default) | ${best(rates.true).toFixed(0)} | ${fmt(rates.true)} |`);
  console.log(`| notify: false (no wake-ups) | ${best(rates.false).toFixed(0)} | ${fmt(rates.false)} |`);
  console.log(`\nnotify: true ÷ notify: false = ${(best(rates.true) / best(rates.false)).toFixed(2)}×`);
} finally {
  await pool.query(`DROP SCHEMA "${SCHEMA}" CASCADE`);
  await pool.end();
}
