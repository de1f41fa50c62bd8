import type { AttemptOutcome, CompletionEffect, Store } from '../adapters/types.js';

/** The most outcomes one write takes. */
export const MAX_WRITE_BATCH = 512;

/**
 * Writes attempt outcomes to the store in batches: while one write is in progress, further outcomes queue
 * up and go out together in the next, at most `MAX_WRITE_BATCH` at a time. A failed write is kept and
 * retried, so no outcome is dropped; after a failure the writes take half as many until the backlog is
 * written (a batch that grew past the database's statement timeout while writes stalled would otherwise
 * fail for ever). An outcome whose write fails on its own is set aside and retried on its own, about once
 * a second, between the queue's writes: one that the store refuses must not hold up the others, nor keep
 * the writer looking backed up.
 */
export class CompletionWriter {
  readonly #store: Store;
  readonly #onEffects: (effects: CompletionEffect[], written: readonly AttemptOutcome[]) => void;
  readonly #onError: (error: unknown) => void;
  readonly #onRelief: () => void;
  readonly #retryDelayMs: number;
  readonly #highWater: number;
  #queued: AttemptOutcome[] = [];
  /** Outcomes whose write failed on its own, each with when to try it again. */
  #setAside: { outcome: AttemptOutcome; retryAt: number }[] = [];
  #writing: Promise<void> | null = null;
  #batchLimit = MAX_WRITE_BATCH;
  /** Ends the wait for an outcome set aside when a new one arrives. */
  #wake: (() => void) | undefined;
  #failing = false;

  constructor(options: {
    store: Store;
    /** After each successful write: its effects, and the outcomes that write recorded. */
    onEffects: (effects: CompletionEffect[], written: readonly AttemptOutcome[]) => void;
    onError: (error: unknown) => void;
    /** Called whenever `backedUp` may have turned false. */
    onRelief?: () => void;
    retryDelayMs?: number;
    /** Outcomes waiting to be written at which `backedUp` turns true. */
    highWater?: number;
  }) {
    this.#store = options.store;
    this.#onEffects = options.onEffects;
    this.#onError = options.onError;
    this.#onRelief = options.onRelief ?? (() => {});
    this.#retryDelayMs = options.retryDelayMs ?? 1000;
    this.#highWater = options.highWater ?? MAX_WRITE_BATCH;
  }

  /**
   * Outcomes are waiting behind a failed write, or arriving faster than they are written. Outcomes set
   * aside do not count: once only they are left, new attempts may go on (and show whether the store
   * writes).
   */
  get backedUp(): boolean {
    return this.#queued.length >= this.#highWater || (this.#failing && this.#queued.length > 0);
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
      try {
        effects = await this.#store.completeAttempts(batch);
      } catch (error) {
        this.#report(error);
        this.#failing = true;
        if (batch.length === 1)
          this.#setAside.push({ outcome: batch[0]!, retryAt: Date.now() + this.#retryDelayMs });
        else this.#queued = [...batch, ...this.#queued];
        this.#batchLimit = Math.max(1, Math.ceil(batch.length / 2));
        if (this.#queued.length === 0) this.#relieve();
        await sleep(this.#retryDelayMs);
        continue;
      }
      this.#written(effects, batch);
    }
    this.#writing = null;
  }

  /**
   * Tries each outcome set aside whose time has come, alone: between the queue's writes, so that one whose
   * write failed for a passing reason (a dropped connection) is recorded within about the retry delay even
   * while the queue is never empty, and one the store refuses costs one failed write per retry delay.
   */
  async #retrySetAside(): Promise<void> {
    const now = Date.now();
    const due = this.#setAside.filter((entry) => entry.retryAt <= now);
    if (due.length === 0) return;
    this.#setAside = this.#setAside.filter((entry) => entry.retryAt > now);
    for (const entry of due) {
      let effects: CompletionEffect[];
      try {
        effects = await this.#store.completeAttempts([entry.outcome]);
      } catch (error) {
        this.#report(error);
        this.#setAside.push({ outcome: entry.outcome, retryAt: Date.now() + this.#retryDelayMs });
        continue;
      }
      this.#written(effects, [entry.outcome]);
    }
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
