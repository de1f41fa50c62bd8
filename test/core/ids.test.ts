import { describe, expect, it } from 'vitest';
import { newId, newSecret } from '../../src/core/ids.js';

describe('ids and secrets', () => {
  it('gives distinct 128-bit URL-safe ids across pool refills', () => {
    const ids = Array.from({ length: 2000 }, () => newId('dlv'));
    expect(new Set(ids).size).toBe(2000);
    for (const id of ids) {
      expect(id).toMatch(/^dlv_[A-Za-z0-9_-]{22}$/);
      expect(Buffer.from(id.slice(4), 'base64url')).toHaveLength(16);
    }
  });

  it('gives whsec_ secrets of 32 random bytes', () => {
    const secrets = new Set(Array.from({ length: 100 }, newSecret));
    expect(secrets.size).toBe(100);
    for (const secret of secrets) expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
  });
});
