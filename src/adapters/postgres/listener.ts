import type { Notification, Pool, PoolClient } from 'pg';

export interface NotificationListenerOptions {
  pool: Pool;
  channel: string;
  /** The `LISTEN` statement for the channel. */
  listenSql: string;
  /** Told when the listening connection could not be opened or was lost; it is reopened with backoff. */
  onError?: (error: unknown) => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * How often the listening connection is checked with `SELECT 1`, because a connection that a NAT or
   * load balancer dropped silently raises no error and simply stops delivering notifications. Default 30 s.
   */
  pingIntervalMs?: number;
  /** A ping unanswered for this long counts as a lost connection. Default 10 s. */
  pingTimeoutMs?: number;
}

interface Session {
  stopped: boolean;
  stop: () => void;
  /** Resolves when the session has let go of its connection. */
  done: Promise<void>;
}

/**
 * One dedicated connection, taken from the pool while anyone is subscribed, that LISTENs on the channel
 * and calls every listener on each notification. The connection is opened on the first subscription and
 * given back (closed, so no pooled connection is left listening) when the last one unsubscribes. When it
 * drops, it is reopened with exponential backoff; every time it starts listening, listeners are called
 * once, since notifications sent while nobody listened are lost. A periodic ping detects connections that
 * were dropped without an error.
 */
export class NotificationListener {
  readonly #options: NotificationListenerOptions;
  readonly #listeners = new Set<{ call: () => void }>();
  #session: Session | undefined;

  constructor(options: NotificationListenerOptions) {
    this.#options = options;
  }

  subscribe(listener: () => void): () => void {
    const entry = { call: listener };
    this.#listeners.add(entry);
    this.#session ??= this.#start();
    return () => {
      if (!this.#listeners.delete(entry)) return;
      if (this.#listeners.size === 0) void this.#stop();
    };
  }

  /** Unsubscribes everyone and gives the connection back. */
  async close(): Promise<void> {
    this.#listeners.clear();
    await this.#stop();
  }

  async #stop(): Promise<void> {
    const session = this.#session;
    if (session === undefined) return;
    this.#session = undefined;
    session.stop();
    await session.done;
  }

  #fire(): void {
    for (const entry of [...this.#listeners]) {
      try {
        entry.call();
      } catch (error) {
        this.#options.onError?.(error);
      }
    }
  }

  #start(): Session {
    let signal!: () => void;
    const stopped = new Promise<void>((resolve) => {
      signal = resolve;
    });
    const session: Session = {
      stopped: false,
      stop: () => {
        session.stopped = true;
        signal();
      },
      done: Promise.resolve(),
    };
    session.done = this.#run(session, stopped);
    return session;
  }

  async #run(session: Session, stopped: Promise<void>): Promise<void> {
    const { pool, channel, listenSql, onError } = this.#options;
    const minBackoff = this.#options.minBackoffMs ?? 50;
    const maxBackoff = this.#options.maxBackoffMs ?? 5_000;
    let backoff = minBackoff;
    while (!session.stopped) {
      let client: PoolClient | undefined;
      let failure: unknown;
      try {
        const connecting = pool.connect();
        const first = await Promise.race([connecting, stopped]);
        if (first === undefined) {
          // Stopped while waiting for a connection: close it whenever it arrives.
          connecting.then((late) => late.release(true)).catch(() => {});
          return;
        }
        client = first;
        const lost = new Promise<unknown>((resolve) => {
          // The 'error' listener stays for the client's lifetime: an unhandled 'error' event would crash.
          client!.on('error', resolve);
          client!.on('end', () => resolve(new Error('the LISTEN connection ended')));
        });
        client.on('notification', (message: Notification) => {
          if (message.channel === channel) this.#fire();
        });
        // Bounded like a ping: on a connection that died silently (a NAT reset) LISTEN would never answer,
        // and nothing else would notice, reconnect, or let close() return.
        if (!(await this.#answered(client.query(listenSql), stopped))) return;
        backoff = minBackoff;
        if (!session.stopped) this.#fire();
        const unanswered = this.#ping(client);
        try {
          failure = await Promise.race([lost, unanswered.lost, stopped.then(() => undefined)]);
        } finally {
          unanswered.stop();
        }
      } catch (error) {
        failure = error;
      } finally {
        client?.release(true);
      }
      if (session.stopped) return;
      onError?.(failure);
      const jittered = backoff * (0.8 + Math.random() * 0.4);
      backoff = Math.min(backoff * 2, maxBackoff);
      await Promise.race([sleep(jittered), stopped]);
    }
  }

  /**
   * Whether `query` answered: false if the session stopped first; rejects if the query failed or got no
   * answer within `pingTimeoutMs`.
   */
  async #answered(query: Promise<unknown>, stopped: Promise<void>): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const unanswered = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error('the LISTEN statement got no answer')),
        this.#options.pingTimeoutMs ?? 10_000,
      );
      timer.unref();
    });
    try {
      return await Promise.race([query.then(() => true), stopped.then(() => false), unanswered]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Pings the connection every `pingIntervalMs`; `lost` resolves when a ping fails or goes unanswered. */
  #ping(client: PoolClient): { lost: Promise<unknown>; stop: () => void } {
    const interval = this.#options.pingIntervalMs ?? 30_000;
    const timeout = this.#options.pingTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const lost = new Promise<unknown>((resolve) => {
      const schedule = () => {
        timer = setTimeout(() => {
          const deadline = setTimeout(
            () => resolve(new Error('the LISTEN connection stopped answering')),
            timeout,
          );
          deadline.unref();
          client.query('SELECT 1').then(
            () => {
              clearTimeout(deadline);
              if (!stopped) schedule();
            },
            (error: unknown) => {
              clearTimeout(deadline);
              resolve(error);
            },
          );
        }, interval);
        timer.unref();
      };
      schedule();
    });
    return {
      lost,
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
