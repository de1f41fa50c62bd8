import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { AttemptOutcome, ClaimOptions, Store } from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';
import { postgresStore } from '../../src/postgres.js';
import { describePostgres, useTestDatabase } from './db.js';
import { at, attempt, delivery, webhook } from './records.js';

const HOOKS = 3;
const DELIVERIES = 10;

const claimRound = fc.record({
  limit: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.constant(10)),
  perWebhookLimit: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
  busy: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: HOOKS, maxLength: HOOKS }),
});

const scenario = fc.record({
  hooks: fc.array(fc.record({ active: fc.boolean(), consecutiveFailures: fc.integer({ min: 0, max: 3 }) }), {
    minLength: HOOKS,
    maxLength: HOOKS,
  }),
  deliveries: fc.array(
    fc.record({ hook: fc.integer({ min: 0, max: HOOKS - 1 }), due: fc.integer({ min: 0, max: 50 }) }),
    { minLength: DELIVERIES, maxLength: DELIVERIES },
  ),
  /** Single claims whose leases (each expiring at its own time) lapse before `later`. */
  shortLeases: fc.integer({ min: 0, max: 4 }),
  /** A claim whose leases outlive the test. */
  first: claimRound,
  /** After the short leases expired: they compete with pending deliveries, under the same caps. */
  later: claimRound,
  batch: fc.shuffledSubarray(
    Array.from({ length: DELIVERIES }, (_, i) => i),
    { minLength: 1 },
  ),
  outcomes: fc.array(
    fc.record({
      next: fc.constantFrom('succeeded', 'failed', 'pending'),
      gone: fc.boolean(),
      max: fc.integer({ min: 1, max: 4 }),
      duration: fc.integer({ min: 0, max: 999 }),
    }),
    { minLength: DELIVERIES, maxLength: DELIVERIES },
  ),
});

describePostgres('postgresStore against memoryStore', () => {
  const db = useTestDatabase();

  // A window of 1 or 2 due deliveries makes claimDeliveries and nextDueAt take their fallback path often.
  it.each([
    ['the default due window', undefined],
    ['a due window of 2', 2],
    ['a due window of 1', 1],
  ])(
    'claims, completes and reports due times exactly as the reference store does (%s)',
    async (_, dueWindow) => {
      await fc.assert(
        fc.asyncProperty(scenario, async (s) => {
          await db.truncate();
          const pgStore = postgresStore({
            pool: db.pool,
            schema: db.schema,
            notify: false,
            ...(dueWindow !== undefined && { dueWindow }),
          });
          const hooks = s.hooks.map((h, i) => webhook({ ...h, siteId: `site_${i}` }));
          // Distinct due times (and lease expiries) keep "earliest first" unambiguous.
          const ds = s.deliveries.map((d, i) =>
            delivery(hooks[d.hook]!, { nextAttemptAt: at(d.due * 20 + i) }),
          );
          const claimOptions = (round: typeof s.first, now: Date, leaseMs: number): ClaimOptions => ({
            now,
            limit: round.limit,
            leaseMs,
            busyWebhooks: new Map(hooks.map((h, i) => [h.id, round.busy[i]!])),
            ...(round.perWebhookLimit !== undefined && { perWebhookLimit: round.perWebhookLimit }),
          });
          const outcomes: AttemptOutcome[] = s.batch.map((index, ord) => {
            const o = s.outcomes[ord]!;
            const failed = o.next !== 'succeeded';
            return {
              attempt: attempt(ds[index]!, 1, {
                startedAt: at(100_000 + ord * 1000),
                durationMs: o.duration,
                ok: !failed,
                statusCode: failed ? (o.gone ? 410 : 500) : 200,
              }),
              next:
                o.next === 'pending'
                  ? { status: 'pending', nextAttemptAt: at(200_000 + ord) }
                  : { status: o.next },
              maxConsecutiveFailures: o.max,
              ...(o.gone && failed && { disableReason: 'Endpoint returned 410 Gone' }),
            } as AttemptOutcome;
          });

          const observe = async (store: Store) => {
            for (const hook of hooks) await store.createWebhook(hook, { maxPerSite: 10 });
            await store.insertDeliveries(ds);
            const ids = (claimed: Awaited<ReturnType<Store['claimDeliveries']>>) =>
              claimed.map((c) => [c.delivery.id, c.webhook.id, c.delivery.leaseExpiresAt]);
            const short: unknown[] = [];
            for (let i = 0; i < s.shortLeases; i++) {
              short.push(ids(await store.claimDeliveries({ now: at(1000 + i), limit: 1, leaseMs: 10_000 })));
            }
            const first = ids(await store.claimDeliveries(claimOptions(s.first, at(1100), 1_000_000)));
            const dueBetween = await store.nextDueAt({ excludeWebhookIds: [hooks[0]!.id] });
            const later = ids(await store.claimDeliveries(claimOptions(s.later, at(20_000), 1_000_000)));
            const effects = await store.completeAttempts(outcomes);
            return {
              short,
              first,
              dueBetween,
              later,
              effects,
              deliveries: await Promise.all(ds.map((d) => store.getDelivery(d.id))),
              webhooks: await Promise.all(hooks.map((h) => store.getWebhook(h.id))),
              attempts: await store.listAttempts(ds.map((d) => d.id)),
              due: await store.nextDueAt(),
              dueWithout: await store.nextDueAt({ excludeWebhookIds: [hooks[1]!.id] }),
            };
          };
          const expected = await observe(memoryStore());
          const actual = await observe(pgStore);
          expect(actual).toEqual(expected);
        }),
        { numRuns: 50 },
      );
    },
  );
});
