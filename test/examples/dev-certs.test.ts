// examples/shared/dev-certs.ts, as examples/README.md has you run it: it writes a CA and a loopback server
// certificate that a TLS client trusting only that CA accepts for 127.0.0.1 and localhost, with the key
// readable by its owner only.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { expect, it } from 'vitest';
import { onCleanup, ROOT } from './support.js';

/** Whether a client trusting only `ca` accepts the server: by IP (no servername) or by `servername`. */
function handshake(port: number, ca: string, servername?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca, ...(servername && { servername }) }, () => {
      resolve(socket.authorized);
      socket.end();
    });
    socket.once('error', () => resolve(false));
  });
}

it('writes ca.pem, cert.pem and key.pem that verify for 127.0.0.1 and localhost', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'zta-dev-certs-test-'));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const output = execFileSync(process.execPath, ['--import', 'tsx', 'examples/shared/dev-certs.ts', dir], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  expect(output).toContain(`export TLS_CERT_FILE=${join(dir, 'cert.pem')}`);
  expect((await stat(join(dir, 'key.pem'))).mode & 0o777).toBe(0o600);

  const [ca, cert, key] = await Promise.all(
    ['ca.pem', 'cert.pem', 'key.pem'].map((name) => readFile(join(dir, name), 'utf8')),
  );
  const server = createServer({ cert, key }, (_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(() => new Promise((resolve) => server.close(resolve)));
  const { port } = server.address() as AddressInfo;

  expect(await handshake(port, ca!)).toBe(true);
  expect(await handshake(port, ca!, 'localhost')).toBe(true);
  expect(await handshake(port, ca!, 'example.com')).toBe(false);
  // Another CA's trust does not reach it.
  const other = await mkdtemp(join(tmpdir(), 'zta-dev-certs-other-'));
  onCleanup(() => rm(other, { recursive: true, force: true }));
  execFileSync(process.execPath, ['--import', 'tsx', 'examples/shared/dev-certs.ts', other], { cwd: ROOT });
  expect(await handshake(port, await readFile(join(other, 'ca.pem'), 'utf8'))).toBe(false);
}, 30_000);
