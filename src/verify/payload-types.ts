// Types only: the shape of a delivery body. Lives here, not in src/core/events.ts, so that the receiver-side
// entry points (`@zta/webhooks/verify`, `@zta/webhooks/verify/web`) can name it without loading any sender
// code; src/core/events.ts re-exports every type below. This module has no runtime content.

/** The event types a webhook can subscribe to (`EVENT_TYPES` in the main entry lists them in order). */
export type EventType = 'pageview' | 'event' | 'goal' | 'alert' | 'session_end';

interface SiteScoped {
  siteId: string;
}

export interface PageviewData extends SiteScoped {
  path: string;
  referrer?: string | null;
  country?: string | null;
  device?: string | null;
  browser?: string | null;
}

export interface CustomEventData extends SiteScoped {
  action: string;
  category?: string | null;
  label?: string | null;
  value?: number | null;
  path?: string | null;
}

export interface GoalData extends SiteScoped {
  goalId: string;
  goalName: string;
  path?: string | null;
  value?: number | null;
}

export interface AlertData extends SiteScoped {
  alertId: string;
  alertName: string;
  condition: string;
  currentValue: number;
  threshold: number;
}

/** Not shown in the spec; this library defines it. `duration` is in seconds. */
export interface SessionEndData extends SiteScoped {
  sessionId: string;
  duration: number;
  pageviews: number;
  entryPath?: string | null;
  exitPath?: string | null;
  country?: string | null;
  device?: string | null;
  browser?: string | null;
}

export interface EventDataMap {
  pageview: PageviewData;
  event: CustomEventData;
  goal: GoalData;
  alert: AlertData;
  session_end: SessionEndData;
}

/** The JSON body of a delivery: exactly `JSON.stringify({ event, timestamp, data })`. */
export type WebhookPayload<E extends EventType = EventType> = {
  [K in E]: { event: K; timestamp: string; data: EventDataMap[K] };
}[E];
