/**
 * Runs the analytics backend:
 *
 *   npx tsx examples/express-backend/main.ts
 *
 * Environment (all optional):
 *   PORT, HOST                   default 3000 and 127.0.0.1
 *   TLS_CERT_FILE, TLS_KEY_FILE  serve HTTPS with this certificate; otherwise plain HTTP
 *   DATABASE_URL                 use Postgres (tables created on start); otherwise the memory store
 *   DATABASE_SCHEMA              Postgres schema, default zta_webhooks
 *   ALICE_TOKEN, BOB_TOKEN       bearer tokens of the two users; default dev-token-alice / dev-token-bob
 *   WEBHOOK_CA_FILE              also trust this CA when delivering (receivers with a dev certificate)
 *   ALLOW_PRIVATE_NETWORKS=1     allow webhook URLs on loopback / private addresses (local testing only)
 *   SPIKE_THRESHOLD              the Traffic Spike alert fires above this many pageviews a minute (1000)
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { Logger } from '../../src/index.js'; // @zta/webhooks
import { onShutdown } from '../shared/servers.js';
import { createBackend, DEV_TOKENS, devUsers } from './app.js';
import { openStore } from './store.js';

const env = process.env;
const host = env.HOST || '127.0.0.1';
const port = Number(env.PORT || 3000);
const tls =
  env.TLS_CERT_FILE && env.TLS_KEY_FILE
    ? { cert: readFileSync(env.TLS_CERT_FILE), key: readFileSync(env.TLS_KEY_FILE) }
    : undefined;
// `ca` replaces Node's built-in list, so keep the public roots next to the extra CA.
const webhookCa = env.WEBHOOK_CA_FILE
  ? { ca: [...rootCertificates, readFileSync(env.WEBHOOK_CA_FILE, 'utf8')] }
  : undefined;

const logger: Logger = {
  info: (message, fields) => console.log(message, fields ?? ''),
  warn: (message, fields) => console.warn(message, fields ?? ''),
  error: (message, fields) => console.error(message, fields ?? ''),
};

const opened = await openStore({ databaseUrl: env.DATABASE_URL, schema: env.DATABASE_SCHEMA });
const backend = createBackend({
  store: opened.store,
  users: devUsers({ alice: env.ALICE_TOKEN, bob: env.BOB_TOKEN }),
  allowPrivateNetworks: env.ALLOW_PRIVATE_NETWORKS === '1',
  ...(webhookCa && { tls: webhookCa }),
  ...(env.SPIKE_THRESHOLD && { trafficSpike: { threshold: Number(env.SPIKE_THRESHOLD) } }),
  logger,
  onAlert: (alert) => console.log(`alert: ${alert.alertName} on ${alert.siteId} (${alert.condition})`),
});
const server = await backend.listen({ host, port, tls });

const usingDevTokens = !env.ALICE_TOKEN || !env.BOB_TOKEN;
console.log(`analytics backend on ${server.origin} (${opened.kind} store)
  POST ${server.origin}/collect        tracked pageviews, events and goals
  GET|POST|DELETE ${server.origin}/api/webhooks   Authorization: Bearer <token>
${usingDevTokens ? `  dev tokens: ${DEV_TOKENS.alice} (Alice: site_abc123, site_blog), ${DEV_TOKENS.bob} (Bob: site_bob)\n` : ''}${tls ? '' : '  (plain HTTP: set TLS_CERT_FILE and TLS_KEY_FILE to serve HTTPS)\n'}`);
if (usingDevTokens && !['127.0.0.1', '::1', 'localhost'].includes(host)) {
  console.warn('warning: the default dev tokens are public; set ALICE_TOKEN and BOB_TOKEN');
}

onShutdown(async () => {
  await backend.close();
  await opened.close();
});
