// The comparison for bench/postgres.mjs: what a user would build without the library. A pg-boss (10.x,
// the last line that runs on Node 20) queue of jobs, one job per delivery carrying the URL, the secret and
// the exact body; workers POST each with undici.request through one keep-alive Agent (16 connections per
// origin, as the library's transport keeps), signed with the same HMAC-SHA256 headers, at most
// `concurrency` requests in flight per process (the library's `concurrency`). `loops` calls to
// `boss.work()` each fetch `batchSize` jobs at a time, polling every 0.5 s (pg-boss' minimum) when idle;
// a batch is completed in one statement once every job in it was answered.
// Config (JSON in argv[2]): { databaseUrl, schema, queue, caCert, concurrency, batchSize, loops, poolSize }.
import { createHmac } from 'node:crypto';
import PgBoss from 'pg-boss';
import { Agent } from 'undici';

const config = JSON.parse(process.argv[2]);
const boss = new PgBoss({
  connectionString: config.databaseUrl,
  schema: config.schema,
  max: config.poolSize,
  application_name: config.applicationName,
  supervise: false,
  schedule: false,
  migrate: false,
});
boss.on('error', (error) => console.error('pg-boss-worker:', error.message));
await boss.start();

const agent = new Agent({
  connect: { ca: config.caCert },
  connections: 16,
  keepAliveTimeout: 30_000,
  pipelining: 1,
});

// At most `concurrency` requests in flight in this process, across every work() loop.
let active = 0;
const waiting = [];
function acquire() {
  if (active < config.concurrency) {
    active++;
    return Promise.resolve();
  }
  return new Promise((resolve) => waiting.push(resolve));
}
const release = () => {
  const next = waiting.shift();
  if (next) next();
  else active--;
};

async function deliver(job) {
  await acquire();
  try {
    const { url, body, secret, webhookId, deliveryId, event } = job.data;
    const target = new URL(url);
    const response = await agent.request({
      origin: target.origin,
      path: target.pathname,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'pg-boss-webhooks/1.0',
        'x-zta-signature': `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`,
        'x-zta-event': event,
        'x-zta-webhook-id': webhookId,
        'x-zta-delivery-id': deliveryId,
        'x-zta-timestamp': String(Math.floor(Date.now() / 1000)),
      },
      body,
      headersTimeout: 5_000,
      bodyTimeout: 5_000,
    });
    await response.body.text();
    if (response.statusCode < 200 || response.statusCode >= 300)
      throw new Error(`HTTP ${response.statusCode}`);
  } finally {
    release();
  }
}

process.on('message', async (message) => {
  if (message.type === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send({ type: 'cpu', id: message.id, ms: (user + system) / 1000 });
  } else if (message.type === 'go') {
    for (let i = 0; i < config.loops; i++) {
      await boss.work(config.queue, { batchSize: config.batchSize, pollingIntervalSeconds: 0.5 }, (jobs) =>
        Promise.all(jobs.map(deliver)),
      );
    }
    process.send({ type: 'go', id: message.id });
  } else if (message.type === 'stop') {
    await boss.stop({ graceful: true, wait: true, timeout: 5_000 });
    await agent.close();
    process.send({ type: 'stopped' });
    process.disconnect();
  }
});
process.on('disconnect', () => setTimeout(() => process.exit(0), 50).unref());
process.send({ type: 'ready' });
