/**
 * Runs the receiver:
 *
 *   ZTA_WEBHOOK_SECRET=whsec_... TLS_CERT_FILE=cert.pem TLS_KEY_FILE=key.pem \
 *     npx tsx examples/express-receiver/main.ts
 *
 * Environment:
 *   ZTA_WEBHOOK_SECRET           required: the secret shown when the webhook was created
 *   ZTA_WEBHOOK_SECRET_PREVIOUS  optional: also accepted, while a rotated secret switches over
 *   TLS_CERT_FILE, TLS_KEY_FILE  required: webhook URLs must be HTTPS (see examples/shared/dev-certs.ts)
 *   PORT, HOST                   default 4000 and 127.0.0.1
 */
import { readFileSync } from 'node:fs';
import { onShutdown } from '../shared/servers.js';
import { createReceiver } from './app.js';

const env = process.env;
if (!env.ZTA_WEBHOOK_SECRET || !env.TLS_CERT_FILE || !env.TLS_KEY_FILE) {
  console.error(
    'Set ZTA_WEBHOOK_SECRET, TLS_CERT_FILE and TLS_KEY_FILE (see examples/express-receiver/README.md)',
  );
  process.exit(2);
}

const receiver = createReceiver({
  // An unset _PREVIOUS is skipped by verifyWebhook.
  secret: [env.ZTA_WEBHOOK_SECRET, env.ZTA_WEBHOOK_SECRET_PREVIOUS ?? ''],
  process: async ({ payload, deliveryId }) => {
    // Your work goes here: write to a database, call another service, ...
    const data = payload.data as unknown as Record<string, unknown>;
    const what = data.path ?? data.action ?? data.goalName ?? data.alertName ?? '';
    console.log(`${payload.event} ${data.siteId} ${String(what)} (${deliveryId})`);
  },
  onError: (error, { deliveryId }) => console.error(`processing ${deliveryId} failed:`, error),
});
const server = await receiver.listen({
  host: env.HOST || '127.0.0.1',
  port: Number(env.PORT || 4000),
  tls: { cert: readFileSync(env.TLS_CERT_FILE), key: readFileSync(env.TLS_KEY_FILE) },
});
console.log(`receiver on ${server.origin}/webhook`);

const report = setInterval(() => {
  const s = receiver.stats;
  console.log(
    `signatures ${s.signaturesPassed} passed / ${s.signaturesFailed} failed, ${s.processed} processed, ${s.duplicates} duplicates skipped`,
  );
}, 30_000);
report.unref();

onShutdown(async () => {
  clearInterval(report);
  await receiver.close();
});
