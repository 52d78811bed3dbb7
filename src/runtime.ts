import type { Logger } from 'pino';
import { Redis } from 'ioredis';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError, isLoopback, redactUrl, type Config } from './config.js';
import { backgroundTimers, systemClock, type Clock, type Timers } from './clock.js';
import { createLogger } from './log.js';
import { openStorage } from './storage/open.js';
import { UserExistsError, type Deployment, type Storage } from './storage/types.js';
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
import { HashSlots, hashSlotsPerAddress, type PasswordSlots } from './users/hash-slots.js';
import { UserService, demoUsers } from './users/user-service.js';
import { MemoryTicketStore, type TicketStore } from './credentials/tickets.js';
import { RedisTicketStore } from './credentials/redis-tickets.js';
import type { PubSub } from './pubsub/types.js';
import type { SharedLimits } from './handshake/shared-limits.js';
import { RedisPubSub } from './pubsub/redis.js';
import { deriveIdentityKey, type IdentityKey } from './proxy/identity.js';
import { TrustedIssuers } from './issuers/trusted-issuers.js';
import { IssuerError } from './issuers/issuer-error.js';
import { withTrustedIssuers } from './credentials/external.js';
import type { VerifyJwt } from './tokens/verify.js';
import type { TokenClaims } from './tokens/claims.js';
import type { ProxyEvents } from './proxy/connect.js';
import { createGate, type Gate, type GateLimits } from './handshake/gate.js';
import { registerSeedEndpoints } from './endpoints/seed.js';
import { registerChatEndpoint } from './endpoints/chat.js';
import { ChatService } from './chat/chat-service.js';
import { Cluster, type ClusterOptions } from './cluster/cluster.js';
import { Metrics } from './metrics.js';
import { issuerScheme } from './handshake/origin.js';
import { describeHosts, type HostPolicy } from './handshake/host.js';
import { externalKey } from './credentials/principal.js';
import type { ExternalRevocation } from './storage/types.js';

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
  /** The trusted external issuers (`--trust`), each with its own key set; maybe none. */
  readonly issuers: TrustedIssuers;
  /**
   * Verifies wsgate's own tokens and the access tokens of trusted issuers, refusing revoked
   * sessions and subjects: what the gate and the bearer-token routes call.
   */
  readonly verify: VerifyJwt;
  /** Whether the session of a ticket's claims was revoked (wsgate's or an external one). */
  readonly isRevoked: (sessionId: string, claims: TokenClaims) => boolean;
  /** The cluster bus: Redis under `--redis`, or one given by embedding code; none on a lone node. */
  readonly bus: PubSub | undefined;
  /** Limits shared with the other workers through the primary (`--workers`); none otherwise. */
  readonly sharedLimits: SharedLimits | undefined;
  /**
   * The deployment's issuer and audience: the stored ones, or this start's candidates until
   * {@link Runtime.claimDeployment} stores them.
   */
  readonly deployment: Deployment;
  /**
   * Stores the issuer and audience if this is the deployment's first start — the derived issuer
   * being `listeningUrl` when given (a server on port 0) — and adopts what is stored.
   * Throws a ConfigError for a first start on a non-loopback address without `--issuer`.
   */
  claimDeployment(listeningUrl?: string): Promise<Deployment>;
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
  readonly sharedLimits?: SharedLimits;
  /** Where password checks take a hashing slot (a worker: the primary's); else this process's. */
  readonly hashSlots?: PasswordSlots;
}

