/** The demo's analytics traffic: a fixed, shuffled mix of pageviews, custom events and goals. */
import type { Hit } from '../express-backend/collect.js';

const PATHS = ['/', '/pricing', '/blog/my-article', '/blog/webhooks-101', '/docs/getting-started', '/about'];
const REFERRERS = ['https://google.com', 'https://news.ycombinator.com', 'https://duckduckgo.com', null];
const COUNTRIES = ['US', 'DE', 'FR', 'GB', 'JP', 'BR', 'IN'];
const DEVICES = ['desktop', 'mobile', 'tablet'] as const;
const BROWSERS = ['Chrome', 'Firefox', 'Safari', 'Edge'];

/** mulberry32: a tiny seeded PRNG, so every run sends the same traffic. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TrafficMix {
  pageviews: number;
  events: number;
  goals: number;
}

export function trafficBurst(siteId: string, mix: TrafficMix, seed = 42): Hit[] {
  const rand = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const hits: Hit[] = [];
  for (let i = 0; i < mix.pageviews; i++) {
    hits.push({
      type: 'pageview',
      siteId,
      path: pick(PATHS),
      referrer: pick(REFERRERS),
      country: pick(COUNTRIES),
      device: pick(DEVICES),
      browser: pick(BROWSERS),
    });
  }
  for (let i = 0; i < mix.events; i++) {
    const signup = rand() < 0.5;
    hits.push({
      type: 'event',
      siteId,
      action: signup ? 'signup_click' : 'download',
      category: signup ? 'conversion' : 'engagement',
      label: signup ? 'hero_button' : 'whitepaper',
      value: 1,
      path: signup ? '/pricing' : '/docs/getting-started',
    });
  }
  for (let i = 0; i < mix.goals; i++) {
    const newsletter = rand() < 0.7;
    hits.push({
      type: 'goal',
      siteId,
      goalId: newsletter ? 'goal_abc123' : 'goal_trial',
      goalName: newsletter ? 'Newsletter Signup' : 'Trial Started',
      path: '/thank-you',
      value: 1,
    });
  }
  // Fisher-Yates, so the types arrive interleaved as real traffic would.
  for (let i = hits.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [hits[i], hits[j]] = [hits[j]!, hits[i]!];
  }
  return hits;
}
