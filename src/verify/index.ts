export type { EventDataMap, EventType, WebhookPayload } from './payload-types.js';
export type {
  SignatureHeader,
  VerifyFailureReason,
  VerifyResult,
  VerifyStandardOptions,
  WebhookHeaders,
  WebhookSecret,
} from './shared.js';
export { SIGNATURE_PREFIX, signPayload } from './sign.js';
export { signStandardPayload, verifyStandardWebhook } from './standard.js';
export { verifyWebhook } from './verify.js';
export { verifyStandardWebhookAsync, verifyWebhookAsync } from './web.js';
