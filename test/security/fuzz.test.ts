// Arbitrary inputs to every WebhookManager call and to Dispatcher.emit: each call resolves, or rejects with
// a WebhookError whose status is 4xx. Never a TypeError, never a 5xx. (verifyWebhook has its own property
// test in test/verify; the HTTP handler's is test/http/fuzz.test.ts.)
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher, EVENT_TYPES, type Transport, WebhookError, WebhookManager } from '../../src/index.js';
import { memoryStore } from '../../src/memory.js';

const OWNER = 'owner';
/** The known webhook lives alone on KNOWN_SITE; generated creates go to the others. */
const KNOWN_SITE = 'site_known';
const SITES = ['site_a', 'site_b', KNOWN_SITE];
const store = memoryStore();
const manager = new WebhookManager<string>({
  store,
  authorize: (principal, siteId) => principal === OWNER && SITES.includes(siteId),
});
/** Every attempt answers 500 at once; no network. */
const failing: Transport = {
  send: async () => ({ kind: 'response', statusCode: 500, headers: {}, bodySnippet: 'nope' }),
  close: async () => {},
};
const dispatcher = new Dispatcher({ store, transport: failing, retry: { delaysMs: [] } });
let webhookId = '';
let deliveryId = '';

/** A webhook and a failed delivery of it exist before every run (runs delete, disable and requeue them). */
async function ensureKnown(): Promise<void> {
  const current = webhookId === '' ? null : await store.getWebhook(webhookId);
  const delivery = deliveryId === '' ? null : await store.getDelivery(deliveryId);
  if (current?.active && delivery?.status === 'failed') return;
  if (current !== null) await store.deleteWebhook(current.id);
  const created = await manager.create(OWNER, {
    siteId: KNOWN_SITE,
    url: 'https://example.com/',
    events: ['goal'],
  });
  webhookId = created.webhook.id;
  const [emitted] = await dispatcher.emit({ siteId: KNOWN_SITE, event: 'goal', data: { goalId: 'g' } });
  deliveryId = emitted!;
  await dispatcher.runDue();
}

beforeAll(ensureKnown);

/** Whatever fast-check can build: boxed values, null prototypes, sparse and typed arrays, BigInt, Map... */
const anything = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
  maxDepth: 3,
});
const odd = fc.constantFrom<unknown>(
  Symbol('x'),
  () => 'fn',
  Object.create(null),
  Number.NaN,
  Number.POSITIVE_INFINITY,
  -0,
  10n ** 30n,
  '',
  '\u0000',
  'a'.repeat(5000),
  '__proto__',
  'constructor',
  new Date(Number.NaN),
  [],
);
const value = fc.oneof({ weight: 3, arbitrary: anything }, { weight: 1, arbitrary: odd });
/** Mostly valid values, some near misses, some anything: inputs often get past the first checks. */
const plausible = <T>(good: T[], bad: unknown[] = []) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom<unknown>(...good) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(undefined, ...bad) },
    { weight: 1, arbitrary: value },
  );

const siteId = plausible(['site_a', 'site_b'], ['site_other', 'site a', 's'.repeat(129)]);
const url = plausible(
  ['https://example.com/hook', 'https://8.8.8.8/', 'https://[2606:4700:4700::1111]/'],
  [
    'http://example.com/',
    'https://127.0.0.1/',
    'https://[::1]/',
    'https://u:p@example.com/',
    'https://example.com/#x',
    'not a url',
    `https://example.com/${'a'.repeat(2100)}`,
  ],
);
const eventName = plausible([...EVENT_TYPES], ['nope', 'PAGEVIEW']);
const events = fc.oneof(
  { weight: 3, arbitrary: fc.uniqueArray(fc.constantFrom(...EVENT_TYPES), { minLength: 1 }) },
  { weight: 1, arbitrary: fc.array(eventName, { maxLength: 7 }) },
  { weight: 1, arbitrary: value },
);
/** Ids are looked up when a value is generated: the known ones exist only once beforeAll has run. */
const id = () =>
  plausible(['{webhook}', '{delivery}'], ['wh_missing', 'dlv_missing', '', 'x'.repeat(200)]).map((v) =>
    v === '{webhook}' ? webhookId : v === '{delivery}' ? deliveryId : v,
  );
/** An object with some of the given keys (each plausible or arbitrary) and sometimes extra keys. */
const shaped = (shape: Record<string, fc.Arbitrary<unknown>>) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.record(shape) },
    { weight: 2, arbitrary: fc.record(shape, { requiredKeys: [] }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.record(shape, { requiredKeys: [] }), fc.dictionary(fc.string(), value, { maxKeys: 3 }))
        .map(([known, extra]) => ({ ...extra, ...known })),
    },
    { weight: 1, arbitrary: value },
  );

