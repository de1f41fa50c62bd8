import type { AttemptOutcome, CompletionEffect, Store } from '../adapters/types.js';

/** The most outcomes one write takes. */
export const MAX_WRITE_BATCH = 512;

/**
 * Writes attempt outcomes to the store in batches: while one write is in progress, further outcomes queue
 * up and go out together in the next, at most `MAX_WRITE_BATCH` at a time. A failed write is kept and
 * retried, so no outcome is dropped; after a failure the writes take half as many until the backlog is
 * written (a batch that grew past the database's statement timeout while writes stalled would otherwise
 * fail for ever), and a single
 * outcome that fails goes to the back of the queue (one the store refuses must not hold up the others).
 */
export class CompletionWriter {
  readonly #store: Store;
  readonly #onEffects: (effects: CompletionEffect[], written: readonly AttemptOutcome[]) => void;
  readonly #onError: (error: unknown) => void;
  readonly #retryDelayMs: number;
  readonly #highWater: number;
  #queued: AttemptOutcome[] = [];
  #writing: Promise<void> | null = null;
  #batchLimit = MAX_WRITE_BATCH;
  #failing = false;

  constructor(options: {
    store: Store;
    /** After each successful write: its effects, and the outcomes that write recorded. */
    onEffects: (effects: CompletionEffect[], written: readonly AttemptOutcome[]) => void;
    onError: (error: unknown) => void;
    retryDelayMs?: number;
    /** Outcomes waiting to be written at which `backedUp` turns true. */
    highWater?: number;
  }) {
    this.#store = options.store;
    this.#onEffects = options.onEffects;
    this.#onError = options.onError;
    this.#retryDelayMs = options.retryDelayMs ?? 1000;
    this.#highWater = options.highWater ?? MAX_WRITE_BATCH;
  }

  /** The last write failed, or outcomes are arriving faster than they are written. */
  get backedUp(): boolean {
    return this.#failing || this.#queued.length >= this.#highWater;
  }

  add(outcome: AttemptOutcome): void {
    this.#queued.push(outcome);
    this.#writing ??= this.#drain();
  }

  /** Resolves once everything added so far is written. */
  async flush(): Promise<void> {
    while (this.#writing !== null) await this.#writing;
  }

  async #drain(): Promise<void> {
    while (this.#queued.length > 0) {
      const batch =
        this.#queued.length <= this.#batchLimit ? this.#queued : this.#queued.slice(0, this.#batchLimit);
      this.#queued = batch === this.#queued ? [] : this.#queued.slice(batch.length);
      let effects: CompletionEffect[];
      try {
        effects = await this.#store.completeAttempts(batch);
      } catch (error) {
        this.#report(error);
        this.#failing = true;
        this.#queued = batch.length === 1 ? [...this.#queued, ...batch] : [...batch, ...this.#queued];
        this.#batchLimit = Math.max(1, Math.ceil(batch.length / 2));
        await new Promise((resolve) => setTimeout(resolve, this.#retryDelayMs));
        continue;
      }
      this.#failing = false;
      // Back to full size once the backlog is written; until then at the size that went through.
      if (this.#queued.length === 0) this.#batchLimit = MAX_WRITE_BATCH;
      try {
        this.#onEffects(effects, batch);
      } catch (error) {
        this.#report(error);
      }
    }
    this.#writing = null;
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
