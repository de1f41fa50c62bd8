/**
 * Request bodies of `node:http` requests: as a lazy WHATWG stream (for the fetch-style handler), read whole
 * with a size bound (for receivers), and what to do with the part nobody read once the answer is out.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WebhookError } from '../core/errors.js';

/** Stops a request's body stream from taking more data; set while the stream is live. */
const detachers = new WeakMap<IncomingMessage, () => void>();

/** How long, and how many bytes, an unread request body is discarded for after the response is sent. */
const LINGER_MS = 5_000;
const LINGER_BYTES = 1024 * 1024;

/**
 * The body of `req` as a WHATWG stream. Nothing is read from the socket until the consumer asks for data,
 * and at most one chunk is held at a time (backpressure pauses `req`). Cancelling the stream only stops
 * reading: it does not destroy the socket, so an error response (413) can still be written.
 */
export function nodeBodyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let attached = false;
  let done = false;

  const onData = (chunk: Buffer | string): void => {
    if (done) return;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    controller.enqueue(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    if ((controller.desiredSize ?? 0) <= 0) req.pause();
  };
  const onEnd = (): void => {
    if (done) return;
    detach();
    controller.close();
  };
  const onError = (error: unknown): void => {
    if (done) return;
    detach();
    controller.error(error);
  };
  const onClose = (): void => {
    if (!req.complete) onError(new Error('Request aborted before its body was complete'));
  };
  function detach(): void {
    done = true;
    detachers.delete(req);
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    req.off('close', onClose);
    req.pause();
  }

  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        if (req.readableEnded) {
          done = true;
          c.close();
        }
      },
      pull() {
        if (done) return;
        if (!attached) {
          attached = true;
          detachers.set(req, detach);
          req.on('data', onData);
          req.once('end', onEnd);
          req.once('error', onError);
          req.once('close', onClose);
        }
        req.resume();
      },
      cancel() {
        if (!done) detach();
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * Reads the whole body of `req` into a Buffer, refusing (413 `WebhookError`) as soon as it exceeds
 * `maxBytes`, or up front when Content-Length says it will. On refusal, reading stops; pair with
 * {@link discardUnreadBody} before answering.
 */
export function readNodeBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () =>
    new WebhookError('payload_too_large', `Request body exceeds the ${maxBytes} byte limit`);
  const declared = req.headers['content-length'];
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > maxBytes) {
    return Promise.reject(tooLarge());
  }
  if (req.readableEnded) {
    return Promise.reject(new WebhookError('validation_failed', 'Request body was already read'));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer | string): void => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      total += bytes.byteLength;
      if (total > maxBytes) {
        finish();
        reject(tooLarge());
        return;
      }
      chunks.push(bytes);
    };
    const onEnd = (): void => {
      finish();
      resolve(Buffer.concat(chunks, total));
    };
    const onError = (error: unknown): void => {
      finish();
      reject(new WebhookError('validation_failed', 'Request body could not be read', { cause: error }));
    };
    const onClose = (): void => {
      if (!req.complete) onError(new Error('Request aborted before its body was complete'));
    };
    function finish(): void {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      req.pause();
    }
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
    req.resume();
  });
}

/**
 * Call before answering a request whose body may not have been read to the end (a 401, 404, 413...):
 * once the response is sent, the rest of the body is read and thrown away, so the client, still uploading,
 * gets to read the answer instead of a reset connection, and a keep-alive connection stays usable. The
 * connection is closed instead if the client sends more than 1 MiB or takes more than 5 s to finish.
 */
export function discardUnreadBody(req: IncomingMessage, res: ServerResponse): void {
  const onFinish = (): void => {
    res.off('finish', onFinish);
    res.off('close', onFinish);
    if (req.complete || req.destroyed) return;
    detachers.get(req)?.();
    let discarded = 0;
    const close = (): void => {
      cleanup();
      req.socket?.destroy();
    };
    const onData = (chunk: Buffer | string): void => {
      discarded += chunk.length;
      if (discarded > LINGER_BYTES) close();
    };
    const timer = setTimeout(close, LINGER_MS);
    timer.unref();
    function cleanup(): void {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', cleanup);
      req.off('close', cleanup);
    }
    req.on('data', onData);
    req.once('end', cleanup);
    req.once('close', cleanup);
    req.resume();
  };
  res.once('finish', onFinish);
  res.once('close', onFinish);
}
