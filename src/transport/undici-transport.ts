import { performance } from 'node:perf_hooks';
import { createSecureContext, rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import type { Transport, TransportRequest, TransportResult } from '../adapters/types.js';
import { privateHostReason } from '../core/network.js';
import type { AttemptErrorCode } from '../core/records.js';
import { BLOCKED_ADDRESS, guardedLookup } from './guarded-lookup.js';

/** How much of a response body is kept for the activity log. */
export const RESPONSE_SNIPPET_BYTES = 4096;
/** How much more is read (and dropped) so the connection can be reused; past that the socket is closed. */
const DRAIN_LIMIT_BYTES = 64 * 1024;

export interface UndiciTransportOptions {
  /** Extra trusted CA certificates (PEM). Certificates are always verified. */
  tls?: { ca?: string | Buffer | readonly (string | Buffer)[] };
  /** Allow loopback, private and reserved addresses, at connect time and as IP literals. */
  allowPrivateNetworks?: boolean;
  /** Connections kept per origin. */
  connectionsPerOrigin?: number;
  keepAliveTimeoutMs?: number;
  /** How long a connection may take to open, TLS handshake included; default 10000 (undici's). */
  connectTimeoutMs?: number;
}

/**
 * The default transport, on undici's dispatcher API rather than ofetch: it needs a connect-time `lookup`
 * hook (the SSRF guard), a response body read with a byte cap, and it is about four times faster than
 * `fetch` (on which ofetch is built) on this workload; see BENCHMARKS.md.
 */
export function undiciTransport(options: UndiciTransportOptions = {}): Transport {
  const allowPrivate = options.allowPrivateNetworks ?? false;
  const extraCAs = options.tls?.ca === undefined ? [] : [options.tls.ca].flat();
  // Node's `ca` replaces the default trust store; ours adds to it. Built once: given as `ca`, every new
  // connection would parse the ~150 bundled roots again (about 20 ms of CPU and 1 MB of memory each).
  const secureContext =
    extraCAs.length > 0 ? createSecureContext({ ca: [...rootCertificates, ...extraCAs] }) : undefined;
  const connectionsPerOrigin = options.connectionsPerOrigin ?? 16;
  const agent = new Agent({
    connect: {
      ...(secureContext !== undefined && { secureContext }),
      ...(!allowPrivate && { lookup: guardedLookup }),
      timeout: options.connectTimeoutMs ?? 10_000,
    },
    connections: connectionsPerOrigin,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
    pipelining: 1,
  });

  /** Sends not yet returned: `close` waits for them (each is bounded by its timeout). */
  const sending = new Set<Promise<TransportResult>>();
  /**
   * undici cannot drop a queued request whose attempt gave up until a connection opens for it, so against
   * a black hole (a TCP or TLS handshake that never completes) the requests given up on would pile up in
   * its queue, each holding its body and costing one more connect timeout. So undici gets at most one
   * request per connection per origin; the rest wait here. A request's timeout starts when it leaves this
   * queue: time spent waiting behind other requests to the same origin (several tenants' webhooks on one
   * shared host) is not the receiver's, and a request let through just before its deadline would reach
   * the receiver and then be cut off and sent again. One that waits past `queueTimeoutMs` is not sent.
   */
  const admit = gate(connectionsPerOrigin);

  function sendOnce(request: TransportRequest): Promise<TransportResult> {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return Promise.resolve({ kind: 'error', errorCode: 'network', message: 'invalid URL' });
    }
    if (url.protocol !== 'https:')
      return Promise.resolve({ kind: 'error', errorCode: 'network', message: 'URL must use HTTPS' });
    // IP literals never reach the lookup hook, and `localhost` names are loopback whatever the resolver says.
    if (!allowPrivate && privateHostReason(url.hostname) !== null) {
      return Promise.resolve({
        kind: 'error',
        errorCode: 'blocked_address',
        message: 'address is private or reserved',
      });
    }
    const origin = url.origin;
    const options: Dispatcher.DispatchOptions = {
      origin,
      path: url.pathname + url.search,
      method: 'POST',
      headers: request.headers,
      body: request.body,
      // The attempt's own timer (below) is the deadline for all of it. undici's header and body timers
      // would only repeat it, and each request would leave one of them in undici's timer list for up to
      // a second after it is cleared, long enough to reach the old generation as garbage.
      headersTimeout: 0,
      bodyTimeout: 0,
    };
    return new Promise((resolve) => {
      const attempt = new Attempt(resolve);
      const queuedAt = performance.now();
      let queueTimer: NodeJS.Timeout | undefined;
      let admitted = false;
      attempt.leaveQueue = admit(origin, (release) => {
        admitted = true;
        clearTimeout(queueTimer);
        attempt.waitedMs = Math.round(performance.now() - queuedAt);
        attempt.release = release;
        attempt.timer = setTimeout(() => attempt.giveUp(), request.timeoutMs);
        agent.dispatch(options, attempt);
      });
      // Only a request that has to wait gets a queue deadline (most are let through at once).
      if (!admitted) {
        queueTimer = setTimeout(() => attempt.notSent(), request.queueTimeoutMs ?? request.timeoutMs);
      }
    });
  }

  return {
    send(request) {
      const result = sendOnce(request);
      sending.add(result);
      const forget = () => sending.delete(result);
      result.then(forget, forget);
      return result;
    },

    // Waits for the sends in progress, then drops what undici still holds: connects that lost the race to
    // their deadline (undici's `close` would wait out its 10 s connect timeout) and idle keep-alive sockets.
    async close() {
      await Promise.allSettled([...sending]);
      await agent.destroy();
    },
  };
}

