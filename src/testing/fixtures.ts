import { newId, newSecret } from '../core/ids.js';
import type { AttemptRecord, DeliveryRecord, WebhookRecord } from '../core/records.js';

/** Record builders for store tests: valid records with fixed times, any field overridable. */
export const T0 = new Date('2026-01-01T00:00:00.000Z');
export const at = (ms: number): Date => new Date(T0.getTime() + ms);

export function webhook(overrides: Partial<WebhookRecord> = {}): WebhookRecord {
  return {
    id: newId('wh'),
    siteId: 'site_a',
    url: 'https://receiver.example/hook',
    events: ['pageview', 'goal'],
    description: null,
    secret: newSecret(),
    previousSecret: null,
    previousSecretExpiresAt: null,
    signatureSchemes: null,
    active: true,
    disabledReason: null,
    consecutiveFailures: 0,
    createdAt: T0,
    updatedAt: T0,
    lastTriggered: null,
    ...overrides,
  };
}

export function delivery(hook: WebhookRecord, overrides: Partial<DeliveryRecord> = {}): DeliveryRecord {
  return {
    id: newId('dlv'),
    webhookId: hook.id,
    siteId: hook.siteId,
    event: 'pageview',
    body: '{"event":"pageview"}',
    status: 'pending',
    attempts: 0,
    nextAttemptAt: T0,
    leaseExpiresAt: null,
    lastStatusCode: null,
    lastError: null,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

export function attempt(
  d: DeliveryRecord,
  number: number,
  overrides: Partial<AttemptRecord> = {},
): AttemptRecord {
  return {
    deliveryId: d.id,
    webhookId: d.webhookId,
    attempt: number,
    startedAt: at(number * 1000),
    durationMs: 12,
    statusCode: 200,
    errorCode: null,
    responseSnippet: 'OK',
    ok: true,
    ...overrides,
  };
}

export const failedAttempt = (d: DeliveryRecord, number: number): AttemptRecord =>
  attempt(d, number, { statusCode: 500, ok: false, responseSnippet: 'boom' });
