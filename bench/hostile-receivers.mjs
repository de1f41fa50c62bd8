// Hostile HTTPS receivers for bench/hostile.mjs, run as a child process (child_process.fork) so that their
// memory and CPU are not counted against the dispatcher being measured.
//
// Protocol over IPC:
//   parent -> { type: 'listen', trusted: { cert, key }, untrusted: { cert, key }, dripMs }
//   child  -> { type: 'listening', ports: { [kind]: port } }
// Every server listens on 127.0.0.1. Kinds:
//   healthy      200 'OK' at once (the control: its deliveries must keep flowing)
//   endless      200, then a chunked body that never ends (backpressure respected)
//   dripHeaders  the status line, then one header line every dripMs, never finishing the head
//   dripBody     200 and headers at once, then one body byte every dripMs, forever
//   hang         reads the request, never answers
//   reset        reads the request, then destroys the socket
//   hugeHeaders  200 with about 64 KiB of headers (undici's client refuses more than 16 KiB)
//   silentTcp    accepts TCP and never says a word: the TLS handshake never completes
//   untrusted    a valid-looking certificate from a CA the dispatcher does not trust
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer } from 'node:net';

const HUGE_VALUE = 'y'.repeat(100);

function handlers(dripMs) {
  return {
    healthy: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('OK');
    },
    endless: (_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let stopped = false;
      res.once('close', () => {
        stopped = true;
      });
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const pump = () => {
        while (!stopped && !res.destroyed) {
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
      };
      pump();
    },
    dripHeaders: (_req, res) => {
      const socket = res.socket;
      if (!socket) return;
      socket.write('HTTP/1.1 200 OK\r\n');
      let n = 0;
      const timer = setInterval(() => {
        if (socket.writable) socket.write(`x-drip-${n++}: .\r\n`);
      }, dripMs);
      socket.once('close', () => clearInterval(timer));
    },
    dripBody: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.flushHeaders();
      const timer = setInterval(() => {
        if (!res.destroyed) res.write('x');
      }, dripMs);
      res.once('close', () => clearInterval(timer));
    },
    hang: () => {},
    reset: (_req, res) => {
      res.socket?.destroy();
    },
    hugeHeaders: (_req, res) => {
      for (let i = 0; i < 600; i++) res.setHeader(`x-huge-${i}`, HUGE_VALUE);
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('OK');
    },
  };
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

function httpsServer({ cert, key }, handler) {
  const server = createHttpsServer({ cert, key, keepAlive: true }, (req, res) => {
    req.on('error', () => res.destroy());
    req.resume();
    req.on('end', () => handler(req, res));
  });
  server.on('tlsClientError', () => {});
  server.on('clientError', (_error, socket) => socket.destroy());
  return server;
}

process.on('message', async (message) => {
  if (message?.type !== 'listen') return;
  const ports = {};
  for (const [kind, handler] of Object.entries(handlers(message.dripMs ?? 20))) {
    ports[kind] = await listen(httpsServer(message.trusted, handler));
  }
  ports.untrusted = await listen(httpsServer(message.untrusted, handlers(0).healthy));
  const silent = createTcpServer((socket) => socket.on('error', () => {}));
  ports.silentTcp = await listen(silent);
  process.send({ type: 'listening', ports });
});

process.on('disconnect', () => process.exit(0));
