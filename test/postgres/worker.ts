/**
 * One dispatcher process for the multi-process tests (processes.test.ts): started with
 * `node --import tsx test/postgres/worker.ts '<json config>'`, it delivers from the given schema until told
 * to stop over IPC. It sends with `User-Agent: zta-test-worker/<name>` so the receiver can tell workers
 * apart, and connects as `application_name = zta-worker-<name>` so a test can find its backends.
 */
import pg from 'pg';
import { Dispatcher, type Logger } from '../../src/index.js';
import { postgresStore } from '../../src/postgres.js';

export interface WorkerConfig {
  name: string;
  databaseUrl: string;
  schema: string;
  caCert: string;
  concurrency: number;
  perWebhookConcurrency: number;
  leaseMs: number;
  retryDelaysMs: number[];
  poolSize: number;
}

export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'log'; level: string; message: string; fields?: Record<string, unknown> }
  | { type: 'stopped' };

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const send = (message: WorkerMessage): void => {
  if (process.connected) process.send?.(message);
};
const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const pool = new pg.Pool({
  connectionString: config.databaseUrl,
  max: config.poolSize,
  application_name: `zta-worker-${config.name}`,
});
// An idle connection that the server closed: the pool drops it and opens another when needed.
pool.on('error', (error) => send({ type: 'log', level: 'pool', message: describe(error) }));

const store = postgresStore({
  pool,
  schema: config.schema,
  onError: (error) => send({ type: 'log', level: 'listen', message: describe(error) }),
});

const log =
  (level: string) =>
  (message: string, fields?: Record<string, unknown>): void =>
    send({ type: 'log', level, message, ...(fields && { fields: JSON.parse(JSON.stringify(fields)) }) });
const logger: Logger = { info: log('info'), warn: log('warn'), error: log('error') };

const dispatcher = new Dispatcher({
  store,
  tls: { ca: config.caCert },
  allowPrivateNetworks: true,
  concurrency: config.concurrency,
  perWebhookConcurrency: config.perWebhookConcurrency,
  // The tests' webhooks are on one site and one receiver: every slot may go to them.
  perSiteConcurrency: config.concurrency,
  perOriginConcurrency: config.concurrency,
  leaseMs: config.leaseMs,
  // An attempt must end within its lease; the tests' receivers answer within 100 ms.
  timeoutMs: Math.min(5_000, config.leaseMs / 2),
  retry: { delaysMs: config.retryDelaysMs },
  userAgent: `zta-test-worker/${config.name}`,
  logger,
  retention: false,
});

process.on('message', (message: { type?: string }) => {
  if (message.type !== 'stop') return;
  void (async () => {
    await dispatcher.stop();
    await store.close();
    await pool.end();
    send({ type: 'stopped' });
    process.disconnect();
  })();
});
// The test process went away without stopping us: do not linger.
process.on('disconnect', () => setTimeout(() => process.exit(0), 100).unref());

await dispatcher.start();
send({ type: 'ready', pid: process.pid });
