// SSRF: webhook URLs aimed at this machine or at internal networks, refused twice.
//   create time  WebhookManager.create / update without allowPrivateNetworks: a 400 WebhookError with a code
//                (private_address, invalid_url, url_not_https) and a clear message.
//   connect time every vector a URL can be stored for (a manager WITH allowPrivateNetworks, standing in for
//                rows written before a policy change or by another tool) is then delivered through the real
//                Dispatcher and default transport WITHOUT allowPrivateNetworks: each attempt fails with
//                `blocked_address` and the local receiver never sees a request.
//   control      the same loopback vectors through a dispatcher WITH allowPrivateNetworks do reach the
//                receiver: they are live, and the guard is what stops them.
// Hostnames from /etc/hosts that map to loopback pass create time (it does not resolve names) and are
// refused at connect time; DNS rebinding is simulated in a child process with a patched dns.lookup.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher, WebhookError, type WebhookErrorCode, WebhookManager } from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';
import type { Receiver } from '../support/receiver.js';
import { loopbackNamesFromHostsFile, receiver, type SecurityCA, securityCA } from './support.js';

const PRIVATE = 'URL must not point to a private or reserved address';
const LOCALHOST = 'URL must not point to localhost';
const CREDENTIALS = 'URL must not contain credentials';
const FRAGMENT = 'URL must not contain a fragment';
const NOT_ABSOLUTE = 'URL must be an absolute URL';
const NOT_HTTPS = 'URL must use HTTPS';

interface Vector {
  name: string;
  /** The URL, given the port of the local receiver (used by vectors that target this machine). */
  url: (port: number) => string;
  code: WebhookErrorCode;
  message: string;
  /**
   * Set when the URL is well-formed enough to be stored with allowPrivateNetworks, so the connect-time
   * guard is tested too. `loopback`: it targets the local receiver, so without the guard it would arrive.
   */
  connect?: 'loopback' | 'elsewhere';
}

const at =
  (host: string, path = '/hook') =>
  (port: number) =>
    `https://${host}:${port}${path}`;
const fixed = (url: string) => () => url;

const privateVector = (name: string, url: Vector['url'], connect: Vector['connect']): Vector => ({
  name,
  url,
  code: 'private_address',
  message: PRIVATE,
  connect,
});
const localhostVector = (name: string, url: Vector['url'], connect: Vector['connect']): Vector => ({
  name,
  url,
  code: 'private_address',
  message: LOCALHOST,
  connect,
});

