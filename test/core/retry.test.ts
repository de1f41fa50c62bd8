// What an attempt's result means, one result at a time: the table README "Retrying" documents.
import { describe, expect, it } from 'vitest';
import type { AttemptErrorCode } from '../../src/core/records.js';
import { judgeAttempt, parseRetryAfter, SPEC_RETRY_POLICY } from '../../src/core/retry.js';

const now = new Date('2024-12-12T16:30:00.000Z');
const in5s = new Date(now.getTime() + 5_000);

describe('judgeAttempt', () => {
  it('succeeds on every 2xx, and on nothing else', () => {
    for (const statusCode of [200, 201, 202, 204, 226, 299]) {
      expect(judgeAttempt({ statusCode }, 1, SPEC_RETRY_POLICY, now)).toEqual({
        ok: true,
        next: { status: 'succeeded' },
      });
    }
    for (const statusCode of [300, 301, 302, 304, 307, 308, 400, 401, 403, 404, 409, 422]) {
      expect(judgeAttempt({ statusCode }, 1, SPEC_RETRY_POLICY, now)).toEqual({
        ok: false,
        next: { status: 'failed' },
      });
    }
  });

  it('retries 5xx, 408 and 429 on the schedule while attempts remain, then fails', () => {
    for (const statusCode of [500, 502, 503, 504, 599, 408, 429]) {
      expect(judgeAttempt({ statusCode }, 1, SPEC_RETRY_POLICY, now).next).toEqual({
        status: 'pending',
        nextAttemptAt: in5s,
      });
      expect(judgeAttempt({ statusCode }, 3, SPEC_RETRY_POLICY, now).next).toEqual({ status: 'failed' });
    }
  });

  it('retries every network error but a refused address, and never a redirect', () => {
    const retried: AttemptErrorCode[] = [
      'timeout',
      'dns',
      'connection_refused',
      'connection_reset',
      'tls',
      'network',
    ];
    for (const errorCode of retried) {
      expect(judgeAttempt({ errorCode }, 2, SPEC_RETRY_POLICY, now)).toEqual({
        ok: false,
        next: { status: 'pending', nextAttemptAt: new Date(now.getTime() + 25_000) },
      });
    }
    for (const errorCode of ['blocked_address', 'redirect'] as AttemptErrorCode[]) {
      expect(judgeAttempt({ errorCode }, 1, SPEC_RETRY_POLICY, now)).toEqual({
        ok: false,
        next: { status: 'failed' },
      });
    }
  });

  it('disables the webhook on 410 Gone, without a retry', () => {
    expect(judgeAttempt({ statusCode: 410 }, 1, SPEC_RETRY_POLICY, now)).toEqual({
      ok: false,
      next: { status: 'failed' },
      disableReason: 'Endpoint answered 410 Gone',
    });
  });

  it('waits as long as Retry-After asks when that is longer than the schedule, up to the cap', () => {
    const at = (retryAfter: string) =>
      judgeAttempt({ statusCode: 503, retryAfter }, 1, SPEC_RETRY_POLICY, now).next;
    expect(at('30')).toEqual({ status: 'pending', nextAttemptAt: new Date(now.getTime() + 30_000) });
    expect(at('2')).toEqual({ status: 'pending', nextAttemptAt: in5s }); // never sooner than the schedule
    for (const value of ['-5', '1.5', 'soon', ''])
      expect(at(value)).toEqual({ status: 'pending', nextAttemptAt: in5s });
    expect(at('3600')).toEqual({ status: 'pending', nextAttemptAt: new Date(now.getTime() + 60_000) });
    expect(at(new Date(now.getTime() + 40_000).toUTCString())).toEqual({
      status: 'pending',
      nextAttemptAt: new Date(now.getTime() + 40_000),
    });
  });
});

describe('parseRetryAfter', () => {
  it('reads delay-seconds and HTTP dates, and nothing else', () => {
    expect(parseRetryAfter(' 120 ', now)).toBe(120_000);
    expect(parseRetryAfter('Thu, 12 Dec 2024 16:30:08 GMT', now)).toBe(8_000);
    expect(parseRetryAfter('Thu, 12 Dec 2024 16:29:00 GMT', now)).toBe(0); // in the past: no wait
    for (const value of [undefined, '', 'soon']) expect(parseRetryAfter(value, now)).toBeNull();
  });
});
