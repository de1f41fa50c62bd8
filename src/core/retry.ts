import type { AttemptNext } from '../adapters/types.js';
import type { AttemptErrorCode } from './records.js';

export interface RetryPolicy {
  /** Delay before each retry; attempts = delaysMs.length + 1. */
  delaysMs: readonly number[];
  /** A `Retry-After` longer than this is cut to it. */
  retryAfterCapMs: number;
}

/** The spec's schedule: attempt 1 at once, attempt 2 after 5 s, attempt 3 after 25 s. */
export const SPEC_RETRY_POLICY: RetryPolicy = { delaysMs: [5_000, 25_000], retryAfterCapMs: 60_000 };

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** For receivers that must survive hours of downtime (Svix's schedule): 8 attempts over about 27.6 hours. */
export const LONG_RETRY_POLICY: RetryPolicy = {
  delaysMs: [5_000, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR],
  retryAfterCapMs: HOUR,
};

export type AttemptResult =
  | { statusCode: number; retryAfter?: string | undefined }
  | { errorCode: AttemptErrorCode };

export interface AttemptVerdict {
  ok: boolean;
  next: AttemptNext;
  /** Set when the webhook must be disabled at once. */
  disableReason?: string;
}

const RETRYABLE_ERRORS: ReadonlySet<AttemptErrorCode> = new Set([
  'timeout',
  'dns',
  'connection_refused',
  'connection_reset',
  'tls',
  'network',
]);

/**
 * Decides what an attempt's result means: success on 2xx; a retry on 5xx, 408, 429 and network errors
 * (timeouts, DNS, refused, reset, TLS) while attempts remain; final on other 4xx, redirects and blocked
 * addresses; 410 Gone also disables the webhook.
 */
export function judgeAttempt(
  result: AttemptResult,
  attemptsMade: number,
  policy: RetryPolicy,
  now: Date,
): AttemptVerdict {
  if ('statusCode' in result) {
    const { statusCode } = result;
    if (statusCode >= 200 && statusCode < 300) return { ok: true, next: { status: 'succeeded' } };
    if (statusCode === 410) {
      return { ok: false, next: { status: 'failed' }, disableReason: 'Endpoint answered 410 Gone' };
    }
    const retryable = statusCode >= 500 || statusCode === 408 || statusCode === 429 || statusCode < 200;
    if (!retryable) return { ok: false, next: { status: 'failed' } };
    return {
      ok: false,
      next: retryOrFail(attemptsMade, policy, now, parseRetryAfter(result.retryAfter, now)),
    };
  }
  if (!RETRYABLE_ERRORS.has(result.errorCode)) return { ok: false, next: { status: 'failed' } };
  return { ok: false, next: retryOrFail(attemptsMade, policy, now, null) };
}

function retryOrFail(
  attemptsMade: number,
  policy: RetryPolicy,
  now: Date,
  retryAfterMs: number | null,
): AttemptNext {
  const scheduled = policy.delaysMs[attemptsMade - 1];
  if (scheduled === undefined) return { status: 'failed' };
  const delay = Math.max(scheduled, Math.min(retryAfterMs ?? 0, policy.retryAfterCapMs));
  return { status: 'pending', nextAttemptAt: new Date(now.getTime() + delay) };
}

/** `Retry-After` as delay-seconds or an HTTP date, in milliseconds from `now`; null when absent or invalid. */
export function parseRetryAfter(value: string | undefined, now: Date): number | null {
  if (value === undefined) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now.getTime());
}

/**
 * The longest retry delay and `Retry-After` cap taken: a year. A due time past what a Date can hold would be
 * Invalid, and the store could not record the outcome (nor the others written with it).
 */
const MAX_DELAY_MS = 365 * 24 * 60 * 60 * 1000;

export function validateRetryPolicy(policy: RetryPolicy): RetryPolicy {
  const inRange = (ms: number) => Number.isFinite(ms) && ms >= 0 && ms <= MAX_DELAY_MS;
  const valid = policy.delaysMs.every(inRange) && inRange(policy.retryAfterCapMs);
  if (!valid) {
    throw new TypeError('retry delays and retryAfterCapMs must be milliseconds from 0 to 365 days');
  }
  return { delaysMs: [...policy.delaysMs], retryAfterCapMs: policy.retryAfterCapMs };
}
