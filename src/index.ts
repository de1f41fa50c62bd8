export type {
  AttemptNext,
  AttemptOutcome,
  ClaimedDelivery,
  CompletionEffect,
  DeliveryQuery,
  Scheduler,
  Store,
  Transport,
  TransportRequest,
  TransportResult,
} from './adapters/types.js';
export { ERROR_STATUS, WebhookError, type WebhookErrorCode } from './core/errors.js';
export * from './core/events.js';
export {
  type Authorize,
  type CreateWebhookInput,
  DEFAULT_MAX_WEBHOOKS_PER_SITE,
  type DeliveriesInput,
  type UpdateWebhookInput,
  WebhookManager,
  type WebhookManagerOptions,
} from './core/manager.js';
export * from './core/records.js';
export type { Attempt, Delivery, Webhook, WebhookWithSecret } from './core/views.js';
