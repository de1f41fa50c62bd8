/**
 * The backend's one alert rule, to produce the spec's `alert` event: "Traffic Spike" fires when a site's
 * pageviews in the current window pass a threshold, at most once per window.
 */
import type { AlertData } from '../../src/index.js'; // @zta/webhooks

export interface TrafficSpikeOptions {
  /** Fires when pageviews in a window exceed this (the spec's `pageviews > 1000`). */
  threshold: number;
  /** Fixed window length. Default one minute. */
  windowMs?: number;
  now?: () => number;
}

export class TrafficSpikeRule {
  readonly #threshold: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  /** siteId → the current window's start and count. Holds one entry per site that had a pageview. */
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(options: TrafficSpikeOptions) {
    this.#threshold = options.threshold;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#now = options.now ?? Date.now;
    if (!Number.isSafeInteger(this.#threshold) || this.#threshold < 0 || !(this.#windowMs > 0)) {
      throw new TypeError('TrafficSpikeRule: threshold must be a non-negative integer, windowMs positive');
    }
  }

  /** Counts one pageview; returns the alert's data the one time the count passes the threshold. */
  pageview(siteId: string): Omit<AlertData, 'siteId'> | null {
    const now = this.#now();
    const start = now - (now % this.#windowMs);
    let window = this.#windows.get(siteId);
    if (window === undefined || window.start !== start) {
      window = { start, count: 0 };
      this.#windows.set(siteId, window);
    }
    window.count++;
    if (window.count !== this.#threshold + 1) return null;
    return {
      alertId: 'alert_traffic_spike',
      alertName: 'Traffic Spike',
      condition: `pageviews > ${this.#threshold}`,
      currentValue: window.count,
      threshold: this.#threshold,
    };
  }
}
