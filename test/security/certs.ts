/**
 * A certificate authority for the security tests that, unlike test/support/tls.ts, can issue leaves with any
 * validity window (expired ones) and for extra names. No vitest import: child processes and benches can use it.
 */
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { createTestCA, type IssuedCert, type TestCA } from '../support/tls.js';

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const keyAlg: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const signingAlgorithm: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

export interface IssueOptions {
  names?: string[];
  /** Only `names` in the SAN list (by default localhost, 127.0.0.1 and ::1 are added). */
  exact?: boolean;
  notBefore?: Date;
  notAfter?: Date;
}

export interface SecurityCA {
  caCert: string;
  issue(options?: IssueOptions): Promise<IssuedCert>;
  /** The same CA in the shape test/support/receiver.ts takes, issuing leaves for `names` too. */
  forReceiver(names?: string[], options?: Omit<IssueOptions, 'names'>): TestCA;
}

/**
 * A root CA whose leaves can carry any validity window (test/support/tls.ts always issues valid ones).
 * @peculiar/x509 needs a Reflect metadata polyfill, which createTestCA installs on first use: call it once
 * before importing the module.
 */
export async function createSecurityCA(): Promise<SecurityCA> {
  await createTestCA();
  const x509 = await import('@peculiar/x509');
  const crypto = webcrypto;
  const caKeys = await crypto.subtle.generateKey(keyAlg, true, ['sign', 'verify']);
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: `CN=zta-webhooks security test CA ${now.toString(36)}`,
      keys: caKeys,
      signingAlgorithm,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 7 * DAY),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );

  async function issue(options: IssueOptions = {}): Promise<IssuedCert> {
    const keys = await crypto.subtle.generateKey(keyAlg, true, ['sign', 'verify']);
    const defaults = options.exact ? [] : ['localhost', '127.0.0.1', '::1'];
    const names = [...new Set([...defaults, ...(options.names ?? [])])];
    const leaf = await x509.X509CertificateGenerator.create(
      {
        subject: 'CN=localhost',
        issuer: ca.subject,
        publicKey: keys.publicKey,
        signingKey: caKeys.privateKey,
        signingAlgorithm,
        notBefore: options.notBefore ?? new Date(Date.now() - HOUR),
        notAfter: options.notAfter ?? new Date(Date.now() + 3 * DAY),
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension(
            names.map((value) => ({ type: isIP(value) ? 'ip' : 'dns', value })),
          ),
        ],
      },
      crypto,
    );
    const keyDer = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
    return { cert: leaf.toString('pem'), key: x509.PemConverter.encode(keyDer, 'PRIVATE KEY') };
  }

  const caCert = ca.toString('pem');
  return {
    caCert,
    issue,
    forReceiver: (names = [], options = {}) => ({
      caCert,
      issue: (extra = []) => issue({ ...options, names: [...names, ...extra] }),
    }),
  };
}

let shared: Promise<SecurityCA> | undefined;
/** One CA per test file (module instance). */
export function securityCA(): Promise<SecurityCA> {
  shared ??= createSecurityCA();
  return shared;
}
