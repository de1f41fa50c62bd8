/**
 * Writes a throwaway CA and a loopback server certificate to a directory, for running the examples by
 * hand in separate terminals (see examples/README.md):
 *
 *   npx tsx examples/shared/dev-certs.ts [dir]
 *
 * Prints the environment variables the examples read. The directory defaults to a new one under the OS
 * temp dir; the key is written with mode 0600.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createDevCA } from './dev-ca.js';

const dir = process.argv[2] ? resolve(process.argv[2]) : await mkdtemp(join(tmpdir(), 'zta-dev-certs-'));
await mkdir(dir, { recursive: true });
const ca = await createDevCA();
const { cert, key } = await ca.issue();
await writeFile(join(dir, 'ca.pem'), ca.caCert);
await writeFile(join(dir, 'cert.pem'), cert);
await writeFile(join(dir, 'key.pem'), key, { mode: 0o600 });

console.log(`Wrote ca.pem, cert.pem and key.pem to ${dir}

Servers (backend, receiver, slack-alert):
  export TLS_CERT_FILE=${join(dir, 'cert.pem')}
  export TLS_KEY_FILE=${join(dir, 'key.pem')}
The backend, to trust receivers using that certificate:
  export WEBHOOK_CA_FILE=${join(dir, 'ca.pem')}
curl, to trust the servers:
  curl --cacert ${join(dir, 'ca.pem')} ...`);
