/**
 * An analytics backend that embeds @zta/webhooks: the webhook registry (`WebhookManager`), delivery
 * (`Dispatcher`), the spec's `/api/webhooks` endpoints (`webhooksRouter`) behind bearer tokens, and a
 * `POST /collect` endpoint where tracked pageviews, custom events and goals become signed deliveries.
 *
 * Imports point at this repository's sources so the example runs without a build; in your app they are
 * the package's entry points, named in the comment on each import (see examples/README.md).
 */
import { createHash } from 'node:crypto';
import express, { type ErrorRequestHandler } from 'express';
import { webhooksRouter } from '../../src/express.js'; // @zta/webhooks/express
import {
  type AlertData,
  Dispatcher,
  type DispatcherOptions,
  type Logger,
  type Store,
  WebhookError,
  WebhookManager,
} from '../../src/index.js'; // @zta/webhooks
import { memoryStore } from '../../src/memory.js'; // @zta/webhooks/memory
import { type RunningServer, type ServeOptions, serve } from '../shared/servers.js';
import { parseHit } from './collect.js';
import { type TrafficSpikeOptions, TrafficSpikeRule } from './traffic-spike.js';

/** Who a bearer token belongs to, and the sites they own. */
export interface User {
  id: string;
  name: string;
  sites: string[];
}

/** Tokens for local use only: `main.ts` replaces them with ALICE_TOKEN / BOB_TOKEN when set. */
export const DEV_TOKENS = { alice: 'dev-token-alice', bob: 'dev-token-bob' } as const;

/** The in-file user table: Alice owns the spec's `site_abc123` and a blog; Bob owns one site. */
export function devUsers(tokens: { alice?: string; bob?: string } = {}): Record<string, User> {
  return {
    [tokens.alice || DEV_TOKENS.alice]: {
      id: 'user_alice',
      name: 'Alice',
      sites: ['site_abc123', 'site_blog'],
    },
    [tokens.bob || DEV_TOKENS.bob]: { id: 'user_bob', name: 'Bob', sites: ['site_bob'] },
  };
}

export interface BackendOptions
  extends Pick<DispatcherOptions, 'tls' | 'retry' | 'maxConsecutiveFailures' | 'timeoutMs' | 'logger'> {
  /** Default: `memoryStore()`. The caller owns it (a Postgres store is closed by whoever opened it). */
  store?: Store;
  /** Bearer token → user. Default `devUsers()`. */
  users?: Readonly<Record<string, User>>;
  /** Lets webhook URLs (and deliveries) reach loopback and private addresses: local demos and tests only. */
  allowPrivateNetworks?: boolean;
  /** The "Traffic Spike" alert rule; default `pageviews > 1000` per minute. `false` turns it off. */
  trafficSpike?: TrafficSpikeOptions | false;
  /** Told about each alert the backend emits (the demo prints it). */
  onAlert?: (alert: AlertData) => void;
}

export interface Backend {
  app: express.Express;
  manager: WebhookManager<User>;
  dispatcher: Dispatcher;
  store: Store;
  /** Starts the dispatcher, then serves `app` (HTTPS when `tls` is given). */
  listen(options?: ServeOptions): Promise<RunningServer>;
  /** Closes the servers `listen` opened, then stops the dispatcher (in-flight attempts finish). */
  close(): Promise<void>;
}

