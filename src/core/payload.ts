import { MESSAGES, WebhookError } from './errors.js';
import { type EventType, isEventType } from './events.js';
import { parse, shown, siteIdSchema } from './schemas.js';

/** The spec's payload size limit, in bytes of the UTF-8 body. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;

export interface EmitInput {
  siteId: string;
  event: EventType;
  /** The event's fields; `siteId` is added if absent and must match if present. */
  data: Record<string, unknown>;
  /** Defaults to now. */
  timestamp?: Date | string;
}

export interface PreparedEvent {
  siteId: string;
  event: EventType;
  body: string;
}

/** Validates an event and serialises it to the exact body that is signed and sent. */
export function prepareEvent(input: EmitInput, now: Date): PreparedEvent {
  if (typeof input !== 'object' || input === null) {
    throw new WebhookError('validation_failed', 'An event must be an object');
  }
  const siteId = parse(siteIdSchema, input.siteId);
  if (!isEventType(input.event)) {
    throw new WebhookError('invalid_event_type', MESSAGES.invalidEventType(shown(input.event)));
  }
  const { data } = input;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new WebhookError('validation_failed', 'data must be an object');
  }
  // The host's object is read once, here: a getter cannot answer the check below and the body differently.
  let fields: Record<string, unknown>;
  try {
    fields = { siteId, ...data };
  } catch (cause) {
    throw new WebhookError('validation_failed', 'data must be JSON-serialisable', { cause });
  }
  if (fields.siteId !== siteId) {
    throw new WebhookError('validation_failed', 'data.siteId must match siteId');
  }
  // JSON.stringify would send what it returns instead of the fields, siteId included.
  if (typeof fields.toJSON === 'function') {
    throw new WebhookError('validation_failed', 'data must not have a toJSON method');
  }
  const given: unknown = input.timestamp;
  const timestamp =
    given === undefined
      ? now
      : given instanceof Date || typeof given === 'string'
        ? new Date(given)
        : new Date(Number.NaN);
  if (Number.isNaN(timestamp.getTime()))
    throw new WebhookError('validation_failed', 'timestamp must be a valid date');

  let body: string | undefined;
  try {
    body = JSON.stringify({
      event: input.event,
      timestamp: timestamp.toISOString(),
      data: fields,
    });
  } catch (cause) {
    throw new WebhookError('validation_failed', 'data must be JSON-serialisable', { cause });
  }
  if (body.length > MAX_PAYLOAD_BYTES / 3 && Buffer.byteLength(body) > MAX_PAYLOAD_BYTES) {
    throw new WebhookError('payload_too_large', 'Payload exceeds the 1MB limit');
  }
  return { siteId, event: input.event, body };
}
