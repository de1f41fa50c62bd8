import type { Scheduler } from '../adapters/types.js';

/** setTimeout's ceiling (about 24.8 days); a later wake-up is re-armed when this one fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The default scheduler: one timer, set for exactly when the next attempt is due. No polling. */
export function timerScheduler(): Scheduler {
  let timer: NodeJS.Timeout | undefined;
  let armedAt = Number.NaN;
  let pending: (() => void) | undefined;
  const fire = (): void => {
    timer = undefined;
    armedAt = Number.NaN;
    pending?.();
  };
  return {
    wakeAt(at, run) {
      pending = run;
      // Asked again for the same instant (every attempt that ends asks): the armed timer stands.
      if (timer !== undefined && at.getTime() === armedAt) return;
      clearTimeout(timer);
      armedAt = at.getTime();
      timer = setTimeout(fire, Math.min(Math.max(0, armedAt - Date.now()), MAX_TIMER_MS));
    },
    cancel() {
      clearTimeout(timer);
      timer = undefined;
      armedAt = Number.NaN;
      pending = undefined;
    },
  };
}
