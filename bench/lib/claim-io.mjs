// Diagnostic, not a benchmark: which relations do claims and completions read from outside shared_buffers,
// at a small and a large backlog? Loads scratch schemas like bench/postgres.mjs's claim-cost phase, runs
// 40 rounds of claimDeliveries({ limit: 64, perWebhookLimit: 8 }) + completeAttempts per size, and prints
// the pg_statio_user_tables / _indexes deltas (blocks read vs hit) per relation. Drops its schemas.
//
//   npm run build && node bench/lib/claim-io.mjs [random|fifo] [10000,1000000]
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { completeAsSucceeded, loadClaimBacklog } from './claim-backlog.mjs';

const { migrate, postgresStore } = await import('../../dist/postgres.js');
const order = process.argv[2] ?? 'random';
const sizes = (process.argv[3] ?? '10000,1000000').split(',').map(Number);
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  max: 2,
});
const now = new Date();
const setups = [];
for (const size of sizes) {
  const schema = `diag_${order}_${size}`;
  const s = `"${schema}"`;
  await pool.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await migrate(pool, { schema });
  await loadClaimBacklog(pool, s, { size, webhooks: 100, order, now });
  setups.push({ size, schema, store: postgresStore({ pool, schema, notify: false }), t: [] });
}
const statio = async (schema) => {
  const { rows } = await pool.query(
    `SELECT relname, heap_blks_read AS r, heap_blks_hit AS h FROM pg_statio_user_tables WHERE schemaname = $1
    UNION ALL SELECT indexrelname, idx_blks_read, idx_blks_hit FROM pg_statio_user_indexes WHERE schemaname = $1`,
    [schema],
  );
  return new Map(rows.map((r) => [r.relname, { r: Number(r.r), h: Number(r.h) }]));
};
const before = new Map();
for (const st of setups) before.set(st.size, await statio(st.schema));
for (let round = 0; round < 40; round++) {
  for (const st of setups) {
    const t0 = performance.now();
    const batch = await st.store.claimDeliveries({
      now,
      limit: 64,
      leaseMs: 60000,
      perWebhookLimit: 8,
      busyWebhooks: new Map(),
    });
    st.t.push(performance.now() - t0);
    await completeAsSucceeded(st.store, batch, now);
  }
}
await new Promise((r) => setTimeout(r, 700)); // stats flush
for (const st of setups) {
  const after = await statio(st.schema);
  const t = [...st.t].sort((a, b) => a - b);
  console.log(`${order} ${st.size}: claim p50 ${t[20].toFixed(2)} ms`);
  for (const [rel, a] of after) {
    const b = before.get(st.size).get(rel);
    console.log(
      `   ${rel.padEnd(34)} read ${String(a.r - b.r).padStart(6)} hit ${String(a.h - b.h).padStart(7)}`,
    );
  }
  await st.store.close();
  await pool.query(`DROP SCHEMA "${st.schema}" CASCADE`);
}
await pool.end();
