import type { EventType } from '../../core/events.js';
import type {
  AttemptErrorCode,
  AttemptRecord,
  DeliveryRecord,
  DeliveryStatus,
  SignatureScheme,
  WebhookRecord,
} from '../../core/records.js';
import type { SecretCodec } from './secrets.js';

/** A row as `pg` returns it. */
export type Row = Record<string, unknown>;

/**
 * `pg` returns `timestamptz` as a `Date` by default; an application may have installed its own type parser
 * (a string, for instance), so anything `Date` can parse is accepted.
 */
export function toDate(value: unknown): Date {
  if (value instanceof Date) return new Date(value.getTime());
  const date = new Date(value as string | number);
  if (Number.isNaN(date.getTime()))
    throw new TypeError(`Unexpected timestamp from Postgres: ${String(value)}`);
  return date;
}

export function toDateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : toDate(value);
}

const toNumber = (value: unknown): number => (typeof value === 'number' ? value : Number(value));
const toNumberOrNull = (value: unknown): number | null =>
  value === null || value === undefined ? null : toNumber(value);
const toStringOrNull = (value: unknown): string | null =>
  value === null || value === undefined ? null : String(value);

export function toWebhook(row: Row, secrets: SecretCodec, prefix = ''): WebhookRecord {
  const get = (column: string): unknown => row[prefix + column];
  return {
    id: String(get('id')),
    siteId: String(get('site_id')),
    url: String(get('url')),
    events: [...(get('events') as EventType[])],
    description: toStringOrNull(get('description')),
    secret: secrets.open(String(get('secret'))),
    previousSecret: get('previous_secret') == null ? null : secrets.open(String(get('previous_secret'))),
    previousSecretExpiresAt: toDateOrNull(get('previous_secret_expires_at')),
    signatureSchemes:
      get('signature_schemes') == null ? null : [...(get('signature_schemes') as SignatureScheme[])],
    active: get('active') === true,
    disabledReason: toStringOrNull(get('disabled_reason')),
    consecutiveFailures: toNumber(get('consecutive_failures')),
    createdAt: toDate(get('created_at')),
    updatedAt: toDate(get('updated_at')),
    lastTriggered: toDateOrNull(get('last_triggered')),
  };
}

export function toDelivery(row: Row): DeliveryRecord {
  return {
    id: String(row.id),
    webhookId: String(row.webhook_id),
    siteId: String(row.site_id),
    event: row.event as EventType,
    body: String(row.body),
    status: row.status as DeliveryStatus,
    attempts: toNumber(row.attempts),
    nextAttemptAt: toDateOrNull(row.next_attempt_at),
    leaseExpiresAt: toDateOrNull(row.lease_expires_at),
    lastStatusCode: toNumberOrNull(row.last_status_code),
    lastError: toStringOrNull(row.last_error),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

export function toAttempt(row: Row): AttemptRecord {
  return {
    deliveryId: String(row.delivery_id),
    webhookId: String(row.webhook_id),
    attempt: toNumber(row.attempt),
    startedAt: toDate(row.started_at),
    durationMs: toNumber(row.duration_ms),
    statusCode: toNumberOrNull(row.status_code),
    errorCode: toStringOrNull(row.error_code) as AttemptErrorCode | null,
    responseSnippet: toStringOrNull(row.response_snippet),
    ok: row.ok === true,
  };
}

/**
 * Postgres `text` cannot hold U+0000, and a response snippet is whatever a remote server sent. One NUL must
 * not make a completion batch fail (and be retried forever), so it is stored as U+FFFD.
 */
export function storableText(value: string | null): string | null {
  return value === null || !value.includes('\u0000') ? value : value.replaceAll('\u0000', '\uFFFD');
}
