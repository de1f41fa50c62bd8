import { describe, expect, it } from 'vitest';
import { CoalescedWakeUps } from '../../src/adapters/postgres/wake-ups.js';

/** A send whose calls finish only when the test says so. */
function controlledSend() {
  const pending: { resolve: () => void; reject: (error: Error) => void }[] = [];
  const send = () =>
    new Promise<void>((resolve, reject) => {
      pending.push({ resolve, reject });
    });
  return { send, pending };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Whether `promise` has resolved by now. */
function tracked(promise: Promise<void>) {
  const state = { done: false };
  void promise.then(() => {
    state.done = true;
  });
  return state;
}

describe('CoalescedWakeUps', () => {
  it('sends at once, and once more after it for everything asked meanwhile', async () => {
    const { send, pending } = controlledSend();
    const wakeUps = new CoalescedWakeUps(send, () => {});
    const first = tracked(wakeUps.wake());
    expect(pending).toHaveLength(1);
    const later = Array.from({ length: 10 }, () => tracked(wakeUps.wake()));
    expect(pending).toHaveLength(1); // one on its way at a time
    pending[0]!.resolve();
    await settle();
    expect(first.done).toBe(true);
    // The ten asked after the first had left wait for the next one, which they share.
    expect(later.some((w) => w.done)).toBe(false);
    expect(pending).toHaveLength(2);
    pending[1]!.resolve();
    await settle();
    expect(later.every((w) => w.done)).toBe(true);
    expect(pending).toHaveLength(2); // nothing was asked meanwhile: nothing more
    const again = wakeUps.wake();
    expect(pending).toHaveLength(3);
    pending[2]!.resolve();
    await again;
  });

  it('reports a failed send, resolves its waiters, and keeps sending the ones asked for after it', async () => {
    const { send, pending } = controlledSend();
    const errors: unknown[] = [];
    const wakeUps = new CoalescedWakeUps(send, (error) => errors.push(error));
    const first = wakeUps.wake();
    const second = tracked(wakeUps.wake());
    pending[0]!.reject(new Error('connection terminated'));
    await first; // an emit that committed is not failed by its wake-up
    expect(errors).toEqual([new Error('connection terminated')]);
    expect(second.done).toBe(false);
    expect(pending).toHaveLength(2);
    pending[1]!.resolve();
    await settle();
    expect(second.done).toBe(true);
    expect(errors).toHaveLength(1);
  });

  it('flushes: resolves only once every wake-up asked for so far is sent', async () => {
    const { send, pending } = controlledSend();
    const wakeUps = new CoalescedWakeUps(send, () => {});
    void wakeUps.wake();
    void wakeUps.wake();
    const flushed = tracked(wakeUps.flush());
    pending[0]!.resolve();
    await settle();
    expect(flushed.done).toBe(false);
    pending[1]!.resolve();
    await settle();
    expect(flushed.done).toBe(true);
    await wakeUps.flush(); // nothing on its way: at once
  });
});
