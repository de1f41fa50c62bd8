import { EventEmitter } from 'node:events';
import type {
  AttemptOutcome,
  ClaimedDelivery,
  CompletionEffect,
  Scheduler,
  Store,
  Transport,
  TransportResult,
  WriteOptions,
} from '../adapters/types.js';
import { type UndiciTransportOptions, undiciTransport } from '../transport/undici-transport.js';
import { signPayload } from '../verify/sign.js';
import { signStandardPayload } from '../verify/standard.js';
import { USER_AGENT } from '../version.js';
import { CompletionWriter, MAX_WRITE_BATCH } from './completion-writer.js';
import type { EventType } from './events.js';
import { newId } from './ids.js';
import { type Logger, safeLogger } from './logger.js';
import { type EmitInput, prepareEvent } from './payload.js';
import {
  type AttemptErrorCode,
  type AttemptRecord,
  type DeliveryRecord,
  SIGNATURE_SCHEMES,
  type SignatureScheme,
  type WebhookRecord,
} from './records.js';
import { redactSecrets } from './redact.js';
import { judgeAttempt, type RetryPolicy, SPEC_RETRY_POLICY, validateRetryPolicy } from './retry.js';
import { type SecretCipher, type SecretEncryption, secretCipher } from './secret-cipher.js';
import { InFlightSlots } from './slots.js';
import { timerScheduler } from './timer-scheduler.js';
import { previousSecretActive } from './views.js';

export const DEFAULT_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_CONSECUTIVE_FAILURES = 10;
export const DEFAULT_CONCURRENCY = 64;
export const DEFAULT_PER_WEBHOOK_CONCURRENCY = 8;
/** How long finished deliveries are kept by default (`retention.maxAgeMs`): 30 days. */
export const DEFAULT_RETENTION_MAX_AGE_MS = 30 * 24 * 60 * 60 * 1000;
/** How often a started dispatcher prunes by default (`retention.intervalMs`): hourly. */
export const DEFAULT_RETENTION_INTERVAL_MS = 60 * 60 * 1000;

export interface RetentionOptions {
  /** Finished deliveries created longer ago than this are deleted, with their attempts. Default 30 days. */
  maxAgeMs?: number;
  /** Time between prunes; the first runs when the dispatcher starts. Default 1 hour. */
  intervalMs?: number;
}

export type { Logger };

export interface AttemptStartInfo {
  deliveryId: string;
  webhookId: string;
  siteId: string;
  event: EventType;
  attempt: number;
}

export interface AttemptInfo extends AttemptStartInfo {
  ok: boolean;
  statusCode: number | null;
  errorCode: AttemptErrorCode | null;
  durationMs: number;
  /** When the next attempt is due, if one is scheduled. */
  nextAttemptAt: Date | null;
}

export interface WebhookDisabledInfo {
  webhookId: string;
  siteId: string;
  reason: string;
}

export interface DispatcherEvents {
  'attempt:start': [AttemptStartInfo];
  'attempt:success': [AttemptInfo];
  'attempt:failure': [AttemptInfo];
  /** The last attempt failed: the delivery is `failed`. */
  'delivery:failed': [AttemptInfo];
  'webhook:disabled': [WebhookDisabledInfo];
}

