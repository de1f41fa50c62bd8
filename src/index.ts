export type {
  AttemptNext,
  AttemptOutcome,
  ClaimedDelivery,
  ClaimOptions,
  CompletionEffect,
  DeliveryQuery,
  Scheduler,
  SqlClient,
  Store,
  Transport,
  TransportRequest,
  TransportResult,
  WriteOptions,
} from './adapters/types.js';
export {
  type AttemptInfo,
  type AttemptStartInfo,
  DEFAULT_CONCURRENCY,
  DEFAULT_MAX_CONSECUTIVE_FAILURES,
  DEFAULT_PER_WEBHOOK_CONCURRENCY,
  DEFAULT_TIMEOUT_MS,
  Dispatcher,
  type DispatcherEvents,
  type DispatcherOptions,
  type Logger,
  type WebhookDisabledInfo,
} from './core/dispatcher.js';
export { ERROR_STATUS, WebhookError, type WebhookErrorCode } from './core/errors.js';
export * from './core/events.js';
export {
  type Authorize,
  type CreateWebhookInput,
  DEFAULT_MAX_WEBHOOKS_PER_SITE,
  type DeliveriesInput,
  type ReencryptSecretsOptions,
  type RotateSecretOptions,
  type UpdateWebhookInput,
  WebhookManager,
  type WebhookManagerOptions,
} from './core/manager.js';
export { type EmitInput, MAX_PAYLOAD_BYTES } from './core/payload.js';
export * from './core/records.js';
export { LONG_RETRY_POLICY, type RetryPolicy, SPEC_RETRY_POLICY } from './core/retry.js';
export { DEFAULT_ROTATION_OVERLAP_SECONDS, MAX_ROTATION_OVERLAP_SECONDS } from './core/schemas.js';
export type { SecretEncryption } from './core/secret-cipher.js';
export { timerScheduler } from './core/timer-scheduler.js';
export type { Attempt, Delivery, Webhook, WebhookWithSecret } from './core/views.js';
export {
  type Authenticate,
  createWebhooksApi,
  type WebhooksApi,
  type WebhooksApiOptions,
} from './http/handler.js';
export {
  type FetchHandler,
  type NodeHandler,
  type NodeHandlerOptions,
  sendWebResponse,
  toNodeHandler,
  toWebRequest,
  type WebRequestInit,
} from './http/node-adapter.js';
export {
  RESPONSE_SNIPPET_BYTES,
  type UndiciTransportOptions,
  undiciTransport,
} from './transport/undici-transport.js';
export { USER_AGENT, VERSION } from './version.js';
