import { readFileSync } from 'node:fs';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { deploymentHosts, startNode, type NodeOptions, type Runtime } from '../runtime.js';
import { hostChecker, hostRefusal } from '../handshake/host.js';
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
import type { Gate } from '../handshake/gate.js';
import { wsgateFastify } from './gate-plugin.js';
import { trustedProxies } from '../client-address.js';
import { authorizationOf } from '../credentials/authorization-header.js';
import { WsgateError } from '../errors.js';
import { isKnownHttpRoute } from './http-paths.js';

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

export type { NodeOptions as AppOptions } from '../runtime.js';

/** Builds the HTTP server for a runtime. This module and its routes are the only Fastify users. */
export async function buildApp(
  runtime: Runtime,
  options: NodeOptions = {},
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
      connectionsCheckingInterval: Math.min(1000, runtime.config.upgradeTimeout * 1000),
    },
    // Its body (64 KiB at most) has until three times that. Fastify sets the server's
    // requestTimeout from this option, 0 (none) by default, over any given in `http`: a body sent
    // a byte at a time held its socket for as long as the client liked.
    requestTimeout: runtime.config.upgradeTimeout * 3000,
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

  // DNS rebinding: a page on an attacker's name that resolves here sends that name as Host. Only
  // the deployment's own names are answered; health checks come from wherever the balancer is.
  const hostAllowed = hostChecker(deploymentHosts(runtime));
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?', 1)[0];
    const healthCheck = path === '/healthz' || path === '/readyz';
    const refusal = hostRefusal(request.raw, healthCheck ? undefined : hostAllowed);
    if (refusal) throw refusal;
  });

  // Node keeps the first of two Authorization headers and drops the other: refuse the ambiguity.
  app.addHook('onRequest', async (request) => {
    if (Array.isArray(authorizationOf(request.raw)))
      throw new WsgateError('invalid_request', 'More than one Authorization header');
  });

  // The configuration refuses a proxy path that overlaps an HTTP route from this list, before
  // anything starts: a route missing from it would escape that check.
  app.addHook('onRoute', (route) => {
    if (!isKnownHttpRoute(route.url))
      throw new Error(`HTTP route ${route.url} is missing from httpRoutePaths (http-paths.ts)`);
  });

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((_request, reply) => sendError(reply, new WsgateError('not_found')));

  const node = await startNode(runtime, options);
  try {
    app.addHook('preClose', async () => node.detach());
    app.addHook('onClose', async () => node.close());

    tokenRoutes(app, runtime);
    authRoutes(app, runtime);
    metaRoutes(app, runtime, node.metrics);
    await docsRoutes(app);
    ticketRoutes(app, runtime);
    compatRoutes(app, runtime);
    pageRoutes(app, runtime);
    identityRoutes(app, runtime);

    await app.register(wsgateFastify, { gate: node.gate });

    await app.ready();
  } catch (err) {
    // The node's timers and subscriptions run from startNode on: a failed build stops them, or a
    // process whose start failed would go on polling a closed database.
    await app.close().catch(() => undefined);
    await node.detach();
    await node.close();
    await node.gate.drain(0);
    throw err;
  }
  return { app, gate: node.gate };
}
