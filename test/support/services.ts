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
