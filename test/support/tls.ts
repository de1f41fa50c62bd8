/**
 * A throwaway certificate authority for tests: a root CA plus server leaves for loopback HTTPS receivers.
 * Pure JS (@peculiar/x509 over node's WebCrypto), ECDSA P-256, nothing cached between calls.
 */
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import type * as X509 from '@peculiar/x509';

export interface IssuedCert {
  /** PEM leaf certificate (the leaf only; clients trust `caCert`). */
  cert: string;
  /** PEM PKCS#8 private key of the leaf. */
  key: string;
}

export interface TestCA {
  /** PEM root certificate; pass as `ca` to a client (or write to a file for NODE_EXTRA_CA_CERTS). */
  caCert: string;
  /**
   * Issues a server certificate signed by this CA. SANs: DNS `localhost`, IPs `127.0.0.1` and `::1`,
   * plus `names` (IP literals become IP SANs, anything else a DNS SAN).
   */
  issue(names?: string[]): Promise<IssuedCert>;
}

const crypto = webcrypto;
const keyAlg: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const signingAlgorithm: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const HOUR = 60 * 60 * 1000;
const DEFAULT_NAMES = ['localhost', '127.0.0.1', '::1'];

type MetadataReflect = typeof Reflect & {
  getMetadata?: (key: unknown, target: object) => unknown;
  getOwnMetadata?: (key: unknown, target: object) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: object) => void;
};

/**
 * @peculiar/x509 loads tsyringe, which refuses to load without a Reflect metadata polyfill (none is
 * installed). It only needs these three calls, so provide them when absent, then load x509 lazily.
 */
async function loadX509(): Promise<typeof X509> {
  const r = Reflect as MetadataReflect;
  if (!r.getMetadata) {
    const store = new WeakMap<object, Map<unknown, unknown>>();
    r.defineMetadata = (key, value, target) => {
      const own = store.get(target) ?? new Map<unknown, unknown>();
      own.set(key, value);
      store.set(target, own);
    };
    r.getOwnMetadata = (key, target) => store.get(target)?.get(key);
    r.getMetadata = (key, target) => {
      for (let t: object | null = target; t; t = Object.getPrototypeOf(t) as object | null) {
        const own = store.get(t);
        if (own?.has(key)) return own.get(key);
      }
      return undefined;
    };
  }
  return import('@peculiar/x509');
}

function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return crypto.subtle.generateKey(keyAlg, true, ['sign', 'verify']);
}

export async function createTestCA(): Promise<TestCA> {
  const x509 = await loadX509();
  const caKeys = await generateKeys();
  const now = Date.now();
  const caName = `CN=zta-webhooks test CA ${now.toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: caName,
      keys: caKeys,
      signingAlgorithm,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 7 * 24 * HOUR),
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );

  async function issue(names: string[] = []): Promise<IssuedCert> {
    const keys = await generateKeys();
    const issuedAt = Date.now();
    const sans: X509.JsonGeneralNames = [...new Set([...DEFAULT_NAMES, ...names])].map((value) => ({
      type: isIP(value) ? 'ip' : 'dns',
      value,
    }));
    const leaf = await x509.X509CertificateGenerator.create(
      {
        subject: 'CN=localhost',
        issuer: ca.subject,
        publicKey: keys.publicKey,
        signingKey: caKeys.privateKey,
        signingAlgorithm,
        notBefore: new Date(issuedAt - HOUR),
        notAfter: new Date(issuedAt + 3 * 24 * HOUR),
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension(sans),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
          await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
        ],
      },
      crypto,
    );
    const keyDer = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
    return { cert: leaf.toString('pem'), key: x509.PemConverter.encode(keyDer, 'PRIVATE KEY') };
  }

  return { caCert: ca.toString('pem'), issue };
}