export async function createRuntime(
  config: Config,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  const clock = options.clock ?? systemClock;
  const log = options.log ?? createLogger(config.logLevel);
  const storage = options.storage ?? openConfiguredStorage(config);
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
  let issuers: TrustedIssuers | undefined;
  const loginLimits = { limit: config.loginAttemptsPerMinute, windowMs: 60_000 };
  const addressLimits = { limit: config.loginFailuresPerAddress, windowMs: 60_000 };
  try {
    if (config.redis !== undefined) await reachRedis(config.redis, redisShown(config));
    await storage.migrate().catch((err: unknown) => {
      throw new Error(`${databaseName(config)}: ${(err as Error).message}`, {
        cause: err,
      });
    });
    const stored = await storage.getDeployment();
    if (stored !== undefined) checkDeployment(config, stored);
    let deployment: Deployment = stored ?? { issuer: config.issuer, audience: config.audience };
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
      hashSlots:
        options.hashSlots ??
        new HashSlots({
          concurrency: config.hashConcurrency,
          queue: config.hashQueue,
          perKey: hashSlotsPerAddress,
        }),
      failureAuditRate: config.auditFailureRate,
      refreshGraceMs: config.refreshGrace * 1000,
      recentRotations:
        options.recentRotations ??
        (redis ? new RedisRecentRotations(redis, { prefix }) : new MemoryRecentRotations()),
      issuer: deployment.issuer,
      audience: deployment.audience,
      accessTtl: config.accessTtl,
      refreshTtl: config.refreshTtl,
      onAudit: (event) => log.info({ audit: event }, event.event),
    });
    await sessions.warm();
    const users = new UserService(storage, sessions, clock, { demo: config.demo });
    if (config.demo) await seedDemoUsers(users);
    issuers = await startIssuers(config, clock, log);
    const revocations = sessions.revocations;
    const trusted = issuers;
    return {
      issuers: trusted,
      verify: withTrustedIssuers(
        (token, type) => sessions.verify(token, type),
        trusted,
        (claims) => revocations.isExternalRevoked(claims, clock()),
      ),
      isRevoked: (sessionId, claims) =>
        claims.external
          ? revocations.isExternalRevoked(claims, clock())
          : revocations.has(sessionId),
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
      sharedLimits: options.sharedLimits,
      get deployment() {
        return deployment;
      },
      async claimDeployment(listeningUrl?: string) {
        if (stored !== undefined) return deployment;
        if (config.issuerDerived && !isLoopback(config.host)) throw firstStartNeedsIssuer(config);
        const candidate = {
          issuer: config.issuerDerived ? (listeningUrl ?? config.issuer) : config.issuer,
          audience: config.audience,
        };
        deployment = await storage.ensureDeployment(candidate);
        // Another node's first start may have won the race.
        checkDeployment(config, deployment);
        sessions.setIssuer(deployment.issuer, deployment.audience);
        return deployment;
      },
      close: async () => {
        trusted.close();
        await bus?.close();
        await closeRedis(redis);
        await storage.close();
      },
    };
  } catch (err) {
    issuers?.close();
    await bus?.close();
    await closeRedis(redis);
    await storage.close();
    throw err;
  }
}

/**
 * Fetches the trusted issuers' keys once, then keeps them fresh in the background. An issuer
 * that does not answer leaves the start going (its tokens get 401 until its keys arrive); one
 * whose metadata names another issuer or breaks the https rule is a configuration error.
 */
async function startIssuers(config: Config, clock: Clock, log: Logger): Promise<TrustedIssuers> {
  const issuers = new TrustedIssuers(config.trust, {
    audiences: config.trustAudiences,
    backchannelAudiences: config.backchannelAudiences,
    usernameClaim: config.usernameClaim,
    scopeClaim: config.scopeClaim,
    adminIssuers: new Set(config.adminIssuers),
    clock,
    keySets: { staleMs: config.trustStale * 1000 },
  });
  try {
    await issuers.start();
  } catch (err) {
    if (err instanceof IssuerError) throw new ConfigError(err.message);
    throw err;
  }
  for (const status of issuers.statuses()) {
    if (status.state === 'ready')
      log.info({ issuer: status.issuer, keys: status.keys }, 'trusting issuer');
    else log.warn({ issuer: status.issuer, error: status.error }, 'trusted issuer has no keys yet');
  }
  issuers.startRefreshing();
  return issuers;
}

/**
 * The database as a message shows it: the flag or variable that named it (`--database "…"`,
 * `WSGATE_DATABASE="…"`, password hidden), else the data dir's file.
 */
function databaseName(config: Config): string {
  return (
    config.given.database ??
    `database ${config.database.startsWith('sqlite:') ? config.database.slice('sqlite:'.length) : redactUrl(config.database)}`
  );
}

/**
 * Opens the configured database. The default SQLite file lives in the data dir, created on first
 * start; a `--database sqlite:` path must be in a directory that exists.
 */
function openConfiguredStorage(config: Config): Storage {
  if (config.database.startsWith('sqlite:')) {
    const path = config.database.slice('sqlite:'.length);
    if (path !== ':memory:') {
      if (config.databaseGiven) {
        if (!existsSync(dirname(path))) {
          throw new ConfigError(
            `--database ${config.database}: the directory ${dirname(path)} does not exist`,
          );
        }
      } else mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    }
  }
  try {
    return openStorage(config.database);
  } catch (err) {
    throw new Error(`${databaseName(config)}: ${(err as Error).message}`, { cause: err });
  }
}