const principal = plausible([OWNER], ['intruder']);
const createInput = shaped({
  siteId,
  url,
  events,
  description: plausible(['a hook', null], ['d'.repeat(501)]),
});
const updateInput = shaped({
  url,
  events,
  description: plausible(['x', null], ['\u0000']),
  active: plausible([true, false]),
});
const deliveryFilters = {
  status: plausible(['failed', 'pending', 'succeeded'], ['bogus']),
  since: plausible(['2024-01-01', new Date(0), 0], ['yesterday']),
  limit: plausible([1, 50, 100, '20'], [101, 0, -1, 2.5]),
  cursor: plausible(['WzE3MDAwMDAwMDAwMDAsImRsdl94Il0'], ['', '!!!']),
};
const deliveriesInput = fc.oneof(
  shaped({ siteId, ...deliveryFilters }),
  shaped({ webhookId: id(), ...deliveryFilters }),
  shaped({ siteId, webhookId: id(), ...deliveryFilters }),
);

type Call =
  | ['create', unknown, unknown]
  | ['list', unknown, unknown]
  | ['get', unknown, unknown]
  | ['update', unknown, unknown, unknown]
  | ['delete', unknown, unknown]
  | ['rotateSecret', unknown, unknown]
  | ['deliveries', unknown, unknown]
  | ['redeliver', unknown, unknown];

/** A manager call as data, so fast-check can print a counterexample. */
const call: fc.Arbitrary<Call> = fc.oneof(
  fc.tuple(fc.constant('create' as const), principal, createInput),
  fc.tuple(fc.constant('list' as const), principal, siteId),
  fc.tuple(fc.constant('get' as const), principal, id()),
  fc.tuple(fc.constant('update' as const), principal, id(), updateInput),
  fc.tuple(fc.constant('delete' as const), principal, id()),
  fc.tuple(fc.constant('rotateSecret' as const), principal, id()),
  fc.tuple(fc.constant('deliveries' as const), principal, deliveriesInput),
  fc.tuple(fc.constant('redeliver' as const), principal, id()),
);

function run([name, p, a, b]: [string, unknown, unknown, unknown?]): Promise<unknown> {
  const m = manager as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  return name === 'update' ? m.update!.call(manager, p, a, b) : m[name]!.call(manager, p, a);
}

/** Resolves to null when the call resolved or failed the right way, else to a description of what went wrong. */
async function misbehaviour(run: () => Promise<unknown>): Promise<string | null> {
  try {
    await run();
    return null;
  } catch (error) {
    if (WebhookError.is(error) && error.status >= 400 && error.status < 500) return null;
    return error instanceof Error
      ? `${error.name} (${(error as WebhookError).status}): ${error.message}`
      : String(error);
  }
}

describe('WebhookManager: arbitrary inputs', () => {
  it('every call resolves or rejects with a 4xx WebhookError', async () => {
    await fc.assert(
      fc
        .asyncProperty(call, async (generated) => {
          expect(await misbehaviour(() => run(generated)), generated[0]).toBeNull();
        })
        .beforeEach(ensureKnown),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 2000) },
    );
  });

  it('events holding a BigInt or a throwing toJSON: a 400, not a TypeError', async () => {
    const throwing = {
      toJSON() {
        throw new Error('no');
      },
    };
    for (const bad of [1n, throwing]) {
      const outcome = manager.create(OWNER, {
        siteId: 'site_a',
        url: 'https://example.com/',
        events: [bad] as never,
      });
      await expect(outcome).rejects.toMatchObject({ code: 'invalid_event_type', status: 400 });
    }
  });
});

describe('Dispatcher.emit: arbitrary inputs', () => {
  /** Event names and timestamps, minus values that String() or new Date() cannot convert (known bugs, below). */
  const convertible = value.filter((v) => {
    try {
      String(v);
      new Date(v as never);
      return true;
    } catch {
      return false;
    }
  });
  const emitInput = shaped({
    siteId: plausible(['site_a', 'site_b'], ['site_none']),
    event: fc.oneof(fc.constantFrom<unknown>(...EVENT_TYPES, 'nope'), convertible),
    data: fc.oneof(
      fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 4 }),
      fc.constantFrom(
        { siteId: 'site_a' },
        { siteId: 'site_b' },
        { big: 1n },
        { x: 'y'.repeat(1024 * 1024) },
      ),
      value,
    ),
    timestamp: fc.oneof(
      fc.constantFrom<unknown>('2024-12-12T16:30:00.000Z', 'soon', 8.64e15 + 1),
      convertible,
    ),
  });

  it('emit resolves or rejects with a 4xx WebhookError', async () => {
    await fc.assert(
      fc.asyncProperty(emitInput, async (input) => {
        expect(await misbehaviour(() => dispatcher.emit(input as never))).toBeNull();
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 1000) },
    );
  });

  // Values that `String()` and `new Date()` cannot convert once threw a TypeError instead of a 400.
  const known: [string, Record<string, unknown>][] = [
    ['event with a null prototype', { event: Object.create(null) }],
    ['event an array holding a null-prototype object', { event: [Object.create(null)] }],
    ['timestamp a Symbol', { timestamp: Symbol('t') }],
    ['timestamp a BigInt', { timestamp: 1n }],
    ['timestamp with a null prototype', { timestamp: Object.create(null) }],
  ];
  it.each(known)('%s gives a 400', async (_name, override) => {
    const input = { siteId: 'site_a', event: 'pageview', data: {}, ...override };
    expect(await misbehaviour(() => dispatcher.emit(input as never))).toBeNull();
  });
});