export interface DispatcherOptions {
  store: Store;
  /** Default: a single in-process timer set for exactly the next due time. */
  scheduler?: Scheduler;
  /** Default: `undiciTransport({ tls, allowPrivateNetworks })`. */
  transport?: Transport;
  /** Extra trusted CA certificates for the default transport. Certificates are always verified. */
  tls?: UndiciTransportOptions['tls'];
  /** Allow deliveries to loopback, private and reserved addresses. For tests and local demos only. */
  allowPrivateNetworks?: boolean;
  /** For the whole attempt: connect, headers and body. Default 5000. */
  timeoutMs?: number;
  /** Default: the spec's schedule (`SPEC_RETRY_POLICY`: 3 attempts, 5 s and 25 s apart). */
  retry?: Partial<RetryPolicy>;
  /** Consecutive failed deliveries that disable a webhook. Default 10. */
  maxConsecutiveFailures?: number;
  /** Attempts in flight at once, across all webhooks. Default 64. */
  concurrency?: number;
  /** Attempts in flight at once to any one webhook. Default 8. */
  perWebhookConcurrency?: number;
  /**
   * Attempts in flight at once to the webhooks of any one site (tenant), so that one site's slow receivers
   * cannot hold every slot while other sites' deliveries wait. Default: a quarter of `concurrency`, at least
   * `perWebhookConcurrency` (16 with the defaults). A single-tenant host can set it to `concurrency`.
   */
  perSiteConcurrency?: number;
  /**
   * Attempts in flight at once to any one origin (scheme, host and port), across webhooks and sites, so
   * that a host many sites' webhooks share cannot hold every slot when it is slow. The default transport
   * opens 16 connections per origin; attempts beyond those wait for one (their timeout starts when they
   * are sent). Default: half of `concurrency`, at least `perWebhookConcurrency` (32 with the defaults).
   */
  perOriginConcurrency?: number;
  /** How long a claimed delivery stays reserved for this process. Default: long enough to drain a full batch. */
  leaseMs?: number;
  /** Safety-net poll for work queued where the store cannot notify. Default 1000 ms without `store.subscribe`, 30 s with. */
  pollIntervalMs?: number;
  /**
   * While started, prune finished deliveries (and their attempts) older than `maxAgeMs` every
   * `intervalMs`, through `store.pruneDeliveries` (stores without it are left alone). Runs never overlap,
   * and a failed run is logged and tried again at the next interval. `false`: never prune. Default
   * `{ maxAgeMs: 30 days, intervalMs: 1 hour }`.
   */
  retention?: RetentionOptions | false;
  onWebhookDisabled?: (info: WebhookDisabledInfo) => void;
  logger?: Logger;
  userAgent?: string;
  /**
   * How deliveries are signed, for webhooks that do not choose (their `signatureSchemes` is null). `zta`:
   * `X-ZTA-Signature`, as in the spec; `standard`: the Standard Webhooks headers `webhook-id`,
   * `webhook-timestamp` and `webhook-signature`. Default `['zta']`. The `X-ZTA-Event`, `-Webhook-ID`,
   * `-Delivery-ID` and `-Timestamp` headers are sent whatever the schemes.
   */
  signatureSchemes?: readonly SignatureScheme[];
  /**
   * The keys secrets were encrypted with at rest (the manager's `encryption`; give both the same keys).
   * Claimed webhooks' secrets are decrypted right before signing. A delivery whose secret cannot be
   * decrypted (unknown key id, wrong key, tampered row, or no `encryption` here for an encrypted secret) is
   * not sent and no attempt is recorded: an error is logged (without secret material) and the delivery
   * stays claimed until its lease expires, then it is tried again, by this or another dispatcher.
   */
  encryption?: SecretEncryption;
}

/**
 * Turns events into signed deliveries: `emit` records one delivery per subscribed webhook; the engine
 * (started with `start`, or driven by `runDue`) claims due deliveries, sends them, and records every attempt.
 */
export class Dispatcher {
  readonly #store: Store;
  readonly #scheduler: Scheduler;
  readonly #transportOption: Transport | undefined;
  readonly #transportOptions: Pick<DispatcherOptions, 'tls' | 'allowPrivateNetworks'>;
  #transport: Transport | undefined;
  readonly #timeoutMs: number;
  readonly #retry: RetryPolicy;
  readonly #maxConsecutiveFailures: number;
  readonly #concurrency: number;
  readonly #perWebhook: number;
  readonly #leaseMs: number;
  readonly #pollIntervalMs: number;
  readonly #logger: Logger;
  readonly #userAgent: string;
  readonly #signatureSchemes: readonly SignatureScheme[];
  readonly #cipher: SecretCipher;
  readonly #onWebhookDisabled: ((info: WebhookDisabledInfo) => void) | undefined;
  readonly #events = new EventEmitter<DispatcherEvents>();
  readonly #writer: CompletionWriter;
  readonly #retention: Required<RetentionOptions> | null;
  #pruneTimer: NodeJS.Timeout | undefined;
  #pruning: Promise<void> | null = null;

  /** Attempts running, by delivery id: the attempt, and the delivery record its outcome will name. */
  readonly #inFlight = new Map<string, { done: Promise<boolean>; delivery: DeliveryRecord }>();
  readonly #slots: InFlightSlots;
  #running = false;
  #draining = 0;
  #pumping: Promise<void> | null = null;
  #pumpAgain = false;
  /** The last `#fill` started (see there). */
  #filling: Promise<unknown> = Promise.resolve();
  #kickQueued = false;
  /** The last claim took fewer than it could: nothing more was due, apart from at-limit webhooks'. */
  #drained = false;
  /** A fill stopped because outcomes were not being written (see #fillSlots). */
  #heldBack = false;
  #unsubscribe: (() => void) | undefined;
  #poller: NodeJS.Timeout | undefined;

