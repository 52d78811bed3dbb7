/** Milliseconds since the epoch. Injected everywhere time matters, so tests never sleep. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

/**
 * A clock with the timers that go with it, for parts that wait as well as read the time (the
 * client's reconnects, the cluster's heartbeats). Tests pass timers they step by hand.
 */
export interface Timers {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The platform's clock and timers (browser or Node). */
export const systemTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
};

/**
 * For work in the background (heartbeats, batching): a monotonic clock, so a wall-clock jump
 * changes nothing, and timers that never hold a Node process open.
 */
export const backgroundTimers: Timers = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => {
    const handle: unknown = globalThis.setTimeout(callback, ms);
    (handle as { unref?: () => void }).unref?.();
    return handle;
  },
  clearTimeout: (handle) => systemTimers.clearTimeout(handle),
};
