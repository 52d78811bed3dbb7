/** Token-bucket limits per key: `rate` tokens a second, holding at most `burst`. */
export interface BucketOptions {
  readonly rate: number;
  readonly burst: number;
  /** Most keys tracked; past this the least recently used are forgotten (a full bucket again). */
  readonly maxKeys?: number;
}

/** Many token buckets keyed by, e.g., client address; time is passed in, never read. */
export class TokenBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #o: Required<BucketOptions>;

  constructor(options: BucketOptions) {
    this.#o = { maxKeys: 100_000, ...options };
  }

  /** Takes one token; returns 0 when allowed, else the seconds until a token will be there. */
  take(key: string, now: number): number {
    const bucket = this.#refill(key, now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#o.rate));
  }

  /**
   * For a cost known only once the work is done (bytes sent): 0 when the bucket holds anything
   * now, else the seconds until it will. {@link spend} then takes the cost, into debt if need be.
   */
  wait(key: string, now: number): number {
    const { tokens } = this.#refill(key, now);
    return tokens > 0 ? 0 : Math.max(1, Math.ceil(-tokens / this.#o.rate));
  }

  /** Takes `cost` tokens, leaving the bucket in debt when it held fewer. */
  spend(key: string, now: number, cost: number): void {
    this.#refill(key, now).tokens -= cost;
  }

  #refill(key: string, now: number): { tokens: number; at: number } {
    const { rate, burst, maxKeys } = this.#o;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= maxKeys) {
        const oldest = this.#buckets.keys().next();
        if (!oldest.done) this.#buckets.delete(oldest.value);
      }
      bucket = { tokens: burst, at: now };
    } else {
      this.#buckets.delete(key); // re-insert below: the map stays in least-recently-used order
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
      bucket.at = now;
    }
    this.#buckets.set(key, bucket);
    return bucket;
  }
}

/** One token bucket, for a single connection's message rate. */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.#tokens = burst;
    this.#at = now;
  }

  take(now: number): boolean {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
