/**
 * Attempts in flight per webhook, per site and per origin, and what a claim may still take for each. The
 * per-site cap keeps one tenant's slow receivers (up to 10 webhooks, each answering just inside the
 * timeout) from holding every slot while the other tenants' deliveries wait behind its backlog; the
 * per-origin cap does the same for one host that many tenants' webhooks share (a chat or automation
 * service), whose attempts beyond its connections would otherwise wait in the transport's queue, each
 * holding a slot.
 *
 * The store only knows per-webhook limits (`busyWebhooks`), so a group's (site's or origin's) remaining
 * slots are shared out among the group's webhooks this process has seen while the group had attempts in
 * flight. A claim can still return more for a group than it has room for (a webhook not seen yet); those
 * are not started (see `hasRoom`) and the caller gives them back.
 */
export class InFlightSlots {
  readonly #perWebhook: number;
  readonly #perSite: number;
  readonly #perOrigin: number;
  readonly #webhooks = new Map<string, number>();
  /** The origin each webhook was last seen with: a webhook whose URL moved leaves its old origin's group. */
  readonly #origins = new Map<string, string>();
  /** By `siteKey` / `originKey`: attempts in flight, and the webhooks seen meanwhile. */
  readonly #groups = new Map<string, Group>();
  /** Webhooks left out of claims until a time (`pause`), and the origins they were paused for. */
  readonly #paused = new Map<string, number>();
  readonly #pausedOrigins = new Map<string, number>();
  /** Where the hand-out of a group's remaining slots starts; moves on at each claim. */
  #turn = 0;

  constructor(perWebhook: number, perSite: number, perOrigin = Number.POSITIVE_INFINITY) {
    this.#perWebhook = perWebhook;
    this.#perSite = perSite;
    this.#perOrigin = perOrigin;
  }

  /** Whether the site (and the origin, if given) is under its cap, so one more attempt may start. */
  hasRoom(siteId: string, origin?: string): boolean {
    if (
      origin !== undefined &&
      this.#pausedOrigins.size > 0 &&
      (this.#pausedOrigins.get(origin) ?? 0) > Date.now()
    ) {
      return false;
    }
    for (const key of keys(siteId, origin)) {
      const group = this.#groups.get(key);
      if (group !== undefined && group.busy >= group.cap) return false;
    }
    return true;
  }

  take(webhookId: string, siteId: string, origin?: string): void {
    this.#webhooks.set(webhookId, (this.#webhooks.get(webhookId) ?? 0) + 1);
    this.#seenAt(webhookId, origin);
    this.#join(siteKey(siteId), this.#perSite, webhookId);
    if (origin !== undefined) this.#join(originKey(origin), this.#perOrigin, webhookId);
  }

  /** Counts one more attempt in the group, made with `cap` if it has nothing in flight yet. */
  #join(key: string, cap: number, webhookId: string): void {
    let group = this.#groups.get(key);
    if (group === undefined) {
      group = { busy: 0, cap, webhooks: new Set() };
      this.#groups.set(key, group);
    }
    group.busy++;
    group.webhooks.add(webhookId);
  }

  /** Ends one attempt; true if its webhook, site or origin was at its limit (work passed over may be claimable now). */
  give(webhookId: string, siteId: string, origin?: string): boolean {
    const count = this.#webhooks.get(webhookId) ?? 1;
    if (count <= 1) {
      this.#webhooks.delete(webhookId);
      const at = this.#origins.get(webhookId);
      if (at !== undefined && !this.#groups.get(originKey(at))?.webhooks.has(webhookId)) {
        this.#origins.delete(webhookId);
      }
    } else this.#webhooks.set(webhookId, count - 1);
    let wasFull = count >= this.#perWebhook;
    for (const key of keys(siteId, origin)) {
      const group = this.#groups.get(key);
      if (group === undefined) continue;
      if (group.busy >= group.cap) wasFull = true;
      if (--group.busy <= 0) this.#forget(key, group);
    }
    return wasFull;
  }

  /**
   * Remembers a webhook of a site or origin that is at its cap (a claim returned it), so the next claim
   * leaves it out; false if nothing new was learned.
   */
  note(webhookId: string, siteId: string, origin?: string): boolean {
    const tracked = origin !== undefined && this.#groups.has(originKey(origin));
    let learned = this.#seenAt(webhookId, tracked ? origin : undefined);
    for (const key of keys(siteId, origin)) {
      const group = this.#groups.get(key);
      if (group === undefined || group.webhooks.has(webhookId)) continue;
      group.webhooks.add(webhookId);
      learned = true;
    }
    return learned;
  }