function firstStartNeedsIssuer(config: Config): ConfigError {
  return new ConfigError(
    `the first start of a deployment on the non-loopback address ${config.host} needs --issuer, its public URL (e.g. --issuer https://chat.example); every node and the CLI then use the stored value`,
  );
}

/** Refuses an `--issuer` or `--audience` that contradicts the deployment's stored one. */
function checkDeployment(config: Config, stored: Deployment): void {
  if (!config.issuerDerived && config.issuer !== stored.issuer) {
    throw new ConfigError(
      `--issuer ${config.issuer} differs from the deployment's stored issuer ${stored.issuer}; leave --issuer out to use the stored one`,
    );
  }
  if (config.audienceGiven && config.audience !== stored.audience) {
    throw new ConfigError(
      `--audience ${config.audience} differs from the deployment's stored audience ${stored.audience}; leave --audience out to use the stored one`,
    );
  }
}

/**
 * Refuses, before anything is created, the first start of an SQLite deployment on a non-loopback
 * address without `--issuer`. (On PostgreSQL the check runs once the database says whether this
 * is a first start.)
 */
export function checkFirstStart(config: Config): void {
  if (!config.issuerDerived || isLoopback(config.host)) return;
  if (!config.database.startsWith('sqlite:')) return;
  const path = config.database.slice('sqlite:'.length);
  if (path !== ':memory:' && !existsSync(path)) throw firstStartNeedsIssuer(config);
}

/** `--redis "redis://…"` or `WSGATE_REDIS="redis://…"`, as the operator gave it, password hidden. */
function redisShown(config: Config): string {
  return config.given.redis ?? `--redis ${JSON.stringify(redactUrl(config.redis ?? ''))}`;
}

/**
 * Connects once to Redis and fails with a message naming the flag or variable, where the
 * retrying connections would only say "Reached the max retries per request limit".
 */
