/**
 * What `POST /collect` accepts: one pageview, custom event or goal, as a tracking script sends it, checked
 * with zod and turned into the event `data` the spec shows for that type.
 */
import { z } from 'zod';
import type { CustomEventData, GoalData, PageviewData } from '../../src/index.js'; // @zta/webhooks

/** Event types a tracker may send. `alert` and `session_end` are produced by the backend itself. */
export const COLLECTABLE = ['pageview', 'event', 'goal'] as const;
export type Collectable = (typeof COLLECTABLE)[number];

const label = (max: number) => z.string().trim().min(1).max(max);
const optional = (max: number) => label(max).nullish();
const path = z
  .string()
  .max(2048)
  .regex(/^\/[^\s]*$/, 'must be a path starting with /');
const siteId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a site id like site_abc123');
const value = z.number().nullish(); // zod 4 numbers are finite: no NaN or Infinity;

const pageview = z.strictObject({
  type: z.literal('pageview'),
  siteId,
  path,
  referrer: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .nullish(),
  country: z
    .string()
    .regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code')
    .nullish(),
  device: z.enum(['desktop', 'mobile', 'tablet']).nullish(),
  browser: optional(64),
});

const event = z.strictObject({
  type: z.literal('event'),
  siteId,
  action: label(128),
  category: optional(128),
  label: optional(128),
  value,
  path: path.nullish(),
});

const goal = z.strictObject({
  type: z.literal('goal'),
  siteId,
  goalId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a goal id like goal_abc123'),
  goalName: label(128),
  path: path.nullish(),
  value,
});

const hit = z.discriminatedUnion('type', [pageview, event, goal]);

export type Hit = z.infer<typeof hit>;

export type ParsedHit =
  | { ok: true; siteId: string; event: 'pageview'; data: Omit<PageviewData, 'siteId'> }
  | { ok: true; siteId: string; event: 'event'; data: Omit<CustomEventData, 'siteId'> }
  | { ok: true; siteId: string; event: 'goal'; data: Omit<GoalData, 'siteId'> }
  | { ok: false; error: string };

/** Validates a request body; on failure, one readable message (`path: must be a path starting with /`). */
export function parseHit(body: unknown): ParsedHit {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, error: 'Request body must be a JSON object' };
  }
  const type = (body as { type?: unknown }).type;
  if (type === undefined) return { ok: false, error: 'type is required' };
  if (!(COLLECTABLE as readonly unknown[]).includes(type)) {
    // The spec's wording for an unknown event type.
    return { ok: false, error: `Invalid event type: ${String(type).slice(0, 64)}` };
  }
  const parsed = hit.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') || 'body';
    return { ok: false, error: `${where}: ${issue?.message ?? 'invalid'}` };
  }
  const { type: kind, siteId: site, ...fields } = parsed.data;
  const data = withoutNullish(fields);
  switch (kind) {
    case 'pageview':
      return { ok: true, siteId: site, event: kind, data: data as Omit<PageviewData, 'siteId'> };
    case 'event':
      return { ok: true, siteId: site, event: kind, data: data as Omit<CustomEventData, 'siteId'> };
    case 'goal':
      return { ok: true, siteId: site, event: kind, data: data as Omit<GoalData, 'siteId'> };
  }
}

/** Leaves out absent optional fields, so deliveries carry only what the tracker sent. */
function withoutNullish(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null && v !== undefined));
}