  /**
   * `busyWebhooks` for a claim: each webhook's attempts in flight, raised so that the known webhooks of a
   * site or origin together have exactly its remaining slots (a webhook in both gets the smaller share).
   * These are handed out one at a time, starting from a webhook further along at each claim, so that a
   * webhook with nothing due cannot keep its siblings waiting for long.
   */
  claimLimits(): Map<string, number> {
    const limits = new Map(this.#webhooks);
    this.#turn++;
    for (const webhookId of this.#stillPaused()) limits.set(webhookId, this.#perWebhook);
    for (const group of this.#groups.values()) {
      const ids = [...group.webhooks];
      const room = ids.map((id) => Math.max(0, this.#perWebhook - (this.#webhooks.get(id) ?? 0)));
      let left = Math.max(0, group.cap - group.busy);
      if (room.reduce((sum, n) => sum + n, 0) <= left) continue;
      const share = ids.map(() => 0);
      for (let i = this.#turn; left > 0; i++) {
        const j = i % ids.length;
        if (share[j]! < room[j]!) {
          share[j]!++;
          left--;
        }
      }
      ids.forEach((id, j) => {
        limits.set(id, Math.max(limits.get(id) ?? 0, this.#perWebhook - share[j]!));
      });
    }
    return limits;
  }

  /**
   * Leaves the webhook out of claims, and keeps attempts to its origin from starting, until `until` (an
   * attempt to it found no connection free: claimed again at once, it would find none either).
   */
  pause(webhookId: string, origin: string, until: number): void {
    this.#paused.set(webhookId, until);
    this.#pausedOrigins.set(origin, Math.max(until, this.#pausedOrigins.get(origin) ?? 0));
  }

  /** When the earliest pause ends, or null. */
  nextResume(): number | null {
    const ends = [...this.#stillPaused()].map((webhookId) => this.#paused.get(webhookId)!);
    return ends.length === 0 ? null : Math.min(...ends);
  }

  /** The webhooks still paused; forgets ended pauses. */
  #stillPaused(): string[] {
    if (this.#paused.size === 0) return [];
    const now = Date.now();
    for (const [origin, until] of this.#pausedOrigins) if (until <= now) this.#pausedOrigins.delete(origin);
    const paused: string[] = [];
    for (const [webhookId, until] of this.#paused) {
      if (until <= now) this.#paused.delete(webhookId);
      else paused.push(webhookId);
    }
    return paused;
  }

  /** A group with nothing in flight: no cap to keep, and no webhooks to remember an origin for. */
  #forget(key: string, group: Group): void {
    this.#groups.delete(key);
    for (const webhookId of group.webhooks) {
      if (!this.#webhooks.has(webhookId) && originKey(this.#origins.get(webhookId) ?? '') === key) {
        this.#origins.delete(webhookId);
      }
    }
  }

  /** Records the webhook's origin; if it moved, takes it out of its old origin's group (true then). */
  #seenAt(webhookId: string, origin: string | undefined): boolean {
    if (origin === undefined) return false;
    const before = this.#origins.get(webhookId);
    this.#origins.set(webhookId, origin);
    if (before === undefined || before === origin) return false;
    this.#groups.get(originKey(before))?.webhooks.delete(webhookId);
    return true;
  }

  /** Webhooks a claim can take nothing from whatever the turn (for `nextDueAt`'s `excludeWebhookIds`). */
  saturated(): string[] {
    const full = new Set<string>(this.#stillPaused());
    for (const [webhookId, busy] of this.#webhooks) if (busy >= this.#perWebhook) full.add(webhookId);
    for (const group of this.#groups.values()) {
      if (group.busy >= group.cap) for (const webhookId of group.webhooks) full.add(webhookId);
    }
    return [...full];
  }
}

interface Group {
  busy: number;
  cap: number;
  webhooks: Set<string>;
}

const siteKey = (siteId: string): string => `site\u0000${siteId}`;

const originKey = (origin: string): string => `origin\u0000${origin}`;

function keys(siteId: string, origin: string | undefined): string[] {
  return origin === undefined ? [siteKey(siteId)] : [siteKey(siteId), originKey(origin)];
}
