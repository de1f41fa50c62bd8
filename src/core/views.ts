import type { EventType } from './events.js';
import type {
  AttemptErrorCode,
  AttemptRecord,
  DeliveryRecord,
  DeliveryStatus,
  SignatureScheme,
  WebhookRecord,
} from './records.js';

/** A webhook as `list`/`get` return it: JSON-ready, without its secret. */
export interface Webhook {
  id: string;
  siteId: string;
  url: string;
  events: EventType[];
  description: string | null;
  /** Schemes its deliveries are signed with; `null`: the dispatcher's default (`['zta']` unless configured). */
  signatureSchemes: SignatureScheme[] | null;
  /**
   * Set while a rotation overlap is in progress: until `previousSecretExpiresAt`, deliveries are also
   * signed with the previous secret. Never carries secret material.
   */
  secretRotation: { previousSecretExpiresAt: string } | null;
  active: boolean;
  disabledReason: string | null;
  createdAt: string;
  lastTriggered: string | null;
}

/** Returned by `create` and `rotateSecret` only: the one time the secret is shown. */
export interface WebhookWithSecret extends Webhook {
  secret: string;
}

export interface Attempt {
  attempt: number;
  startedAt: string;
  durationMs: number;
  statusCode: number | null;
  errorCode: AttemptErrorCode | null;
  responseSnippet: string | null;
  ok: boolean;
}

export interface Delivery {
  id: string;
  webhookId: string;
  siteId: string;
  event: EventType;
  status: DeliveryStatus;
  attempts: Attempt[];
  nextAttemptAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

/** Whether the record's previous secret still signs deliveries at `now`. */
export function previousSecretActive(
  record: WebhookRecord,
  now: Date,
): record is WebhookRecord & {
  previousSecret: string;
  previousSecretExpiresAt: Date;
} {
  return (
    record.previousSecret !== null &&
    record.previousSecretExpiresAt !== null &&
    record.previousSecretExpiresAt.getTime() > now.getTime()
  );
}

export function toWebhook(record: WebhookRecord, now: Date = new Date()): Webhook {
  return {
    id: record.id,
    siteId: record.siteId,
    url: record.url,
    events: [...record.events],
    description: record.description,
    signatureSchemes: record.signatureSchemes === null ? null : [...record.signatureSchemes],
    secretRotation: previousSecretActive(record, now)
      ? { previousSecretExpiresAt: record.previousSecretExpiresAt.toISOString() }
      : null,
    active: record.active,
    disabledReason: record.disabledReason,
    createdAt: record.createdAt.toISOString(),
    lastTriggered: iso(record.lastTriggered),
  };
}

export function toAttempt(record: AttemptRecord): Attempt {
  return {
    attempt: record.attempt,
    startedAt: record.startedAt.toISOString(),
    durationMs: record.durationMs,
    statusCode: record.statusCode,
    errorCode: record.errorCode,
    responseSnippet: record.responseSnippet,
    ok: record.ok,
  };
}

export function toDelivery(record: DeliveryRecord, attempts: AttemptRecord[]): Delivery {
  return {
    id: record.id,
    webhookId: record.webhookId,
    siteId: record.siteId,
    event: record.event,
    status: record.status,
    attempts: attempts.map(toAttempt),
    nextAttemptAt: iso(record.nextAttemptAt),
    lastStatusCode: record.lastStatusCode,
    lastError: record.lastError,
    createdAt: record.createdAt.toISOString(),
    updatedAt: record.updatedAt.toISOString(),
  };
}