  constructor(options: DispatcherOptions) {
    this.#store = options.store;
    this.#scheduler = options.scheduler ?? timerScheduler();
    this.#transportOption = options.transport;
    this.#transportOptions = {
      ...(options.tls !== undefined && { tls: options.tls }),
      ...(options.allowPrivateNetworks !== undefined && {
        allowPrivateNetworks: options.allowPrivateNetworks,
      }),
    };
    this.#timeoutMs = atMostTimerMax(
      positive(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs'),
      'timeoutMs',
    );
    this.#retry = validateRetryPolicy({ ...SPEC_RETRY_POLICY, ...options.retry });
    this.#maxConsecutiveFailures = positive(
      options.maxConsecutiveFailures ?? DEFAULT_MAX_CONSECUTIVE_FAILURES,
      'maxConsecutiveFailures',
    );
    this.#concurrency = positive(options.concurrency ?? DEFAULT_CONCURRENCY, 'concurrency');
    this.#perWebhook = positive(
      options.perWebhookConcurrency ?? DEFAULT_PER_WEBHOOK_CONCURRENCY,
      'perWebhookConcurrency',
    );
    const perSite = positive(
      options.perSiteConcurrency ?? Math.max(this.#perWebhook, Math.ceil(this.#concurrency / 4)),
      'perSiteConcurrency',
    );
    const perOrigin = positive(
      options.perOriginConcurrency ?? Math.max(this.#perWebhook, Math.ceil(this.#concurrency / 2)),
      'perOriginConcurrency',
    );
    this.#slots = new InFlightSlots(this.#perWebhook, perSite, perOrigin);
    // A claimed batch for one webhook waits its turn in rounds of `perWebhook`; the lease must outlast them.
    const rounds = Math.ceil(this.#concurrency / this.#perWebhook) + 1;
    this.#leaseMs = atMostTimerMax(
      positive(options.leaseMs ?? Math.max(60_000, rounds * this.#timeoutMs), 'leaseMs'),
      'leaseMs',
    );
    // A lease that ends before its attempt can would let the delivery be claimed and sent again meanwhile.
    if (this.#leaseMs <= this.#timeoutMs) {
      throw new TypeError(
        `leaseMs (${this.#leaseMs}) must be longer than timeoutMs (${this.#timeoutMs}): an attempt must end within its lease`,
      );
    }
    this.#pollIntervalMs = positive(
      options.pollIntervalMs ?? (this.#store.subscribe ? 30_000 : 1_000),
      'pollIntervalMs',
    );
    this.#retention =
      options.retention === false
        ? null
        : {
            maxAgeMs: positive(
              options.retention?.maxAgeMs ?? DEFAULT_RETENTION_MAX_AGE_MS,
              'retention.maxAgeMs',
            ),
            intervalMs: positive(
              options.retention?.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS,
              'retention.intervalMs',
            ),
          };
    this.#logger = safeLogger(options.logger ?? {});
    this.#userAgent = options.userAgent ?? USER_AGENT;
    this.#signatureSchemes = validSchemes(options.signatureSchemes ?? ['zta']);
    this.#cipher = secretCipher(options.encryption);
    this.#onWebhookDisabled = options.onWebhookDisabled;
    this.#writer = new CompletionWriter({
      store: this.#store,
      onEffects: (effects, written) => this.#applyEffects(effects, written),
      onError: (error) =>
        this.#logger.error?.('could not record attempt outcomes; retrying', { error: message(error) }),
      highWater: Math.max(MAX_WRITE_BATCH, 4 * this.#concurrency),
      onRelief: () => {
        if (!this.#heldBack) return;
        this.#heldBack = false;
        this.#kick();
      },
      // Its webhook's deliveries were left out of claims and due times meanwhile.
      onUnstalled: () => this.#kick(),
    });
  }

  on<K extends keyof DispatcherEvents>(event: K, listener: (...args: DispatcherEvents[K]) => void): this {
    this.#events.on(event, listener as never);
    return this;
  }

  off<K extends keyof DispatcherEvents>(event: K, listener: (...args: DispatcherEvents[K]) => void): this {
    this.#events.off(event, listener as never);
    return this;
  }

  /**
   * Records one delivery per active webhook of the site that subscribes to the event, and returns their
   * ids. When it resolves, the deliveries are in the store; sending happens in the background.
   */
  async emit(input: EmitInput, options?: WriteOptions): Promise<string[]> {
    return this.emitMany([input], options);
  }

  /**
   * Like `emit` for many events, validated all before any is recorded, written in one call. With
   * `{ client }` (a SQL connection inside an open transaction), the deliveries are written in that
   * transaction: they exist only if it commits.
   */
  async emitMany(inputs: readonly EmitInput[], options?: WriteOptions): Promise<string[]> {
    const now = new Date();
    const prepared = inputs.map((input) => prepareEvent(input, now));
    // Subscribers per site and event type, looked up once per call; no map for a lone event.
    const subscribers =
      prepared.length > 1 ? new Map<string, Awaited<ReturnType<Store['findSubscribers']>>>() : undefined;
    const records: DeliveryRecord[] = [];
    for (const event of prepared) {
      const key = subscribers === undefined ? '' : `${event.siteId}\u0000${event.event}`;
      let webhooks = subscribers?.get(key);
      if (webhooks === undefined) {
        webhooks = await this.#store.findSubscribers(event.siteId, event.event, options);
        subscribers?.set(key, webhooks);
      }
      for (const webhook of webhooks) {
        records.push({
          id: newId('dlv'),
          webhookId: webhook.id,
          siteId: event.siteId,
          event: event.event,
          body: event.body,
          status: 'pending',
          attempts: 0,
          nextAttemptAt: now,
          leaseExpiresAt: null,
          lastStatusCode: null,
          lastError: null,
          createdAt: now,
          updatedAt: now,
        });
      }
    }
    if (records.length === 0) return [];
    // Without the deliveries of a webhook deleted or disabled since its lookup: their ids would name nothing.
    const returned: unknown = await this.#store.insertDeliveries(records, options);
    // A store written before insertDeliveries returned ids resolves to nothing: it recorded them all.
    const recorded = Array.isArray(returned) ? (returned as string[]) : records.map((record) => record.id);
    if (recorded.length > 0) this.#kick();
    return recorded;
  }

  /** Starts delivering in the background: due work now, future retries exactly when due. */
  async start(): Promise<void> {
    if (this.#running) return;
    // Subscribed first: a store that cannot subscribe leaves the dispatcher stopped, so start() can be retried.
    const unsubscribe = this.#store.subscribe?.(() => this.#kick());
    this.#running = true;
    this.#unsubscribe = unsubscribe;
    // Node runs an interval past its ceiling every millisecond: a huge value means "rarely", not "constantly".
    this.#poller = setInterval(() => this.#kick(), Math.min(this.#pollIntervalMs, MAX_TIMER_MS));
    this.#poller.unref();
    this.#kick();
    // A run left over from before a stop() schedules the next one itself when it ends.
    if (this.#retention !== null && this.#store.pruneDeliveries !== undefined && this.#pruning === null) {
      this.#prune();
    }
  }

  /**
   * Stops claiming work and drains: attempts in flight finish (each is bounded by `timeoutMs`) and are
   * recorded; deliveries claimed but not started go back to pending. Closes the default transport.
   */
  async stop(): Promise<void> {
    this.#running = false;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#poller);
    clearTimeout(this.#pruneTimer);
    this.#pruneTimer = undefined;
    this.#cancelWakeUp();
    await this.#pruning;
    await this.#pumping;
    await this.#settle();
    if (this.#draining === 0 && this.#transport !== undefined && this.#transportOption === undefined) {
      const transport = this.#transport;
      this.#transport = undefined;
      await transport.close();
    }
  }

  /**
   * Sends everything due now and waits until those attempts are recorded, for hosts without a long-lived
   * process (cron, serverless). Retries that fall due later are left for a later call.
   */
  async runDue(): Promise<{ attempted: number }> {
    this.#draining++;
    const launches: Promise<boolean>[] = [];
    try {
      for (;;) {
        const launched = await this.#fill();
        launches.push(...launched);
        if (launched.length === 0 && this.#inFlight.size === 0) break;
        await this.#settle();
      }
    } finally {
      this.#draining--;
    }
    // Launched but not sent (no connection to its origin in time): back in the queue for a later call.
    return { attempted: (await Promise.all(launches)).filter(Boolean).length };
  }

  /** One retention run now, then the next `intervalMs` after it ends (so runs never overlap). */
  #prune(): void {
    const retention = this.#retention!;
    const olderThan = new Date(Date.now() - retention.maxAgeMs);
    this.#pruning = Promise.resolve()
      .then(() => this.#store.pruneDeliveries!({ olderThan }))
      .then(
        (deleted) => {
          if (deleted > 0) this.#logger.info?.('pruned old deliveries', { deleted, olderThan });
        },
        (error: unknown) => this.#logger.error?.('could not prune old deliveries', { error: message(error) }),
      )
      .finally(() => {
        this.#pruning = null;
        if (!this.#running) return;
        this.#pruneTimer = setTimeout(() => this.#prune(), Math.min(retention.intervalMs, MAX_TIMER_MS));
        this.#pruneTimer.unref();
      });
  }

  /** Whether the engine may claim work: started, or inside `runDue`. */
  get #active(): boolean {
    return this.#running || this.#draining > 0;
  }

  async #settle(): Promise<void> {
    while (this.#inFlight.size > 0) {
      await Promise.allSettled([...this.#inFlight.values()].map((running) => running.done));
    }
    await this.#writer.flush();
  }

  /**
   * Asks for a pump run. Kicks from one turn of the event loop (an emit and the store's notification of
   * it, attempts finishing together) are coalesced into one run, so each does not claim again.
   */
  #kick(): void {
    if (!this.#running || this.#kickQueued) return;
    this.#kickQueued = true;
    queueMicrotask(this.#runKick);
  }

  readonly #runKick = (): void => {
    this.#kickQueued = false;
    if (!this.#running) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    // Every slot is taken: the next attempt to finish kicks again.
    if (this.#inFlight.size >= this.#concurrency) return;
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = null;
      // A kick that came after the loop's last check would otherwise be lost until the next poll.
      if (this.#pumpAgain) this.#kick();
    });
  };

  async #pump(): Promise<void> {
    do {
      this.#pumpAgain = false;
      try {
        await this.#fill();
        // Held back for the writer: it kicks when it catches up (a due time would only spin the pump).
        if (!this.#heldBack) await this.#armScheduler();
      } catch (error) {
        this.#logger.error?.('could not claim deliveries; retrying in 1 s', { error: message(error) });
        if (this.#running) this.#wakeUpAt(new Date(Date.now() + 1_000));
      }
    } while (this.#pumpAgain && this.#running);
  }

  /**
   * Claims and launches due deliveries while there are free slots; returns the launched attempts (each
   * resolves to whether it was sent once recorded). Runs one
   * at a time (the pump's and `runDue`'s, which may overlap): each counts the slots the one before filled,
   * so together they never exceed `concurrency` or `perWebhookConcurrency`.
   */
  #fill(): Promise<Promise<boolean>[]> {
    const run = this.#filling.then(() => this.#fillSlots());
    this.#filling = run.catch(() => {});
    return run;
  }

  async #fillSlots(): Promise<Promise<boolean>[]> {
    const launched: Promise<boolean>[] = [];
    for (;;) {
      const free = this.#concurrency - this.#inFlight.size;
      if (free <= 0 || !this.#active) return launched;
      // While outcomes cannot be recorded (a failing or slow store), new attempts would only add to them,
      // and their deliveries' leases would run out meanwhile (another worker then sends them again). The
      // writer kicks once it has caught up (its onRelief).
      if (this.#writer.backedUp) {
        this.#heldBack = true;
        return launched;
      }
      this.#drained = false;
      const claimed = await this.#store.claimDeliveries({
        now: new Date(),
        limit: free,
        leaseMs: this.#leaseMs,
        perWebhookLimit: this.#perWebhook,
        busyWebhooks: this.#claimLimits(),
      });
      const fresh = this.#takeOverRunning(claimed);
      if (!this.#active) {
        await this.#release(fresh);
        return launched;
      }
      const overCap: ClaimedDelivery[] = [];
      let started = 0;
      let learned = false;
      for (const item of fresh) {
        const { delivery, webhook } = item;
        const origin = originOf(webhook.url);
        if (!this.#slots.hasRoom(delivery.siteId, origin)) {
          learned = this.#slots.note(webhook.id, delivery.siteId, origin) || learned;
          overCap.push(item);
          continue;
        }
        launched.push(this.#launch(item, origin));
        started++;
      }
      // Over its site's or origin's cap: back to pending for later, or for another worker.
      if (overCap.length > 0) await this.#release(overCap);
      if (claimed.length < free) {
        this.#drained = true;
        return launched;
      }
      // Only claims left out for a site at its cap, and nothing new learned to leave out next time (a store
      // that ignores busyWebhooks): stop here rather than claim the same again; the next attempt to finish
      // kicks (the engine is not drained).
      if (started === 0 && !learned) return launched;
    }
  }

  /**
   * What a claim may take per webhook: the slots' limits, and nothing for a webhook whose outcomes the store
   * is not writing (an outcome set aside): sent again and again, its deliveries would only be resent later.
   */
  #claimLimits(): Map<string, number> {
    const limits = this.#slots.claimLimits();
    for (const webhookId of this.#writer.stalledWebhooks()) limits.set(webhookId, this.#perWebhook);
    return limits;
  }

  /**
   * The claims whose attempts are not running here. One that is was claimed again because this process
   * stalled past its lease (a blocked event loop): it is neither sent twice at once nor released (another
   * worker could take it while this attempt runs); the running attempt takes over the new lease, so its
   * outcome still applies.
   */
  #takeOverRunning(claimed: readonly ClaimedDelivery[]): ClaimedDelivery[] {
    const fresh: ClaimedDelivery[] = [];
    for (const item of claimed) {
      const running = this.#inFlight.get(item.delivery.id);
      if (running === undefined) {
        fresh.push(item);
        continue;
      }
      running.delivery.leaseExpiresAt = item.delivery.leaseExpiresAt;
      this.#logger.warn?.('claimed a delivery whose attempt is still running; it keeps the new lease', {
        deliveryId: item.delivery.id,
        webhookId: item.webhook.id,
      });
    }
    return fresh;
  }

  /**
   * Gives claims back unattempted, in their places in the queue (a webhook's deliveries stay in order), each
   * only while its lease holds (one that ran out is another worker's now).
   */
  async #release(claimed: readonly ClaimedDelivery[]): Promise<void> {
    await this.#store.releaseDeliveries(
      claimed.map((c) => c.delivery.id),
      new Date(),
      claimed.map((c) => c.delivery.leaseExpiresAt),
      claimed.map((c) => c.dueAt ?? null),
    );
  }

  async #armScheduler(): Promise<void> {
    if (!this.#running || this.#inFlight.size >= this.#concurrency) return;
    const next = await this.#store.nextDueAt({
      excludeWebhookIds: [...this.#slots.saturated(), ...this.#writer.stalledWebhooks()],
    });
    if (!this.#running) return;
    // A paused webhook's deliveries were left out of that answer: wake when the pause ends, at the latest.
    const resume = this.#slots.nextResume();
    if (resume !== null && (next === null || resume < next.getTime())) {
      this.#wakeUpAt(new Date(resume));
      return;
    }
    if (next === null) this.#cancelWakeUp();
    else this.#wakeUpAt(next);
  }

  // A custom scheduler that throws must not stop the engine: the poll still kicks every pollIntervalMs.
  #wakeUpAt(at: Date): void {
    try {
      this.#scheduler.wakeAt(at, () => this.#kick());
    } catch (error) {
      this.#logger.error?.('scheduler failed; next attempts start at the next poll', {
        error: message(error),
      });
    }
  }

  #cancelWakeUp(): void {
    try {
      this.#scheduler.cancel();
    } catch (error) {
      this.#logger.error?.('scheduler failed to cancel a wake-up', { error: message(error) });
    }
  }

  /** Starts the attempt in the background; it resolves to whether it was sent. */
  #launch(claimed: ClaimedDelivery, origin: string): Promise<boolean> {
    const { delivery, webhook } = claimed;
    this.#slots.take(webhook.id, delivery.siteId, origin);
    const finished = (): void => {
      this.#inFlight.delete(delivery.id);
      const wasFull = this.#slots.give(webhook.id, delivery.siteId, origin);
      // Nothing else was due when the store was last asked: a freed slot finds work only for a webhook or
      // site that was at its limit (its due deliveries were passed over). Other new work kicks by itself.
      if (!this.#drained || wasFull) this.#kick();
    };
    const attempt = this.#attempt(claimed, origin).then(
      (sent) => {
        finished();
        return sent;
      },
      (error: unknown) => {
        this.#logger.error?.('attempt crashed', { deliveryId: delivery.id, error: message(error) });
        finished();
        return false;
      },
    );
    this.#inFlight.set(delivery.id, { done: attempt, delivery });
    return attempt;
  }

  /** One attempt: sent, recorded and reported; false if it was not sent. */
  async #attempt(claimed: ClaimedDelivery, origin: string): Promise<boolean> {
    const { delivery, webhook: stored } = claimed;
    let webhook: WebhookRecord;
    try {
      const secret = this.#cipher.open(stored.secret);
      const previousSecret = stored.previousSecret === null ? null : this.#cipher.open(stored.previousSecret);
      webhook =
        secret === stored.secret && previousSecret === stored.previousSecret
          ? stored
          : { ...stored, secret, previousSecret };
    } catch (error) {
      // Not the receiver's fault: no attempt is recorded; the lease runs out and the delivery is tried again.
      this.#logger.error?.(
        'cannot decrypt webhook secret; delivery not sent, retried when its lease expires',
        {
          deliveryId: delivery.id,
          webhookId: stored.id,
          siteId: delivery.siteId,
          error: message(error),
        },
      );
      return false;
    }
    const number = delivery.attempts + 1;
    const startedAt = new Date();
    const info: AttemptStartInfo = {
      deliveryId: delivery.id,
      webhookId: webhook.id,
      siteId: delivery.siteId,
      event: delivery.event,
      attempt: number,
    };
    this.#notify('attempt:start', info);
    const headers = this.#headers(delivery, webhook, startedAt);
    const began = performance.now();
    let result: TransportResult;
    try {
      result = await this.#getTransport().send({
        url: webhook.url,
        headers,
        body: delivery.body,
        timeoutMs: this.#timeoutMs,
        // Waiting for a connection and then the whole timeout must still end within the lease.
        queueTimeoutMs: Math.min(this.#timeoutMs, this.#leaseMs - this.#timeoutMs),
      });
    } catch (error) {
      result = { kind: 'error', errorCode: 'network', message: message(error) };
    }
    if (result.kind === 'not_sent') {
      // Not the receiver's doing (its origin's connections were all busy): no attempt is recorded, and the
      // delivery goes back to the queue in its place. Its webhook and origin wait a moment (claimed again at
      // once, it would only find the origin as busy; a transport that answers so at once would have it
      // claimed and released in a loop).
      this.#logger.info?.('delivery not sent: no free connection to its origin in time; back in the queue', {
        ...info,
        reason: message(result.message),
      });
      this.#slots.pause(webhook.id, origin, Date.now() + NOT_SENT_BACKOFF_MS);
      await this.#release([claimed]);
      return false;
    }
    const elapsedMs = Math.round(performance.now() - began);
    const finishedAt = new Date(startedAt.getTime() + elapsedMs);
    // The receiver's time: without the wait for a connection to its origin.
    const durationMs = Math.max(0, elapsedMs - (result.waitedMs ?? 0));

    const statusCode = result.kind === 'response' ? result.statusCode : null;
    const redirected = statusCode !== null && statusCode >= 300 && statusCode < 400;
    const errorCode: AttemptErrorCode | null =
      result.kind === 'error' ? result.errorCode : redirected ? 'redirect' : null;
    const verdict = judgeAttempt(
      result.kind === 'response'
        ? { statusCode: result.statusCode, retryAfter: result.headers['retry-after'] }
        : { errorCode: result.errorCode },
      number,
      this.#retry,
      finishedAt,
    );
    const attempt: AttemptRecord = {
      deliveryId: delivery.id,
      webhookId: webhook.id,
      attempt: number,
      startedAt,
      durationMs,
      statusCode,
      errorCode,
      responseSnippet: result.kind === 'response' ? result.bodySnippet : null,
      ok: verdict.ok,
    };
    const outcomeToWrite: AttemptOutcome = {
      attempt,
      next: verdict.next,
      maxConsecutiveFailures: this.#maxConsecutiveFailures,
    };
    if (verdict.disableReason !== undefined) outcomeToWrite.disableReason = verdict.disableReason;
    // The store applies the outcome only if this claim still holds the delivery (see AttemptOutcome).
    if (delivery.leaseExpiresAt !== null) outcomeToWrite.leaseExpiresAt = delivery.leaseExpiresAt;
    this.#writer.add(outcomeToWrite);

    if (verdict.ok && !this.#listening('attempt:success') && this.#logger.debug === undefined) return true;
    // Spelled out rather than spread from `info`: V8 builds a spread object literal far more slowly.
    const outcome: AttemptInfo = {
      deliveryId: info.deliveryId,
      webhookId: info.webhookId,
      siteId: info.siteId,
      event: info.event,
      attempt: info.attempt,
      ok: verdict.ok,
      statusCode,
      errorCode,
      durationMs,
      nextAttemptAt: verdict.next.status === 'pending' ? verdict.next.nextAttemptAt : null,
    };
    if (verdict.ok) {
      this.#notify('attempt:success', outcome);
      this.#logger.debug?.('webhook delivered', { ...info, statusCode, durationMs });
      return true;
    }
    this.#notify('attempt:failure', outcome);
    const fields = {
      ...info,
      statusCode,
      errorCode,
      durationMs,
      ...(result.kind === 'error' && { reason: message(result.message ?? '') }),
    };
    if (verdict.next.status === 'failed') {
      this.#notify('delivery:failed', outcome);
      this.#logger.warn?.('webhook delivery failed', fields);
    } else {
      this.#logger.info?.('webhook attempt failed; will retry', {
        ...fields,
        nextAttemptAt: outcome.nextAttemptAt,
      });
    }
    return true;
  }

  /**
   * The request headers of one attempt. During a rotation overlap `X-ZTA-Signature` stays signed with the
   * previous secret (so receivers that still hold it, including the spec's snippets, keep working) and
   * `X-ZTA-Signature-Next` carries the new secret's signature; `webhook-signature` has one `v1,` entry per
   * secret, the new one first. `webhook-id` is the delivery id, the same on every retry.
   */
  #headers(delivery: DeliveryRecord, webhook: WebhookRecord, startedAt: Date): Record<string, string> {
    const seconds = Math.floor(startedAt.getTime() / 1000);
    const previous = previousSecretActive(webhook, startedAt) ? webhook.previousSecret : null;
    const schemes = webhook.signatureSchemes ?? this.#signatureSchemes;
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'User-Agent': this.#userAgent,
    };
    if (schemes.includes('zta')) {
      headers['X-ZTA-Signature'] = signPayload(delivery.body, previous ?? webhook.secret);
      if (previous !== null) headers['X-ZTA-Signature-Next'] = signPayload(delivery.body, webhook.secret);
    }
    headers['X-ZTA-Event'] = delivery.event;
    headers['X-ZTA-Webhook-ID'] = webhook.id;
    headers['X-ZTA-Delivery-ID'] = delivery.id;
    headers['X-ZTA-Timestamp'] = String(seconds);
    if (schemes.includes('standard')) {
      headers['webhook-id'] = delivery.id;
      headers['webhook-timestamp'] = String(seconds);
      headers['webhook-signature'] = signStandardPayload(
        delivery.id,
        seconds,
        delivery.body,
        previous === null ? webhook.secret : [webhook.secret, previous],
      );
    }
    return headers;
  }

  #getTransport(): Transport {
    this.#transport ??= this.#transportOption ?? undiciTransport(this.#transportOptions);
    return this.#transport;
  }

  /** After a completion write that scheduled retries: they may be due before the current wake-up. */
  #applyEffects(effects: CompletionEffect[], written: readonly AttemptOutcome[]): void {
    if (written.some((outcome) => outcome.next.status === 'pending')) this.#kick();
    for (const effect of effects) {
      if (effect.disabledReason === null) continue;
      const info = { webhookId: effect.webhookId, siteId: effect.siteId, reason: effect.disabledReason };
      this.#logger.warn?.('webhook disabled', info);
      this.#notify('webhook:disabled', info);
      try {
        this.#onWebhookDisabled?.(info);
      } catch (error) {
        this.#logger.error?.('onWebhookDisabled threw', { error: message(error) });
      }
    }
  }

  #listening(event: keyof DispatcherEvents): boolean {
    return this.#events.listenerCount(event) > 0;
  }

  /**
   * Listeners are the host's code: one that throws, or returns a promise that rejects, is logged, and the
   * others are still called (EventEmitter.emit would stop at the first throw).
   */
  #notify<K extends keyof DispatcherEvents>(event: K, ...args: DispatcherEvents[K]): void {
    if (this.#events.listenerCount(event) === 0) return;
    for (const listener of this.#events.listeners(event) as ((...args: unknown[]) => unknown)[]) {
      try {
        const result = listener(...args);
        if (result instanceof Promise) result.catch((error: unknown) => this.#listenerFailed(event, error));
      } catch (error) {
        this.#listenerFailed(event, error);
      }
    }
  }

  #listenerFailed(event: keyof DispatcherEvents, error: unknown): void {
    this.#logger.error?.(`a '${event}' listener threw`, { error: message(error) });
  }
}

