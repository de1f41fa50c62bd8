import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newSecret } from '../../src/core/ids.js';
import { secretCipher } from '../../src/core/secret-cipher.js';
import { Dispatcher, WebhookManager } from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const FORMAT = /^zta:enc:v1:k1:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]{22}:[A-Za-z0-9_-]+$/;

/** Replaces one base64url character of part `index` (0-based, of the colon-separated fields). */
function tamper(sealed: string, index: number): string {
  const parts = sealed.split(':');
  const part = parts[index]!;
  parts[index] = (part[0] === 'A' ? 'B' : 'A') + part.slice(1);
  return parts.join(':');
}

describe('secretCipher', () => {
  const cipher = secretCipher({ keys: { k1 }, current: 'k1' });

  it('round-trips in the documented format, without the plaintext or its base64 part', () => {
    const secret = newSecret();
    const sealed = cipher.seal(secret);
    expect(sealed).toMatch(FORMAT);
    expect(sealed).not.toContain(secret);
    expect(sealed).not.toContain(secret.slice('whsec_'.length));
    expect(sealed).not.toContain('whsec_');
    expect(cipher.open(sealed)).toBe(secret);
    expect(cipher.needsReseal(sealed)).toBe(false);
  });

  it('uses a fresh IV every time', () => {
    const secret = newSecret();
    const ivs = new Set(Array.from({ length: 1000 }, () => cipher.seal(secret).split(':')[4]));
    expect(ivs.size).toBe(1000);
  });

  it('passes plaintext through open, and says it needs sealing', () => {
    const secret = newSecret();
    expect(cipher.open(secret)).toBe(secret);
    expect(cipher.needsReseal(secret)).toBe(true);
  });

  it('keeps opening an old key id after current changes, and flags it for resealing', () => {
    const secret = newSecret();
    const old = cipher.seal(secret);
    const next = secretCipher({ keys: { k1, k2 }, current: 'k2' });
    expect(next.open(old)).toBe(secret);
    expect(next.needsReseal(old)).toBe(true);
    const resealed = next.seal(secret);
    expect(resealed.startsWith('zta:enc:v1:k2:')).toBe(true);
    expect(next.needsReseal(resealed)).toBe(false);
  });

  it('refuses an unknown key id, a wrong key, tampering and malformed input, never quoting the secret', () => {
    const secret = newSecret();
    const sealed = cipher.seal(secret);
    const failures: unknown[] = [];
    const attempt = (run: () => unknown, pattern: RegExp) => {
      let thrown: unknown;
      try {
        run();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(Error);
      expect((thrown as Error).message).toMatch(pattern);
      failures.push(thrown);
    };
    attempt(
      () => secretCipher({ keys: { k2 }, current: 'k2' }).open(sealed),
      /unknown encryption key id "k1"/,
    );
    attempt(() => secretCipher({ keys: { k1: k2 }, current: 'k1' }).open(sealed), /authentication failed/);
    attempt(() => cipher.open(tamper(sealed, 6)), /authentication failed/); // ciphertext
    attempt(() => cipher.open(tamper(sealed, 5)), /authentication failed/); // tag
    attempt(() => cipher.open(tamper(sealed, 4)), /authentication failed/); // iv
    // The key id is authenticated: moving a row to another id with the same key fails.
    attempt(
      () => secretCipher({ keys: { k1, other: k1 }, current: 'k1' }).open(sealed.replace(':k1:', ':other:')),
      /authentication failed/,
    );
    attempt(() => cipher.open('zta:enc:v1:k1:abc'), /malformed/);
    attempt(() => cipher.open(`${sealed}:extra`), /malformed/);
    attempt(() => cipher.open('zta:enc:v9:k1:a:b:c'), /unsupported format version/);
    attempt(() => secretCipher(undefined).open(sealed), /no encryption keys are configured/);
    for (const error of failures) {
      const text = `${String(error)} ${JSON.stringify(error)} ${(error as Error).stack}`;
      expect(text).not.toContain(secret);
      expect(text).not.toContain(secret.slice('whsec_'.length));
    }
  });

  it('is the identity without encryption', () => {
    const plain = secretCipher(undefined);
    const secret = newSecret();
    expect(plain.seal(secret)).toBe(secret);
    expect(plain.open(secret)).toBe(secret);
    expect(plain.needsReseal(secret)).toBe(false);
  });

  it('copies the keys: changing the caller buffer later does not matter', () => {
    const key = Buffer.from(k1);
    const copy = secretCipher({ keys: { k1: key }, current: 'k1' });
    const sealed = copy.seal('whsec_x');
    key.fill(0);
    expect(copy.open(sealed)).toBe('whsec_x');
  });

  it('validates the option on the manager and the dispatcher', () => {
    const bad: unknown[] = [
      null,
      { keys: { k1 }, current: 'k2' },
      { keys: { k1: randomBytes(16) }, current: 'k1' },
      { keys: { k1: randomBytes(33) }, current: 'k1' },
      { keys: { k1: 'x'.repeat(32) }, current: 'k1' },
      { keys: { 'a:b': k1 }, current: 'a:b' },
      { keys: {}, current: 'k1' },
      { current: 'k1' },
    ];
    for (const encryption of bad) {
      expect(() => secretCipher(encryption as never)).toThrow(TypeError);
      expect(
        () =>
          new WebhookManager({
            store: memoryStore(),
            authorize: () => true,
            encryption: encryption as never,
          }),
      ).toThrow(TypeError);
      expect(() => new Dispatcher({ store: memoryStore(), encryption: encryption as never })).toThrow(
        TypeError,
      );
    }
    expect(() => secretCipher({ keys: { k1: new Uint8Array(k1), k2 }, current: 'k2' })).not.toThrow();
  });
});
