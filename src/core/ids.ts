import { randomBytes } from 'node:crypto';

/** `prefix` + 128 random bits, URL-safe. */
export function newId(prefix: 'wh' | 'dlv'): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}

/** `whsec_` + base64 of 32 random bytes (the Standard Webhooks secret format). */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}
