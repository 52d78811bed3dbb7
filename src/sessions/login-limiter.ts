/** Counts login failures per key in a sliding window and says when to back off. */
export interface LoginLimiter {
  /** Seconds until another attempt is allowed for `key`, or 0 when one is allowed now. */
  retryAfter(key: string, now: number): Promise<number>;
  recordFailure(key: string, now: number): Promise<void>;
  reset(key: string): Promise<void>;
}

export interface LimiterOptions {
  /** Failures allowed per window. */
  readonly limit: number;
  /** Window length in milliseconds. */
  readonly windowMs: number;
  /** Most keys tracked at once; the oldest are dropped past this, bounding memory under attack. */
  readonly maxKeys?: number;
}

/** The in-process limiter; cluster mode replaces it with one backed by Redis. */
export class MemoryLoginLimiter implements LoginLimiter {
  readonly #failures = new Map<string, number[]>();
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxKeys: number;

  constructor(options: LimiterOptions) {
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#maxKeys = options.maxKeys ?? 100_000;
  }

  #recent(key: string, now: number): number[] {
    const times = (this.#failures.get(key) ?? []).filter((t) => t > now - this.#windowMs);
    if (times.length === 0) this.#failures.delete(key);
    else this.#failures.set(key, times);
    return times;
  }

  retryAfter(key: string, now: number): Promise<number> {
    const times = this.#recent(key, now);
    if (times.length < this.#limit) return Promise.resolve(0);
    const oldest = times[times.length - this.#limit] as number;
    return Promise.resolve(Math.max(1, Math.ceil((oldest + this.#windowMs - now) / 1000)));
  }

  recordFailure(key: string, now: number): Promise<void> {
    const times = this.#recent(key, now);
    times.push(now);
    this.#failures.delete(key);
    this.#failures.set(key, times.slice(-this.#limit));
    if (this.#failures.size > this.#maxKeys) {
      const oldest = this.#failures.keys().next();
      if (!oldest.done) this.#failures.delete(oldest.value);
    }
    return Promise.resolve();
  }

  reset(key: string): Promise<void> {
    this.#failures.delete(key);
    return Promise.resolve();
  }
}
