/**
 * Small server helpers shared by the examples: listen on HTTP or HTTPS, and close for real (a plain
 * `server.close()` waits for keep-alive connections, which can take seconds).
 */
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface ServeOptions {
  /** Default `127.0.0.1`: loopback only, unless you ask for more. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  /** A PEM certificate and key: serve HTTPS. Without: plain HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer } | undefined;
  /** How long `close()` lets requests in progress finish before cutting connections. Default 1000 ms. */
  graceMs?: number;
}

export interface RunningServer {
  server: Server;
  port: number;
  /** `https://127.0.0.1:<port>` (or `http://…`). */
  origin: string;
  /** Stops accepting connections, lets requests in progress finish (up to `graceMs`), then cuts the rest. */
  close(): Promise<void>;
}

export async function serve(handler: RequestListener, options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const graceMs = options.graceMs ?? 1000;
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : createHttpServer(handler);
  // A client that gives up during the TLS handshake is not our error.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const scheme = options.tls ? 'https' : 'http';
  const origin = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    origin,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/**
 * Runs `shutdown` on the first SIGINT or SIGTERM, then exits (0, or 1 if shutdown failed). A second
 * signal exits at once.
 */
export function onShutdown(shutdown: () => Promise<void>, log: (line: string) => void = console.log): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      log(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    log(`${signal}: shutting down`);
    shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('shutdown failed:', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
}
