import type { Timers } from '../../src/clock.js';

/** Timers a test steps by hand: nothing fires until {@link ManualTimers.advance} says so. */
export interface ManualTimers extends Timers {
  /** Moves the clock by `ms`, running every timer that falls due, in time order. */
  advance(ms: number): void;
  /** Timers set and not yet fired or cleared. */
  readonly pending: number;
}

export function manualTimers(start = Date.UTC(2026, 0, 1)): ManualTimers {
  let now = start;
  let seq = 0;
  const due = new Map<number, { at: number; callback: () => void }>();
  return {
    now: () => now,
    setTimeout: (callback, ms) => {
      const id = ++seq;
      due.set(id, { at: now + Math.max(0, ms), callback });
      return id;
    },
    clearTimeout: (handle) => {
      due.delete(handle as number);
    },
    advance(ms) {
      const until = now + ms;
      for (;;) {
        let nextId: number | undefined;
        let nextAt = Infinity;
        for (const [id, timer] of due) {
          if (timer.at <= until && timer.at < nextAt) [nextId, nextAt] = [id, timer.at];
        }
        if (nextId === undefined) break;
        const timer = due.get(nextId)!;
        due.delete(nextId);
        now = Math.max(now, timer.at);
        timer.callback();
      }
      now = until;
    },
    get pending() {
      return due.size;
    },
  };
}
