import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { MemoryTicketStore, ticketTtlMs } from './tickets.js';
import { RedisTicketStore } from './redis-tickets.js';
import { sampleClaims, ticketStoreContract } from './tickets.test-suite.js';
import {
  redisReachable,
  redisUrl,
  requireReachable,
  skipUnlessReachable,
} from '../../test/support/services.js';

function connection(): Redis {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined);
  return redis;
}

/** QUIT when connected; a connection that is not just gets dropped, so nothing hangs. */
async function closeConnection(redis: Redis): Promise<void> {
  if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
  else redis.disconnect();
}

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
  /** Every key of this run starts with this; all are deleted in `after`. */
  const runPrefix = `wsgate-test-${randomBytes(6).toString('hex')}:`;
  let admin: Redis;
  let opened = 0;

  before(() => {
    requireReachable('Redis', redisUrl, reachable);
    admin = connection();
  });

  after(async () => {
    if (!reachable) return;
    const keys = await admin.keys(`${runPrefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await closeConnection(admin);
  });

  /** Two stores on separate connections (two nodes) over one fresh prefix. */
  const twoNodes = (prefix = `${runPrefix}${++opened}:`) => {
    const connections = [connection(), connection()] as const;
    return {
      prefix,
      a: new RedisTicketStore(connections[0], { prefix }),
      b: new RedisTicketStore(connections[1], { prefix }),
      close: async () => {
        await Promise.all(connections.map(closeConnection));
      },
    };
  };

  ticketStoreContract('Redis', () => Promise.resolve(twoNodes()));

  describe('Redis only', () => {
    it('keeps a ticket under the hash of its value, with the prefix and a 30 s expiry', async () => {
      const nodes = twoNodes();
      try {
        const now = Date.now();
        const claims = sampleClaims(now);
        const tickets = [await nodes.a.issue(claims, now), await nodes.b.issue(claims, now)];
        const keys = await admin.keys(`${runPrefix}*`);
        const ours = keys.filter((k) => k.startsWith(nodes.prefix));
        assert.equal(ours.length, 2);
        for (const key of ours) {
          assert.match(key, new RegExp(`^${nodes.prefix}ticket:[0-9a-f]{64}$`));
          const value = (await admin.get(key)) ?? '';
          const ttl = await admin.pttl(key);
          assert.ok(ttl > 0 && ttl <= ticketTtlMs, `PTTL ${ttl}`);
          for (const ticket of tickets) {
            assert.ok(!key.includes(ticket) && !value.includes(ticket), 'no ticket in Redis');
          }
          assert.ok(!key.includes(claims.sub) && !key.includes(claims.sid));
        }
        for (const ticket of tickets) assert.ok(await nodes.b.consume(ticket, now));
        assert.deepEqual(
          (await admin.keys(`${runPrefix}*`)).filter((k) => k.startsWith(nodes.prefix)),
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
        const [key] = (await admin.keys(`${nodes.prefix}*`)) as [string];
        for (const junk of ['not json', 'null', '{"claims":{}}', '{"expiresAt":1e99}']) {
          await admin.set(key, junk);
          assert.equal(await nodes.a.consume(ticket, now), undefined, junk);
        }
      } finally {
        await nodes.close();
      }
    });
  });
});
