/**
 * A throwaway certificate authority for local HTTPS, so the examples and the demo run over real,
 * verified TLS on loopback without touching the system trust store.
 *
 * It is the generator the test suite uses (test/support/tls.ts: pure JS over WebCrypto, ECDSA P-256,
 * through the `@peculiar/x509` dev dependency), re-exported here under the name the examples use.
 * Certificates it issues are valid for `localhost`, `127.0.0.1` and `::1`. Never use them in production.
 */
export {
  createTestCA as createDevCA,
  type IssuedCert,
  type TestCA as DevCA,
} from '../../test/support/tls.js';
