/**
 * The demo scenario (`npm run demo`): the analytics backend, a receiver and a failing endpoint over HTTPS
 * on loopback; webhooks registered through the HTTP API; a burst of tracked events; live delivery progress;
 * the failing endpoint retried and disabled; the activity log; a summary checked from two sides (the
 * dispatcher's events and the API's activity log). Returns the problems found: none means success.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import { ofetch } from 'ofetch';
import { Agent } from 'undici';
import type { AlertData, AttemptInfo, Delivery, Webhook, WebhookWithSecret } from '../../src/index.js'; // @zta/webhooks
import { signPayload } from '../../src/verify.js'; // @zta/webhooks/verify
import { createBackend, DEV_TOKENS } from '../express-backend/app.js';
import { createReceiver, type ReceivedDelivery } from '../express-receiver/app.js';
import { createDevCA } from '../shared/dev-ca.js';
import { serve } from '../shared/servers.js';
import { type Output, table } from './output.js';
import { trafficBurst } from './traffic.js';

const SITE = 'site_abc123';
const MIX = { pageviews: 300, events: 60, goals: 40 };
const SPIKE_THRESHOLD = 250;
const RETRY_DELAYS_MS = [200, 500];
const MAX_CONSECUTIVE_FAILURES = 3;
const SENDERS = 16;
/** The proxy in front of the receiver answers 503 to the first attempt of about 1 delivery in 40. */
const FLAKY_ONE_IN = 40;
const DELIVERY_TIMEOUT_MS = 30_000;

/** Closers run in reverse order of registration, once, whatever happened. */
export class Cleanup {
  readonly #closers: (() => Promise<unknown> | unknown)[] = [];
  #done: Promise<void> | undefined;

  add(closer: () => Promise<unknown> | unknown): void {
    this.#closers.push(closer);
  }

  run(): Promise<void> {
    this.#done ??= (async () => {
      while (this.#closers.length > 0) {
        try {
          await this.#closers.pop()!();
        } catch {
          // Keep closing the rest.
        }
      }
    })();
    return this.#done;
  }
}

/** An unexpected answer or state: the demo reports it and exits non-zero. */
class Unexpected extends Error {}

interface EndpointCounters {
  attempts: number;
  retries: number;
  succeeded: number;
  failed: number;
  inFlight: Set<string>;
}

const counters = (): EndpointCounters => ({
  attempts: 0,
  retries: 0,
  succeeded: 0,
  failed: 0,
  inFlight: new Set(),
});

