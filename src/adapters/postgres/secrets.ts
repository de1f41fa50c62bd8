/**
 * The seam for encrypting webhook secrets at rest (a later issue). Every secret passes through `seal` on its
 * way into the `secret` and `previous_secret` columns and through `open` on its way out; nothing else in the
 * adapter reads or writes those columns. Today both are the identity: secrets are stored exactly as the
 * store receives them. An implementation must be deterministic in `open` and must tell its own output apart
 * from a plain secret (for example by a prefix), so existing rows keep working while they are re-encrypted.
 */
export interface SecretCodec {
  seal(secret: string): string;
  open(stored: string): string;
}

export const plaintextSecrets: SecretCodec = {
  seal: (secret) => secret,
  open: (stored) => stored,
};
