// The slack-alert example over real HTTPS, end to end: tracked pageviews pass the backend's Traffic Spike
// threshold, the alert is delivered to the slack-alert receiver, which posts the spec's message to a
// stand-in Slack server (test/support/receiver.ts).
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ofetch } from 'ofetch';
import { Agent } from 'undici';
import { describe, expect, it } from 'vitest';
import { createBackend, DEV_TOKENS } from '../../examples/express-backend/app.js';
import { alertMessage, createSlackAlert, type SlackAlertOptions } from '../../examples/slack-alert/app.js';
import type { WebhookWithSecret } from '../../src/index.js';
import { signPayload } from '../../src/verify.js';
import { sequence, status } from '../support/hostile.js';
import type { Handler } from '../support/receiver.js';
import {
  certFiles,
  eventually,
  httpsClient,
  onCleanup,
  recorder,
  runMain,
  serverCert,
  testCA,
} from './support.js';

const SITE = 'site_abc123';
const SPEC_ALERT = {
  siteId: SITE,
  alertId: 'alert_abc123',
  alertName: 'Traffic Spike',
  condition: 'pageviews > 1000',
  currentValue: 1543,
  threshold: 1000,
};

/** The slack-alert receiver, posting to a stand-in Slack that answers with `slackHandler`. */
async function startSlackAlert(slackHandler?: Handler, options: Partial<SlackAlertOptions> = {}) {
  const slack = await recorder(slackHandler);
  const agent = new Agent({ connect: { ca: (await testCA()).caCert } });
  onCleanup(() => agent.close());
  const posted: unknown[] = [];
  const errors: unknown[] = [];
  const secrets = new Map<string, string>();
  const receiver = createSlackAlert({
    slackWebhookUrl: slack.url('/services/T000/B000/XXXX'),
    fetch: ofetch.create({ dispatcher: agent }),
    ...(options.secret === undefined && { getSecret: (id: string) => secrets.get(id) }),
    onPosted: (message) => posted.push(message),
    onError: (error) => errors.push(error),
    ...options,
  });
  onCleanup(() => receiver.close());
  const server = await receiver.listen({ tls: await serverCert() });
  return { slack, receiver, posted, errors, secrets, url: `${server.origin}/webhook` };
}

