import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import { WsgateError } from '../../errors.js';
import { parseBearer } from '../../credentials/authorization-header.js';
import { safeEqual } from '../../credentials/compare.js';
import type { Runtime } from '../../runtime.js';
import type { Metrics } from '../../metrics.js';

/** Public keys, RFC 8414 metadata, liveness and readiness. */
export function metaRoutes(app: FastifyInstance, runtime: Runtime, metrics: Metrics): void {
  const { keys, storage } = runtime;

  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        summary: 'Public signing keys (JWK Set)',
        description:
          'The keys that sign access tokens (none under HS256, whose secret is never published), and the identity key that signs X-Wsgate-Identity for proxied upstreams.',
        tags: ['discovery'],
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return { keys: [...keys.jwks.keys, runtime.identity.jwk] };
    },
  );

  app.get(
    '/.well-known/oauth-authorization-server',
    { schema: { summary: 'Authorization server metadata (RFC 8414)', tags: ['discovery'] } },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      const issuer = runtime.sessions.issuer;
      const base = issuer.replace(/\/+$/, '');
      return {
        issuer,
        token_endpoint: `${base}/token`,
        jwks_uri: `${base}/.well-known/jwks.json`,
        grant_types_supported: ['password', 'refresh_token'],
        response_types_supported: [],
        token_endpoint_auth_methods_supported: ['none'],
        scopes_supported: ['chat:read', 'chat:write'],
        token_endpoint_auth_signing_alg_values_supported: [keys.alg],
        service_documentation: `${base}/docs`,
      };
    },
  );

  /** Loopback clients always; others with `Authorization: Bearer <--metrics-token>`. */
  function mayReadMetrics(request: FastifyRequest): boolean {
    if (isLoopbackAddress(request.ip)) return true;
    return safeEqual(parseBearer(request.headers.authorization), runtime.config.metricsToken);
  }

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics',
        description:
          'From loopback, or with `Authorization: Bearer <--metrics-token>`; 401 otherwise.',
        tags: ['operations'],
      },
    },
    async (request, reply) => {
      if (!mayReadMetrics(request)) throw new WsgateError('credential_missing');
      const { contentType, body } = await metrics.text();
      return reply.type(contentType).header('cache-control', 'no-store').send(body);
    },
  );

  app.get('/healthz', { schema: { summary: 'Liveness', tags: ['operations'] } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: the database (and Redis in cluster mode) answers',
        description:
          "Also lists each trusted external issuer's key-set state (`ready`, `stale`, `pending`, `unavailable`); an issuer never makes the server unready.",
        tags: ['operations'],
      },
    },
    async (request, reply) => {
      const checks: Record<string, 'ok' | 'down'> = { database: 'ok' };
      if (runtime.bus) checks.redis = 'ok';
      const results = await Promise.allSettled([storage.ping(), runtime.bus?.ping()]);
      if (results[0].status === 'rejected') checks.database = 'down';
      if (runtime.bus && results[1]?.status === 'rejected') checks.redis = 'down';
      const down = Object.entries(checks).filter(([, state]) => state === 'down');
      // Informational: a token of an unreachable issuer gets 401, the rest of the node serves.
      const issuers =
        runtime.issuers.size === 0
          ? {}
          : {
              issuers: runtime.issuers.statuses().map((s) => ({
                issuer: s.issuer,
                state: s.state,
                keys: s.keys,
                ...(s.fetchedAt === undefined
                  ? {}
                  : { fetchedAt: new Date(s.fetchedAt).toISOString() }),
                ...(s.error === undefined ? {} : { error: s.error.code }),
              })),
            };
      if (down.length === 0) return { status: 'ready', checks, ...issuers };
      request.log.warn({ checks }, 'not ready');
      return reply.code(503).send({ status: 'not_ready', checks, ...issuers });
    },
  );
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped forms. */
export function isLoopbackAddress(address: string): boolean {
  const bare = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1';
}
