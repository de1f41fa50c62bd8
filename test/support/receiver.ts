/**
 * A real HTTPS webhook receiver on loopback for tests, with a certificate from a test CA.
 * Records every request and answers through a swappable handler (see ./hostile.ts for nasty ones).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createTestCA, type TestCA } from './tls.js';

export interface RecordedRequest {
  method: string;
  /** Path plus query, as sent (e.g. `/webhook?x=1`). */
  url: string;
  /** Lower-cased header names, as node parses them. */
  headers: IncomingHttpHeaders;
  /** Raw body, decoded as UTF-8. */
  body: string;
  /** `performance.now()` when the request head arrived (monotonic; use for intervals). */
  receivedAt: number;
  /** Wall-clock time when the request head arrived. */
  receivedDate: Date;
}

export type Handler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

export interface ReceiverOptions {
  /** CA that issues the receiver's leaf; a fresh one is created when omitted. */
  ca?: TestCA;
  /** Answers each request after its body is read; default 200 `OK`. */
  handler?: Handler;
  /** Listen address; default `127.0.0.1`. */
  host?: string;
}

export interface Receiver {
  /** Every request received so far, in arrival order of completed bodies. */
  readonly requests: RecordedRequest[];
  /** PEM CA certificate to trust (`tls: { ca }`, `new Agent({ connect: { ca } })`). */
  readonly caCert: string;
  readonly port: number;
  /** `https://127.0.0.1:<port>` */
  readonly origin: string;
  /** `https://127.0.0.1:<port><path>`, path defaults to `/webhook`. */
  url(path?: string): string;
  /** Replaces the handler for subsequent requests. */
  setHandler(handler: Handler): void;
  /** Resolves with `requests` once at least `count` have been received; rejects after `timeoutMs` (default 5000). */
  waitFor(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /** Stops listening and destroys every open socket (hung requests included). Idempotent. */
  close(): Promise<void>;
}

export const ok: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('OK');
};

export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const ca = opts.ca ?? (await createTestCA());
  const host = opts.host ?? '127.0.0.1';
  const { cert, key } = await ca.issue();
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();
  let handler = opts.handler ?? ok;
  let closing: Promise<void> | undefined;

  const server = createServer({ cert, key, keepAlive: true }, (req: IncomingMessage, res: ServerResponse) => {
    const receivedAt = performance.now();
    const receivedDate = new Date();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        receivedAt,
        receivedDate,
      };
      requests.push(recorded);
      for (const wake of waiters) wake();
      Promise.resolve()
        .then(() => handler(recorded, res))
        .catch((err: unknown) => {
          if (res.headersSent) {
            res.destroy();
            return;
          }
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`receiver handler threw: ${String(err)}`);
        });
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // A client that aborts mid-handshake must not crash the test process.
  server.on('tlsClientError', () => {});

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const origin = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    requests,
    caCert: ca.caCert,
    port,
    origin,
    url: (path = '/webhook') => `${origin}${path}`,
    setHandler: (next) => {
      handler = next;
    },
    waitFor(count, timeoutMs = 5000) {
      return new Promise<RecordedRequest[]>((resolve, reject) => {
        const check = (): void => {
          if (requests.length >= count) finish();
          else if (closing) finish(new Error(`receiver.waitFor(${count}): receiver closed ${describe()}`));
        };
        const finish = (err?: Error): void => {
          clearTimeout(timer);
          waiters.delete(check);
          if (err) reject(err);
          else resolve(requests);
        };
        const describe = (): string =>
          `after ${requests.length} request(s)${requests.length ? `: ${requests.map((r) => `${r.method} ${r.url}`).join(', ')}` : ''}`;
        const timer = setTimeout(
          () =>
            finish(new Error(`receiver.waitFor(${count}): timed out after ${timeoutMs} ms ${describe()}`)),
          timeoutMs,
        );
        waiters.add(check);
        check();
      });
    },
    close() {
      if (!closing) {
        closing = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
        for (const wake of waiters) wake();
      }
      return closing;
    },
  };
}
