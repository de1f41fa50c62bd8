// Entry point `@zta/webhooks/verify/web`: receiver-side verification with WebCrypto, for runtimes without
// node:crypto or Buffer (Cloudflare Workers, Deno, Bun, browsers). Imports nothing: web bundlers never see
// a `node:*` module.
export type {
  EventDataMap,
  EventType,
  WebhookPayload,
} from './verify/payload-types.js';
export type {
  SignatureHeader,
  VerifyFailureReason,
  VerifyResult,
  VerifyStandardOptions,
  WebhookHeaders,
  WebhookSecret,
} from './verify/shared.js';
export { verifyStandardWebhookAsync, verifyWebhookAsync } from './verify/web.js';
