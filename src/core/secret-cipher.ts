import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Encryption of webhook secrets at rest, for `WebhookManager` and `Dispatcher` (give both the same keys).
 * `keys` maps key ids to 32-byte AES-256 keys; `current` names the one new secrets are sealed with. Keep old
 * key ids in `keys` until `manager.reencryptSecrets()` has moved every row to the current one.
 */
export interface SecretEncryption {
  keys: { [keyId: string]: Uint8Array };
  current: string;
}

export interface SecretCipher {
  /** The string to store for `plaintext`: `zta:enc:v1:<keyId>:<iv>:<tag>:<ciphertext>`; identity without keys. */
  seal(plaintext: string): string;
  /** The secret in `stored`; a string that is not sealed (a plaintext row) comes back unchanged. */
  open(stored: string): string;
  /** Whether `stored` is plaintext or sealed with another key than the current one (always false without keys). */
  needsReseal(stored: string): boolean;
}

const PREFIX = 'zta:enc:';
const VERSION = 'v1';
const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const B64URL = /^[A-Za-z0-9_-]*$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;

const identity: SecretCipher = {
  seal: (plaintext) => plaintext,
  open: (stored) => {
    if (stored.startsWith(PREFIX)) {
      throw new Error('Cannot decrypt webhook secret: it is encrypted but no encryption keys are configured');
    }
    return stored;
  },
  needsReseal: () => false,
};

/** Whether a stored secret is sealed (of any version or key). */
export function isSealed(stored: string): boolean {
  return stored.startsWith(PREFIX);
}

/** Validates `encryption` (TypeError when invalid) and returns its cipher; identity when undefined. */
export function secretCipher(encryption: SecretEncryption | undefined): SecretCipher {
  if (encryption === undefined) return identity;
  const keys = validKeys(encryption);
  const current = encryption.current;

  const parse = (stored: string): { keyId: string; iv: Buffer; tag: Buffer; ct: Buffer } => {
    const parts = stored.slice(PREFIX.length).split(':');
    if (parts[0] !== VERSION) throw new Error('Cannot decrypt webhook secret: unsupported format version');
    const [, keyId, iv, tag, ct] = parts;
    if (
      parts.length !== 5 ||
      keyId === undefined ||
      !KEY_ID.test(keyId) ||
      ![iv, tag, ct].every((part) => part !== undefined && B64URL.test(part))
    ) {
      throw new Error('Cannot decrypt webhook secret: malformed ciphertext');
    }
    const decoded = {
      keyId,
      iv: Buffer.from(iv!, 'base64url'),
      tag: Buffer.from(tag!, 'base64url'),
      ct: Buffer.from(ct!, 'base64url'),
    };
    if (decoded.iv.length !== IV_BYTES || decoded.tag.length !== TAG_BYTES) {
      throw new Error('Cannot decrypt webhook secret: malformed ciphertext');
    }
    return decoded;
  };

  return {
    seal(plaintext) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', keys.get(current)!, iv);
      cipher.setAAD(aad(current));
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();
      return `${aad(current).toString()}:${iv.toString('base64url')}:${tag.toString('base64url')}:${ct.toString('base64url')}`;
    },
    open(stored) {
      if (!stored.startsWith(PREFIX)) return stored;
      const { keyId, iv, tag, ct } = parse(stored);
      const key = keys.get(keyId);
      if (key === undefined) {
        throw new Error(`Cannot decrypt webhook secret: unknown encryption key id "${keyId}"`);
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(aad(keyId));
        decipher.setAuthTag(tag);
        return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8');
      } catch {
        throw new Error(
          `Cannot decrypt webhook secret: authentication failed (wrong key for key id "${keyId}" or tampered data)`,
        );
      }
    },
    needsReseal(stored) {
      return !stored.startsWith(`${PREFIX}${VERSION}:${current}:`);
    },
  };
}

/** The authenticated header of a sealed secret, also its prefix: `zta:enc:v1:<keyId>`. */
function aad(keyId: string): Buffer {
  return Buffer.from(`${PREFIX}${VERSION}:${keyId}`);
}

function validKeys(encryption: SecretEncryption): Map<string, Buffer> {
  if (typeof encryption !== 'object' || encryption === null) {
    throw new TypeError('encryption must be an object { keys, current }');
  }
  const { keys, current } = encryption;
  if (typeof keys !== 'object' || keys === null) {
    throw new TypeError('encryption.keys must be an object of key id to 32-byte key');
  }
  const map = new Map<string, Buffer>();
  for (const [keyId, key] of Object.entries(keys)) {
    if (!KEY_ID.test(keyId)) {
      throw new TypeError('encryption key ids must be 1 to 64 characters of A-Z, a-z, 0-9, _, . or -');
    }
    if (!(key instanceof Uint8Array) || key.length !== 32) {
      throw new TypeError(`encryption key "${keyId}" must be exactly 32 bytes (a Uint8Array or Buffer)`);
    }
    map.set(keyId, Buffer.from(key)); // a copy: later changes to the caller's array do not apply
  }
  if (typeof current !== 'string' || !map.has(current)) {
    throw new TypeError('encryption.current must name one of encryption.keys');
  }
  return map;
}
