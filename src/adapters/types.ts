import type { EventType } from '../core/events.js';
import type {
  AttemptErrorCode,
  AttemptRecord,
  DeliveryRecord,
  DeliveryStatus,
  WebhookPatch,
  WebhookRecord,
} from '../core/records.js';

export interface DeliveryQuery {
  siteId?: string;
  webhookId?: string;
  status?: DeliveryStatus;
  /** Only deliveries created at or after this time. */
  since?: Date;
  /** Newest first; continue strictly after this position. */
  after?: { createdAt: Date; id: string };
  /** A positive integer; anything else is a `TypeError`. */
  limit: number;
}

/** One method of a SQL connection, as `pg`'s Client, PoolClient and Pool have it. */
export interface SqlClient {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

export interface WriteOptions {
  /** Run inside this connection's current transaction. */
  client?: SqlClient;
}

export interface ClaimOptions {
  now: Date;
  limit: number;
  leaseMs: number;
  /** Default: no per-webhook cap. */
  perWebhookLimit?: number;
  /** Deliveries per webhook the caller already has in flight. */
  busyWebhooks?: ReadonlyMap<string, number>;
}

export interface ClaimedDelivery {
  delivery: DeliveryRecord;
  webhook: WebhookRecord;
  /**
   * When it was due: its next attempt time, or the end of the expired lease it was claimed again from.
   * Given back to `releaseDeliveries`, it puts a delivery back in its place in the queue.
   */
  dueAt?: Date;
}

export type AttemptNext =
  | { status: 'succeeded' }
  | { status: 'pending'; nextAttemptAt: Date }
  | { status: 'failed' };

export interface AttemptOutcome {
  attempt: AttemptRecord;
  next: AttemptNext;
  /** Disable the webhook at once with this reason (a 410 Gone). */
  disableReason?: string;
  /** Disable the webhook when this many deliveries in a row have failed. */
  maxConsecutiveFailures: number;
  /**
   * The lease the attempt was made under (the claimed delivery's `leaseExpiresAt`), a fencing token. When
   * given, the outcome changes the delivery, and counts for or against its webhook, only while the delivery
   * is still `delivering` under that lease. A late outcome (its worker stalled past the lease, and the
   * delivery was claimed again, or finished, meanwhile) is only logged: the attempt is recorded and the
   * webhook's `lastTriggered` updated, and the delivery is left to whoever holds it now.
   */
  leaseExpiresAt?: Date;
}

export interface CompletionEffect {
  deliveryId: string;
  webhookId: string;
  siteId: string;
  /** Set when this completion disabled the webhook. */
  disabledReason: string | null;
}

/**
 * Persistence for webhooks, deliveries and attempts. Adapters are thin I/O: the core owns ids, validation
 * and retry decisions; the store owns atomicity (the per-site limit, claims, completion effects).
 */
export interface Store {
  /** Inserts unless the site already has `maxPerSite` webhooks; atomic against concurrent calls. */
  createWebhook(record: WebhookRecord, options: { maxPerSite: number }): Promise<'created' | 'limit_reached'>;
  getWebhook(id: string): Promise<WebhookRecord | null>;
  /** Oldest first. */
  listWebhooks(siteId: string): Promise<WebhookRecord[]>;
  /**
   * Optional: every webhook of every site, a page at a time, ordered by id (in the store's own order for
   * ids, the same on every call); `after` continues strictly after that id. For operator jobs that visit
   * each webhook once, such as `WebhookManager.reencryptSecrets`, which requires it. `limit` is a positive
   * integer; anything else is a `TypeError`.
   */
  listAllWebhooks?(options: { after?: string; limit: number }): Promise<WebhookRecord[]>;
  /** Active webhooks of the site that subscribe to the event. */
  findSubscribers(siteId: string, event: EventType, options?: WriteOptions): Promise<WebhookRecord[]>;
  /**
   * Applies the patch. When it makes an active webhook inactive, the webhook's pending deliveries become
   * `discarded`; when it makes an inactive one active again, so do any left pending while it was inactive
   * (released by a stopping worker, or inserted in a caller's transaction that committed after the
   * disable), and claims whose lease ended by `updatedAt` (their worker died): they belong to before the
   * disable.
   */
  updateWebhook(id: string, patch: WebhookPatch): Promise<WebhookRecord | null>;
  /** Removes the webhook with its deliveries and attempts. */
  deleteWebhook(id: string): Promise<boolean>;

