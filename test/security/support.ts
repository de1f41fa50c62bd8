/**
 * Shared pieces for the security tests: a per-file certificate authority (./certs.ts), loopback receivers
 * built on test/support/receiver.ts, raw TCP servers, log capture, and the hostile handlers
 * test/support/hostile.ts does not have (slow-drip body, huge headers).
 */
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { afterEach } from 'vitest';
import { capturingLogger, type LogLine } from '../support/logger.js';
import { type Handler, type Receiver, type ReceiverOptions, startReceiver } from '../support/receiver.js';
import type { TestCA } from '../support/tls.js';

export { createSecurityCA, type SecurityCA, securityCA } from './certs.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});
export function onCleanup(cleanup: () => Promise<unknown>): void {
  cleanups.push(cleanup);
}

/** A loopback HTTPS receiver (test/support/receiver.ts) closed after the test. */
export async function receiver(options: ReceiverOptions & { ca: TestCA }): Promise<Receiver> {
  const started = await startReceiver(options);
  onCleanup(() => started.close());
  return started;
}

/** A plain TCP server on 127.0.0.1 that hands each connection to `onConnection`; closed after the test. */
export async function rawServer(onConnection: (socket: Socket) => void): Promise<{ port: number }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as AddressInfo).port };
}

/** 200 with headers at once, then one body byte every `intervalMs`, forever (slowloris on the body). */
export function slowDripBody(intervalMs = 50): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.flushHeaders();
    const timer = setInterval(() => {
      if (!res.destroyed) res.write('x');
    }, intervalMs);
    res.once('close', () => clearInterval(timer));
  };
}

/** 200 with about `bytes` of response headers (undici's client refuses more than 16 KiB by default). */
export function hugeHeaders(bytes = 64 * 1024): Handler {
  return (_req, res) => {
    const value = 'y'.repeat(100);
    for (let i = 0; i * 110 < bytes; i++) res.setHeader(`x-huge-${i}`, value);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('OK');
  };
}

export { capturingLogger, type LogLine };

/** Names this machine's hosts file maps to a loopback address, other than `localhost` and `*.localhost`. */
export function loopbackNamesFromHostsFile(): string[] {
  let text = '';
  try {
    text = readFileSync('/etc/hosts', 'utf8');
  } catch {
    return [];
  }
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const [address, ...aliases] = line.replace(/#.*/, '').trim().split(/\s+/);
    if (address === undefined || !(address.startsWith('127.') || address === '::1')) continue;
    for (const alias of aliases) {
      const name = alias.toLowerCase();
      if (name !== '' && name !== 'localhost' && !name.endsWith('.localhost')) names.add(name);
    }
  }
  return [...names];
}
