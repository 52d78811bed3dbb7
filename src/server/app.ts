import { readFileSync } from 'node:fs';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import type { Runtime } from '../runtime.js';
import { contentSecurityPolicy } from './html.js';
import { errorHandler, sendError } from './errors.js';
import { tokenRoutes } from './routes/token.js';
import { authRoutes } from './routes/auth.js';
import { metaRoutes } from './routes/meta.js';
import { docsRoutes, websocketDescription } from './routes/docs.js';
import { ticketRoutes } from './routes/tickets.js';
import { compatRoutes } from './routes/compat.js';
import { pageRoutes } from './routes/pages.js';
import { identityRoutes } from './routes/identity.js';
import { externalKey } from '../credentials/principal.js';
import type { ExternalRevocation } from '../storage/types.js';
import type { TokenClaims } from '../tokens/claims.js';
import { createGate, type Gate, type GateLimits } from '../handshake/gate.js';
import { registerSeedEndpoints } from '../endpoints/seed.js';
import { wsgateFastify } from './gate-plugin.js';
import { ChatService } from '../chat/chat-service.js';
import { Cluster, type ClusterOptions } from '../cluster/cluster.js';
import { Metrics } from '../metrics.js';
import { trustedProxies } from '../client-address.js';
import { authorizationOf } from '../credentials/authorization-header.js';
import { WsgateError } from '../errors.js';
import { ConfigError } from '../config.js';
import { overlapsHttpRoute } from '../proxy/route.js';
import type { ProxyEvents } from '../proxy/connect.js';

export const packageVersion = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** Parses `application/x-www-form-urlencoded`; a repeated key becomes an array, which schemas refuse. */
function parseForm(body: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null) as Record<
    string,
    string | string[]
  >;
  for (const [key, value] of new URLSearchParams(body)) {
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

export interface AppOptions {
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
 * Builds the WebSocket gate of a runtime, with the seed endpoints on it, reporting to `metrics`
 * and recording refused handshakes in the audit trail.
 */
export function buildGate(runtime: Runtime, options: AppOptions = {}, metrics?: Metrics): Gate {
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
      metrics?.handshakes.inc({ transport: event.transport ?? 'none', outcome: 'accepted' });
      if (event.durationMs !== undefined)
        metrics?.handshakeSeconds.observe(event.durationMs / 1000);
    },
    onKick: (_live, code) => metrics?.kicks.inc({ reason: code }),
    ...(metrics === undefined ? {} : { onMessage: () => metrics.messagesIn.inc() }),
    verify: runtime.verify,
    isRevoked: runtime.isRevoked,
    tickets: runtime.tickets,
    clock: runtime.clock,
    origins: config.origins,
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
      trusted: trustedProxies(config.trustProxy),
      ca: config.proxyCa,
      ...(options.proxyDialTimeoutMs === undefined
        ? {}
        : { dialTimeoutMs: options.proxyDialTimeoutMs }),
      ...(metrics === undefined ? {} : { events: proxyEvents(metrics) }),
    },
  });
  registerSeedEndpoints(gate, { onSent: () => metrics?.messagesOut.inc() });
  return gate;
}

/** Builds the HTTP server for a runtime. This module and its routes are the only Fastify users. */
export async function buildApp(
  runtime: Runtime,
  options: AppOptions = {},
): Promise<{ app: FastifyInstance; gate: Gate }> {
  const app = Fastify({
    // Typed as Fastify's logger so that the instance type matches the one routes are written for.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: runtime.log as FastifyBaseLogger,
    bodyLimit: 64 * 1024,
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    // A request (an upgrade included) whose head is not in within --upgrade-timeout is dropped:
    // half-open upgrades no longer hold a socket for a minute and more.
    http: {
      headersTimeout: runtime.config.upgradeTimeout * 1000,
      requestTimeout: Math.max(300_000, runtime.config.upgradeTimeout * 1000),
      connectionsCheckingInterval: Math.min(1000, runtime.config.upgradeTimeout * 1000),
    },
    // Behind --trust-proxy peers, request.ip and request.protocol come from X-Forwarded-*.
    trustProxy:
      runtime.config.trustProxy.length === 0 ? false : trustedProxies(runtime.config.trustProxy),
    forceCloseConnections: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });

  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 16 * 1024 },
    (_request, body, done) => done(null, parseForm(body as string)),
  );

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'wsgate', version: packageVersion, description: websocketDescription },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        },
      },
    },
  });

  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    const type = reply.getHeader('content-type');
    if (typeof type === 'string' && type.startsWith('text/html')) {
      reply.header('content-security-policy', contentSecurityPolicy);
      reply.header('x-frame-options', 'DENY');
    }
    return payload;
  });

  // Node keeps the first of two Authorization headers and drops the other: refuse the ambiguity.
  app.addHook('onRequest', async (request) => {
    if (Array.isArray(authorizationOf(request.raw)))
      throw new WsgateError('invalid_request', 'More than one Authorization header');
  });

  // Every HTTP path, to refuse a proxy path that would shadow one (or be shadowed by one).
  const httpPaths: string[] = [];
  app.addHook('onRoute', (route) => {
    httpPaths.push(route.url);
  });

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((_request, reply) => sendError(reply, new WsgateError('not_found')));

  tokenRoutes(app, runtime);
  authRoutes(app, runtime);
  const metrics = options.metrics ?? new Metrics();
  metaRoutes(app, runtime, metrics);
  await docsRoutes(app);
  ticketRoutes(app, runtime);
  compatRoutes(app, runtime);
  pageRoutes(app, runtime);
  identityRoutes(app, runtime);

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
  const poll = setInterval(() => {
    runtime.sessions
      .pollRevocations()
      .catch((err: unknown) => runtime.log.warn({ err }, 'revocation poll failed'));
  }, options.revocationPollMs ?? 500);
  poll.unref();
  app.addHook('onClose', async () => {
    clearInterval(poll);
    stopKicks();
  });
  const cluster =
    runtime.bus === undefined ? undefined : new Cluster(runtime.bus, runtime.log, options.cluster);
  const chat = new ChatService({
    storage: runtime.storage,
    clock: runtime.clock,
    log: runtime.log,
    ...(cluster === undefined ? {} : { relay: cluster.relay }),
    onSent: (count) => metrics.messagesOut.inc(count),
    maxRooms: runtime.config.maxRooms,
    roomCreationsPerMinute: runtime.config.roomCreationsPerMinute,
    welcomeRooms: runtime.config.welcomeRooms,
  });
  await chat.warm();
  if (cluster) {
    await cluster.attach({ revocations: runtime.sessions.revocations, rooms: chat.rooms });
    app.addHook('preClose', async () => cluster.detach());
  }
  gate.route('/chat', { requirement: 'required' }, chat.handle);
  // Proxy paths last: they take over the built-in WebSocket endpoints they cover.
  for (const route of runtime.config.proxies) {
    gate.proxy(route.path, route.upstream, { scopes: route.scopes, audience: route.audience });
  }
  app.addHook('onClose', async () => chat.close());
  await app.register(wsgateFastify, { gate });

  await app.ready();
  for (const route of runtime.config.proxies) {
    const clash = httpPaths.find((path) => overlapsHttpRoute(route, path));
    if (clash !== undefined) {
      await app.close();
      throw new ConfigError(`--proxy ${route.path} overlaps the HTTP route ${clash}`);
    }
  }
  return { app, gate };
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
