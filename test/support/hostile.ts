/**
 * Canned receiver behaviours (handler factories for startReceiver / receiver.setHandler).
 * Each one stops its timers / writes when the socket closes, so receiver.close() never hangs.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { type Handler, ok } from './receiver.js';

/** Answers `code` with optional headers and body. */
export function status(code: number, headers: OutgoingHttpHeaders = {}, body = ''): Handler {
  return (_req, res) => {
    res.writeHead(code, headers);
    res.end(body);
  };
}

/** The nth request answered by this handler gets `handlers[n]`; the last one repeats. */
export function sequence(handlers: Handler[]): Handler {
  const last = handlers.at(-1);
  if (!last) throw new Error('sequence() needs at least one handler');
  let n = 0;
  return (req, res) => (handlers[n++] ?? last)(req, res);
}

/** Answers with `then` (default 200 OK) after `ms`, unless the socket closed first. */
export function delay(ms: number, then: Handler = ok): Handler {
  return (req, res) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => resolve(then(req, res)), ms);
      res.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
}

/** Never answers; the request stays open until the client gives up or the receiver closes. */
export function hang(): Handler {
  return () => {};
}

/** Drops the connection without any response. */
export function reset(): Handler {
  return (_req, res) => {
    res.socket?.destroy();
  };
}

/** Redirects to `location` (absolute or relative). */
export function redirect(location: string, code = 302): Handler {
  return (_req, res) => {
    res.writeHead(code, { location, 'content-length': '0' });
    res.end();
  };
}

export interface EndlessBodyOptions {
  /** Bytes per write; default 64 KiB. */
  chunkSize?: number;
  /** Called once, when the response closes, with the number of body bytes handed to the socket. */
  onStop?: (bytesWritten: number) => void;
}

/** 200 with a chunked body that never ends; respects backpressure and stops when the socket closes. */
export function endlessBody(opts: EndlessBodyOptions = {}): Handler {
  return (_req, res) => {
    const chunk = Buffer.alloc(opts.chunkSize ?? 64 * 1024, 'x');
    let written = 0;
    let stopped = false;
    res.once('close', () => {
      stopped = true;
      opts.onStop?.(written);
    });
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const pump = (): void => {
      while (!stopped && !res.destroyed) {
        written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    pump();
  };
}

/**
 * Sends the status line, then one header line every `intervalMs`, never finishing the head
 * (slowloris towards the client). Bypasses ServerResponse and writes to the socket directly.
 */
export function slowDripHeaders(intervalMs = 100): Handler {
  return (_req, res) => {
    const socket = res.socket;
    if (!socket) return;
    socket.write('HTTP/1.1 200 OK\r\n');
    let n = 0;
    const timer = setInterval(() => {
      if (socket.writable) socket.write(`x-drip-${n++}: .\r\n`);
    }, intervalMs);
    socket.once('close', () => clearInterval(timer));
  };
}
