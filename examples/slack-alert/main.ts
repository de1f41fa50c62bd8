/**
 * Runs the Slack alert receiver:
 *
 *   SLACK_WEBHOOK_URL=https://hooks.slack.com/services/... ZTA_WEBHOOK_SECRET=whsec_... \
 *   TLS_CERT_FILE=cert.pem TLS_KEY_FILE=key.pem npx tsx examples/slack-alert/main.ts
 *
 * Environment:
 *   SLACK_WEBHOOK_URL            required: a Slack incoming-webhook URL (or anything taking the same POST)
 *   ZTA_WEBHOOK_SECRET           required: the secret of the webhook (subscribed to `alert`)
 *   ZTA_WEBHOOK_SECRET_PREVIOUS  optional: also accepted during a rotation
 *   TLS_CERT_FILE, TLS_KEY_FILE  required: webhook URLs must be HTTPS
 *   PORT, HOST                   default 4100 and 127.0.0.1
 */
import { readFileSync } from 'node:fs';
import { onShutdown } from '../shared/servers.js';
import { createSlackAlert } from './app.js';

const env = process.env;
if (!env.SLACK_WEBHOOK_URL || !env.ZTA_WEBHOOK_SECRET || !env.TLS_CERT_FILE || !env.TLS_KEY_FILE) {
  console.error(
    'Set SLACK_WEBHOOK_URL, ZTA_WEBHOOK_SECRET, TLS_CERT_FILE and TLS_KEY_FILE (see examples/slack-alert/README.md)',
  );
  process.exit(2);
}

const receiver = createSlackAlert({
  slackWebhookUrl: env.SLACK_WEBHOOK_URL,
  secret: [env.ZTA_WEBHOOK_SECRET, env.ZTA_WEBHOOK_SECRET_PREVIOUS ?? ''],
  onPosted: (message) => console.log(`posted to Slack: ${message.text}`),
  onError: (error, { deliveryId }) => {
    const reason = error instanceof Error ? error.message : String(error);
    // `cause` is already scrubbed of the Slack URL (app.ts): say why Slack could not be reached.
    const cause = error instanceof Error && typeof error.cause === 'string' ? ` (${error.cause})` : '';
    console.error(`alert ${deliveryId} not posted: ${reason}${cause}`);
  },
});
const server = await receiver.listen({
  host: env.HOST || '127.0.0.1',
  port: Number(env.PORT || 4100),
  tls: { cert: readFileSync(env.TLS_CERT_FILE), key: readFileSync(env.TLS_KEY_FILE) },
});
console.log(`slack-alert receiver on ${server.origin}/webhook`);

onShutdown(() => receiver.close());
