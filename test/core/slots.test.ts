import { describe, expect, it } from 'vitest';
import { InFlightSlots } from '../../src/core/slots.js';

/** What a claim could take per webhook under `limits`, with `perWebhook` slots each. */
const room = (limits: Map<string, number>, ids: string[], perWebhook: number) =>
  ids.map((id) => perWebhook - (limits.get(id) ?? 0));

describe('InFlightSlots', () => {
  it('counts per webhook as before while the site is far from its cap', () => {
    const slots = new InFlightSlots(4, 100);
    slots.take('w1', 's');
    slots.take('w1', 's');
    slots.take('w2', 's');
    expect(slots.claimLimits()).toEqual(
      new Map([
        ['w1', 2],
        ['w2', 1],
      ]),
    );
    expect(slots.saturated()).toEqual([]);
  });

  it("shares a site's remaining slots exactly among its known webhooks, starting further along each claim", () => {
    const slots = new InFlightSlots(4, 6);
    for (const id of ['w1', 'w2', 'w3', 'w1', 'w2']) slots.take(id, 's'); // 5 of 6 in flight
    const turns = [0, 1, 2].map(() => room(slots.claimLimits(), ['w1', 'w2', 'w3'], 4));
    for (const turn of turns) expect(turn.reduce((sum, n) => sum + n, 0)).toBe(1);
    // Each webhook gets the one slot in turn.
    expect(turns.map((turn) => turn.indexOf(1)).sort()).toEqual([0, 1, 2]);
    expect(slots.saturated()).toEqual([]);
  });

  it('leaves every known webhook of a full site out, and says when a slot frees up there', () => {
    const slots = new InFlightSlots(4, 3);
    slots.take('w1', 's');
    slots.take('w2', 's');
    slots.take('w2', 's');
    slots.take('x1', 'other');
    expect(slots.hasRoom('s')).toBe(false);
    expect(slots.hasRoom('other')).toBe(true);
    expect(room(slots.claimLimits(), ['w1', 'w2', 'x1'], 4)).toEqual([0, 0, 2]); // x1: its site's 2 left
    expect(slots.saturated().sort()).toEqual(['w1', 'w2']);
    // A webhook of the full site that a claim returned: left out from then on.
    expect(slots.note('w3', 's')).toBe(true);
    expect(slots.note('w3', 's')).toBe(false);
    expect(slots.note('y1', 'idle')).toBe(false); // a site with nothing in flight has no cap to keep
    expect(room(slots.claimLimits(), ['w3'], 4)).toEqual([0]);

    expect(slots.give('w2', 's')).toBe(true); // the site was full
    expect(slots.hasRoom('s')).toBe(true);
    expect(slots.give('x1', 'other')).toBe(false);
    expect(slots.give('w2', 's')).toBe(false);
    expect(slots.give('w1', 's')).toBe(false);
    // Nothing in flight: no limits left, the site's known webhooks forgotten.
    expect(slots.claimLimits()).toEqual(new Map());
    expect(slots.note('w3', 's')).toBe(false);
  });

  it("caps an origin across sites: its webhooks share what is left, and a full one's are left out", () => {
    const slots = new InFlightSlots(4, 100, 3);
    slots.take('a1', 'site_a', 'https://hooks.example');
    slots.take('a1', 'site_a', 'https://hooks.example');
    slots.take('b1', 'site_b', 'https://hooks.example');
    slots.take('c1', 'site_c', 'https://c.example');
    expect(slots.hasRoom('site_a', 'https://hooks.example')).toBe(false);
    expect(slots.hasRoom('site_d', 'https://hooks.example')).toBe(false); // another site, the same host
    expect(slots.hasRoom('site_a', 'https://c.example')).toBe(true); // the same site, another host
    expect(room(slots.claimLimits(), ['a1', 'b1', 'c1'], 4)).toEqual([0, 0, 2]); // c1: its host's 2 left
    expect(slots.saturated().sort()).toEqual(['a1', 'b1']);
    expect(slots.note('d1', 'site_d', 'https://hooks.example')).toBe(true);
    expect(room(slots.claimLimits(), ['d1'], 4)).toEqual([0]);
    expect(slots.give('b1', 'site_b', 'https://hooks.example')).toBe(true); // the origin was full
    // One slot left on the origin, handed to one of its three known webhooks at a time.
    const turns = [0, 1, 2].map(() => room(slots.claimLimits(), ['a1', 'b1', 'd1'], 4));
    for (const turn of turns) expect(turn.reduce((sum, n) => sum + n, 0)).toBe(1);
  });

  it("lets a webhook whose URL moved to another host out of its old host's group", () => {
    const slots = new InFlightSlots(4, 100, 1);
    slots.take('x1', 'site_x', 'https://a.example');
    expect(slots.note('w1', 'site_w', 'https://a.example')).toBe(true); // a.example is full
    expect(room(slots.claimLimits(), ['w1'], 4)).toEqual([0]);
    // A claim returns w1's delivery for its new URL: it no longer waits for a.example's slots.
    expect(slots.hasRoom('site_w', 'https://b.example')).toBe(true);
    slots.take('w1', 'site_w', 'https://b.example');
    expect(room(slots.claimLimits(), ['w1'], 4)).toEqual([0]); // b.example (cap 1) is full now
    slots.give('w1', 'site_w', 'https://b.example');
    expect(room(slots.claimLimits(), ['w1'], 4)).toEqual([4]);
    expect(slots.saturated()).toEqual(['x1']);
  });

  it('leaves a paused webhook out of claims, and its host without room, until the pause ends', () => {
    const slots = new InFlightSlots(4, 100, 100);
    const until = Date.now() + 60_000;
    slots.pause('w1', 'https://a.example', until);
    expect(slots.hasRoom('site_x', 'https://a.example')).toBe(false);
    expect(slots.hasRoom('site_x', 'https://b.example')).toBe(true);
    expect(room(slots.claimLimits(), ['w1', 'w2'], 4)).toEqual([0, 4]);
    expect(slots.saturated()).toEqual(['w1']);
    expect(slots.nextResume()).toBe(until);
    slots.pause('w2', 'https://b.example', Date.now() - 1); // already over
    expect(slots.saturated()).toEqual(['w1']);
  });

  it('says when a slot frees up on a webhook that was at its own limit', () => {
    const slots = new InFlightSlots(2, 100);
    slots.take('w1', 's');
    slots.take('w1', 's');
    expect(slots.saturated()).toEqual(['w1']);
    expect(slots.give('w1', 's')).toBe(true);
    expect(slots.give('w1', 's')).toBe(false);
  });
});
