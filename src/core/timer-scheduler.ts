import type { Scheduler } from '../adapters/types.js';

/** setTimeout's ceiling (about 24.8 days); a later wake-up is re-armed when this one fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The default scheduler: one timer, set for exactly when the next attempt is due. No polling. */
export function timerScheduler(): Scheduler {
  let timer: NodeJS.Timeout | undefined;
  return {
    wakeAt(at, run) {
      clearTimeout(timer);
      const delay = Math.min(Math.max(0, at.getTime() - Date.now()), MAX_TIMER_MS);
      timer = setTimeout(run, delay);
    },
    cancel() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