/** How long a webhook whose delivery could not be sent, and its origin, wait before they are tried again. */
const NOT_SENT_BACKOFF_MS = 1_000;

/** setTimeout's ceiling (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The dispatcher's `signatureSchemes`: a non-empty list of known schemes without duplicates. */
function validSchemes(schemes: readonly SignatureScheme[]): readonly SignatureScheme[] {
  if (
    !Array.isArray(schemes) ||
    schemes.length === 0 ||
    new Set(schemes).size !== schemes.length ||
    !schemes.every((scheme) => (SIGNATURE_SCHEMES as readonly unknown[]).includes(scheme))
  ) {
    throw new TypeError(
      `signatureSchemes must be a non-empty list of distinct schemes among: ${SIGNATURE_SCHEMES.join(', ')}`,
    );
  }
  return Object.freeze([...schemes]);
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number`);
  return value;
}

/** What the transport queues and caps connections by: scheme, host and port (the URL itself if it is not one). */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** Node fires a timer set past its ceiling (about 24.8 days) after 1 ms instead. */
function atMostTimerMax(value: number, name: string): number {
  if (value > MAX_TIMER_MS) throw new TypeError(`${name} must be at most ${MAX_TIMER_MS} ms`);
  return value;
}

/** An error as the logs may show it: store and transport errors can quote rows or URLs. */
function message(error: unknown): string {
  return redactSecrets(error instanceof Error ? error.message : String(error));
}