describe('slack-alert example', () => {
  it("formats an alert as the spec's Slack example does", () => {
    expect(alertMessage(SPEC_ALERT)).toStrictEqual({
      text: '🚨 Alert: Traffic Spike',
      blocks: [
        {
          type: 'section',
          text: { type: 'mrkdwn', text: '*Traffic Spike*\nCurrent: 1543\nThreshold: 1000' },
        },
      ],
    });
  });

  it("escapes Slack's control characters in the alert name", () => {
    const message = alertMessage({ ...SPEC_ALERT, alertName: 'Spike <!channel> & co' });
    expect(message.text).toBe('🚨 Alert: Spike &lt;!channel&gt; &amp; co');
    expect(message.blocks[0]!.text.text).toMatch(/^\*Spike &lt;!channel&gt; &amp; co\*\n/);
  });

  it('posts one message to Slack for a traffic spike, end to end from POST /collect', async () => {
    const { slack, posted, errors, secrets, receiver, url } = await startSlackAlert();
    const backend = createBackend({
      tls: { ca: (await testCA()).caCert },
      allowPrivateNetworks: true,
      trafficSpike: { threshold: 2 },
    });
    onCleanup(() => backend.close());
    const api = await backend.listen({ tls: await serverCert() });
    const http = await httpsClient(api.origin);
    const created = await http<{ webhook: WebhookWithSecret }>('/api/webhooks', {
      method: 'POST',
      headers: { Authorization: `Bearer ${DEV_TOKENS.alice}` },
      // Pageviews too, to show they are acknowledged and ignored.
      body: { siteId: SITE, url, events: ['pageview', 'alert'] },
    });
    secrets.set(created.webhook.id, created.webhook.secret);

    for (let i = 0; i < 4; i++) {
      await http('/collect', { method: 'POST', body: { type: 'pageview', siteId: SITE, path: '/' } });
    }
    const [request] = await slack.waitFor(1);
    expect(request!.method).toBe('POST');
    expect(request!.url).toBe('/services/T000/B000/XXXX');
    expect(request!.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(request!.body)).toStrictEqual({
      text: '🚨 Alert: Traffic Spike',
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: '*Traffic Spike*\nCurrent: 3\nThreshold: 2' } },
      ],
    });
    await eventually(() => receiver.stats.processed === 5, 'four pageviews and the alert processed');
    expect(slack.requests).toHaveLength(1);
    expect(posted).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('retries Slack on a 5xx and posts once', async () => {
    const { slack, posted, receiver, url } = await startSlackAlert(
      sequence([status(503), status(200, {}, 'ok')]),
      {
        secret: 'whsec_s',
      },
    );
    const http = await httpsClient();
    const body = JSON.stringify({ event: 'alert', timestamp: new Date().toISOString(), data: SPEC_ALERT });
    const headers = {
      'content-type': 'application/json',
      'x-zta-signature': signPayload(body, 'whsec_s'),
      'x-zta-delivery-id': 'dlv_alert',
    };
    expect((await http.raw(url, { method: 'POST', body, headers })).status).toBe(200);
    // The same delivery again (a retry after a lost response): not posted twice.
    expect((await http.raw(url, { method: 'POST', body, headers })).status).toBe(200);
    await receiver.idle();
    expect(slack.requests).toHaveLength(2);
    expect(posted).toHaveLength(1);
    expect(receiver.stats.duplicates).toBe(1);
  });

  it('reports a Slack outage without leaking the Slack URL (a credential)', async () => {
    const { slack, errors, receiver, url } = await startSlackAlert(status(500), { secret: 'whsec_s' });
    const http = await httpsClient();
    const body = JSON.stringify({ event: 'alert', timestamp: new Date().toISOString(), data: SPEC_ALERT });
    await http.raw(url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-zta-signature': signPayload(body, 'whsec_s') },
    });
    await receiver.idle();
    expect(slack.requests).toHaveLength(3); // the first try and two retries
    expect(receiver.stats.processingFailed).toBe(1);
    expect(errors).toHaveLength(1);
    const error = errors[0] as Error;
    expect(error.message).toBe('Slack answered 500');
    expect(JSON.stringify({ message: error.message, cause: String(error.cause) })).not.toContain('XXXX');
  });

  it('main.ts posts alerts to SLACK_WEBHOOK_URL and stops on SIGTERM', async () => {
    // The stand-in Slack uses the test CA; the child trusts it through NODE_EXTRA_CA_CERTS.
    const slack = await recorder();
    const files = await certFiles();
    const caFile = join(dirname(files.TLS_CERT_FILE), 'ca.pem');
    await writeFile(caFile, (await testCA()).caCert);
    const main = await runMain(
      'examples/slack-alert/main.ts',
      {
        ...files,
        PORT: '0',
        SLACK_WEBHOOK_URL: slack.url('/services/T000/B000/XXXX'),
        ZTA_WEBHOOK_SECRET: 'whsec_s',
        NODE_EXTRA_CA_CERTS: caFile,
      },
      'slack-alert receiver on',
    );
    expect(main.output()).not.toContain('XXXX');
    const http = await httpsClient();
    const body = JSON.stringify({ event: 'alert', timestamp: new Date().toISOString(), data: SPEC_ALERT });
    const answer = await http.raw(`${main.origin}/webhook`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'x-zta-signature': signPayload(body, 'whsec_s') },
    });
    expect(answer.status).toBe(200);
    const [request] = await slack.waitFor(1);
    expect(JSON.parse(request!.body)).toStrictEqual(alertMessage(SPEC_ALERT));
    await eventually(
      () => main.output().includes('posted to Slack: 🚨 Alert: Traffic Spike'),
      'the log line',
    );
    expect(await main.stop()).toBe(0);
  });

  it('needs an HTTPS Slack URL', () => {
    expect(() =>
      createSlackAlert({ slackWebhookUrl: 'http://hooks.slack.com/services/x', secret: 'whsec_s' }),
    ).toThrow(TypeError);
  });
});
