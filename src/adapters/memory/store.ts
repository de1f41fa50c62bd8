import type { EventType } from '../../core/events.js';
import {
  type AttemptRecord,
  type DeliveryRecord,
  requirePageLimit,
  type WebhookPatch,
  type WebhookRecord,
} from '../../core/records.js';
import type {
  AttemptOutcome,
  ClaimedDelivery,
  CompletionEffect,
  DeliveryQuery,
  Store,
  WriteOptions,
} from '../types.js';
import { DeliveryArchive } from './archive.js';
import { DueQueue } from './due-queue.js';

/** Deliveries that can no longer change by themselves: archived, and what retention may delete. */
const FINISHED: ReadonlySet<DeliveryRecord['status']> = new Set(['succeeded', 'failed', 'discarded']);
const REQUEUEABLE: ReadonlySet<DeliveryRecord['status']> = new Set(['succeeded', 'failed', 'discarded']);

const copyWebhook = (record: WebhookRecord): WebhookRecord => ({
  ...record,
  events: [...record.events],
  signatureSchemes: record.signatureSchemes === null ? null : [...record.signatureSchemes],
});
const copyDelivery = (record: DeliveryRecord): DeliveryRecord => ({ ...record });

export function consecutiveFailuresReason(count: number): string {
  return `Disabled after ${count} consecutive failed deliveries`;
}

/** A `Store` with the optional methods the memory store has. */
export type MemoryStore = Store & Required<Pick<Store, 'listAllWebhooks' | 'pruneDeliveries' | 'subscribe'>>;

/**
 * The embedded default store: everything in this process's memory, nothing survives a restart. Every
 * method finishes its work before its first `await`, so each call is atomic against the others.
 */
