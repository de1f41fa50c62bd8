import { z } from 'zod';
import { MESSAGES, WebhookError, type WebhookErrorCode } from './errors.js';
import { EVENT_TYPES, type EventType, isEventType } from './events.js';
import { privateHostReason } from './network.js';
import { DELIVERY_STATUSES, SIGNATURE_SCHEMES, type SignatureScheme } from './records.js';

export const MAX_URL_LENGTH = 2048;
export const MAX_EVENTS_PER_WEBHOOK = EVENT_TYPES.length;
export const MAX_DESCRIPTION_LENGTH = 500;
/** Default rotation overlap: the old secret keeps signing deliveries for a day. */
export const DEFAULT_ROTATION_OVERLAP_SECONDS = 86_400;
/** Longest rotation overlap: 30 days. */
export const MAX_ROTATION_OVERLAP_SECONDS = 30 * 86_400;

/** Zod issues carry the error code they should surface as in `params.code`. */
function fail(ctx: z.RefinementCtx, code: WebhookErrorCode, message: string): void {
  ctx.addIssue({ code: 'custom', message, params: { code } });
}

/** A value as an error message may quote it: short, and never throwing. */
export function shown(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    // A BigInt, or a toJSON that throws: the message must not turn a 400 into a TypeError.
    text = typeof value;
  }
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}

export const siteIdSchema = z
  .string({
    error: (issue) => (issue.input === undefined ? 'siteId is required' : 'siteId must be a string'),
  })
  .min(1, 'siteId is required')
  .max(128, 'siteId must be at most 128 characters')
  .regex(/^[\w.:-]+$/, 'siteId may contain only letters, digits, "_", "-", "." and ":"');

const idSchema = (name: string) =>
  z
    .string({
      error: (issue) => (issue.input === undefined ? `${name} is required` : `${name} must be a string`),
    })
    .min(1, `${name} is required`)
    .max(128, `${name} is too long`)
    // Ids are URL-safe; anything else (a NUL, which PostgreSQL text cannot even hold) names nothing.
    .regex(/^[\w-]+$/, `${name} is invalid`);

export const webhookIdSchema = idSchema('id');

/** Checks a webhook URL and returns it normalised (WHATWG serialisation), as it will be stored and called. */
export function urlSchema(allowPrivateNetworks: boolean) {
  return z
    .string({ error: (issue) => (issue.input === undefined ? 'url is required' : 'url must be a string') })
    .transform((raw, ctx) => {
      if (raw.length > MAX_URL_LENGTH) {
        fail(ctx, 'invalid_url', `URL must be at most ${MAX_URL_LENGTH} characters`);
        return z.NEVER;
      }
      if (!URL.canParse(raw)) {
        fail(ctx, 'invalid_url', 'URL must be an absolute URL');
        return z.NEVER;
      }
      const url = new URL(raw);
      if (url.protocol !== 'https:') {
        fail(ctx, 'url_not_https', MESSAGES.urlNotHttps);
        return z.NEVER;
      }
      if (url.username !== '' || url.password !== '') {
        fail(ctx, 'invalid_url', 'URL must not contain credentials');
        return z.NEVER;
      }
      if (url.hash !== '' || raw.includes('#')) {
        fail(ctx, 'invalid_url', 'URL must not contain a fragment');
        return z.NEVER;
      }
      if (!allowPrivateNetworks) {
        const reason = privateHostReason(url.hostname);
        if (reason !== null) {
          fail(ctx, 'private_address', reason);
          return z.NEVER;
        }
      }
      if (url.href.length > MAX_URL_LENGTH) {
        fail(ctx, 'invalid_url', `URL must be at most ${MAX_URL_LENGTH} characters`);
        return z.NEVER;
      }
      return url.href;
    });
}

export const eventsSchema = z
  .array(z.unknown(), {
    error: (issue) =>
      issue.input === undefined ? 'events is required' : 'events must be an array of event types',
  })
  .transform((events, ctx): EventType[] => {
    if (events.length === 0) {
      fail(ctx, 'validation_failed', 'events must contain at least one event type');
      return z.NEVER;
    }
    // Before the per-item checks: with only five event types, any longer list would otherwise be refused
    // as a duplicate or an unknown type, never with the spec's message for the limit.
    if (events.length > MAX_EVENTS_PER_WEBHOOK) {
      fail(ctx, 'validation_failed', `Maximum ${MAX_EVENTS_PER_WEBHOOK} event types per webhook`);
      return z.NEVER;
    }
    const seen = new Set<EventType>();
    for (const event of events) {
      if (!isEventType(event)) {
        fail(ctx, 'invalid_event_type', MESSAGES.invalidEventType(shown(event)));
        return z.NEVER;
      }
      if (seen.has(event)) {
        fail(ctx, 'validation_failed', `Duplicate event type: ${event}`);
        return z.NEVER;
      }
      seen.add(event);
    }
    return [...seen];
  });

const isSignatureScheme = (value: unknown): value is SignatureScheme =>
  (SIGNATURE_SCHEMES as readonly unknown[]).includes(value);