async function reachRedis(url: string, shown: string): Promise<void> {
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // connect() rejects with "Connection is closed."; the socket's own error says why.
  let failure: Error | undefined;
  probe.on('error', (err: Error) => (failure ??= err));
  try {
    await probe.connect();
    await probe.ping();
  } catch (err) {
    const cause = failure ?? (err as Error);
    throw new Error(`${shown}: ${cause.message}`, { cause });
  } finally {
    probe.disconnect();
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

// ---------------------------------------------------------------------------------------------
// The node: what runs on a runtime while it serves. The CLI's commands use the runtime alone.

export interface NodeOptions {
  /** Overrides of the gate's limits (tests and benchmarks raise or lower them). */
  readonly gateLimits?: Partial<GateLimits>;
  /** How often revocations made by other processes are read from the database (ms). */
  readonly revocationPollMs?: number;
  /** Cluster heartbeat timing (tests shorten it). */
  readonly cluster?: ClusterOptions;
  /** How long an upstream has to accept a proxied socket (default 5 s; tests shorten it). */
  readonly proxyDialTimeoutMs?: number;
  /** The metrics to report to (a worker's, which the primary adds up); by default new ones. */
  readonly metrics?: Metrics;
  /**
   * The timers of the node's background work: the gate's heartbeat and first-message wait,
   * presence batches, the revocation poll, and the cluster heartbeat unless `cluster` names its
   * own. Default: Node's, unref'd; tests step their own.
   */
  readonly timers?: Timers;
}

/** A serving node: its gate with every endpoint on it, the chat, the cluster link and metrics. */
export interface Node {
  readonly gate: Gate;
  readonly metrics: Metrics;
  readonly chat: ChatService;
  /** Leaves the cluster (before the sockets drain). */
  detach(): Promise<void>;
  /** Stops kicking, polling and batching (after the sockets drained). */
  close(): Promise<void>;
}

/** Proxy metrics: per-frame counters are resolved once, not per frame. */
function proxyEvents(metrics: Metrics): ProxyEvents {
  const frames = { up: metrics.proxyFrames.labels('up'), down: metrics.proxyFrames.labels('down') };
  const bytes = { up: metrics.proxyBytes.labels('up'), down: metrics.proxyBytes.labels('down') };
  return {
    dialed: (ms) => metrics.upstreamConnectSeconds.observe(ms / 1000),
    dialFailed: (reason) => metrics.upstreamFailures.inc({ reason }),
    frame: (direction, size) => {
      frames[direction].inc();
      bytes[direction].inc(size);
    },
    opened: () => metrics.proxiedOpen.inc(),
    ended: () => metrics.proxiedOpen.dec(),
  };
}

/**
 * How many distinct refused `Host` names a node logs: enough to tell an operator which name their
 * proxy or port-forward sends, while a flood of made-up names costs a few lines, not a line each.
 */
export const refusedHostsLogged = 10;

/** The `Host` names a node of this configuration answers, for the startup banner. */
export function answeredHosts(config: Config, issuer: string): string {
  return describeHosts({ issuer, loopback: isLoopback(config.host), allowed: config.allowedHosts });
}

const hostPolicies = new WeakMap<Runtime, HostPolicy>();

/**
 * The names a node answers to (others get 421): the issuer's host, loopback names when it listens
 * on loopback, and `--allowed-host`. One policy per runtime, shared by the HTTP routes and the
 * gate, so a refused name is logged once whichever of them refused it.
 */
export function deploymentHosts(runtime: Runtime): HostPolicy {
  const known = hostPolicies.get(runtime);
  if (known !== undefined) return known;
  const { config, sessions, log } = runtime;
  const logged = new Set<string>();
  const policy: HostPolicy = {
    issuer: () => sessions.issuer,
    loopback: isLoopback(config.host),
    allowed: config.allowedHosts,
    onRefused: (host) => {
      if (logged.size > refusedHostsLogged) return;
      const name = host === undefined ? '' : host.slice(0, 100);
      if (logged.has(name)) return;
      logged.add(name);
      if (logged.size > refusedHostsLogged) {
        log.warn(`more Host names refused with 421; no more are logged until a restart`);
        return;
      }
      const shown = name === '' ? 'no Host header' : `Host ${JSON.stringify(name)}`;
      log.warn(
        { host: name },
        `refused ${shown} with 421 misdirected_request: this node answers ${describeHosts(policy)}. If clients or a proxy in front reach it by that name, add that name with --allowed-host; a name you do not know is a DNS rebinding attempt (docs/configuration.md#origins-and-hosts)`,
      );
    },
  };
  hostPolicies.set(runtime, policy);
  return policy;
}

/**
 * Builds the WebSocket gate of a runtime, with the seed endpoints on it, reporting to `metrics`
 * and recording refused handshakes in the audit trail.
 */

export function buildGate(runtime: Runtime, options: NodeOptions = {}, metrics?: Metrics): Gate {
  const { sessions, config } = runtime;
  const gate = createGate({
    onReject: (event) => {
      metrics?.handshakes.inc({ transport: event.transport ?? 'none', outcome: event.code });
      // A flood of bad handshakes must not become a flood of database writes: the failure budget.
      void sessions
        .auditFailure({
          event: 'handshake.reject',
          ip: event.ip,
          detail: {
            code: event.code,
            path: event.path,
            transport: event.transport,
            closeCode: event.afterUpgrade ? event.closeCode : null,
            status: event.afterUpgrade ? null : event.status,
          },
        })
        .catch((err: unknown) => runtime.log.error({ err }, 'audit failed'));
    },
    onAccept: (event) => {
      metrics?.countAccepted(event.transport ?? 'none');
      if (event.durationMs !== undefined)
        metrics?.handshakeSeconds.observe(event.durationMs / 1000);
    },
    onKick: (_live, code) => metrics?.kicks.inc({ reason: code }),
    ...(metrics === undefined ? {} : { onMessage: () => metrics.countIn() }),
    verify: runtime.verify,
    isRevoked: runtime.isRevoked,
    tickets: runtime.tickets,
    clock: runtime.clock,
    ...(options.timers === undefined ? {} : { timers: options.timers }),
    origins: config.origins,
    hosts: deploymentHosts(runtime),
    scheme: issuerScheme(sessions.issuer),
    trustProxy: config.trustProxy,
    allowQueryTokens: config.allowQueryTokens,
    log: runtime.log,
    // Flags first, then what the embedding code (tests, benchmarks) asks for.
    limits: { ...config.limits, ...options.gateLimits },
    ...(runtime.sharedLimits === undefined
      ? {}
      : {
          handshakeBuckets: runtime.sharedLimits.handshakes,
          userSockets: runtime.sharedLimits.sockets,
        }),
    proxy: {
      identityKey: runtime.identity,
      issuer: () => sessions.issuer,
      ca: config.proxyCa,
      ...(options.proxyDialTimeoutMs === undefined
        ? {}
        : { dialTimeoutMs: options.proxyDialTimeoutMs }),
      ...(metrics === undefined ? {} : { events: proxyEvents(metrics) }),
    },
  });
  registerSeedEndpoints(gate, metrics === undefined ? {} : { onSent: () => metrics.countOut() });
  return gate;
}

/**
 * Wires a node on a runtime: the gate with the seed endpoints, `/chat` and the proxy routes;
 * every revocation closing its sockets at once; revocations made by other processes polled from
 * the database; and, with a bus, the cluster link between this node's rooms and the others'.
 */
export async function startNode(runtime: Runtime, options: NodeOptions = {}): Promise<Node> {
  const timers = options.timers ?? backgroundTimers;
  const metrics = options.metrics ?? new Metrics();
  const gate = buildGate(runtime, options, metrics);
  metrics.countConnections(() => gate.size);
  // Every revocation closes the affected sockets at once (4410) and leaves one audit line.
  const stopKicks = runtime.sessions.revocations.onRevoke(({ sessionIds, reason, external }) => {
    const started = performance.now();
    let sockets = gate.closeSessions(sessionIds, `Session revoked (${reason})`);
    for (const r of external ?? [])
      sockets += closeExternal(gate, r, `Session revoked (${reason})`);
    if (sockets > 0) metrics.kickSeconds.observe((performance.now() - started) / 1000);
    if (sockets > 0) {
      void runtime.sessions
        .audit({
          event: 'socket.kick',
          detail: {
            reason,
            sessions: sessionIds.length,
            sockets,
            ...(external === undefined
              ? {}
              : { issuers: [...new Set(external.map((r) => r.issuer))] }),
          },
        })
        .catch((err: unknown) => runtime.log.error({ err }, 'audit failed'));
    }
  });
  const pollMs = options.revocationPollMs ?? 500;
  let poll: unknown;
  const pollRevocations = () => {
    poll = timers.setTimeout(pollRevocations, pollMs);
    runtime.sessions
      .pollRevocations()
      .catch((err: unknown) => runtime.log.warn({ err }, 'revocation poll failed'));
  };
  poll = timers.setTimeout(pollRevocations, pollMs);
  const cluster =
    runtime.bus === undefined
      ? undefined
      : new Cluster(runtime.bus, runtime.log, { timers, ...options.cluster });
  const chat = new ChatService({
    storage: runtime.storage,
    clock: runtime.clock,
    log: runtime.log,
    timers,
    ...(cluster === undefined ? {} : { relay: cluster.relay }),
    onSent: (count) => metrics.countOut(count),
    maxRooms: runtime.config.maxRooms,
    roomCreationsPerMinute: runtime.config.roomCreationsPerMinute,
    welcomeRooms: runtime.config.welcomeRooms,
    joinedBytesPerMinute: runtime.config.joinedBytesPerMinute,
  });
  const close = async () => {
    timers.clearTimeout(poll);
    stopKicks();
    chat.close();
  };
  try {
    await chat.warm();
    await cluster
      ?.attach({ revocations: runtime.sessions.revocations, rooms: chat.rooms })
      .catch((err: unknown) => {
        const bus =
          runtime.config.redis === undefined ? 'the cluster bus' : redisShown(runtime.config);
        throw new Error(
          `${bus}: cannot subscribe to the cluster channels: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      });
    registerChatEndpoint(gate, chat);
    // Proxy paths last: they take over the built-in WebSocket endpoints they cover.
    for (const route of runtime.config.proxies) {
      gate.proxy(route.path, route.upstream, { scopes: route.scopes, audience: route.audience });
    }
  } catch (err) {
    // A node that cannot start leaves nothing running: no timer, no subscription, no kick.
    await cluster?.detach().catch(() => undefined);
    await close();
    await gate.drain(0);
    throw err;
  }
  return {
    gate,
    metrics,
    chat,
    detach: async () => cluster?.detach(),
    close,
  };
}

/**
 * Closes the sockets an external revocation ends: those of the session, or those of the subject
 * whose token was issued by the revocation (only the ones without a provider `sid`, for the
 * subject named by a `sid` logout).
 */
function closeExternal(gate: Gate, r: ExternalRevocation, reason: string): number {
  if (r.kind === 'sid') return gate.closeSessions([externalKey(r.issuer, r.value)], reason);
  const ended = (claims: TokenClaims) =>
    claims.iat * 1000 <= r.revokedAt &&
    (r.kind === 'sub' || claims.external?.providerSid === undefined);
  return gate.closePrincipal(externalKey(r.issuer, r.value), ended, reason);
}
