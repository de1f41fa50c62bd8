/**
 * A webhook receiver done the way the spec's best practices ask: every signature checked
 * (`verifyWebhookMiddleware`), 200 returned at once, processing afterwards, and idempotent by
 * `X-ZTA-Delivery-ID` with a bounded memory (the same id on every retry of a delivery).
 *
 * Imports point at this repository's sources; in your app they are the entry points named in the
 * comments (see examples/README.md).
 */
import { createHash } from 'node:crypto';
import express, { type Request } from 'express';
import { verifyWebhookMiddleware, type WebhookSecretSource } from '../../src/express.js'; // @zta/webhooks/express
import type { WebhookPayload } from '../../src/index.js'; // @zta/webhooks
import type { WebhookSecret } from '../../src/verify.js'; // @zta/webhooks/verify
import { RecentIds, type RecentIdsOptions } from '../shared/recent-ids.js';
import { type RunningServer, type ServeOptions, serve } from '../shared/servers.js';

/** One verified delivery, handed to `process`. */
export interface ReceivedDelivery {
  payload: WebhookPayload;
  /** `X-ZTA-Delivery-ID`: the idempotency key. */
  deliveryId: string;
  /** `X-ZTA-Webhook-ID`. */
  webhookId: string;
  /** The signed bytes, exactly as received. */
  rawBody: Buffer;
  headers: Request['headers'];
}

export interface ReceiverOptions {
  /** The webhook secret (or, during a rotation, several), or a lookup by `X-ZTA-Webhook-ID`. */
  secret?: WebhookSecret;
  getSecret?: (
    webhookId: string,
  ) => WebhookSecret | null | undefined | Promise<WebhookSecret | null | undefined>;
  /** Your work, run after the 200 has been sent. A throw is counted and reported to `onError`. */
  process: (delivery: ReceivedDelivery) => void | Promise<void>;
  /** Path of the endpoint; default `/webhook`. */
  path?: string;
  /** The idempotency memory; default 1 hour, at most 100 000 ids. */
  dedupe?: RecentIdsOptions;
  onError?: (error: unknown, delivery: ReceivedDelivery) => void;
}

export interface ReceiverStats {
  /** Requests whose signature verified. */
  signaturesPassed: number;
  /** Requests answered 401 Invalid signature. */
  signaturesFailed: number;
  /**
   * Verified deliveries whose id was already seen (a retry after a lost response, a captured request sent
   * again as it was): answered 200, not processed. `X-ZTA-Delivery-ID` is not signed, so a replay under a
   * new id gets through; the Standard Webhooks scheme signs the id and a timestamp (README, "Replay
   * protection").
   */
  duplicates: number;
  processed: number;
  processingFailed: number;
  /** Being processed now. */
  inFlight: number;
}

export interface Receiver {
  app: express.Express;
  readonly stats: Readonly<ReceiverStats>;
  /** Resolves when nothing is being processed. */
  idle(): Promise<void>;
  listen(options?: ServeOptions): Promise<RunningServer>;
  /** Closes the servers `listen` opened, then waits for processing to finish. */
  close(): Promise<void>;
}

export function createReceiver(options: ReceiverOptions): Receiver {
  const source = secretSource(options);
  const path = options.path ?? '/webhook';
  const seen = new RecentIds(options.dedupe);
  const stats: ReceiverStats = {
    signaturesPassed: 0,
    signaturesFailed: 0,
    duplicates: 0,
    processed: 0,
    processingFailed: 0,
    inFlight: 0,
  };
  const running = new Set<Promise<void>>();

  const app = express();
  app.disable('x-powered-by');
  app.post(
    path,
    (_req, res, next) => {
      // verifyWebhookMiddleware answers a bad signature itself; count those answers.
      res.on('finish', () => {
        if (res.statusCode === 401) stats.signaturesFailed++;
      });
      next();
    },
    // Reads the raw body itself (mount no JSON parser before it), checks X-ZTA-Signature in constant time.
    verifyWebhookMiddleware(source),
    (req, res) => {
      stats.signaturesPassed++;
      const delivery: ReceivedDelivery = {
        payload: req.body as WebhookPayload,
        deliveryId: req.get('x-zta-delivery-id') ?? '',
        webhookId: req.get('x-zta-webhook-id') ?? '',
        rawBody: req.rawBody ?? Buffer.alloc(0),
        headers: req.headers,
      };
      // The spec's `${event}-${timestamp}` collides for two events in the same millisecond; the delivery
      // id does not. Senders without one: the signed body is the same on every retry, so hash that.
      const key =
        delivery.deliveryId ||
        `${delivery.webhookId}:${createHash('sha256').update(delivery.rawBody).digest('base64url')}`;
      if (!seen.add(key)) {
        stats.duplicates++;
        res.status(200).type('text/plain').send('OK');
        return;
      }
      // Answer first (the sender waits at most 5 s), then process.
      res.status(200).type('text/plain').send('OK');
      const work = run(delivery, key).finally(() => running.delete(work));
      running.add(work);
    },
  );

  async function run(delivery: ReceivedDelivery, key: string): Promise<void> {
    stats.inFlight++;
    try {
      await options.process(delivery);
      stats.processed++;
    } catch (error) {
      stats.processingFailed++;
      // Forget it, so a redelivery (POST /api/webhooks/redeliver) is processed rather than skipped.
      seen.delete(key);
      options.onError?.(error, delivery);
    } finally {
      stats.inFlight--;
    }
  }

  const idle = async (): Promise<void> => {
    while (running.size > 0) await Promise.allSettled([...running]);
  };

  const servers: RunningServer[] = [];
  return {
    app,
    stats,
    idle,
    async listen(serveOptions = {}) {
      const server = await serve(app, serveOptions);
      servers.push(server);
      return server;
    },
    async close() {
      await Promise.all(servers.splice(0).map((server) => server.close()));
      await idle();
    },
  };
}

function secretSource(options: ReceiverOptions): WebhookSecretSource {
  const { secret, getSecret } = options;
  if (getSecret) return { getSecret: (req) => getSecret(req.get('x-zta-webhook-id') ?? '') };
  if (secret !== undefined) return { secret };
  throw new TypeError('createReceiver: pass secret or getSecret');
}
