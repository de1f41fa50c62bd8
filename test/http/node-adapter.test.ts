// toNodeHandler / toWebRequest / sendWebResponse with a plain node:http server.
import { createServer, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { toNodeHandler, toWebRequest } from '../../src/http/node-adapter.js';
import { describeEachStore } from '../postgres/stores.js';
import { listen, SITE, startApi } from './support.js';

/** A server whose handler reports what it received as JSON. */
async function echoServer(onError?: (error: unknown) => void) {
  const seen: Request[] = [];
  const origin = await listen(
    createServer(
      toNodeHandler(
        async (request) => {
          seen.push(request);
          const body = request.body ? await request.text() : null;
          return Response.json({ method: request.method, url: request.url, body });
        },
        { ...(onError && { onError }) },
      ),
    ),
  );
  return { origin, seen };
}

/** Sends raw bytes on a fresh TCP connection and returns everything the server answers. */
function rawExchange(origin: string, data: string, endAfterMs = 200): Promise<string> {
  const { port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(data));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    setTimeout(() => socket.end(), endAfterMs);
  });
}

describe('toNodeHandler', () => {
  it('streams the request body to the handler and the response back', async () => {
    const { origin } = await echoServer();
    const response = await fetch(`${origin}/x/y?z=1`, { method: 'PUT', body: 'hello' });
    expect(await response.json()).toEqual({ method: 'PUT', url: `${origin}/x/y?z=1`, body: 'hello' });
  });

  it('keeps a request target starting with // as a path on this host', async () => {
    const { origin } = await echoServer();
    const answer = await rawExchange(origin, 'GET //evil.example/a?b=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(answer).toContain('"url":"http://127.0.0.1//evil.example/a?b=1"');
  });

  it('uses only the path of an absolute-form target, and localhost for an odd Host header', async () => {
    const { origin } = await echoServer();
    const answer = await rawExchange(
      origin,
      'GET http://elsewhere.example/p?q=1 HTTP/1.1\r\nHost: bad host/..\r\n\r\n',
    );
    expect(answer).toContain('"url":"http://localhost/p?q=1"');
  });

  it('answers 500 JSON when the handler throws, reporting the error to onError', async () => {
    const errors: unknown[] = [];
    const origin = await listen(
      createServer(
        toNodeHandler(
          () => {
            throw new Error('boom');
          },
          { onError: (e) => errors.push(e) },
        ),
      ),
    );
    const response = await fetch(origin);
    expect(response.status).toBe(500);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await response.json()).toEqual({ error: 'Internal server error' });
    expect(errors).toEqual([new Error('boom')]);
  });

  it('writes several Set-Cookie headers apart, and streamed bodies', async () => {
    const origin = await listen(
      createServer(
        toNodeHandler(() => {
          const headers = new Headers({ 'content-type': 'text/plain' });
          headers.append('set-cookie', 'a=1');
          headers.append('set-cookie', 'b=2');
          const body = new ReadableStream({
            start(controller) {
              for (const part of ['one ', 'two ', 'three'])
                controller.enqueue(new TextEncoder().encode(part));
              controller.close();
            },
          });
          return new Response(body, { status: 207, headers });
        }),
      ),
    );
    const response = await fetch(origin);
    expect(response.status).toBe(207);
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await response.text()).toBe('one two three');
  });

  it('builds a Request without a body for GET and HEAD', () => {
    const req = Object.assign(Object.create(null), {
      method: 'HEAD',
      url: '/a',
      headers: { host: 'h.example' },
      rawHeaders: ['Host', 'h.example'],
      socket: {},
    });
    const request = toWebRequest(req);
    expect(request.body).toBeNull();
    expect(request.url).toBe('http://h.example/a');
  });
});

describeEachStore('http: node adapter', () => {
  describe('the API behind toNodeHandler, with misbehaving clients', () => {
    it('answers a 401 to a large unauthenticated upload without reading it all, and keeps serving', async () => {
      const { origin, call } = await startApi();
      const response = await fetch(`${origin}/api/webhooks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: new Uint8Array(8 * 1024 * 1024),
      });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error: 'Unauthorized' });
      expect((await call('GET', `/api/webhooks?siteId=${SITE}`)).status).toBe(200);
    });

    it('keeps a keep-alive connection usable after a 413 on a slightly too large body', async () => {
      const { origin } = await startApi({ maxBodyBytes: 1024 });
      const body = JSON.stringify({ description: 'x'.repeat(4000) });
      const exchange = `POST /api/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\nGET /api/webhooks?siteId=${SITE} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\n\r\n`;
      const answer = await rawExchange(origin, exchange, 300);
      expect(answer.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 413', 'HTTP/1.1 200']);
      expect(answer).toContain('{"webhooks":[]}');
    });

    it('treats a client that disconnects mid-body as its own problem: no 500, nothing logged', async () => {
      const { origin, logs, nodeErrors, call } = await startApi();
      const { port } = new URL(origin);
      await new Promise<void>((resolve) => {
        const req = httpRequest({
          port: Number(port),
          host: '127.0.0.1',
          method: 'POST',
          path: '/api/webhooks',
          headers: {
            authorization: 'Bearer alice-token',
            'content-type': 'application/json',
            'content-length': '1000',
          },
        });
        req.on('error', () => resolve());
        req.write('{"siteId": "site_abc123", ');
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 100);
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(logs).toEqual([]);
      expect(nodeErrors).toEqual([]);
      expect((await call('GET', `/api/webhooks?siteId=${SITE}`)).body).toEqual({ webhooks: [] });
    });
  });
});
