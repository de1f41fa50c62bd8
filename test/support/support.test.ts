import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpsServer, get as httpsGet, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { delay, endlessBody, hang, redirect, reset, sequence, slowDripHeaders, status } from './hostile.js';
import { type Receiver, type ReceiverOptions, startReceiver } from './receiver.js';
import { createTestCA, type TestCA } from './tls.js';

let ca: TestCA;
beforeAll(async () => {
  ca = await createTestCA(); // also warms up the x509 module load
});

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((fn) => fn()));
});

async function receiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const r = await startReceiver({ ca, ...opts });
  cleanups.push(() => r.close());
  return r;
}

function agent(opts: Agent.Options = {}): Agent {
  const a = new Agent({ connect: { ca: ca.caCert }, headersTimeout: 2000, bodyTimeout: 2000, ...opts });
  cleanups.push(() => a.destroy());
  return a;
}

async function errorOf(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected the promise to reject');
}

describe('createTestCA', () => {
  it('issues a CA and a loopback server leaf quickly', async () => {
    const started = performance.now();
    const fresh = await createTestCA();
    const leaf = await fresh.issue(['example.test', '10.1.2.3']);
    expect(performance.now() - started).toBeLessThan(200);

    const caCert = new X509Certificate(fresh.caCert);
    const cert = new X509Certificate(leaf.cert);
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // node reports the EKU here: serverAuth
    expect(cert.subjectAltName).toBe(
      'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:example.test, IP Address:10.1.2.3',
    );
    expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(Date.now() - 59 * 60 * 1000);
    expect(Date.parse(cert.validTo)).toBeGreaterThan(Date.now() + 2 * 24 * 60 * 60 * 1000);
    expect(leaf.key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  describe('with node TLS', () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      const { cert, key } = await ca.issue(['example.test']);
      server = createHttpsServer({ cert, key }, (_req, res) => res.end('hello'));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      port = (server.address() as AddressInfo).port;
      return () => {
        server.closeAllConnections();
        server.close();
      };
    });

    function get(opts: { ca?: string; host?: string; servername?: string }): Promise<string> {
      return new Promise((resolve, reject) => {
        const req = httpsGet({ host: '127.0.0.1', port, path: '/', agent: false, ...opts }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('end', () => resolve(body));
        });
        req.on('error', reject);
      });
    }

    it('verifies fully when the client trusts the CA', async () => {
      expect(await get({ ca: ca.caCert })).toBe('hello');
      expect(await get({ ca: ca.caCert, servername: 'example.test' })).toBe('hello');
    });

    it('fails with a certificate error without the CA', async () => {
      expect((await errorOf(get({}))).code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      const other = await createTestCA();
      expect((await errorOf(get({ ca: other.caCert }))).code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    });

    it('fails for a name that is not in the SANs', async () => {
      const err = await errorOf(get({ ca: ca.caCert, servername: 'evil.test' }));
      expect(err.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    });

    it('covers localhost and ::1', async () => {
      const v6 = await startReceiver({ ca, host: '::1' });
      cleanups.push(() => v6.close());
      expect(v6.url()).toBe(`https://[::1]:${v6.port}/webhook`);
      const res = await request(v6.url(), { dispatcher: agent() });
      expect(await res.body.text()).toBe('OK');

      const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca.caCert, servername: 'localhost' });
      await once(socket, 'secureConnect');
      expect(socket.authorized).toBe(true);
      socket.destroy();
    });
  });
});