export function memoryStore(): MemoryStore {
  const webhooks = new Map<string, WebhookRecord>();
  const webhooksBySite = new Map<string, Set<string>>();
  /** Deliveries that may still change: pending or delivering. */
  const deliveries = new Map<string, DeliveryRecord>();
  /** Finished deliveries (succeeded, failed, discarded): their slots in `archive`. */
  const finished = new Map<string, number>();
  const archive = new DeliveryArchive();
  const deliveriesByWebhook = new Map<string, Set<string>>();
  /** The attempts of deliveries in `deliveries`; a finished delivery's are in the archive with it. */
  const attempts = new Map<string, AttemptRecord[]>();
  /**
   * Two levels, so a backlog for one webhook costs nothing when that webhook is busy: per webhook, its
   * deliveries by due time; across webhooks, `ready` holds each webhook's earliest due time. The one live
   * `ready` entry of a webhook is the one whose time `readyAt` names; older entries are skipped.
   */
  const queues = new Map<string, DueQueue>();
  const readyAt = new Map<string, number>();
  const ready = new DueQueue((at, webhookId) => readyAt.get(webhookId) === at);
  const listeners = new Set<() => void>();

  /** Listeners run after the current call has returned, never inside it. */
  const notify = (): void => {
    queueMicrotask(() => {
      for (const listener of listeners) listener();
    });
  };

  /** Moves a live delivery that has just finished into the archive; others stay where they are. */
  const settle = (delivery: DeliveryRecord): void => {
    if (!FINISHED.has(delivery.status) || deliveries.get(delivery.id) !== delivery) return;
    finished.set(delivery.id, archive.add(delivery, attempts.get(delivery.id) ?? []));
    deliveries.delete(delivery.id);
    attempts.delete(delivery.id);
  };

  /** Takes a finished delivery out of the archive to change it; undefined when it is not there. */
  const thaw = (id: string): DeliveryRecord | undefined => {
    const slot = finished.get(id);
    if (slot === undefined) return undefined;
    const { delivery, attempts: log } = archive.read(slot);
    archive.delete(slot);
    finished.delete(id);
    deliveries.set(id, delivery);
    if (log.length > 0) attempts.set(id, log);
    return delivery;
  };

  /** A delivery as callers see it, live or archived; undefined when there is none. */
  const readDelivery = (id: string): DeliveryRecord | undefined => {
    const live = deliveries.get(id);
    if (live !== undefined) return copyDelivery(live);
    const slot = finished.get(id);
    return slot === undefined ? undefined : archive.read(slot).delivery;
  };

  /** Forgets a delivery and its attempts, wherever it is, and takes it off its webhook's list. */
  const forget = (id: string): void => {
    const slot = finished.get(id);
    const webhookId = slot === undefined ? deliveries.get(id)?.webhookId : archive.webhookId(slot);
    if (webhookId !== undefined) deliveriesByWebhook.get(webhookId)?.delete(id);
    deliveries.delete(id);
    attempts.delete(id);
    if (slot !== undefined) {
      archive.delete(slot);
      finished.delete(id);
    }
  };

  /** Whether a queue entry still describes the delivery: pending and due then, or leased until then. */
  const isCurrent = (delivery: DeliveryRecord | undefined, at: number): delivery is DeliveryRecord =>
    delivery !== undefined &&
    ((delivery.status === 'pending' && delivery.nextAttemptAt?.getTime() === at) ||
      (delivery.status === 'delivering' && delivery.leaseExpiresAt?.getTime() === at));

  const schedule = (delivery: DeliveryRecord): void => {
    const at =
      delivery.status === 'pending'
        ? delivery.nextAttemptAt
        : delivery.status === 'delivering'
          ? delivery.leaseExpiresAt
          : null;
    if (at === null) return;
    let queue = queues.get(delivery.webhookId);
    if (queue === undefined) {
      queue = new DueQueue((at, id) => isCurrent(deliveries.get(id), at));
      queues.set(delivery.webhookId, queue);
    }
    queue.push(at.getTime(), delivery.id);
    const live = readyAt.get(delivery.webhookId);
    if (live === undefined || at.getTime() < live) arm(delivery.webhookId, at.getTime());
  };

  const arm = (webhookId: string, at: number): void => {
    ready.push(at, webhookId);
    readyAt.set(webhookId, at);
  };

  /** Pops the earliest live `ready` entry, re-arming it where it has gone stale; undefined when none. */
  const nextReady = (): { at: number; id: string } | undefined => {
    for (;;) {
      const entry = ready.peek();
      if (entry === undefined) return undefined;
      ready.pop();
      if (readyAt.get(entry.id) !== entry.at) continue;
      readyAt.delete(entry.id);
      const top = webhooks.get(entry.id)?.active ? earliest(entry.id) : undefined;
      if (top === undefined) continue;
      if (top.at === entry.at) return entry;
      arm(entry.id, top.at);
    }
  };

  /** The webhook's earliest current entry, after dropping stale ones from the top of its queue. */
  const earliest = (webhookId: string): { at: number; id: string } | undefined => {
    const queue = queues.get(webhookId);
    for (;;) {
      const top = queue?.peek();
      if (top === undefined || isCurrent(deliveries.get(top.id), top.at)) return top;
      queue!.pop();
    }
  };

  /** Discards the webhook's deliveries that wait: pending ones, and/or claims whose lease ended by then. */
  const discardWaiting = (
    webhookId: string,
    now: Date,
    which: { pending: boolean; leasesEndedBy?: Date },
  ): void => {
    const endedBy = which.leasesEndedBy?.getTime();
    for (const id of deliveriesByWebhook.get(webhookId) ?? []) {
      const delivery = deliveries.get(id);
      if (delivery === undefined) continue;
      const leaseEnded =
        endedBy !== undefined &&
        delivery.status === 'delivering' &&
        delivery.leaseExpiresAt!.getTime() <= endedBy;
      if ((which.pending && delivery.status === 'pending') || leaseEnded) {
        Object.assign(delivery, {
          status: 'discarded',
          nextAttemptAt: null,
          leaseExpiresAt: null,
          updatedAt: now,
        });
        settle(delivery);
      }
    }
  };

  /** Whether the delivery is still held under the lease an outcome was attempted under (none given: yes). */
  const holdsLease = (delivery: DeliveryRecord, lease: Date | undefined): boolean =>
    lease === undefined ||
    (delivery.status === 'delivering' && delivery.leaseExpiresAt?.getTime() === lease.getTime());

  const complete = (outcome: AttemptOutcome): CompletionEffect | null => {
    const { attempt, next } = outcome;
    const webhook = webhooks.get(attempt.webhookId);
    if (webhook === undefined) return null;
    // A late result for a delivery that finished meanwhile (its lease ran out) is still recorded.
    const delivery = deliveries.get(attempt.deliveryId) ?? thaw(attempt.deliveryId);
    if (delivery === undefined) return null;
    const now = new Date(attempt.startedAt.getTime() + attempt.durationMs);
    const log = attempts.get(delivery.id);
    // A literal, not a push onto [], which would reserve room for 16 attempts.
    if (log === undefined) attempts.set(delivery.id, [{ ...attempt }]);
    else log.push({ ...attempt });
    if (webhook.lastTriggered === null || webhook.lastTriggered < attempt.startedAt) {
      webhook.lastTriggered = attempt.startedAt;
    }
    if (!holdsLease(delivery, outcome.leaseExpiresAt)) {
      settle(delivery);
      return { deliveryId: delivery.id, webhookId: webhook.id, siteId: webhook.siteId, disabledReason: null };
    }
    Object.assign(delivery, {
      status: next.status,
      attempts: attempt.attempt,
      nextAttemptAt: next.status === 'pending' ? next.nextAttemptAt : null,
      leaseExpiresAt: null,
      lastStatusCode: attempt.statusCode,
      lastError: attempt.ok ? null : (attempt.errorCode ?? `HTTP ${attempt.statusCode}`),
      updatedAt: now,
    });
    schedule(delivery);
    if (next.status === 'succeeded') webhook.consecutiveFailures = 0;
    if (next.status === 'failed') webhook.consecutiveFailures += 1;
    let disabledReason: string | null = null;
    if (webhook.active) {
      if (outcome.disableReason !== undefined) {
        disabledReason = outcome.disableReason;
      } else if (webhook.consecutiveFailures >= outcome.maxConsecutiveFailures) {
        disabledReason = consecutiveFailuresReason(webhook.consecutiveFailures);
      }
    }
    if (disabledReason !== null) {
      Object.assign(webhook, { active: false, disabledReason, updatedAt: now });
      discardWaiting(webhook.id, now, { pending: true });
    }
    // A retry of an attempt that was in flight when its webhook was disabled is kept, not queued.
    if (!webhook.active && delivery.status === 'pending') {
      Object.assign(delivery, { status: 'discarded', nextAttemptAt: null });
    }
    settle(delivery);
    return { deliveryId: delivery.id, webhookId: webhook.id, siteId: webhook.siteId, disabledReason };
  };

  return {
    async createWebhook(record, { maxPerSite }) {
      const ids = webhooksBySite.get(record.siteId) ?? new Set<string>();
      if (ids.size >= maxPerSite) return 'limit_reached';
      ids.add(record.id);
      webhooksBySite.set(record.siteId, ids);
      webhooks.set(record.id, copyWebhook(record));
      return 'created';
    },

    async getWebhook(id) {
      const record = webhooks.get(id);
      return record ? copyWebhook(record) : null;
    },

    async listWebhooks(siteId) {
      return [...(webhooksBySite.get(siteId) ?? [])]
        .map((id) => webhooks.get(id)!)
        .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
        .map(copyWebhook);
    },

    async listAllWebhooks({ after, limit }) {
      requirePageLimit(limit);
      return [...webhooks.keys()]
        .filter((id) => after === undefined || id > after)
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
        .slice(0, Math.max(0, limit))
        .map((id) => copyWebhook(webhooks.get(id)!));
    },

    async findSubscribers(siteId: string, event: EventType, options?: WriteOptions) {
      refuseSqlClient(options);
      const found: WebhookRecord[] = [];
      for (const id of webhooksBySite.get(siteId) ?? []) {
        const record = webhooks.get(id)!;
        if (record.active && record.events.includes(event)) found.push(copyWebhook(record));
      }
      return found;
    },

    async updateWebhook(id, { ifSecret, ifPreviousSecret, ...given }: WebhookPatch) {
      const record = webhooks.get(id);
      if (record === undefined) return null;
      // A key present with `undefined` changes nothing, as on Postgres (and as its optional type says).
      const patch = Object.fromEntries(
        Object.entries(given).filter(([, value]) => value !== undefined),
      ) as typeof given;
      if (ifSecret !== undefined && record.secret !== ifSecret) return null;
      if (ifPreviousSecret !== undefined && record.previousSecret !== ifPreviousSecret) return null;
      const wasActive = record.active;
      Object.assign(
        record,
        patch,
        patch.events ? { events: [...patch.events] } : {},
        patch.signatureSchemes ? { signatureSchemes: [...patch.signatureSchemes] } : {},
      );
      if (wasActive && !record.active) discardWaiting(id, patch.updatedAt, { pending: true });
      if (!wasActive && record.active) {
        // What waits now was left from before the disable (see Store): pending, or a dead claim's lease.
        discardWaiting(id, patch.updatedAt, { pending: true, leasesEndedBy: patch.updatedAt });
        // While inactive, its ready entry was dropped (nextReady skips inactive webhooks): arm it again.
        const top = earliest(id);
        if (top !== undefined) arm(id, top.at);
      }
      return copyWebhook(record);
    },

    async deleteWebhook(id) {
      const record = webhooks.get(id);
      if (record === undefined) return false;
      webhooks.delete(id);
      const siteWebhooks = webhooksBySite.get(record.siteId);
      siteWebhooks?.delete(id);
      if (siteWebhooks?.size === 0) webhooksBySite.delete(record.siteId);
      for (const deliveryId of deliveriesByWebhook.get(id) ?? []) forget(deliveryId);
      deliveriesByWebhook.delete(id);
      queues.delete(id);
      readyAt.delete(id);
      return true;
    },

    async insertDeliveries(records, options) {
      refuseSqlClient(options);
      const recorded: string[] = [];
      for (const record of records) {
        // Deleted or disabled meanwhile (the caller looked up subscribers before): left out, as on Postgres.
        if (webhooks.get(record.webhookId)?.active !== true) continue;
        recorded.push(record.id);
        forget(record.id);
        const delivery = copyDelivery(record);
        deliveries.set(delivery.id, delivery);
        const ids = deliveriesByWebhook.get(delivery.webhookId) ?? new Set<string>();
        ids.add(delivery.id);
        deliveriesByWebhook.set(delivery.webhookId, ids);
        schedule(delivery);
        settle(delivery);
      }
      if (recorded.length > 0) notify();
      return recorded;
    },

    async claimDeliveries({ now, limit, leaseMs, perWebhookLimit = Number.POSITIVE_INFINITY, busyWebhooks }) {
      const claimed: ClaimedDelivery[] = [];
      const nowMs = now.getTime();
      const leaseExpiresAt = new Date(nowMs + leaseMs);
      const taken = new Map<string, number>();
      const busy: { at: number; id: string }[] = [];
      while (claimed.length < limit) {
        const entry = nextReady();
        if (entry === undefined) break;
        if (entry.at > nowMs) {
          arm(entry.id, entry.at);
          break;
        }
        const webhook = webhooks.get(entry.id)!;
        const used = (busyWebhooks?.get(webhook.id) ?? 0) + (taken.get(webhook.id) ?? 0);
        if (used >= perWebhookLimit) {
          busy.push(entry);
          continue;
        }
        const due = queues.get(webhook.id)!.pop()!;
        const delivery = deliveries.get(due.id)!;
        Object.assign(delivery, {
          status: 'delivering',
          nextAttemptAt: null,
          leaseExpiresAt,
          updatedAt: now,
        });
        const following = earliest(webhook.id);
        if (following !== undefined) arm(webhook.id, following.at);
        taken.set(webhook.id, (taken.get(webhook.id) ?? 0) + 1);
        claimed.push({
          delivery: copyDelivery(delivery),
          webhook: copyWebhook(webhook),
          dueAt: new Date(due.at),
        });
      }
      for (const entry of busy) arm(entry.id, entry.at);
      // The leases are queued only now: one that ends by `now` (a lease of under a millisecond) would
      // otherwise come round again in this very loop, and the call would hand out its delivery twice.
      for (const { delivery } of claimed) schedule(deliveries.get(delivery.id)!);
      return claimed;
    },

    async completeAttempts(outcomes) {
      const effects: CompletionEffect[] = [];
      for (const outcome of outcomes) {
        const effect = complete(outcome);
        if (effect) effects.push(effect);
      }
      return effects;
    },

    async releaseDeliveries(ids, now, leases, dueAt) {
      for (const [index, id] of ids.entries()) {
        const delivery = deliveries.get(id);
        if (delivery?.status !== 'delivering') continue;
        const lease = leases?.[index];
        if (lease != null && delivery.leaseExpiresAt!.getTime() !== lease.getTime()) continue;
        Object.assign(delivery, {
          status: 'pending',
          nextAttemptAt: dueAt?.[index] ?? now,
          leaseExpiresAt: null,
          updatedAt: now,
        });
        schedule(delivery);
      }
      if (ids.length > 0) notify();
    },

    async nextDueAt({ excludeWebhookIds = [] } = {}) {
      const setAside: { at: number; id: string }[] = [];
      let found: { at: number; id: string } | undefined;
      for (;;) {
        found = nextReady();
        if (found === undefined || !excludeWebhookIds.includes(found.id)) break;
        setAside.push(found);
      }
      for (const entry of setAside) arm(entry.id, entry.at);
      if (found === undefined) return null;
      arm(found.id, found.at);
      return new Date(found.at);
    },

    async getDelivery(id) {
      return readDelivery(id) ?? null;
    },

    async listDeliveries(query: DeliveryQuery) {
      requirePageLimit(query.limit);
      const since = query.since?.getTime();
      const after = query.after && { createdAt: query.after.createdAt.getTime(), id: query.after.id };
      const page = new PageOf(query.limit);
      // Filters in the order of their cost; a position object only for what may be on the page.
      const offer = (id: string, createdAt: number): void => {
        if (since !== undefined && !(createdAt >= since)) return;
        if (after !== undefined && !follows(createdAt, id, after)) return;
        page.offer(createdAt, id);
      };
      const considerLive = (id: string, d: DeliveryRecord): void => {
        if (query.webhookId !== undefined && d.webhookId !== query.webhookId) return;
        if (query.siteId !== undefined && d.siteId !== query.siteId) return;
        if (query.status !== undefined && d.status !== query.status) return;
        offer(id, d.createdAt.getTime());
      };
      const considerArchived = (id: string, slot: number): void => {
        if (query.webhookId !== undefined && archive.webhookId(slot) !== query.webhookId) return;
        if (query.siteId !== undefined && archive.siteId(slot) !== query.siteId) return;
        if (query.status !== undefined && archive.status(slot) !== query.status) return;
        offer(id, archive.createdAt(slot));
      };

      const ofWebhook = query.webhookId === undefined ? undefined : deliveriesByWebhook.get(query.webhookId);
      // A webhook with a small share of the log: look its deliveries up by id (a cache miss or two each).
      // Otherwise reading every row in map order is faster.
      if (query.webhookId !== undefined && (ofWebhook?.size ?? 0) * 4 < finished.size) {
        for (const id of ofWebhook ?? []) {
          // Most of a long log is finished: one lookup for those.
          const slot = finished.get(id);
          if (slot !== undefined) {
            considerArchived(id, slot);
            continue;
          }
          const live = deliveries.get(id);
          if (live !== undefined) considerLive(id, live);
        }
      } else {
        // forEach: no [key, value] array per entry, which for-of over a large log would allocate.
        deliveries.forEach((live, id) => {
          considerLive(id, live);
        });
        finished.forEach((slot, id) => {
          considerArchived(id, slot);
        });
      }
      return page.rows().map((position) => readDelivery(position.id)!);
    },

    async listAttempts(deliveryIds) {
      return deliveryIds.flatMap((id) => {
        const slot = finished.get(id);
        if (slot !== undefined) return archive.read(slot).attempts;
        return (attempts.get(id) ?? []).map((attempt) => ({ ...attempt }));
      });
    },

    async requeueDelivery(id, now) {
      const slot = finished.get(id);
      if (slot === undefined || !REQUEUEABLE.has(archive.status(slot))) return null;
      // Checked here, not only by the caller: a webhook disabled meanwhile would hold it pending for good.
      if (!webhooks.get(archive.webhookId(slot))?.active) return null;
      const delivery = thaw(id)!;
      Object.assign(delivery, {
        status: 'pending',
        attempts: 0,
        nextAttemptAt: now,
        leaseExpiresAt: null,
        updatedAt: now,
      });
      schedule(delivery);
      notify();
      return copyDelivery(delivery);
    },

    async pruneDeliveries({ olderThan, batchSize }) {
      if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize > 0)) {
        throw new TypeError('batchSize must be a positive integer');
      }
      // A claim whose worker died while its webhook was inactive is never claimed again (inactive webhooks
      // are passed over), so it could never be pruned or redelivered: discarded, as on Postgres.
      const now = new Date();
      for (const webhook of webhooks.values()) {
        if (!webhook.active) discardWaiting(webhook.id, now, { pending: false, leasesEndedBy: now });
      }
      // One synchronous pass: atomic like every other method, so batching buys nothing here. Only
      // finished deliveries are in the archive, so they are all that can go.
      const cutoff = olderThan.getTime();
      const doomed: string[] = [];
      finished.forEach((slot, id) => {
        if (archive.createdAt(slot) < cutoff) doomed.push(id);
      });
      for (const id of doomed) forget(id);
      return doomed.length;
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** A delivery's place in the activity log. */
interface LogPosition {
  createdAt: number;
  id: string;
}

/**
 * The first `limit` positions of the activity log among those offered, without sorting them all: a log of
 * a million deliveries is listed 50 at a time, and each page would otherwise sort the whole log.
 */
class PageOf {
  readonly #limit: number;
  #kept: LogPosition[] = [];
  /** The last of the page as of the latest trim; what sorts after it cannot be on the page. */
  #last: LogPosition | undefined;

  constructor(limit: number) {
    this.#limit = Number.isNaN(limit) ? 0 : Math.max(0, Math.floor(limit));
  }

  offer(createdAt: number, id: string): void {
    const last = this.#last;
    if (this.#limit === 0) return;
    if (last !== undefined && !precedes(createdAt, id, last)) return;
    this.#kept.push({ createdAt, id });
    if (this.#kept.length >= 2 * this.#limit + 64) this.#trim();
  }

  rows(): LogPosition[] {
    this.#trim();
    return this.#kept;
  }

  #trim(): void {
    this.#kept.sort(newestFirst);
    if (this.#kept.length > this.#limit) this.#kept.length = this.#limit;
    this.#last = this.#kept.length === this.#limit ? this.#kept.at(-1) : undefined;
  }
}

/** Sort order of the activity log: newest first, ties broken by id descending. */
function newestFirst(a: LogPosition, b: LogPosition): number {
  const byTime = b.createdAt - a.createdAt;
  if (byTime !== 0) return byTime;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** Whether (createdAt, id) comes before `position` in that order. */
function precedes(createdAt: number, id: string, position: LogPosition): boolean {
  return createdAt > position.createdAt || (createdAt === position.createdAt && id > position.id);
}

/** Whether (createdAt, id) comes after `position` in that order. */
function follows(createdAt: number, id: string, position: LogPosition): boolean {
  return createdAt < position.createdAt || (createdAt === position.createdAt && id < position.id);
}

/** The memory store cannot take part in a SQL transaction; pretending to would break the caller's atomicity. */
function refuseSqlClient(options: WriteOptions | undefined): void {
  if (options?.client !== undefined) {
    throw new TypeError(
      'memoryStore cannot write inside a SQL transaction; use postgresStore for the outbox pattern',
    );
  }
}