const VECTORS: Vector[] = [
  // IPv4 in the notations WHATWG URL accepts and normalises to a dotted quad.
  privateVector('loopback, dotted quad', at('127.0.0.1'), 'loopback'),
  privateVector('loopback, another 127/8 address', at('127.0.0.2'), 'loopback'),
  privateVector('loopback, decimal', at('2130706433'), 'loopback'),
  privateVector('loopback, octal octet', at('0177.0.0.1'), 'loopback'),
  privateVector('loopback, octal whole', at('017700000001'), 'loopback'),
  privateVector('loopback, hex octet', at('0x7f.0.0.1'), 'loopback'),
  privateVector('loopback, hex whole', at('0x7f000001'), 'loopback'),
  privateVector('loopback, short (127.1)', at('127.1'), 'loopback'),
  privateVector('loopback, short (127.0.1)', at('127.0.1'), 'loopback'),
  privateVector('loopback, mixed hex short (0x7f.1)', at('0x7f.1'), 'loopback'),
  privateVector('loopback, percent-encoded host', at('%31%32%37.0.0.1'), 'loopback'),
  privateVector('loopback, ideographic full stops', at('127\u30020\u30020\u30021'), 'loopback'),
  privateVector('unspecified, "0"', at('0'), 'loopback'),
  privateVector('unspecified, 0.0.0.0', at('0.0.0.0'), 'loopback'),
  // IPv6, and IPv6 forms that embed or translate IPv4.
  privateVector('IPv6 loopback [::1]', at('[::1]'), 'loopback'),
  privateVector('IPv6 unspecified [::]', at('[::]'), 'loopback'),
  privateVector('IPv4-mapped [::ffff:127.0.0.1]', at('[::ffff:127.0.0.1]'), 'loopback'),
  privateVector('IPv4-mapped, hex [::ffff:7f00:1]', at('[::ffff:7f00:1]'), 'loopback'),
  privateVector('IPv4-mapped metadata [::ffff:169.254.169.254]', at('[::ffff:169.254.169.254]'), 'elsewhere'),
  privateVector('IPv4-compatible (deprecated) [::127.0.0.1]', at('[::127.0.0.1]'), 'elsewhere'),
  privateVector('IPv4-translated (SIIT) [::ffff:0:7f00:1]', at('[::ffff:0:7f00:1]'), 'elsewhere'),
  privateVector('NAT64 64:ff9b::/96 of 127.0.0.1', at('[64:ff9b::7f00:1]'), 'elsewhere'),
  privateVector('NAT64 local-use 64:ff9b:1::/48', at('[64:ff9b:1::a9fe:a9fe]'), 'elsewhere'),
  privateVector('6to4 of 127.0.0.1', at('[2002:7f00:1::]'), 'elsewhere'),
  privateVector('6to4 of 192.168.1.1', at('[2002:c0a8:101::1]'), 'elsewhere'),
  privateVector('Teredo', at('[2001:0:4136:e378:8000:63bf:3fff:fdd2]'), 'elsewhere'),
  // Cloud metadata, carrier-grade NAT, RFC 1918, unique-local, link-local.
  privateVector(
    'cloud metadata 169.254.169.254',
    fixed('https://169.254.169.254/latest/meta-data/'),
    'elsewhere',
  ),
  privateVector('cloud metadata, decimal (2852039166)', fixed('https://2852039166/'), 'elsewhere'),
  privateVector('AWS IPv6 metadata [fd00:ec2::254]', fixed('https://[fd00:ec2::254]/'), 'elsewhere'),
  privateVector('CGNAT 100.64.0.1', fixed('https://100.64.0.1/'), 'elsewhere'),
  privateVector('CGNAT 100.127.255.254', fixed('https://100.127.255.254/'), 'elsewhere'),
  privateVector('RFC 1918 10/8', fixed('https://10.0.0.1/'), 'elsewhere'),
  privateVector('RFC 1918 172.16/12', fixed('https://172.31.255.1/'), 'elsewhere'),
  privateVector('RFC 1918 192.168/16', fixed('https://192.168.0.1/'), 'elsewhere'),
  privateVector('ULA fc00::/7 (fc00::1)', fixed('https://[fc00::1]/'), 'elsewhere'),
  privateVector('ULA fc00::/7 (fd12:3456:789a::1)', fixed('https://[fd12:3456:789a::1]/'), 'elsewhere'),
  privateVector('link-local IPv4 169.254.0.1', fixed('https://169.254.0.1/'), 'elsewhere'),
  privateVector('link-local IPv6 fe80::1', fixed('https://[fe80::1]/'), 'elsewhere'),
  privateVector('site-local IPv6 (deprecated) fec0::1', fixed('https://[fec0::1]/'), 'elsewhere'),
  // Multicast, broadcast, benchmarking, documentation and reserved ranges.
  privateVector('multicast 224.0.0.1', fixed('https://224.0.0.1/'), 'elsewhere'),
  privateVector('multicast SSDP 239.255.255.250', fixed('https://239.255.255.250/'), 'elsewhere'),
  privateVector('multicast IPv6 ff02::1', fixed('https://[ff02::1]/'), 'elsewhere'),
  privateVector('broadcast 255.255.255.255', fixed('https://255.255.255.255/'), 'elsewhere'),
  privateVector('broadcast, decimal (4294967295)', fixed('https://4294967295/'), 'elsewhere'),
  privateVector('benchmarking 198.18/15', fixed('https://198.18.0.1/'), 'elsewhere'),
  privateVector('documentation 192.0.2/24', fixed('https://192.0.2.1/'), 'elsewhere'),
  privateVector('documentation 198.51.100/24', fixed('https://198.51.100.7/'), 'elsewhere'),
  privateVector('documentation 203.0.113/24', fixed('https://203.0.113.9/'), 'elsewhere'),
  privateVector('documentation IPv6 2001:db8::/32', fixed('https://[2001:db8::1]/'), 'elsewhere'),
  privateVector('IETF protocol assignments 192.0.0/24', fixed('https://192.0.0.8/'), 'elsewhere'),
  privateVector('reserved 240/4', fixed('https://240.0.0.1/'), 'elsewhere'),
  privateVector('discard-only IPv6 100::/64', fixed('https://[100::1]/'), 'elsewhere'),
  privateVector('unallocated IPv6 outside 2000::/3', fixed('https://[4000::1]/'), 'elsewhere'),
  // localhost by name.
  localhostVector('localhost', at('localhost'), 'loopback'),
  localhostVector('uppercase LOCALHOST', at('LOCALHOST'), 'loopback'),
  localhostVector('fullwidth ｌｏｃａｌｈｏｓｔ (IDNA maps it)', at('ｌｏｃａｌｈｏｓｔ'), 'loopback'),
  // Names glibc's hosts-file lookup does not resolve (systemd-resolved does): refused by name either way.
  localhostVector('trailing dot localhost.', at('localhost.'), 'elsewhere'),
  localhostVector('mixed case and trailing dot LocalHost.', at('LocalHost.'), 'elsewhere'),
  localhostVector('percent-encoded dot localhost%2E', at('localhost%2E'), 'elsewhere'),
  localhostVector('*.localhost', at('api.localhost'), 'elsewhere'),
  localhostVector('*.localhost with trailing dot', at('a.b.localhost.'), 'elsewhere'),
  // Userinfo, fragment and backslash confusion; characters WHATWG strips.
  {
    name: 'fragment hides the real host: https://evil.com#@127.0.0.1',
    url: fixed('https://evil.com#@127.0.0.1'),
    code: 'invalid_url',
    message: FRAGMENT,
  },
  {
    name: 'userinfo: https://evil.com@127.0.0.1',
    url: fixed('https://evil.com@127.0.0.1'),
    code: 'invalid_url',
    message: CREDENTIALS,
  },
  {
    name: 'userinfo with password: https://user:pass@evil.com',
    url: fixed('https://user:pass@evil.com/'),
    code: 'invalid_url',
    message: CREDENTIALS,
  },
  {
    name: 'empty fragment: https://evil.com/#',
    url: fixed('https://evil.com/#'),
    code: 'invalid_url',
    message: FRAGMENT,
  },
  privateVector(
    'backslash: https://127.0.0.1\\@evil.com',
    (port) => `https://127.0.0.1:${port}\\@evil.com`,
    'loopback',
  ),
  privateVector(
    'backslash: https://127.0.0.1\\.evil.com',
    (port) => `https://127.0.0.1:${port}\\.evil.com/`,
    'loopback',
  ),
  privateVector(
    'query: https://127.0.0.1?.evil.com',
    (port) => `https://127.0.0.1:${port}?.evil.com`,
    'loopback',
  ),
  privateVector('tab inside the host', (port) => `https://127.0.\t0.1:${port}/hook`, 'loopback'),
  privateVector('newline inside the host', (port) => `https://127.0.0.1\n:${port}/hook`, 'loopback'),
  localhostVector(
    'carriage return inside localhost',
    (port) => `https://local\rhost:${port}/hook`,
    'loopback',
  ),
  privateVector(
    'leading and trailing spaces',
    (port) => `  https://127.0.0.1:${port}/hook \u0000`,
    'loopback',
  ),
  privateVector('uppercase scheme HTTPS://', (port) => `HTTPS://127.0.0.1:${port}/hook`, 'loopback'),
  privateVector('no slashes: https:127.0.0.1', (port) => `https:127.0.0.1:${port}/hook`, 'loopback'),
  privateVector(
    'backslashes for slashes: https:\\\\127.0.0.1',
    (port) => `https:\\\\127.0.0.1:${port}\\hook`,
    'loopback',
  ),
  // Not HTTPS, not absolute, not an address at all.
  {
    name: 'http: to loopback',
    url: (port) => `http://127.0.0.1:${port}/hook`,
    code: 'url_not_https',
    message: NOT_HTTPS,
  },
  { name: 'http://localhost', url: fixed('http://localhost/'), code: 'url_not_https', message: NOT_HTTPS },
  { name: 'file:///etc/passwd', url: fixed('file:///etc/passwd'), code: 'url_not_https', message: NOT_HTTPS },
  {
    name: 'gopher://127.0.0.1:6379/_',
    url: fixed('gopher://127.0.0.1:6379/_'),
    code: 'url_not_https',
    message: NOT_HTTPS,
  },
  {
    name: 'scheme-relative //127.0.0.1',
    url: fixed('//127.0.0.1/hook'),
    code: 'invalid_url',
    message: NOT_ABSOLUTE,
  },
  {
    name: 'IPv6 zone id [fe80::1%25eth0]',
    url: fixed('https://[fe80::1%25eth0]/'),
    code: 'invalid_url',
    message: NOT_ABSOLUTE,
  },
  {
    name: 'IPv4 out of range (4294967296)',
    url: fixed('https://4294967296/'),
    code: 'invalid_url',
    message: NOT_ABSOLUTE,
  },
];