describe('startReceiver', () => {
  it('records method, url, headers and raw body, and answers 200 OK', async () => {
    const r = await receiver();
    expect(r.url()).toBe(`https://127.0.0.1:${r.port}/webhook`);
    const body = '{"event":"pageview","data":{"path":"/blog"}}';
    const res = await request(r.url('/hook?x=1'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-ZTA-Event': 'pageview' },
      body,
      dispatcher: agent(),
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('OK');
    expect(res.headers['keep-alive']).toBeDefined();

    expect(r.requests).toHaveLength(1);
    const [rec] = r.requests;
    expect(rec).toMatchObject({ method: 'POST', url: '/hook?x=1', body });
    expect(rec?.headers['x-zta-event']).toBe('pageview');
    expect(rec?.headers['content-type']).toBe('application/json');
    expect(rec?.receivedAt).toBeGreaterThan(0);
    expect(rec?.receivedDate).toBeInstanceOf(Date);
  });

  it('waitFor resolves once enough requests arrived and times out clearly', async () => {
    const r = await receiver();
    const client = agent();
    const waiting = r.waitFor(2, 2000);
    for (const path of ['/a', '/b']) {
      void request(r.url(path), { method: 'POST', body: path, dispatcher: client }).then((res) =>
        res.body.dump(),
      );
    }
    const got = await waiting;
    expect(got.map((req) => req.body).sort()).toEqual(['/a', '/b']);
    expect(await r.waitFor(1, 10)).toHaveLength(2);

    const err = await errorOf(r.waitFor(3, 50));
    expect(err.message).toMatch(
      /waitFor\(3\): timed out after 50 ms after 2 request\(s\): POST \/[ab], POST \/[ab]/,
    );
  });

  it('status and sequence answer as told; a throwing handler gives 500', async () => {
    const r = await receiver({
      handler: sequence([
        status(503, { 'retry-after': '1' }, 'busy'),
        () => {
          throw new Error('boom');
        },
        status(204),
      ]),
    });
    const client = agent();
    const answers: Array<[number, string]> = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(r.url(), { method: 'POST', body: '{}', dispatcher: client });
      answers.push([res.statusCode, await res.body.text()]);
      if (i === 0) expect(res.headers['retry-after']).toBe('1');
    }
    expect(answers).toEqual([
      [503, 'busy'],
      [500, 'receiver handler threw: Error: boom'],
      [204, ''],
      [204, ''],
    ]);
  });

  it('redirect answers 3xx with a location (not followed by undici.request)', async () => {
    const r = await receiver({ handler: redirect('https://169.254.169.254/latest/meta-data') });
    const res = await request(r.url(), { method: 'POST', body: '{}', dispatcher: agent() });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('https://169.254.169.254/latest/meta-data');
    await res.body.dump();
  });

  it('hang never answers, so the client times out', async () => {
    const r = await receiver({ handler: hang() });
    const err = await errorOf(
      request(r.url(), { method: 'POST', body: '{}', dispatcher: agent({ headersTimeout: 200 }) }),
    );
    expect(err.code).toBe('UND_ERR_HEADERS_TIMEOUT');
    expect(r.requests).toHaveLength(1);
  });

  it('delay answers late, or not at all once the client gave up', async () => {
    const r = await receiver({ handler: delay(100) });
    const started = performance.now();
    const res = await request(r.url(), { dispatcher: agent() });
    expect(await res.body.text()).toBe('OK');
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);

    r.setHandler(delay(60_000));
    const err = await errorOf(request(r.url(), { dispatcher: agent({ headersTimeout: 100 }) }));
    expect(err.code).toBe('UND_ERR_HEADERS_TIMEOUT');
  });

  it('reset drops the connection without a response', async () => {
    const r = await receiver({ handler: reset() });
    const err = await errorOf(request(r.url(), { method: 'POST', body: '{}', dispatcher: agent() }));
    expect(['UND_ERR_SOCKET', 'ECONNRESET']).toContain(err.code);
    expect(r.requests).toHaveLength(1);
  });

  it('endlessBody streams until the client hangs up, then stops writing', async () => {
    let resolveStopped: (bytes: number) => void = () => {};
    const stopped = new Promise<number>((resolve) => {
      resolveStopped = resolve;
    });
    const r = await receiver({ handler: endlessBody({ onStop: resolveStopped }) });
    const res = await request(r.url(), { method: 'POST', body: '{}', dispatcher: agent() });
    expect(res.statusCode).toBe(200);
    let received = 0;
    for await (const chunk of res.body) {
      received += (chunk as Buffer).length;
      if (received > 2 * 1024 * 1024) break; // leaving the loop destroys the body and the socket
    }
    expect(received).toBeGreaterThan(2 * 1024 * 1024);
    const written = await stopped;
    expect(written).toBeGreaterThanOrEqual(received);
    // backpressure: the server did not run far ahead of what the client read
    expect(written - received).toBeLessThan(8 * 1024 * 1024);
  });

  it('slowDripHeaders keeps sending header bytes and never completes the head', async () => {
    const r = await receiver({ handler: slowDripHeaders(20) });
    const started = performance.now();
    const err = await errorOf(request(r.url(), { dispatcher: agent({ headersTimeout: 300 }) }));
    expect(err.code).toBe('UND_ERR_HEADERS_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(5000); // an idle timer would never fire: bytes arrive every 20 ms
  });

  it('close() returns promptly with a hung request in flight, and rejects pending waiters', async () => {
    const r = await startReceiver({ ca, handler: hang() });
    const inFlight = errorOf(
      request(r.url(), {
        method: 'POST',
        body: '{}',
        dispatcher: agent({ headersTimeout: 0, bodyTimeout: 0 }),
      }),
    );
    await r.waitFor(1);
    const pending = errorOf(r.waitFor(5, 10_000));

    const started = performance.now();
    await r.close();
    expect(performance.now() - started).toBeLessThan(500);
    await r.close(); // idempotent

    expect((await pending).message).toMatch(/waitFor\(5\): receiver closed after 1 request\(s\)/);
    expect((await inFlight).code).toBe('UND_ERR_SOCKET');
  });
});