export function createBackend(options: BackendOptions = {}): Backend {
  const store = options.store ?? memoryStore();
  const users = options.users ?? devUsers();
  const logger: Logger = options.logger ?? {};
  const allowPrivateNetworks = options.allowPrivateNetworks ?? false;

  // Tokens are looked up by their SHA-256, so lookup timing says nothing about the tokens themselves.
  const usersByDigest = new Map(Object.entries(users).map(([token, user]) => [digest(token), user]));
  const knownSites = new Set(Object.values(users).flatMap((user) => user.sites));

  // Without `encryption`, webhook secrets are stored as they are (in plain text, on Postgres too); in
  // production pass `encryption` here and to the Dispatcher (README, "Encrypting secrets at rest").
  const manager = new WebhookManager<User>({
    store,
    authorize: (user, siteId) => user.sites.includes(siteId),
    allowPrivateNetworks,
  });
  const dispatcher = new Dispatcher({
    store,
    allowPrivateNetworks,
    ...(options.tls && { tls: options.tls }),
    ...(options.retry && { retry: options.retry }),
    ...(options.maxConsecutiveFailures !== undefined && {
      maxConsecutiveFailures: options.maxConsecutiveFailures,
    }),
    ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
    logger,
  });
  const spike =
    options.trafficSpike === false ? null : new TrafficSpikeRule(options.trafficSpike ?? { threshold: 1000 });

  const app = express();
  app.disable('x-powered-by');

  // GET/POST/DELETE /api/webhooks (the spec) and the extensions. Mounted before any body parser: it
  // reads its own bodies, with its own limits and errors.
  app.use(
    webhooksRouter<User>({
      manager,
      authenticate: (request) => {
        const token = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(request.headers.get('authorization') ?? '')?.[1];
        return token === undefined ? null : (usersByDigest.get(digest(token)) ?? null);
      },
      logger,
    }),
  );

  // What a tracking script on the site calls. Public, as collectors are; the site must exist. An async
  // handler: Express 5 passes its rejection to the error handler; on Express 4 wrap it (or catch inside).
  app.post('/collect', express.json({ limit: '16kb' }), async (req, res) => {
    if (!req.is('application/json')) {
      res.status(415).json({ error: 'Content-Type must be application/json' });
      return;
    }
    const hit = parseHit(req.body);
    if (!hit.ok) {
      res.status(400).json({ error: hit.error });
      return;
    }
    if (!knownSites.has(hit.siteId)) {
      res.status(404).json({ error: 'Unknown site' });
      return;
    }
    // Resolves once the deliveries are recorded in the store: a 202 means they will be sent.
    await dispatcher.emit({ siteId: hit.siteId, event: hit.event, data: { ...hit.data } });
    if (hit.event === 'pageview') {
      const alert = spike?.pageview(hit.siteId);
      if (alert) {
        await dispatcher.emit({ siteId: hit.siteId, event: 'alert', data: { ...alert } });
        options.onAlert?.({ siteId: hit.siteId, ...alert });
      }
    }
    res.status(202).json({ accepted: true });
  });

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });

  app.use((_req, res) => {
    res.status(404).json({ error: 'Not found' });
  });

  // express.json()'s errors (bad JSON, too large) and anything unexpected, as JSON like the API's.
  app.use(((error, req, res, _next) => {
    const status = typeof error?.status === 'number' ? error.status : 500;
    if (WebhookError.is(error) && error.status < 500) {
      res.status(error.status).json({ error: error.message });
    } else if (error?.type === 'entity.parse.failed') {
      res.status(400).json({ error: 'Malformed JSON body' });
    } else if (error?.type === 'entity.too.large') {
      res.status(413).json({ error: 'Request body is too large' });
    } else if (status >= 400 && status < 500) {
      res.status(status).json({ error: 'Bad request' });
    } else {
      logger.error?.('backend: unexpected error', {
        method: req.method,
        path: req.path,
        error: error instanceof Error ? error.message : String(error),
      });
      res.status(500).json({ error: 'Internal server error' });
    }
  }) as ErrorRequestHandler);

  const servers: RunningServer[] = [];
  return {
    app,
    manager,
    dispatcher,
    store,
    async listen(serveOptions = {}) {
      await dispatcher.start();
      const running = await serve(app, serveOptions);
      servers.push(running);
      return running;
    },
    async close() {
      await Promise.all(servers.splice(0).map((server) => server.close()));
      await dispatcher.stop();
    },
  };
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
