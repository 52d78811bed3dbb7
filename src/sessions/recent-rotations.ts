import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** The two tokens a refresh-token rotation issued. */
export interface RotatedPair {
  readonly accessToken: string;
  readonly refreshToken: string;
}

/**
 * The pairs issued by the rotations of the last few seconds, by the `jti` of the refresh token
 * they replaced: two tabs refreshing with one token both get the same new pair instead of the
 * second counting as reuse (the refresh grace period).
 */
export interface RecentRotations {
  remember(jti: string, pair: RotatedPair, ttlMs: number, now: number): Promise<void>;
  recall(jti: string, now: number): Promise<RotatedPair | undefined>;
}

/** One node's rotations; bounded, oldest forgotten first. */
export class MemoryRecentRotations implements RecentRotations {
  readonly #pairs = new Map<string, { pair: RotatedPair; until: number }>();
  readonly #maxEntries: number;

  constructor(options: { maxEntries?: number } = {}) {
    this.#maxEntries = options.maxEntries ?? 10_000;
  }

  remember(jti: string, pair: RotatedPair, ttlMs: number, now: number): Promise<void> {
    if (ttlMs <= 0) return Promise.resolve();
    for (const [key, entry] of this.#pairs) {
      if (entry.until > now && this.#pairs.size < this.#maxEntries) break;
      this.#pairs.delete(key);
    }
    this.#pairs.set(jti, { pair, until: now + ttlMs });
    return Promise.resolve();
  }

  recall(jti: string, now: number): Promise<RotatedPair | undefined> {
    const entry = this.#pairs.get(jti);
    return Promise.resolve(entry && entry.until > now ? entry.pair : undefined);
  }
}

/**
 * Rotations shared by every node of a cluster, so parallel refreshes that land on two nodes agree.
 * The key is the SHA-256 of the spent token's `jti`; the entry lives for the grace period only.
 */
export class RedisRecentRotations implements RecentRotations {
  readonly #redis: Redis;
  readonly #prefix: string;

  /** `redis` is a command connection the caller owns (and closes). */
  constructor(redis: Redis, options: { prefix?: string } = {}) {
    this.#redis = redis;
    this.#prefix = options.prefix ?? 'wsgate:';
  }

  #key(jti: string): string {
    return `${this.#prefix}rotated:${createHash('sha256').update(jti, 'utf8').digest('hex')}`;
  }

  async remember(jti: string, pair: RotatedPair, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return;
    await this.#redis.set(this.#key(jti), JSON.stringify(pair), 'PX', Math.ceil(ttlMs));
  }

  async recall(jti: string): Promise<RotatedPair | undefined> {
    const value = await this.#redis.get(this.#key(jti));
    if (value === null) return undefined;
    const parsed = JSON.parse(value) as Partial<RotatedPair>;
    return typeof parsed.accessToken === 'string' && typeof parsed.refreshToken === 'string'
      ? { accessToken: parsed.accessToken, refreshToken: parsed.refreshToken }
      : undefined;
  }
}
