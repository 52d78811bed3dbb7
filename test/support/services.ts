import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';

/** External services the tests use: their addresses, probes and the rule for skipping. */

/** The Redis server the tests use; WSGATE_TEST_REDIS overrides it. */
export const redisUrl = process.env.WSGATE_TEST_REDIS ?? 'redis://127.0.0.1:6379';

/** The PostgreSQL database the tests use; WSGATE_TEST_POSTGRES overrides it. */
export const postgresUrl =
  process.env.WSGATE_TEST_POSTGRES ?? 'postgres://root@127.0.0.1:5432/test';

/** The URL without its password, for messages. */
export function redacted(address: string): string {
  try {
    const parsed = new URL(address);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** Whether the Redis server at `url` answers a PING. */
export async function redisReachable(url: string = redisUrl): Promise<boolean> {
  const probe = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** Whether the PostgreSQL database at `url` answers `SELECT 1`. */
export async function postgresReachable(url: string = postgresUrl): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Why `service` is missing: "<service> not reachable at <redacted url>". */
export function unreachable(service: string, url: string): string {
  return `${service} not reachable at ${redacted(url)}`;
}

/** Outside CI, the skip reason when `reachable` (a probe only run outside CI) fails; else `false` (run). */
export async function skipUnlessReachable(
  service: string,
  url: string,
  reachable: boolean | (() => Promise<boolean>),
): Promise<string | false> {
  if (process.env.CI === 'true') return false;
  const ok = typeof reachable === 'boolean' ? reachable : await reachable();
  return ok ? false : `skipped: ${unreachable(service, url)}`;
}

/** Throws when `service` is not reachable: in CI its tests must run, and fail at once. */
export function requireReachable(service: string, url: string, reachable: boolean): void {
  if (!reachable) {
    throw new Error(`${service} is required in CI and is not reachable at ${redacted(url)}`);
  }
}

/** A test connection to the tests' Redis that retries a little and never throws on its own. */
export function redisConnection(): Redis {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined);
  return redis;
}

/** QUIT when connected; a connection that is not just gets dropped, so nothing hangs. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
  else redis.disconnect();
}

/** Two stores on separate connections (two nodes) over one prefix, and how to close them. */
export interface TwoRedisNodes<T> {
  readonly prefix: string;
  readonly a: T;
  readonly b: T;
  close(): Promise<void>;
}

/**
 * For a `describe` of Redis-backed stores: registers the hooks that require Redis and delete
 * every key of the run afterwards, and makes pairs of stores (`make` builds one on a connection
 * and prefix), each pair under a fresh prefix inside the run's. `admin` is for inspecting keys.
 */
export function redisStorePairs<T>(
  reachable: boolean,
  make: (redis: Redis, prefix: string) => T,
): {
  readonly runPrefix: string;
  readonly admin: () => Redis;
  readonly twoNodes: (prefix?: string) => TwoRedisNodes<T>;
} {
  const runPrefix = `wsgate-test-${randomBytes(6).toString('hex')}:`;
  let admin: Redis | undefined;
  let opened = 0;
  before(() => {
    requireReachable('Redis', redisUrl, reachable);
    admin = redisConnection();
  });
  after(async () => {
    if (!reachable || !admin) return;
    const keys = await admin.keys(`${runPrefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await closeRedis(admin);
  });
  return {
    runPrefix,
    admin: () => {
      if (!admin) throw new Error('admin is ready once the suite has started');
      return admin;
    },
    twoNodes: (prefix = `${runPrefix}${++opened}:`) => {
      const connections = [redisConnection(), redisConnection()] as const;
      return {
        prefix,
        a: make(connections[0], prefix),
        b: make(connections[1], prefix),
        close: async () => {
          await Promise.all(connections.map(closeRedis));
        },
      };
    },
  };
}