/** Public addresses and names that must pass create time (never contacted: these tests use no network). */
const PUBLIC: [input: string, stored: string][] = [
  ['https://8.8.8.8/', 'https://8.8.8.8/'],
  ['https://1.1.1.1/webhook', 'https://1.1.1.1/webhook'],
  ['https://[2606:4700:4700::1111]/', 'https://[2606:4700:4700::1111]/'],
  ['https://[2001:4860:4860::8888]:8443/hook', 'https://[2001:4860:4860::8888]:8443/hook'],
  ['https://example.com/webhook', 'https://example.com/webhook'],
  ['HTTPS://Example.COM:443/a/../hook?x=1', 'https://example.com/hook?x=1'],
  ['https://100.128.0.1/', 'https://100.128.0.1/'], // just past CGNAT
  ['https://172.32.0.1/', 'https://172.32.0.1/'], // just past 172.16/12
  ['https://11.0.0.1/', 'https://11.0.0.1/'],
  // Empty userinfo is dropped by the parser: nothing is hidden, the host is evil.com.
  ['https://:@evil.com/', 'https://evil.com/'],
  // WHATWG reads the backslash as a path separator: the host is evil.com, and the stored URL says so.
  ['https://evil.com\\@127.0.0.1/', 'https://evil.com/@127.0.0.1/'],
];

