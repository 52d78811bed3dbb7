import type { Logger } from 'pino';
import { Redis } from 'ioredis';
import type { Config } from './config.js';
import { systemClock, type Clock } from './clock.js';
import { createLogger } from './log.js';
import { openStorage } from './storage/open.js';
import { UserExistsError, type Storage } from './storage/types.js';
import {
  generateSigningKey,
  keySetFromSecret,
  keySetFromStoredKeys,
  loadOrCreateKeyFile,
  type KeySet,
} from './tokens/keys.js';
import { MemoryLoginLimiter, type LoginLimiter } from './sessions/login-limiter.js';
import { RedisLoginLimiter } from './sessions/redis-login-limiter.js';
import { SessionService } from './sessions/session-service.js';
import {
  MemoryRecentRotations,
  RedisRecentRotations,
  type RecentRotations,
} from './sessions/recent-rotations.js';
import { HashSlots } from './users/hash-slots.js';
import { UserService, demoUsers } from './users/user-service.js';
import { MemoryTicketStore, type TicketStore } from './credentials/tickets.js';
import { RedisTicketStore } from './credentials/redis-tickets.js';
import type { PubSub } from './pubsub/types.js';
import { RedisPubSub } from './pubsub/redis.js';
import { deriveIdentityKey, type IdentityKey } from './proxy/identity.js';

/** Everything a node runs on, wired once: the server and the CLI both start from here. */
export interface Runtime {
  readonly config: Config;
  readonly clock: Clock;
  readonly log: Logger;
  readonly storage: Storage;
  readonly keys: KeySet;
  /** Signs `X-Wsgate-Identity` for proxied upstreams; published beside `keys`, never a credential key. */
  readonly identity: IdentityKey;
  readonly sessions: SessionService;
  readonly users: UserService;
  readonly tickets: TicketStore;
  /** The cluster bus: Redis under `--redis`, or one given by embedding code; none on a lone node. */
  readonly bus: PubSub | undefined;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  readonly clock?: Clock;
  readonly log?: Logger;
  readonly storage?: Storage;
  readonly limiter?: LoginLimiter;
  readonly addressLimiter?: LoginLimiter;
  readonly recentRotations?: RecentRotations;
  readonly tickets?: TicketStore;
  readonly bus?: PubSub;
}

export async function createRuntime(
  config: Config,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? createLogger(config.logLevel);
  const storage = options.storage ?? openStorage(config.database);
  const bus =
    options.bus ??
    (config.redis === undefined
      ? undefined
      : new RedisPubSub(config.redis, { prefix: config.redisPrefix }));
  // Cluster mode: tickets and login limits live in Redis too, on one command connection,
  // unless embedding code brought its own stores.
  const redis =
    config.redis !== undefined &&
    (options.tickets === undefined ||
      options.limiter === undefined ||
      options.addressLimiter === undefined ||
      options.recentRotations === undefined)
      ? redisCommands(config.redis)
      : undefined;
  const prefix = config.redisPrefix;
  const loginLimits = { limit: config.loginAttemptsPerMinute, windowMs: 60_000 };
  const addressLimits = { limit: config.loginFailuresPerAddress, windowMs: 60_000 };
  try {
    await storage.migrate();
    // A shared secret; else SQLite's data-dir key file; else keys shared through the database,
    // so that every node of a cluster signs and verifies with the same keys.
    const keys =
      config.hs256Secret !== undefined
        ? keySetFromSecret(config.hs256Secret)
        : keySetFromStoredKeys(
            config.database.startsWith('sqlite:')
              ? await loadOrCreateKeyFile(config.dataDir)
              : await storage.ensureSigningKeys(await generateSigningKey(clock())),
          );
    const sessions = new SessionService({
      storage,
      keys,
      clock,
      limiter:
        options.limiter ??
        (redis
          ? new RedisLoginLimiter(redis, { ...loginLimits, prefix })
          : new MemoryLoginLimiter(loginLimits)),
      addressLimiter:
        options.addressLimiter ??
        (redis
          ? new RedisLoginLimiter(redis, { ...addressLimits, prefix, kind: 'login-address' })
          : new MemoryLoginLimiter(addressLimits)),
      hashSlots: new HashSlots({ concurrency: config.hashConcurrency, queue: config.hashQueue }),
      failureAuditRate: config.auditFailureRate,
      refreshGraceMs: config.refreshGrace * 1000,
      recentRotations:
        options.recentRotations ??
        (redis ? new RedisRecentRotations(redis, { prefix }) : new MemoryRecentRotations()),
      issuer: config.issuer,
      audience: config.audience,
      accessTtl: config.accessTtl,
      refreshTtl: config.refreshTtl,
      onAudit: (event) => log.info({ audit: event }, event.event),
    });
    await sessions.warm();
    const users = new UserService(storage, sessions, clock, { demo: config.demo });
    if (config.demo) await seedDemoUsers(users);
    return {
      config,
      clock,
      log,
      storage,
      keys,
      identity: deriveIdentityKey(keys),
      sessions,
      users,
      tickets:
        options.tickets ??
        (redis ? new RedisTicketStore(redis, { prefix }) : new MemoryTicketStore()),
      bus,
      close: async () => {
        await bus?.close();
        await closeRedis(redis);
        await storage.close();
      },
    };
  } catch (err) {
    await bus?.close();
    await closeRedis(redis);
    await storage.close();
    throw err;
  }
}

/** A command connection for the Redis-backed stores, with the bus's error handling. */
function redisCommands(url: string): Redis {
  const redis = new Redis(url, {
    lazyConnect: false,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
  });
  // Connection errors are retried by ioredis; a command that still fails fails its request.
  redis.on('error', () => undefined);
  return redis;
}

async function closeRedis(redis: Redis | undefined): Promise<void> {
  if (redis === undefined) return;
  // QUIT waits for a connection that may never come back; a dead one is just dropped.
  if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
  else redis.disconnect();
}

async function seedDemoUsers(users: UserService): Promise<void> {
  const existing = new Set((await users.list()).map((u) => u.username));
  for (const { username, password } of demoUsers) {
    if (existing.has(username)) continue;
    try {
      await users.add(username, password);
    } catch (err) {
      // Another node seeding the same database got there first.
      if (!(err instanceof UserExistsError)) throw err;
    }
  }
}
