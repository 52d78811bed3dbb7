import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryTicketStore, ticketTtlMs } from './tickets.js';
import { RedisTicketStore } from './redis-tickets.js';
import { sampleClaims, ticketStoreContract } from './tickets.test-suite.js';
import {
  redisReachable,
  redisStorePairs,
  redisUrl,
  skipUnlessReachable,
} from '../../test/support/services.js';

// Outside CI a missing server skips the Redis tests; in CI they must run, and fail at once.
const reachable = await redisReachable();
const skip = await skipUnlessReachable('Redis', redisUrl, reachable);

ticketStoreContract('memory', () => {
  const store = new MemoryTicketStore();
  return Promise.resolve({ a: store, b: store, close: () => Promise.resolve() });
});

describe('MemoryTicketStore only', () => {
  it('stays bounded under a flood, dropping the oldest tickets first', async () => {
    const store = new MemoryTicketStore({ max: 3 });
    const now = Date.now();
    const first = await store.issue(sampleClaims(now), now);
    for (let i = 0; i < 5; i++) await store.issue(sampleClaims(now), now);
    assert.equal(store.size, 3);
    assert.equal(await store.consume(first, now), undefined);
  });
});

describe('Redis ticket store', { skip }, () => {
  const { runPrefix, admin, twoNodes } = redisStorePairs(
    reachable,
    (redis, prefix) => new RedisTicketStore(redis, { prefix }),
  );

  ticketStoreContract('Redis', () => Promise.resolve(twoNodes()));

  describe('Redis only', () => {
    it('keeps a ticket under the hash of its value, with the prefix and a 30 s expiry', async () => {
      const nodes = twoNodes();
      try {
        const now = Date.now();
        const claims = sampleClaims(now);
        const tickets = [await nodes.a.issue(claims, now), await nodes.b.issue(claims, now)];
        const keys = await admin().keys(`${runPrefix}*`);
        const ours = keys.filter((k) => k.startsWith(nodes.prefix));
        assert.equal(ours.length, 2);
        for (const key of ours) {
          assert.match(key, new RegExp(`^${nodes.prefix}ticket:[0-9a-f]{64}$`));
          const value = (await admin().get(key)) ?? '';
          const ttl = await admin().pttl(key);
          assert.ok(ttl > 0 && ttl <= ticketTtlMs, `PTTL ${ttl}`);
          for (const ticket of tickets) {
            assert.ok(!key.includes(ticket) && !value.includes(ticket), 'no ticket in Redis');
          }
          assert.ok(!key.includes(claims.sub) && !key.includes(claims.sid));
        }
        for (const ticket of tickets) assert.ok(await nodes.b.consume(ticket, now));
        assert.deepEqual(
          (await admin().keys(`${runPrefix}*`)).filter((k) => k.startsWith(nodes.prefix)),
          [],
          'consuming deletes the key',
        );
      } finally {
        await nodes.close();
      }
    });

    it('keeps deployments with different prefixes apart', async () => {
      const one = twoNodes();
      const other = twoNodes();
      try {
        const now = Date.now();
        const ticket = await one.a.issue(sampleClaims(now), now);
        assert.equal(await other.a.consume(ticket, now), undefined);
        assert.ok(await one.b.consume(ticket, now));
      } finally {
        await one.close();
        await other.close();
      }
    });

    it('treats a corrupted entry as unknown', async () => {
      const nodes = twoNodes();
      try {
        const now = Date.now();
        const ticket = await nodes.a.issue(sampleClaims(now), now);
        const [key] = (await admin().keys(`${nodes.prefix}*`)) as [string];
        for (const junk of ['not json', 'null', '{"claims":{}}', '{"expiresAt":1e99}']) {
          await admin().set(key, junk);
          assert.equal(await nodes.a.consume(ticket, now), undefined, junk);
        }
      } finally {
        await nodes.close();
      }
    });
  });
});
