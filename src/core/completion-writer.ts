import type { AttemptOutcome, CompletionEffect, Store } from '../adapters/types.js';

/** The most outcomes one write takes. */
export const MAX_WRITE_BATCH = 512;
/** The longest wait between tries of an outcome set aside. */
const MAX_SET_ASIDE_WAIT_MS = 60_000;

/**
 * Writes attempt outcomes to the store in batches: while one write is in progress, further outcomes queue
 * up and go out together in the next, at most `MAX_WRITE_BATCH` at a time. A failed write is kept and
 * retried, so no outcome is dropped; after a failure the writes take half as many until the backlog is
 * written (a batch that grew past the database's statement timeout while writes stalled would otherwise
 * fail for ever). An outcome whose write fails on its own is set aside and retried on its own, between the
 * queue's writes, with a growing wait: one that the store refuses must not hold up the others, nor keep
 * the writer looking backed up; its webhook is reported stalled (`stalledWebhooks`) meanwhile.
 */
export class CompletionWriter {
  readonly #store: Store;
  readonly #onEffects: (effects: CompletionEffect[], written: readonly AttemptOutcome[]) => void;
  readonly #onError: (error: unknown) => void;
  readonly #onRelief: () => void;
  readonly #onUnstalled: () => void;
  readonly #retryDelayMs: number;
  readonly #highWater: number;
  #queued: AttemptOutcome[] = [];
  /** Outcomes whose write failed on its own, each with its failed tries and when to try it again. */
  #setAside: { outcome: AttemptOutcome; tries: number; retryAt: number }[] = [];
  #writing: Promise<void> | null = null;
  #batchLimit = MAX_WRITE_BATCH;
  /** Ends the wait for an outcome set aside when a new one arrives. */
  #wake: (() => void) | undefined;
  #failing = false;
  /** Outcomes in the queue's write in progress. */
  #inWrite = 0;
  /** The outcome set aside that is being tried again now. */
  #retrying: AttemptOutcome | undefined;

  constructor(options: {
    store: Store;
    /** After each successful write: its effects, and the outcomes that write recorded. */
    onEffects: (effects: CompletionEffect[], written: readonly AttemptOutcome[]) => void;
    onError: (error: unknown) => void;
    /** Called whenever `backedUp` may have turned false. */
    onRelief?: () => void;
    /** Called when an outcome set aside is written: its webhook is no longer stalled. */
    onUnstalled?: () => void;
    retryDelayMs?: number;
    /** Outcomes waiting to be written at which `backedUp` turns true. */
    highWater?: number;
  }) {
    this.#store = options.store;
    this.#onEffects = options.onEffects;
    this.#onError = options.onError;
    this.#onRelief = options.onRelief ?? (() => {});
    this.#onUnstalled = options.onUnstalled ?? (() => {});
    this.#retryDelayMs = options.retryDelayMs ?? 1000;
    this.#highWater = options.highWater ?? MAX_WRITE_BATCH;
  }

  /**
   * Outcomes are waiting behind a failed write, or arriving faster than they are written. Outcomes set
   * aside do not count: once only they are left, new attempts may go on (and show whether the store
   * writes).
   */
  get backedUp(): boolean {
    const waiting = this.#queued.length + this.#inWrite;
    return waiting >= this.#highWater || (this.#failing && waiting > 0);
  }

  /**
   * Webhooks with an outcome set aside: their outcomes are not being written (a webhook row locked
   * elsewhere, say), so sending them more would only add deliveries that are sent again later.
   */
  stalledWebhooks(): string[] {
    const stalled = this.#setAside.map((entry) => entry.outcome.attempt.webhookId);
    if (this.#retrying !== undefined) stalled.push(this.#retrying.attempt.webhookId);
    return stalled;
  }

  add(outcome: AttemptOutcome): void {
    this.#queued.push(outcome);
    this.#wake?.();
    this.#writing ??= this.#drain();
  }

  /** Resolves once everything added so far is written (outcomes set aside included). */
  async flush(): Promise<void> {
    while (this.#writing !== null) await this.#writing;
  }

  async #drain(): Promise<void> {
    while (this.#queued.length > 0 || this.#setAside.length > 0) {
      await this.#retrySetAside();
      if (this.#queued.length === 0) {
        if (this.#setAside.length === 0) continue;
        // Only outcomes set aside are left: wait for the first to be due, or for a new outcome.
        const wait = Math.min(...this.#setAside.map((entry) => entry.retryAt)) - Date.now();
        if (wait > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, wait);
            this.#wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.#wake = undefined;
        }
        continue;
      }
      const batch =
        this.#queued.length <= this.#batchLimit ? this.#queued : this.#queued.slice(0, this.#batchLimit);
      this.#queued = batch === this.#queued ? [] : this.#queued.slice(batch.length);
      let effects: CompletionEffect[];
      this.#inWrite = batch.length;
      try {
        effects = await this.#store.completeAttempts(batch);
      } catch (error) {
        this.#inWrite = 0;
        this.#report(error);
        this.#failing = true;
        if (batch.length === 1)
          this.#setAside.push(this.#later({ outcome: batch[0]!, tries: 0, retryAt: 0 }));
        else this.#queued = [...batch, ...this.#queued];
        this.#batchLimit = Math.max(1, Math.ceil(batch.length / 2));
        if (this.#queued.length === 0) this.#relieve();
        await sleep(this.#retryDelayMs);
        continue;
      }
      this.#inWrite = 0;
      this.#written(effects, batch);
    }
    this.#writing = null;
  }

  /**
   * Tries one outcome set aside whose time has come, alone: between the queue's writes, so that one whose
   * write failed for a passing reason (a dropped connection) is recorded within about the retry delay even
   * while the queue is never empty, while the queue waits for at most one such write per round. Each
   * failed try doubles the wait before the next (up to a minute).
   */
  async #retrySetAside(): Promise<void> {
    const now = Date.now();
    const index = this.#setAside.findIndex((entry) => entry.retryAt <= now);
    if (index === -1) return;
    const [entry] = this.#setAside.splice(index, 1);
    let effects: CompletionEffect[];
    this.#retrying = entry!.outcome;
    try {
      effects = await this.#store.completeAttempts([entry!.outcome]);
    } catch (error) {
      this.#report(error);
      this.#setAside.push(this.#later(entry!));
      return;
    } finally {
      this.#retrying = undefined;
    }
    this.#written(effects, [entry!.outcome]);
    try {
      this.#onUnstalled();
    } catch (error) {
      this.#report(error);
    }
  }

  #later(entry: { outcome: AttemptOutcome; tries: number; retryAt: number }) {
    const tries = entry.tries + 1;
    const wait = Math.min(MAX_SET_ASIDE_WAIT_MS, this.#retryDelayMs * 2 ** (tries - 1));
    return { outcome: entry.outcome, tries, retryAt: Date.now() + wait };
  }

  #written(effects: CompletionEffect[], batch: readonly AttemptOutcome[]): void {
    this.#failing = false;
    // Back to full size once the backlog is written; until then at the size that went through.
    if (this.#queued.length === 0) this.#batchLimit = MAX_WRITE_BATCH;
    try {
      this.#onEffects(effects, batch);
    } catch (error) {
      this.#report(error);
    }
    this.#relieve();
  }

  #relieve(): void {
    if (this.backedUp) return;
    try {
      this.#onRelief();
    } catch (error) {
      this.#report(error);
    }
  }

  /** `onError` is the host's: if it throws, the writer must still go on (or nothing queued is ever written). */
  #report(error: unknown): void {
    try {
      this.#onError(error);
    } catch {
      // Nowhere left to report it.
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
