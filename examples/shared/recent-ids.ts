/**
 * A bounded set of recently seen ids: the receiver's idempotency guard.
 *
 * Every id is kept for `ttlMs` and at most `maxEntries` ids are kept at all, so memory stays bounded
 * however many deliveries arrive (the spec's `new Set()` grows forever). Ids are never refreshed, so
 * insertion order is also expiry order: the oldest entry is always the first one in the Map, expired
 * entries are dropped from the front as new ones arrive, and eviction under pressure drops the oldest.
 *
 * This guards one process. Receivers running several instances need a shared store instead: a unique
 * constraint on the delivery id in the table the event is written to, or Redis `SET id 1 NX EX <ttl>`.
 */
export interface RecentIdsOptions {
  /** How long an id is remembered. Default 1 hour (retries arrive within 30 s; manual redeliveries later). */
  ttlMs?: number;
  /** Most ids kept at once; the oldest are evicted first. Default 100 000 (a few MB). */
  maxEntries?: number;
  /** Milliseconds from a monotonic clock; for tests. */
  now?: () => number;
}

export class RecentIds {
  readonly #seenAt = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** Ids dropped because the set was full before their TTL ran out: each is a gap in the guard. */
  evicted = 0;

  constructor(options: RecentIdsOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 60 * 60 * 1000;
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#now = options.now ?? (() => performance.now());
    if (!(this.#ttlMs > 0) || !Number.isSafeInteger(this.#maxEntries) || this.#maxEntries < 1) {
      throw new TypeError('RecentIds: ttlMs must be positive and maxEntries a positive integer');
    }
  }

  /** Remembers `id`. Returns false (and changes nothing) if it was already seen within the TTL. */
  add(id: string): boolean {
    const now = this.#now();
    this.#prune(now);
    if (this.#seenAt.has(id)) return false;
    this.#seenAt.set(id, now);
    if (this.#seenAt.size > this.#maxEntries) {
      const oldest = this.#seenAt.keys().next().value as string;
      this.#seenAt.delete(oldest);
      this.evicted++;
    }
    return true;
  }

  has(id: string): boolean {
    this.#prune(this.#now());
    return this.#seenAt.has(id);
  }

  /** Forgets `id`, e.g. when processing it failed, so that a redelivery is processed again. */
  delete(id: string): boolean {
    return this.#seenAt.delete(id);
  }

  get size(): number {
    this.#prune(this.#now());
    return this.#seenAt.size;
  }

  #prune(now: number): void {
    for (const [id, at] of this.#seenAt) {
      if (now - at < this.#ttlMs) return;
      this.#seenAt.delete(id);
    }
  }
}
