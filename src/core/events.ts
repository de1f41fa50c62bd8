import type { EventType } from '../verify/payload-types.js';

// The payload types live in a types-only module that the receiver-side entry points share without loading
// sender code; they are re-exported here unchanged.
export type {
  AlertData,
  CustomEventData,
  EventDataMap,
  EventType,
  GoalData,
  PageviewData,
  SessionEndData,
  WebhookPayload,
} from '../verify/payload-types.js';

/** The event types a webhook can subscribe to, in the spec's order. */
export const EVENT_TYPES = [
  'pageview',
  'event',
  'goal',
  'alert',
  'session_end',
] as const satisfies readonly EventType[];

// Compile-time check that EVENT_TYPES lists every member of the EventType union (the `satisfies` above
// checks the converse): `Exclude<...>` must be `never`.
type AssertNever<T extends never> = T;
type _EventTypesAllListed = AssertNever<Exclude<EventType, (typeof EVENT_TYPES)[number]>>;

export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}
