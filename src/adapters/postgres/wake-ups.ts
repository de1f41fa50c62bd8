/**
 * NOTIFYs sent after the commit of writes made on the pool, coalesced: one is sent at a time, and wake-ups
 * asked for while it is on its way share the next one. `wake()` resolves once a NOTIFY sent after it was
 * asked for has been sent, so an emit that returns has woken the other processes' dispatchers, as when
 * the NOTIFY was part of its transaction.
 *
 * Why not `pg_notify` inside every write: Postgres serialises the commits of transactions that NOTIFY
 * (each holds the notification queue's lock until its commit is flushed), so concurrent emits lost their
 * group commit (bench/postgres-emit.mjs, BENCHMARKS.md). The store still sends it inside the write when
 * that is the caller's transaction (the outbox), or the only insert it has in progress (one round trip).
 */
export class CoalescedWakeUps {
  readonly #send: () => Promise<unknown>;
  readonly #onError: (error: unknown) => void;
  /** Running while NOTIFYs are being sent. */
  #sending: Promise<void> | null = null;
  /** Those waiting for a NOTIFY that has not started yet: the next one. */
  #waiting: { promise: Promise<void>; resolve: () => void } | null = null;

  /** `send` runs the NOTIFY; a failure goes to `onError` (dispatchers' polls find the work meanwhile). */
  constructor(send: () => Promise<unknown>, onError: (error: unknown) => void) {
    this.#send = send;
    this.#onError = onError;
  }

  /** Asks for a NOTIFY after everything committed so far; resolves once it is sent (or has failed). */
  wake(): Promise<void> {
    if (this.#waiting === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((settle) => {
        resolve = settle;
      });
      this.#waiting = { promise, resolve };
    }
    const sent = this.#waiting.promise;
    this.#sending ??= this.#sendWhileAsked();
    return sent;
  }

  /** Resolves once every wake-up asked for so far has been sent (or has failed). */
  async flush(): Promise<void> {
    while (this.#sending !== null) await this.#sending;
  }

  async #sendWhileAsked(): Promise<void> {
    while (this.#waiting !== null) {
      const waiters = this.#waiting;
      this.#waiting = null;
      try {
        await this.#send();
      } catch (error) {
        this.#onError(error);
      }
      waiters.resolve();
    }
    this.#sending = null;
  }
}
