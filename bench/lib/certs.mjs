// A per-run CA and a loopback server certificate, from the test suite's own generator
// (test/support/tls.ts, @peculiar/x509), loaded through tsx since it is TypeScript.
import { tsImport } from 'tsx/esm/api';

/** Returns { caCert, cert, key } (PEM): a fresh CA and a leaf for localhost / 127.0.0.1 / ::1. */
export async function createBenchCerts() {
  const { createTestCA } = await tsImport('../../test/support/tls.ts', import.meta.url);
  const ca = await createTestCA();
  const leaf = await ca.issue();
  return { caCert: ca.caCert, cert: leaf.cert, key: leaf.key };
}