const SITE = 'site_ssrf';
const events = ['pageview'];
const strict = () =>
  new WebhookManager<string>({ store: memoryStore(), authorize: () => true, maxWebhooksPerSite: 1000 });

async function rejection(promise: Promise<unknown>): Promise<WebhookError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof WebhookError) return error;
    throw error;
  }
  throw new Error('expected a WebhookError');
}

let ca: SecurityCA;
const hostsNames = loopbackNamesFromHostsFile();
beforeAll(async () => {
  ca = await securityCA();
});

/** A dual-stack receiver on every local address (`::`), so 0.0.0.0, [::], [::1], 127.0.0.2 all reach it. */
async function localReceiver(): Promise<Receiver> {
  // IPv4-mapped SANs in hex: @peculiar/x509 mis-encodes the dotted form.
  const names = ['0.0.0.0', '::', '::ffff:7f00:1', '127.0.0.2', ...hostsNames];
  return receiver({ ca: ca.forReceiver(names), host: '::' });
}

it('has at least 40 vectors', () => {
  expect(VECTORS.length).toBeGreaterThanOrEqual(40);
});

describe('create time: WebhookManager refuses every vector', () => {
  const manager = strict();
  it.each(VECTORS)('$name', async (vector) => {
    const url = vector.url(8443);
    const error = await rejection(manager.create('owner', { siteId: SITE, url, events }));
    expect({ code: error.code, status: error.status, message: error.message }).toEqual({
      code: vector.code,
      status: 400,
      message: vector.message,
    });
    expect(error.toJSON()).toEqual({ error: vector.message });
  });

  it('update refuses them too', async () => {
    const { webhook } = await manager.create('owner', { siteId: SITE, url: 'https://example.com/', events });
    for (const vector of VECTORS) {
      const error = await rejection(manager.update('owner', webhook.id, { url: vector.url(8443) }));
      expect(error.code, vector.name).toBe(vector.code);
    }
    expect((await manager.get('owner', webhook.id)).webhook.url).toBe('https://example.com/');
  });

  it.each(PUBLIC)('accepts the public %s', async (input, stored) => {
    const { webhook } = await strict().create('owner', { siteId: SITE, url: input, events });
    expect(webhook.url).toBe(stored);
  });
});

