/** Masks anything shaped like a webhook secret, and bounds the length: for text that goes to logs. */
export function redactSecrets(text: string): string {
  return text.replace(/whsec_[A-Za-z0-9+/=_-]*/g, 'whsec_[redacted]').slice(0, 500);
}
