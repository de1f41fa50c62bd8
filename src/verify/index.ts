export { SIGNATURE_PREFIX, signPayload } from './sign.js';
export type { SignatureHeader, WebhookSecret } from './verify.js';
export { verifyWebhook } from './verify.js';
