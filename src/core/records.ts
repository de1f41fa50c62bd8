import type { EventType } from './events.js';

/**
 * How deliveries are signed: `zta` is the spec's `X-ZTA-Signature` (HMAC-SHA256 of the body, hex); `standard`
 * adds the Standard Webhooks headers `webhook-id`, `webhook-timestamp` and `webhook-signature`.
 */
export const SIGNATURE_SCHEMES = ['zta', 'standard'] as const;
export type SignatureScheme = (typeof SIGNATURE_SCHEMES)[number];

/** A webhook as the store keeps it. Only the manager ever hands the secret out, and only once. */
export interface WebhookRecord {
  id: string;
  siteId: string;
  url: string;
  events: EventType[];
  description: string | null;
  secret: string;
  /** The secret before the last rotation, still signing deliveries until `previousSecretExpiresAt`. */
  previousSecret: string | null;
  /** When the rotation overlap ends; `null` when there is no previous secret. */
  previousSecretExpiresAt: Date | null;
  /** Schemes this webhook's deliveries are signed with; `null` means the dispatcher's default. */
  signatureSchemes: SignatureScheme[] | null;
  active: boolean;
  disabledReason: string | null;
  consecutiveFailures: number;
  createdAt: Date;
  updatedAt: Date;
  lastTriggered: Date | null;
}

export type WebhookPatch = Partial<
  Pick<
    WebhookRecord,
    | 'url'
    | 'events'
    | 'description'
    | 'secret'
    | 'previousSecret'
    | 'previousSecretExpiresAt'
    | 'signatureSchemes'
    | 'active'
    | 'disabledReason'
    | 'consecutiveFailures'
  >
> & {
  updatedAt: Date;
  /**
   * Apply only while the stored secret is still this one (as the store last returned it); otherwise change
   * nothing and return null. Rotation sets it, so two rotations at once cannot both build on one secret.
   */
  ifSecret?: string;
  /**
   * Apply only while the stored previous secret is still this one (null: none). Re-encryption sets it with
   * `ifSecret`, so it cannot bring back a previous secret revoked between its read and its write.
   */
  ifPreviousSecret?: string | null;
};

/** A page size a store is given: the manager and HTTP API check theirs; a store checks again for direct callers. */
export function requirePageLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError('limit must be a positive integer');
}

export const DELIVERY_STATUSES = ['pending', 'delivering', 'succeeded', 'failed', 'discarded'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface DeliveryRecord {
  id: string;
  webhookId: string;
  /** The webhook's site (a webhook never changes site); the Postgres store finds a site's log through it. */
  siteId: string;
  event: EventType;
  /** The exact bytes that are signed and sent. */
  body: string;
  status: DeliveryStatus;
  /** Attempts made so far. */
  attempts: number;
  /** When the next attempt is due; set while `pending`. */
  nextAttemptAt: Date | null;
  /** Until when a worker holds the delivery; set while `delivering`. */
  leaseExpiresAt: Date | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Why an attempt failed, when no usable HTTP status explains it. */
export const ATTEMPT_ERROR_CODES = [
  'timeout',
  'dns',
  'connection_refused',
  'connection_reset',
  'tls',
  'redirect',
  'blocked_address',
  'network',
] as const;
export type AttemptErrorCode = (typeof ATTEMPT_ERROR_CODES)[number];

export interface AttemptRecord {
  deliveryId: string;
  webhookId: string;
  /** 1-based. */
  attempt: number;
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  errorCode: AttemptErrorCode | null;
  /** At most the first 4 KiB of the response body, as text. */
  responseSnippet: string | null;
  ok: boolean;
}