describe('connect time: the default transport refuses what got stored', () => {
  const storable = VECTORS.filter((vector) => vector.connect !== undefined);

  async function deliverAll(allowPrivateNetworks: boolean, vectors: Vector[], port: number) {
    const store = memoryStore();
    const lenient = new WebhookManager<string>({
      store,
      authorize: () => true,
      allowPrivateNetworks: true,
      maxWebhooksPerSite: 1000,
    });
    const created = [];
    for (const vector of vectors) {
      const { webhook } = await lenient.create('owner', { siteId: SITE, url: vector.url(port), events });
      created.push({ vector, webhook });
    }
    const dispatcher = new Dispatcher({
      store,
      tls: { ca: ca.caCert },
      allowPrivateNetworks,
      timeoutMs: 3000,
      retry: { delaysMs: [] },
      concurrency: 128,
    });
    await dispatcher.emit({ siteId: SITE, event: 'pageview', data: { path: '/' } });
    await dispatcher.runDue();
    await dispatcher.stop();
    return Promise.all(
      created.map(async ({ vector, webhook }) => {
        const [delivery] = (await lenient.deliveries('owner', { webhookId: webhook.id })).deliveries;
        return { vector, url: webhook.url, delivery: delivery!, attempt: delivery!.attempts[0]! };
      }),
    );
  }

  it(`refuses all ${storable.length} storable vectors with blocked_address; the receiver sees nothing`, async () => {
    const local = await localReceiver();
    const results = await deliverAll(false, storable, local.port);
    const outcomes = results.map(({ vector, attempt, delivery }) => ({
      vector: vector.name,
      errorCode: attempt.errorCode,
      statusCode: attempt.statusCode,
      status: delivery.status,
    }));
    expect(outcomes).toEqual(
      storable.map((vector) => ({
        vector: vector.name,
        errorCode: 'blocked_address',
        statusCode: null,
        status: 'failed', // blocked_address is final: not retried
      })),
    );
    // Refused before any connection: nowhere near the 3 s timeout.
    for (const { attempt } of results) expect(attempt.durationMs).toBeLessThan(1000);
    expect(local.requests).toHaveLength(0);
  });

  it('control: with allowPrivateNetworks the loopback vectors do reach the receiver', async () => {
    const local = await localReceiver();
    const loopback = storable.filter((vector) => vector.connect === 'loopback');
    const results = await deliverAll(true, loopback, local.port);
    expect(
      results.map(({ vector, attempt }) => [vector.name, attempt.statusCode, attempt.errorCode]),
    ).toEqual(loopback.map((vector) => [vector.name, 200, null]));
    const expectedPaths = results.map(({ url }) => {
      const parsed = new URL(url);
      return parsed.pathname + parsed.search;
    });
    expect(local.requests.map((request) => request.url).sort()).toEqual(expectedPaths.sort());
  });
});