export async function runDemo(out: Output, cleanup: Cleanup): Promise<string[]> {
  const problems: string[] = [];
  const startedAt = performance.now();
  const { bold, dim } = out;

  out.line(bold('@zta/webhooks demo'));
  out.line(
    'The analytics backend, a webhook receiver and a failing endpoint, in this process, over HTTPS on',
  );
  out.line(
    '127.0.0.1 with certificates from a throwaway CA made for this run. Memory store; nothing is kept.',
  );
  out.line(
    `Demo settings: a failed attempt is retried after ${RETRY_DELAYS_MS.map((ms) => `${ms} ms`).join(', then ')} ` +
      `(${RETRY_DELAYS_MS.length + 1} attempts in all);`,
  );
  out.line(`a webhook is disabled after ${MAX_CONSECUTIVE_FAILURES} failed deliveries in a row.`);
  out.line(
    dim("(The library's defaults are the spec's schedule, 5 s and then 25 s, and 10 failed deliveries.)"),
  );

  // ---------------------------------------------------------------------------------------------------
  out.line();
  out.line(bold('1. Start the servers'));
  const ca = await createDevCA();
  const [backendCert, receiverCert, failingCert] = await Promise.all([ca.issue(), ca.issue(), ca.issue()]);

  const alerts: AlertData[] = [];
  const backend = createBackend({
    tls: { ca: ca.caCert },
    allowPrivateNetworks: true, // the receivers are on 127.0.0.1
    retry: { delaysMs: RETRY_DELAYS_MS },
    maxConsecutiveFailures: MAX_CONSECUTIVE_FAILURES,
    trafficSpike: { threshold: SPIKE_THRESHOLD },
    logger: {
      // Failed deliveries and a disabled webhook are logged as warnings: expected here.
      error: (message, fields) =>
        problems.push(`dispatcher logged an error: ${message} ${JSON.stringify(fields)}`),
    },
    onAlert: (alert) => {
      alerts.push(alert);
      out.line(
        `   alert: ${alert.alertName} (${alert.condition}, currentValue ${alert.currentValue}) ` +
          dim('emitted as an "alert" event'),
      );
    },
  });
  cleanup.add(() => backend.close());
  const api = await backend.listen({ tls: backendCert });

  const secrets = new Map<string, string>();
  let firstDelivery: ReceivedDelivery | undefined;
  const receiver = createReceiver({
    getSecret: (webhookId) => secrets.get(webhookId),
    process: (delivery) => {
      firstDelivery ??= delivery;
    },
    onError: (error) => problems.push(`the receiver failed to process a delivery: ${String(error)}`),
  });
  const flaky = flakyProxy(FLAKY_ONE_IN);
  const front = express().use(flaky.middleware).use(receiver.app);
  const receiverServer = await serve(front, { tls: receiverCert });
  cleanup.add(() => receiver.idle());
  cleanup.add(() => receiverServer.close());

  let failingRequests = 0;
  const failingServer = await serve(
    (req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on('end', () => {
        failingRequests++;
        res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error');
      });
    },
    { tls: failingCert },
  );
  cleanup.add(() => failingServer.close());

  const receiverUrl = `${receiverServer.origin}/webhook`;
  const failingUrl = `${failingServer.origin}/webhook`;
  for (const line of table(
    ['server', 'URL', 'what it does'],
    [
      ['backend', api.origin, 'POST /collect (tracking), /api/webhooks (bearer tokens)'],
      ['receiver', receiverUrl, 'checks signatures, answers 200 at once, skips duplicate delivery ids'],
      ['failing', failingUrl, 'answers every request with 500'],
    ],
  )) {
    out.line(`   ${line}`);
  }
  out.line(
    dim(
      `   A proxy in front of the receiver answers 503 to the first attempt of about 1 delivery in ${FLAKY_ONE_IN}, so retries that succeed show up too.`,
    ),
  );

  // ---------------------------------------------------------------------------------------------------
  out.line();
  out.line(bold("2. Register webhooks through the HTTP API, as in the spec's curl examples"));
  const agent = new Agent({ connect: { ca: ca.caCert } });
  cleanup.add(() => agent.close());
  const http = ofetch.create({ baseURL: api.origin, dispatcher: agent, retry: 0, timeout: 10_000 });
  const asAlice = { Authorization: `Bearer ${DEV_TOKENS.alice}` };

  const register = async (body: Record<string, unknown>): Promise<WebhookWithSecret> => {
    out.line(`   POST /api/webhooks  ${dim(JSON.stringify(body))}`);
    const response = await http.raw<{ webhook: WebhookWithSecret }>('/api/webhooks', {
      method: 'POST',
      headers: asAlice,
      body,
      ignoreResponseError: true,
    });
    const webhook = response._data?.webhook;
    if (response.status !== 201 || !webhook?.secret?.startsWith('whsec_')) {
      throw new Unexpected(
        `POST /api/webhooks answered ${response.status} ${JSON.stringify(response._data)}`,
      );
    }
    out.line(
      `   → ${response.status} ${response.statusText}  ${webhook.id}, secret ${webhook.secret.slice(0, 12)}… ` +
        dim('(shown in this answer only)'),
    );
    secrets.set(webhook.id, webhook.secret);
    return webhook;
  };
  const good = await register({
    siteId: SITE,
    url: receiverUrl,
    events: ['pageview', 'event', 'goal', 'alert'],
    description: 'Production webhook for analytics events',
  });
  const bad = await register({
    siteId: SITE,
    url: failingUrl,
    events: ['goal'],
    description: 'Staging endpoint that is down',
  });

  out.line(`   GET /api/webhooks?siteId=${SITE}`);
  const listed = await http.raw<{ webhooks: Webhook[] }>('/api/webhooks', {
    query: { siteId: SITE },
    headers: asAlice,
    ignoreResponseError: true,
  });
  const webhooks = listed._data?.webhooks ?? [];
  const secretShown = webhooks.some((webhook) => 'secret' in webhook);
  out.line(
    `   → ${listed.status} ${listed.statusText}  ${webhooks.length} webhooks: ` +
      webhooks.map((w) => `${w.id} [${w.events.join(', ')}]`).join(', '),
  );
  out.line(
    `     ${secretShown ? out.fail : out.ok} no "secret" field in the list (it is shown once, at creation)`,
  );
  if (listed.status !== 200 || webhooks.length !== 2) problems.push(`the list answered ${listed.status}`);
  if (secretShown) problems.push('GET /api/webhooks showed a secret');

  const forbidden = await http.raw('/api/webhooks', {
    query: { siteId: SITE },
    headers: { Authorization: `Bearer ${DEV_TOKENS.bob}` },
    ignoreResponseError: true,
  });
  out.line(`   GET /api/webhooks?siteId=${SITE} as Bob, who does not own the site`);
  out.line(`   → ${forbidden.status} ${JSON.stringify(forbidden._data)}`);
  if (forbidden.status !== 403) problems.push(`Bob listing Alice's site got ${forbidden.status}, not 403`);

  // ---------------------------------------------------------------------------------------------------
  out.line();
  const hits = trafficBurst(SITE, MIX);
  out.line(
    bold(
      `3. Send ${hits.length} tracked events to POST /collect (${MIX.pageviews} pageviews, ${MIX.events} custom events, ${MIX.goals} goals)`,
    ),
  );
  out.line(
    dim(
      `   The receiver's webhook takes all four event types; the failing one only goals. Traffic Spike alert above ${SPIKE_THRESHOLD} pageviews a minute.`,
    ),
  );

  const stats = { [good.id]: counters(), [bad.id]: counters() } as Record<string, EndpointCounters>;
  const receiverStats = stats[good.id]!;
  const failingStats = stats[bad.id]!;
  let followed: string | undefined;
  let disabledReason: string | undefined;
  const { dispatcher } = backend;
  dispatcher.on('attempt:start', (info) => {
    const s = stats[info.webhookId];
    if (!s) return;
    s.attempts++;
    if (info.attempt > 1) s.retries++;
    s.inFlight.add(info.deliveryId);
  });
  const finished = (info: AttemptInfo) => {
    const s = stats[info.webhookId];
    if (!s) return;
    s.inFlight.delete(info.deliveryId);
    if (info.ok) s.succeeded++;
    else if (info.nextAttemptAt === null) s.failed++;
    if (info.webhookId === bad.id && !info.ok) {
      followed ??= info.deliveryId;
      if (info.deliveryId === followed) {
        const next =
          info.nextAttemptAt === null
            ? 'no attempts left: delivery failed'
            : `next attempt in ${Math.max(0, Math.round((info.nextAttemptAt.getTime() - Date.now()) / 10) * 10)} ms`;
        out.line(
          `   failing endpoint, ${info.deliveryId}: attempt ${info.attempt} → ${info.statusCode}, ${next}`,
        );
      }
    }
  };
  dispatcher.on('attempt:success', finished);
  dispatcher.on('attempt:failure', finished);
  dispatcher.on('webhook:disabled', (info) => {
    if (info.webhookId !== bad.id) return;
    disabledReason = info.reason;
    out.line(`   ${out.yellow('webhook disabled')}: ${info.webhookId} (${info.reason})`);
  });

  let sent = 0;
  let accepted = 0;
  const expectedGood = () => accepted + alerts.length;
  const sendStarted = performance.now();
  out.startProgress(
    () =>
      `   collect ${accepted}/${hits.length} | ` +
      `receiver: ${receiverStats.succeeded}/${expectedGood()} delivered, ${receiverStats.retries} retried | ` +
      `failing: ${failingStats.attempts} attempts, ${failingStats.failed} failed${disabledReason ? ', disabled' : ''}`,
  );

  let next = 0;
  const sender = async () => {
    while (next < hits.length) {
      const hit = hits[next++]!;
      sent++;
      const response = await http.raw('/collect', { method: 'POST', body: hit, ignoreResponseError: true });
      if (response.status === 202) accepted++;
      else problems.push(`POST /collect answered ${response.status} ${JSON.stringify(response._data)}`);
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, sender));
  const sendMs = performance.now() - sendStarted;

  const settled = await waitFor(
    () =>
      receiverStats.succeeded >= expectedGood() &&
      receiverStats.inFlight.size === 0 &&
      disabledReason !== undefined &&
      failingStats.inFlight.size === 0,
    DELIVERY_TIMEOUT_MS,
  );
  out.stopProgress();
  const deliverMs = performance.now() - sendStarted;
  out.line(
    dim(
      `   ${sent} requests in ${(sendMs / 1000).toFixed(1)} s; every delivery settled ${(deliverMs / 1000).toFixed(1)} s after the first request`,
    ),
  );
  if (!settled) {
    problems.push(
      `deliveries missing after ${DELIVERY_TIMEOUT_MS / 1000} s: receiver ${receiverStats.succeeded}/${expectedGood()}, ` +
        `failing endpoint ${disabledReason ? 'disabled' : 'not disabled'}`,
    );
  }

  if (firstDelivery) {
    const { headers, rawBody } = firstDelivery;
    out.line('   The first delivery the receiver verified:');
    for (const name of ['x-zta-event', 'x-zta-webhook-id', 'x-zta-delivery-id', 'x-zta-signature']) {
      out.line(dim(`     ${name}: ${String(headers[name])}`));
    }
    out.line(dim(`     ${rawBody.toString('utf8')}`));
  }

  // ---------------------------------------------------------------------------------------------------
  out.line();
  const logPath = `/api/webhooks/deliveries?webhookId=${bad.id}&status=failed&limit=1`;
  out.line(bold(`4. The activity log of a failed delivery: GET ${logPath}`));
  const log = await http.raw<{ deliveries: Delivery[] }>(logPath, {
    headers: asAlice,
    ignoreResponseError: true,
  });
  const failed = log._data?.deliveries?.[0];
  if (log.status !== 200 || !failed) {
    problems.push(`the activity log answered ${log.status} without a failed delivery`);
  } else {
    out.line(`   ${failed.id}  ${failed.event}  status ${failed.status}, last error ${failed.lastError}`);
    const first = Date.parse(failed.attempts[0]?.startedAt ?? failed.createdAt);
    for (const line of table(
      ['attempt', 'started', 'after first', 'status', 'took', 'response'],
      failed.attempts.map((a) => [
        a.attempt,
        a.startedAt.slice(11, 23),
        `+${Date.parse(a.startedAt) - first} ms`,
        a.statusCode ?? (a.errorCode || '-'),
        `${a.durationMs} ms`,
        JSON.stringify(a.responseSnippet ?? ''),
      ]),
    )) {
      out.line(`     ${line}`);
    }
    if (failed.attempts.length !== RETRY_DELAYS_MS.length + 1) {
      problems.push(
        `the failed delivery has ${failed.attempts.length} attempts, not ${RETRY_DELAYS_MS.length + 1}`,
      );
    }
  }

  // ---------------------------------------------------------------------------------------------------
  out.line();
  out.line(bold('5. A forged delivery: signed with a wrong secret, sent straight to the receiver'));
  const body = JSON.stringify({ event: 'goal', timestamp: new Date().toISOString(), data: { siteId: SITE } });
  const forged = await ofetch.raw(receiverUrl, {
    method: 'POST',
    dispatcher: agent,
    body,
    headers: {
      'content-type': 'application/json',
      'x-zta-signature': signPayload(body, 'whsec_not-the-real-secret'),
      'x-zta-event': 'goal',
      'x-zta-webhook-id': good.id,
      'x-zta-delivery-id': 'dlv_forged',
    },
    retry: 0,
    ignoreResponseError: true,
  });
  out.line(`   → ${forged.status} ${JSON.stringify(forged._data)}`);
  if (forged.status !== 401) problems.push(`the forged delivery was answered ${forged.status}, not 401`);

  // ---------------------------------------------------------------------------------------------------
  out.line();
  out.line(
    bold('Summary') +
      dim(' (from the activity log, GET /api/webhooks/deliveries, checked against the live counts)'),
  );
  await receiver.idle();
  const goodLog = await settledLog(good.id, (deliveries) =>
    deliveries.every((d) => d.status === 'succeeded' || d.status === 'failed'),
  );
  const badLog = await settledLog(bad.id, (deliveries) => deliveries.every((d) => d.status !== 'delivering'));
  const row = (name: string, webhook: WebhookWithSecret, deliveries: Delivery[], state: string) => {
    const count = (status: string) => deliveries.filter((d) => d.status === status).length;
    const retried = deliveries.reduce((sum, d) => sum + Math.max(0, d.attempts.length - 1), 0);
    return [
      name,
      webhook.id,
      deliveries.length,
      count('succeeded'),
      retried,
      count('failed'),
      count('discarded'),
      count('pending'),
      state,
    ];
  };
  const listedAfter = await http<{ webhooks: Webhook[] }>('/api/webhooks', {
    query: { siteId: SITE },
    headers: asAlice,
  });
  const stateOf = (id: string) => {
    const webhook = listedAfter.webhooks.find((w) => w.id === id);
    return webhook ? (webhook.active ? 'active' : 'disabled') : 'missing';
  };
  const rows = [
    row('receiver', good, goodLog, stateOf(good.id)),
    row('failing', bad, badLog, stateOf(bad.id)),
  ];
  for (const line of table(
    [
      'endpoint',
      'webhook',
      'sent',
      'delivered',
      'retried',
      'failed',
      'discarded',
      'pending',
      'webhook state',
    ],
    rows,
  )) {
    out.line(`   ${line}`);
  }
  out.line(dim('   sent: deliveries created; retried: attempts after the first one of a delivery;'));
  out.line(dim('   discarded: waiting for their first attempt or a retry when the webhook was disabled.'));
  if (Number(rows[1]![7]) > 0) {
    out.line(
      dim('   pending: being attempted as the webhook was disabled; a retry they would need is discarded.'),
    );
  }
  const disabledCount = listedAfter.webhooks.filter((w) => !w.active).length;
  out.line(`   webhooks disabled: ${disabledCount} of ${listedAfter.webhooks.length}`);
  const r = receiver.stats;
  out.line(
    `   signature checks at the receiver: ${r.signaturesPassed} passed, ${r.signaturesFailed} failed (the forged request); ` +
      `${r.processed} deliveries processed, ${r.duplicates} duplicates skipped`,
  );
  out.line(
    `   flaky proxy: ${flaky.rejected} first attempts answered 503; failing endpoint: ${failingRequests} requests answered 500`,
  );

  // Checks: the demo doubles as a smoke test.
  const delivered = goodLog.filter((d) => d.status === 'succeeded').length;
  const badFailed = badLog.filter((d) => d.status === 'failed').length;
  const badDelivered = badLog.filter((d) => d.status === 'succeeded').length;
  const goodDisabled = stateOf(good.id) !== 'active';
  const attemptsIn = (deliveries: Delivery[]) => deliveries.reduce((sum, d) => sum + d.attempts.length, 0);
  const goodAttempts = attemptsIn(goodLog);
  const badAttempts = attemptsIn(badLog);
  const checks: [boolean, string][] = [
    [accepted === hits.length, `POST /collect accepted all ${hits.length} events (202)`],
    [alerts.length === 1, `the Traffic Spike alert fired once (${alerts.length})`],
    [
      goodLog.length === expectedGood() && delivered === goodLog.length && !goodDisabled,
      `every delivery to the receiver was delivered: ${delivered}/${goodLog.length} (expected ${expectedGood()})`,
    ],
    [
      receiverStats.succeeded === delivered && r.processed === delivered && r.duplicates === 0,
      `the receiver processed each of them once (${r.processed}), as the dispatcher's events say (${receiverStats.succeeded})`,
    ],
    [
      flaky.rejected === 0 || rows[0]![4] === flaky.rejected,
      `each 503 from the flaky proxy was retried and then delivered (${flaky.rejected})`,
    ],
    [
      stateOf(bad.id) === 'disabled' && disabledReason !== undefined && disabledCount === 1,
      `the failing endpoint was retried and then disabled (${disabledReason ?? 'not disabled'})`,
    ],
    [
      badDelivered === 0 && badFailed >= MAX_CONSECUTIVE_FAILURES && badFailed === failingStats.failed,
      `${badFailed} deliveries to it failed after ${RETRY_DELAYS_MS.length + 1} attempts each, none delivered`,
    ],
    [
      goodAttempts === receiverStats.attempts &&
        goodAttempts === r.signaturesPassed + flaky.rejected &&
        badAttempts === failingStats.attempts &&
        badAttempts === failingRequests,
      `the activity log holds every attempt the endpoints saw (${goodAttempts} + ${badAttempts})`,
    ],
    [
      r.signaturesFailed === 1 && r.signaturesPassed === delivered,
      `signature checks: every real delivery passed (${r.signaturesPassed}), only the forged one failed (${r.signaturesFailed})`,
    ],
  ];
  out.line();
  for (const [passed, text] of checks) {
    out.line(`   ${passed ? out.ok : out.fail} ${text}`);
    if (!passed) problems.push(text);
  }
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
  out.line();
  if (problems.length === 0) {
    out.line(out.green(`Demo finished in ${seconds} s: everything worked.`));
  } else {
    out.line(out.red(`Demo finished in ${seconds} s with ${problems.length} problem(s):`));
    for (const problem of problems) out.line(out.red(`   - ${problem}`));
  }
  return problems;

  /** Every delivery of a webhook from the API, paging with `nextCursor`, once `done` holds (or after 5 s). */
  async function settledLog(
    webhookId: string,
    done: (deliveries: Delivery[]) => boolean,
  ): Promise<Delivery[]> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const deliveries: Delivery[] = [];
      let cursor: string | null = null;
      do {
        const page: { deliveries: Delivery[]; nextCursor: string | null } = await http(
          '/api/webhooks/deliveries',
          {
            query: { webhookId, limit: 100, ...(cursor && { cursor }) },
            headers: asAlice,
          },
        );
        deliveries.push(...page.deliveries);
        cursor = page.nextCursor;
      } while (cursor);
      if (done(deliveries) || Date.now() > deadline) return deliveries;
      await sleep(50);
    }
  }
}

/**
 * Express middleware standing in for a flaky load balancer: answers 503 to the first attempt of a
 * deterministic ~1/n of deliveries (chosen by a hash of the delivery id), then lets the retry through.
 */
function flakyProxy(oneIn: number) {
  const failedOnce = new Set<string>();
  const state = {
    rejected: 0,
    middleware: (req: express.Request, res: express.Response, next: express.NextFunction) => {
      const id = req.get('x-zta-delivery-id');
      if (
        id &&
        !failedOnce.has(id) &&
        createHash('sha256').update(id).digest().readUInt32BE(0) % oneIn === 0
      ) {
        failedOnce.add(id);
        state.rejected++;
        req.resume();
        res.status(503).type('text/plain').send('Service Unavailable');
        return;
      }
      next();
    },
  };
  return state;
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
