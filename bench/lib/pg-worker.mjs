// A library worker process for bench/postgres.mjs: postgresStore + Dispatcher from dist/, connected and
// idle until the parent says 'go' (then `dispatcher.start()`), stopped (drained) on 'stop'.
// Config (JSON in argv[2]): { databaseUrl, schema, caCert, concurrency, perWebhookConcurrency, poolSize }.
import pg from 'pg';

const config = JSON.parse(process.argv[2]);
const { Dispatcher } = await import('../../dist/index.js');
const { postgresStore } = await import('../../dist/postgres.js');

const pool = new pg.Pool({
  connectionString: config.databaseUrl,
  max: config.poolSize,
  application_name: config.applicationName,
});
pool.on('error', (error) => console.error('pg-worker: idle connection error:', error.message));
const store = postgresStore({ pool, schema: config.schema, preparedStatements: config.preparedStatements });
const dispatcher = new Dispatcher({
  store,
  tls: { ca: config.caCert },
  allowPrivateNetworks: true,
  concurrency: config.concurrency,
  perWebhookConcurrency: config.perWebhookConcurrency,
  // All the bench's webhooks are on one site and one receiver: no tenant or host to keep from the others'
  // slots (64 requests in flight per process, as the pg-boss build has).
  perSiteConcurrency: config.concurrency,
  perOriginConcurrency: config.concurrency,
  retention: false,
  logger: { error: (message, fields) => console.error('pg-worker:', message, fields) },
});
// Open the pool's connections now, so the first claims do not pay for it.
await Promise.all(Array.from({ length: Math.min(4, config.poolSize) }, () => pool.query('SELECT 1')));

process.on('message', async (message) => {
  if (message.type === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send({ type: 'cpu', id: message.id, ms: (user + system) / 1000 });
  } else if (message.type === 'go') {
    await dispatcher.start();
    process.send({ type: 'go', id: message.id });
  } else if (message.type === 'stop') {
    await dispatcher.stop();
    await store.close();
    await pool.end();
    process.send({ type: 'stopped' });
    process.disconnect();
  }
});
process.on('disconnect', () => setTimeout(() => process.exit(0), 50).unref());
process.send({ type: 'ready' });
