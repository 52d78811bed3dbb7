import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { LimiterOptions, LoginLimiter } from './login-limiter.js';

export interface RedisLimiterOptions extends Omit<LimiterOptions, 'maxKeys'> {
  /** Prefix of every key, so several deployments can share one Redis (default `wsgate:`). */
  readonly prefix?: string;
  /** What the key counts, part of its name: `login` (per username and address) by default. */
  readonly kind?: string;
}

/**
 * The login limiter shared by every node of a cluster, so spreading a brute force over nodes
 * gains nothing. Each key is a sorted set of failures scored by time, named by the SHA-256 of the
 * limit key, so no username or address appears in Redis key names. Only the newest `limit`
 * failures are kept, and the set expires a window after the last one, bounding memory.
 */
export class RedisLoginLimiter implements LoginLimiter {
  readonly #redis: Redis;
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #prefix: string;
  readonly #kind: string;

  /** `redis` is a command connection the caller owns (and closes). */
  constructor(redis: Redis, options: RedisLimiterOptions) {
    this.#redis = redis;
    this.#limit = options.limit;
    this.#windowMs = options.windowMs;
    this.#prefix = options.prefix ?? 'wsgate:';
    this.#kind = options.kind ?? 'login';
  }

  #key(key: string): string {
    return `${this.#prefix}${this.#kind}:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
  }

  async retryAfter(key: string, now: number): Promise<number> {
    // The newest `limit` failures still inside the window (score > now - window), newest first.
    const newest = await this.#redis.zrevrangebyscore(
      this.#key(key),
      '+inf',
      `(${now - this.#windowMs}`,
      'WITHSCORES',
      'LIMIT',
      0,
      this.#limit,
    );
    // WITHSCORES answers [member, score, member, score, …].
    if (newest.length / 2 < this.#limit) return 0;
    const oldest = Number(newest[newest.length - 1]);
    const wait = Math.max(1, Math.ceil((oldest + this.#windowMs - now) / 1000));
    // Failures come from every node's clock; one running behind never waits past a window.
    return Math.min(wait, Math.ceil(this.#windowMs / 1000));
  }

  async recordFailure(key: string, now: number): Promise<void> {
    const name = this.#key(key);
    // Members are unique per failure, so failures in the same millisecond all count.
    const member = `${now}:${randomBytes(8).toString('hex')}`;
    await this.#redis
      .multi()
      .zremrangebyscore(name, '-inf', now - this.#windowMs)
      .zadd(name, now, member)
      .zremrangebyrank(name, 0, -(this.#limit + 1))
      .pexpire(name, this.#windowMs)
      .exec()
      .then(throwOnError);
  }

  async reset(key: string): Promise<void> {
    await this.#redis.del(this.#key(key));
  }
}

/** `exec` resolves with per-command errors instead of rejecting; surface the first one. */
function throwOnError(results: [Error | null, unknown][] | null): void {
  if (results === null) throw new Error('Redis transaction aborted');
  for (const [err] of results) if (err) throw err;
}
