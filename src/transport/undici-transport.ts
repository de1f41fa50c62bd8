import { createSecureContext, rootCertificates } from 'node:tls';
import { Agent } from 'undici';
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
  tls?: { ca?: string | string[] };
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
   * request per connection per origin; the rest wait here, and leave at their deadline.
   */
  const admit = gate(connectionsPerOrigin);

  async function sendOnce(request: TransportRequest): Promise<TransportResult> {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return { kind: 'error', errorCode: 'network', message: 'invalid URL' };
    }
    if (url.protocol !== 'https:')
      return { kind: 'error', errorCode: 'network', message: 'URL must use HTTPS' };
    // IP literals never reach the lookup hook, and `localhost` names are loopback whatever the resolver says.
    if (!allowPrivate && privateHostReason(url.hostname) !== null) {
      return { kind: 'error', errorCode: 'blocked_address', message: 'address is private or reserved' };
    }
    const controller = new AbortController();
    // undici holds back an abort until the request has a connection, so a receiver that accepts TCP and
    // never finishes the TLS handshake would keep the attempt for undici's 10 s connect timeout. Racing
    // the deadline ends the attempt on time; undici drops the request once its connect settles.
    const deadline = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
    });
    const timer = setTimeout(() => controller.abort(), request.timeoutMs);
    let pending: ReturnType<typeof agent.request> | undefined;
    let release: (() => void) | undefined;
    try {
      release = await admit(url.origin, deadline);
      if (controller.signal.aborted) throw controller.signal.reason;
      pending = agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'POST',
        headers: request.headers,
        body: request.body,
        signal: controller.signal,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
      });
      const response = await Promise.race([pending, deadline]);
      const bodySnippet = await readSnippet(response.body);
      const retryAfter = response.headers['retry-after'];
      const location = response.headers.location;
      return {
        kind: 'response',
        statusCode: response.statusCode,
        headers: {
          'retry-after': Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
          location: Array.isArray(location) ? location[0] : location,
        },
        bodySnippet,
      };
    } catch (error) {
      // A request that lost the race may still get a response later: never leave its body unread.
      if (controller.signal.aborted) pending?.then((late) => late.body.destroy()).catch(() => {});
      const errorCode = controller.signal.aborted ? 'timeout' : classifyError(error);
      return { kind: 'error', errorCode, message: describe(error, errorCode) };
    } finally {
      clearTimeout(timer);
      // The slot is free once undici is done with the request: now, or when a request given up settles.
      if (release !== undefined) {
        if (pending === undefined) release();
        else pending.then(release, release);
      }
    }
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
 * A per-key FIFO admission gate: `admit(key, deadline)` resolves with a release function once fewer than
 * `limit` holders of `key` remain, or rejects with the deadline's reason if that comes first.
 */
function gate(limit: number): (key: string, deadline: Promise<never>) => Promise<() => void> {
  const gates = new Map<string, { active: number; waiting: (() => void)[] }>();
  return (key, deadline) => {
    let entry = gates.get(key);
    if (entry === undefined) {
      entry = { active: 0, waiting: [] };
      gates.set(key, entry);
    }
    const held = entry;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      // The slot passes straight on to the first waiter, if any.
      const next = held.waiting.shift();
      if (next !== undefined) next();
      else if (--held.active === 0 && gates.get(key) === held) gates.delete(key);
    };
    if (held.active < limit) {
      held.active++;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const grant = (): void => resolve(release);
      held.waiting.push(grant);
      deadline.catch((reason: unknown) => {
        const index = held.waiting.indexOf(grant);
        if (index === -1) return; // already granted: the caller sees the deadline and releases
        held.waiting.splice(index, 1);
        reject(reason);
      });
    });
  };
}

/** Keeps the first 4 KiB, drops the rest as it streams, and gives up (closing the socket) past the drain limit. */
async function readSnippet(body: AsyncIterable<Buffer>): Promise<string> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let seen = 0;
  for await (const chunk of body) {
    seen += chunk.length;
    if (keptBytes < RESPONSE_SNIPPET_BYTES) {
      const part = chunk.subarray(0, RESPONSE_SNIPPET_BYTES - keptBytes);
      kept.push(part);
      keptBytes += part.length;
    }
    if (seen > RESPONSE_SNIPPET_BYTES + DRAIN_LIMIT_BYTES) break;
  }
  return Buffer.concat(kept).toString('utf8');
}

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
