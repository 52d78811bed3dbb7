import { describe } from 'node:test';
import { MemoryBus } from './memory.js';
import { RedisPubSub } from './redis.js';
import { pubSubContract } from './pubsub.test-suite.js';
import { redisReachable, redisUrl, skipUnlessReachable } from '../../test/support/services.js';
import { randomBytes } from 'node:crypto';

// Outside CI a missing server skips the Redis tests; in CI they must run, and fail at once.
const reachable = await redisReachable();
const skip = await skipUnlessReachable('Redis', redisUrl, reachable);

pubSubContract('memory', () => {
  const bus = new MemoryBus();
  const [a, b] = [bus.connect(), bus.connect()];
  return Promise.resolve({
    a,
    b,
    close: async () => void (await Promise.all([a.close(), b.close()])),
  });
});

describe('Redis pub/sub', { skip }, () => {
  pubSubContract('Redis', () => {
    const prefix = `wsgate-test-${randomBytes(6).toString('hex')}:`;
    const [a, b] = [new RedisPubSub(redisUrl, { prefix }), new RedisPubSub(redisUrl, { prefix })];
    return Promise.resolve({
      a,
      b,
      close: async () => void (await Promise.all([a.close(), b.close()])),
    });
  });
});
