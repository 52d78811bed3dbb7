import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryLoginLimiter } from './login-limiter.js';
import { RedisLoginLimiter } from './redis-login-limiter.js';
import {
  contractLimit,
  contractWindowMs,
  limitKey,
  loginLimiterContract,
} from './login-limiter.test-suite.js';
import {
  redisReachable,
  redisStorePairs,
  redisUrl,
  skipUnlessReachable,
} from '../../test/support/services.js';

// Outside CI a missing server skips the Redis tests; in CI they must run, and fail at once.
const reachable = await redisReachable();
const skip = await skipUnlessReachable('Redis', redisUrl, reachable);

const options = { limit: contractLimit, windowMs: contractWindowMs };

loginLimiterContract('memory', () => {
  const limiter = new MemoryLoginLimiter(options);
  return Promise.resolve({ a: limiter, b: limiter, close: () => Promise.resolve() });
});

describe('Redis login limiter', { skip }, () => {
  const { admin, twoNodes } = redisStorePairs(
    reachable,
    (redis, prefix) => new RedisLoginLimiter(redis, { ...options, prefix }),
  );

  loginLimiterContract('Redis', () => Promise.resolve(twoNodes()));

  describe('Redis only', () => {
    it('names keys by prefix and hash, never by username or address, and bounds them', async () => {
      const nodes = twoNodes();
      try {
        const key = limitKey('mallory', '192.0.2.99');
        const t0 = Date.now();
        for (let i = 0; i < 3 * contractLimit; i++) await nodes.a.recordFailure(key, t0 + i);
        const keys = await admin().keys(`${nodes.prefix}*`);
        assert.equal(keys.length, 1);
        const [name] = keys as [string];
        assert.match(name, new RegExp(`^${nodes.prefix}login:[0-9a-f]{64}$`));
        for (const part of key.split('|')) assert.ok(!name.includes(part), `${part} in ${name}`);
        assert.ok(!name.includes('mallory') && !name.includes('192.0.2.99'));
        assert.equal(await admin().zcard(name), contractLimit, 'only the newest failures are kept');
        const ttl = await admin().pttl(name);
        assert.ok(ttl > 0 && ttl <= contractWindowMs, `PTTL ${ttl}`);
        await nodes.b.reset(key);
        assert.deepEqual(await admin().keys(`${nodes.prefix}*`), []);
      } finally {
        await nodes.close();
      }
    });

    it('keeps deployments with different prefixes apart', async () => {
      const one = twoNodes();
      const other = twoNodes();
      try {
        const key = limitKey();
        const t0 = Date.now();
        for (let i = 0; i < contractLimit; i++) await one.a.recordFailure(key, t0);
        assert.ok((await one.b.retryAfter(key, t0)) > 0);
        assert.equal(await other.a.retryAfter(key, t0), 0);
      } finally {
        await one.close();
        await other.close();
      }
    });
  });
});