  /**
   * Records new deliveries and resolves to the ids of those it recorded, in input order. Deliveries of a
   * webhook that no longer exists or is inactive (deleted or disabled after the caller looked up
   * subscribers) are left out. With `client`, writes (and reads subscribers, in `findSubscribers`) through
   * the caller's SQL connection, inside the caller's transaction: the outbox pattern. Stores that cannot
   * join a SQL transaction throw when given one.
   */
  insertDeliveries(deliveries: DeliveryRecord[], options?: WriteOptions): Promise<string[]>;
  /**
   * Moves up to `limit` due `pending` deliveries of active webhooks, and `delivering` ones whose lease
   * expired, to `delivering` with a lease until `now + leaseMs`. Earliest due first, except that at most
   * `perWebhookLimit - busyWebhooks.get(webhookId)` are taken for any one webhook: a backlog for one
   * endpoint never hides other endpoints' due deliveries.
   */
  claimDeliveries(options: ClaimOptions): Promise<ClaimedDelivery[]>;
  /**
   * Records each attempt and applies its outcome to the delivery and its webhook: `lastTriggered`, the
   * consecutive-failure count, and disabling (which discards the webhook's pending deliveries). Outcomes
   * take effect in batch order, as if completed one by one: an outcome whose `leaseExpiresAt` no longer
   * holds the delivery (claimed again, or finished, also by an earlier outcome of the same batch) is only
   * recorded (see `AttemptOutcome`). A store whose write can be retried after an unknown result (a lost
   * connection) must not record an outcome it already recorded (same delivery, attempt number and start
   * time); the memory store, whose writes cannot fail halfway, does not check.
   */
  completeAttempts(outcomes: AttemptOutcome[]): Promise<CompletionEffect[]>;
  /**
   * Returns `delivering` deliveries to `pending` (a worker stopping without attempting, or over a limit),
   * each due at its `dueAt` (parallel to `ids`: a claim's `dueAt`, which keeps a webhook's deliveries in
   * order) or, without one, at `now`. With `leases` (parallel to `ids`: the lease each was claimed under),
   * only those still held under that lease: one whose lease ran out and that another worker claimed since is
   * that worker's now.
   */
  releaseDeliveries(
    ids: readonly string[],
    now: Date,
    leases?: readonly (Date | null)[],
    dueAt?: readonly (Date | null | undefined)[],
  ): Promise<void>;
  /**
   * When `claimDeliveries` will next find something: the earliest due time (or lease expiry) among
   * deliveries of active webhooks, leaving out the excluded ones (webhooks the caller has no slot for).
   */
  nextDueAt(options?: { excludeWebhookIds?: readonly string[] }): Promise<Date | null>;
  getDelivery(id: string): Promise<DeliveryRecord | null>;
  /** Newest first (createdAt, then id, descending). */
  listDeliveries(query: DeliveryQuery): Promise<DeliveryRecord[]>;
  /** Oldest first. */
  listAttempts(deliveryIds: readonly string[]): Promise<AttemptRecord[]>;
  /**
   * A finished (`succeeded`, `failed` or `discarded`) delivery of an active webhook becomes `pending` again,
   * due at `now`; null if the delivery is pending or in flight, or its webhook is not active (checked
   * atomically with the change).
   */
  requeueDelivery(id: string, now: Date): Promise<DeliveryRecord | null>;
  /**
   * Optional retention: deletes finished (`succeeded`, `failed`, `discarded`) deliveries created before
   * `olderThan`, with their attempts, and returns how many it deleted. Pending and in-flight (`delivering`)
   * deliveries are never deleted, whatever their age. A store that deletes in steps takes at most
   * `batchSize` deliveries per step (each step its own short transaction) until none is left; the default
   * size is the store's. Safe to call while dispatchers run, and from several processes at once. The
   * dispatcher calls it periodically while started (its `retention` option).
   */
  pruneDeliveries?(options: { olderThan: Date; batchSize?: number }): Promise<number>;
  /**
   * Optional: calls `listener` when deliveries may have become due (inserted, requeued, released), also when
   * that happened in another process. The dispatcher still polls `nextDueAt` without it.
   */
  subscribe?(listener: () => void): () => void;
}

/** Wakes the dispatcher when work is due. */
export interface Scheduler {
  /** Call `run` at `at` (or as soon as possible if `at` is past); replaces any earlier wake-up. */
  wakeAt(at: Date, run: () => void): void;
  cancel(): void;
}

export interface TransportRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** For the request itself, from the moment it is sent: connect, headers and body. */
  timeoutMs: number;
  /**
   * How long the request may wait for the transport to send it (for a free connection to its origin); past
   * that it is not sent, and the answer is `{ kind: 'not_sent' }`. Default: `timeoutMs`.
   */
  queueTimeoutMs?: number;
}

export type TransportResult =
  | {
      kind: 'response';
      statusCode: number;
      headers: Record<string, string | undefined>;
      /** At most the first 4 KiB of the body. */
      bodySnippet: string;
      /** How long the request waited to be sent; left out of the attempt's recorded duration. */
      waitedMs?: number;
    }
  | { kind: 'error'; errorCode: AttemptErrorCode; message: string; waitedMs?: number }
  /** The request never left this process (see `queueTimeoutMs`): no attempt is recorded. */
  | { kind: 'not_sent'; message: string };

export interface Transport {
  send(request: TransportRequest): Promise<TransportResult>;
  close(): Promise<void>;
}