/**
 * One attempt, as undici's dispatch handler: it keeps the status, the two headers the dispatcher reads and
 * the first 4 KiB of the body, drops the rest as it streams, and settles once: on the response's end, on
 * an error, or at the deadline, whichever comes first. These callbacks cost less CPU per delivery than
 * `agent.request`, which builds a response stream and listens on an AbortSignal (BENCHMARKS.md).
 */
class Attempt implements Dispatcher.DispatchHandler {
  timer: NodeJS.Timeout | undefined;
  /** Takes the attempt out of the per-origin queue if it is still waiting there. */
  leaveQueue: (() => void) | undefined;
  /** Frees the per-origin slot; called once undici is done with the request, which may be after we are. */
  release: (() => void) | undefined;
  /** How long it waited for the slot (reported, so that the wait is not counted as the receiver's). */
  waitedMs = 0;
  #settle: ((result: TransportResult) => void) | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #statusCode = 0;
  #retryAfter: string | undefined;
  #location: string | undefined;
  readonly #kept: Buffer[] = [];
  #keptBytes = 0;
  #seen = 0;

  constructor(settle: (result: TransportResult) => void) {
    this.#settle = settle;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // undici holds a request until it has a connection; one given up on meanwhile goes no further.
    if (this.#settle === undefined) controller.abort(new Error('attempt timed out'));
    else this.#controller = controller;
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    this.#statusCode = statusCode;
    this.#retryAfter = first(headers['retry-after']);
    this.#location = first(headers.location);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#seen += chunk.length;
    if (this.#keptBytes < RESPONSE_SNIPPET_BYTES) {
      const part = chunk.subarray(0, RESPONSE_SNIPPET_BYTES - this.#keptBytes);
      this.#kept.push(part);
      this.#keptBytes += part.length;
    }
    if (this.#seen > RESPONSE_SNIPPET_BYTES + DRAIN_LIMIT_BYTES) {
      // Past the drain limit the connection is not worth saving: answer now and close the socket.
      this.#respond();
      controller.abort(new Error('response body over the drain limit'));
    }
  }

  onResponseEnd(): void {
    this.#respond();
    this.#done();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const errorCode = classifyError(error);
    this.#finish({ kind: 'error', errorCode, message: describe(error, errorCode) });
    this.#done();
  }

  /** Still waiting for a slot at its queue deadline: it leaves the queue unsent. */
  notSent(): void {
    this.leaveQueue?.();
    this.#finish({ kind: 'not_sent', message: 'no free connection to the origin in time' });
  }

  /** The deadline: the attempt ends now, whether or not undici has a connection for it yet. */
  giveUp(): void {
    this.leaveQueue?.();
    if (this.#settle === undefined) return;
    this.#finish({ kind: 'error', errorCode: 'timeout', message: 'attempt timed out' });
    this.#controller?.abort(new Error('attempt timed out'));
  }

  #respond(): void {
    this.#finish({
      kind: 'response',
      statusCode: this.#statusCode,
      headers: { 'retry-after': this.#retryAfter, location: this.#location },
      bodySnippet: Buffer.concat(this.#kept).toString('utf8'),
    });
  }

  #finish(result: TransportResult): void {
    const settle = this.#settle;
    if (settle === undefined) return;
    this.#settle = undefined;
    clearTimeout(this.timer);
    if (this.waitedMs > 0 && result.kind !== 'not_sent') result.waitedMs = this.waitedMs;
    settle(result);
  }

  #done(): void {
    const release = this.release;
    this.release = undefined;
    release?.();
  }
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * A per-key FIFO admission gate: `admit(key, grant)` calls `grant(release)` once fewer than `limit`
 * holders of `key` remain (at once if a slot is free), and returns a function that withdraws a request
 * still waiting.
 */
function gate(limit: number): (key: string, grant: (release: () => void) => void) => () => void {
  const gates = new Map<string, { active: number; waiting: Set<() => void> }>();
  return (key, grant) => {
    let entry = gates.get(key);
    if (entry === undefined) {
      entry = { active: 0, waiting: new Set() };
      gates.set(key, entry);
    }
    const held = entry;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      // The slot passes straight on to the first waiter, if any (a Set iterates in insertion order).
      const next = held.waiting.values().next();
      if (!next.done) {
        held.waiting.delete(next.value);
        next.value();
      } else if (--held.active === 0 && gates.get(key) === held) gates.delete(key);
    };
    if (held.active < limit) {
      held.active++;
      grant(release);
      return noop;
    }
    const waiter = (): void => grant(release);
    held.waiting.add(waiter);
    return () => held.waiting.delete(waiter);
  };
}

function noop(): void {}

const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH|ERR_OSSL)/;

function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

export function classifyError(error: unknown): AttemptErrorCode {
  for (const code of errorCodes(error)) {
    if (code === BLOCKED_ADDRESS) return 'blocked_address';
    if (code === 'ECONNREFUSED') return 'connection_refused';
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL' || code === 'EAI_NODATA')
      return 'dns';
    if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') return 'connection_reset';
    if (code.startsWith('UND_ERR_') && code.endsWith('TIMEOUT')) return 'timeout';
    if (code === 'ETIMEDOUT') return 'timeout';
    if (TLS_CODE.test(code)) return 'tls';
  }
  return 'network';
}

/** A short reason for logs: the error's code and message, never request headers (they carry signatures). */
function describe(error: unknown, errorCode: AttemptErrorCode): string {
  if (errorCode === 'timeout') return 'attempt timed out';
  const message = error instanceof Error ? error.message : String(error);
  return message.slice(0, 200);
}
