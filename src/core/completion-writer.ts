import type { AttemptOutcome, CompletionEffect, Store } from '../adapters/types.js';

/**
 * Writes attempt outcomes to the store in batches: while one write is in progress, further outcomes queue
 * up and go out together in the next. A failed write is kept and retried, so no outcome is dropped.
 */
export class CompletionWriter {
  readonly #store: Store;
  readonly #onEffects: (effects: CompletionEffect[], written: readonly AttemptOutcome[]) => void;
  readonly #onError: (error: unknown) => void;
  readonly #retryDelayMs: number;
  #queued: AttemptOutcome[] = [];
  #writing: Promise<void> | null = null;

  constructor(options: {
    store: Store;
    /** After each successful write: its effects, and the outcomes that write recorded. */
    onEffects: (effects: CompletionEffect[], written: readonly AttemptOutcome[]) => void;
    onError: (error: unknown) => void;
    retryDelayMs?: number;
  }) {
    this.#store = options.store;
    this.#onEffects = options.onEffects;
    this.#onError = options.onError;
    this.#retryDelayMs = options.retryDelayMs ?? 1000;
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
      const batch = this.#queued;
      this.#queued = [];
      let effects: CompletionEffect[];
      try {
        effects = await this.#store.completeAttempts(batch);
      } catch (error) {
        this.#report(error);
        this.#queued = [...batch, ...this.#queued];
        await new Promise((resolve) => setTimeout(resolve, this.#retryDelayMs));
        continue;
      }
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
