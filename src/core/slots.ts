/**
 * Attempts in flight per webhook and per site, and what a claim may still take for each. The per-site cap
 * keeps one tenant's slow receivers (up to 10 webhooks, each answering just inside the timeout) from
 * holding every slot while the other tenants' deliveries wait behind its backlog.
 *
 * The store only knows per-webhook limits (`busyWebhooks`), so a site's remaining slots are shared out
 * among the site's webhooks this process has seen while the site had attempts in flight. A claim can still
 * return more for a site than it has room for (a webhook not seen yet); those are not started (see
 * `hasRoom`) and the caller gives them back.
 */
export class InFlightSlots {
  readonly #perWebhook: number;
  readonly #perSite: number;
  readonly #webhooks = new Map<string, number>();
  readonly #sites = new Map<string, { busy: number; webhooks: Set<string> }>();
  /** Where the hand-out of a site's remaining slots starts; moves on at each claim. */
  #turn = 0;

  constructor(perWebhook: number, perSite: number) {
    this.#perWebhook = perWebhook;
    this.#perSite = perSite;
  }

  /** Whether the site is under its cap, so one more attempt to it may start. */
  hasRoom(siteId: string): boolean {
    return (this.#sites.get(siteId)?.busy ?? 0) < this.#perSite;
  }

  take(webhookId: string, siteId: string): void {
    this.#webhooks.set(webhookId, (this.#webhooks.get(webhookId) ?? 0) + 1);
    const site = this.#sites.get(siteId) ?? { busy: 0, webhooks: new Set<string>() };
    site.busy++;
    site.webhooks.add(webhookId);
    this.#sites.set(siteId, site);
  }

  /** Ends one attempt; true if its webhook or site was at its limit (work passed over may be claimable now). */
  give(webhookId: string, siteId: string): boolean {
    const count = this.#webhooks.get(webhookId) ?? 1;
    if (count <= 1) this.#webhooks.delete(webhookId);
    else this.#webhooks.set(webhookId, count - 1);
    const site = this.#sites.get(siteId);
    const siteWasFull = site !== undefined && site.busy >= this.#perSite;
    if (site !== undefined && --site.busy <= 0) this.#sites.delete(siteId);
    return count >= this.#perWebhook || siteWasFull;
  }

  /**
   * Remembers a webhook of a site that is at its cap (a claim returned it), so the next claim leaves it
   * out; false if it was known already.
   */
  note(webhookId: string, siteId: string): boolean {
    const site = this.#sites.get(siteId);
    if (site === undefined || site.webhooks.has(webhookId)) return false;
    site.webhooks.add(webhookId);
    return true;
  }

  /**
   * `busyWebhooks` for a claim: each webhook's attempts in flight, raised so that the known webhooks of a
   * site together have exactly the site's remaining slots. These are handed out one at a time, starting
   * from a webhook further along at each claim, so that a webhook with nothing due cannot keep its
   * siblings waiting for long.
   */
  claimLimits(): Map<string, number> {
    const limits = new Map(this.#webhooks);
    this.#turn++;
    for (const site of this.#sites.values()) {
      const ids = [...site.webhooks];
      const room = ids.map((id) => Math.max(0, this.#perWebhook - (this.#webhooks.get(id) ?? 0)));
      let left = Math.max(0, this.#perSite - site.busy);
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
        limits.set(id, this.#perWebhook - share[j]!);
      });
    }
    return limits;
  }

  /** Webhooks a claim can take nothing from whatever the turn (for `nextDueAt`'s `excludeWebhookIds`). */
  saturated(): string[] {
    const full = new Set<string>();
    for (const [webhookId, busy] of this.#webhooks) if (busy >= this.#perWebhook) full.add(webhookId);
    for (const site of this.#sites.values()) {
      if (site.busy >= this.#perSite) for (const webhookId of site.webhooks) full.add(webhookId);
    }
    return [...full];
  }
}
