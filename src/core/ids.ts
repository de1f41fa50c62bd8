import { randomBytes, randomFillSync } from 'node:crypto';

const ID_BYTES = 16;
/** Random bytes drawn in bulk: one `randomFillSync` per 256 ids instead of one `randomBytes` call each. */
const pool = Buffer.alloc(ID_BYTES * 256);
let offset = pool.length;

/** `prefix` + 128 random bits, URL-safe. */
export function newId(prefix: 'wh' | 'dlv'): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString('base64url', offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return `${prefix}_${id}`;
}

/** `whsec_` + base64 of 32 random bytes (the Standard Webhooks secret format). Never pooled. */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}