describe.skipIf(hostsNames.length === 0)(
  `hostnames /etc/hosts maps to loopback (${hostsNames.join(', ')})`,
  () => {
    it('pass create time (names are not resolved there) and are refused at connect time', async () => {
      const local = await localReceiver();
      const store = memoryStore();
      const manager = new WebhookManager<string>({ store, authorize: () => true, maxWebhooksPerSite: 1000 });
      const ids: string[] = [];
      for (const name of hostsNames) {
        const { webhook } = await manager.create('owner', {
          siteId: SITE,
          url: at(name)(local.port),
          events,
        });
        ids.push(webhook.id);
      }
      const dispatcher = new Dispatcher({
        store,
        tls: { ca: ca.caCert },
        timeoutMs: 3000,
        retry: { delaysMs: [] },
      });
      await dispatcher.emit({ siteId: SITE, event: 'pageview', data: { path: '/' } });
      await dispatcher.runDue();
      await dispatcher.stop();
      for (const webhookId of ids) {
        const [delivery] = (await manager.deliveries('owner', { webhookId })).deliveries;
        expect(delivery?.attempts.map((attempt) => attempt.errorCode)).toEqual(['blocked_address']);
      }
      expect(local.requests).toHaveLength(0);

      // Control: the same names through a dispatcher that allows private networks arrive.
      const open = new Dispatcher({
        store,
        tls: { ca: ca.caCert },
        allowPrivateNetworks: true,
        timeoutMs: 3000,
        retry: { delaysMs: [] },
      });
      await open.emit({ siteId: SITE, event: 'pageview', data: { path: '/' } });
      await open.runDue();
      await open.stop();
      expect(local.requests).toHaveLength(hostsNames.length);
    });
  },
);

describe('DNS rebinding: public at create time, 127.0.0.1 at delivery time', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const preload = fileURLToPath(new URL('./fixtures/fake-dns.mjs', import.meta.url));
  const child = fileURLToPath(new URL('./fixtures/rebind.ts', import.meta.url));

  interface ChildReport {
    createdWith: string[];
    attempts: Record<string, { errorCode: string | null; statusCode: number | null }>;
    lookups: Record<string, number>;
  }

  async function run(allowPrivateNetworks: boolean, port: number): Promise<ChildReport> {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--import', preload, child],
      {
        cwd: root,
        timeout: 20_000,
        env: {
          ...process.env,
          ZTA_REBIND: JSON.stringify({ port, caCert: ca.caCert, allowPrivateNetworks }),
        },
      },
    );
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildReport;
  }

  it('the connect-time guard refuses the rebound name (and a name with one private answer)', async () => {
    const local = await receiver({ ca: ca.forReceiver(['rebind.test', 'mixed.test']) });
    const report = await run(false, local.port);
    expect(report.createdWith).toEqual(['93.184.215.14']);
    expect(report.attempts).toEqual({
      'rebind.test': { errorCode: 'blocked_address', statusCode: null },
      'mixed.test': { errorCode: 'blocked_address', statusCode: null },
    });
    // The guard asked the (patched) resolver at connect time.
    expect(report.lookups['rebind.test']).toBeGreaterThanOrEqual(1);
    expect(report.lookups['mixed.test']).toBeGreaterThanOrEqual(1);
    expect(local.requests).toHaveLength(0);
  });

  it('control: with allowPrivateNetworks the rebound name reaches the local receiver', async () => {
    const local = await receiver({ ca: ca.forReceiver(['rebind.test']) });
    const report = await run(true, local.port);
    expect(report.attempts).toEqual({ 'rebind.test': { errorCode: null, statusCode: 200 } });
    expect(report.lookups['rebind.test']).toBeGreaterThanOrEqual(1);
    expect(local.requests.map((request) => request.url)).toEqual(['/rebind.test']);
  });
});