/** A non-empty list of known schemes without duplicates, or `null` (the dispatcher's default). */
export const signatureSchemesSchema = z
  .array(z.unknown(), { error: 'signatureSchemes must be an array of signature schemes or null' })
  .transform((schemes, ctx): SignatureScheme[] => {
    if (schemes.length === 0) {
      fail(ctx, 'validation_failed', 'signatureSchemes must contain at least one scheme');
      return z.NEVER;
    }
    const seen = new Set<SignatureScheme>();
    for (const scheme of schemes) {
      if (!isSignatureScheme(scheme)) {
        fail(
          ctx,
          'validation_failed',
          `Invalid signature scheme: ${shown(scheme)} (expected one of: ${SIGNATURE_SCHEMES.join(', ')})`,
        );
        return z.NEVER;
      }
      if (seen.has(scheme)) {
        fail(ctx, 'validation_failed', `Duplicate signature scheme: ${scheme}`);
        return z.NEVER;
      }
      seen.add(scheme);
    }
    return [...seen];
  })
  .nullable();

export const rotateSecretSchema = bodySchema({
  overlapSeconds: z
    .number({ error: 'overlapSeconds must be a number' })
    .int('overlapSeconds must be an integer')
    .min(0, `overlapSeconds must be between 0 and ${MAX_ROTATION_OVERLAP_SECONDS}`)
    .max(MAX_ROTATION_OVERLAP_SECONDS, `overlapSeconds must be between 0 and ${MAX_ROTATION_OVERLAP_SECONDS}`)
    .default(DEFAULT_ROTATION_OVERLAP_SECONDS),
});

/** In a `u` regex a surrogate pair is one code point, so this matches only unpaired halves. */
const LONE_SURROGATE = /\p{Cs}/u;

const descriptionSchema = z
  .string({ error: 'description must be a string' })
  .max(MAX_DESCRIPTION_LENGTH, `description must be at most ${MAX_DESCRIPTION_LENGTH} characters`)
  // No store should have to hold it, and PostgreSQL text cannot.
  .refine((text) => !text.includes('\u0000'), 'description must not contain NUL characters')
  // Valid JSON can carry an unpaired surrogate (`"\ud800"`); PostgreSQL's json rejects it and its text
  // replaces it, so no store could give it back as sent.
  .refine((text) => !LONE_SURROGATE.test(text), 'description must be valid Unicode text')
  .nullable();

/**
 * A request body: a JSON object that refuses fields it does not take, naming them and the ones it does, so a
 * misspelt field (`actve`, `desciption`, `overlap`) is a 400 rather than silently ignored, or given a default.
 */
function bodySchema<T extends z.ZodRawShape>(shape: T) {
  const expected = Object.keys(shape).join(', ');
  return z
    .object(shape, {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `Unknown field: ${shown(issue.keys.join(', '))} (expected ${expected})`
          : 'Request body must be a JSON object',
    })
    .strict();
}

const objectSchema = <T extends z.ZodRawShape>(shape: T) =>
  z.object(shape, { error: 'Request body must be a JSON object' });

export function createWebhookSchema(allowPrivateNetworks: boolean) {
  return bodySchema({
    siteId: siteIdSchema,
    url: urlSchema(allowPrivateNetworks),
    events: eventsSchema,
    description: descriptionSchema.optional(),
    signatureSchemes: signatureSchemesSchema.optional(),
  });
}

export function updateWebhookSchema(allowPrivateNetworks: boolean) {
  return bodySchema({
    url: urlSchema(allowPrivateNetworks).optional(),
    events: eventsSchema.optional(),
    description: descriptionSchema.optional(),
    active: z.boolean({ error: 'active must be a boolean' }).optional(),
    signatureSchemes: signatureSchemesSchema.optional(),
  });
}

export const deliveryQuerySchema = objectSchema({
  siteId: siteIdSchema.optional(),
  webhookId: idSchema('webhookId').optional(),
  status: z
    .enum(DELIVERY_STATUSES, { error: `status must be one of: ${DELIVERY_STATUSES.join(', ')}` })
    .optional(),
  since: z.coerce.date({ error: 'since must be a date' }).optional(),
  limit: z.coerce
    .number({ error: 'limit must be a number' })
    .int('limit must be an integer')
    .min(1, 'limit must be between 1 and 100')
    .max(100, 'limit must be between 1 and 100')
    .default(50),
  cursor: z.string({ error: 'cursor must be a string' }).max(200, 'cursor is invalid').optional(),
}).refine((query) => (query.siteId === undefined) !== (query.webhookId === undefined), {
  message: 'Exactly one of siteId or webhookId is required',
});

/** Parses `input` or throws the first problem as a `WebhookError` carrying the spec's message. */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const params =
    issue && 'params' in issue ? (issue.params as { code?: WebhookErrorCode } | undefined) : undefined;
  throw new WebhookError(params?.code ?? 'validation_failed', issue?.message ?? 'Invalid request');
}
