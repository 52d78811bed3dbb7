import type { FastifyInstance, FastifyRequest } from 'fastify';
import { WsgateError } from '../../errors.js';
import { parseBearer } from '../../credentials/authorization-header.js';
import { accessCookie } from '../../credentials/cookie.js';
import { ticketTtlMs } from '../../credentials/tickets.js';
import { userKey } from '../../credentials/principal.js';
import type { TokenClaims } from '../../tokens/claims.js';
import type { Runtime } from '../../runtime.js';
import { errorBodySchema } from '../errors.js';
import { checkCsrfHeader, requestCookie } from '../cookies.js';
import { TokenBuckets } from '../../token-bucket.js';
import type { RateBuckets } from '../../handshake/shared-limits.js';

/**
 * The access token of a request: a bearer header, or the access cookie with a matching
 * `X-CSRF-Token` header (so another site cannot use the cookie the browser attaches).
 */
export async function accessFromHeaderOrCookie(
  runtime: Runtime,
  request: FastifyRequest,
): Promise<TokenClaims> {
  const bearer = parseBearer(request.headers.authorization);
  // A bearer token may be wsgate's own or a trusted issuer's; the cookie is only ever wsgate's.
  if (bearer !== undefined) return runtime.verify(bearer, 'access');
  const cookie = requestCookie(request, accessCookie);
  if (cookie === undefined) throw new WsgateError('credential_missing');
  const claims = await runtime.sessions.verify(cookie, 'access');
  checkCsrfHeader(request, claims.csrf);
  return claims;
}

/** `POST /ws-ticket`: a single-use, 30-second ticket for `?token=` on a WebSocket handshake. */
export function ticketRoutes(app: FastifyInstance, runtime: Runtime): void {
  // Tickets per user: a reconnecting client needs a few a minute, a flood needs a 429.
  const perMinute = runtime.config.ticketsPerMinute;
  const buckets: RateBuckets =
    runtime.sharedLimits?.ticketRequests ??
    new TokenBuckets({ rate: perMinute / 60, burst: perMinute });
  app.post(
    '/ws-ticket',
    {
      schema: {
        summary: 'Mint a single-use WebSocket ticket',
        description:
          'Bearer access token, or the access cookie with `X-CSRF-Token`. The ticket is opaque, works for one handshake as `?token=<ticket>`, is bound to the user and session, and lives at most 30 s (never past the access token).',
        tags: ['websocket'],
        security: [{ bearer: [] }],
        response: {
          200: {
            type: 'object',
            properties: { ticket: { type: 'string' }, expires_in: { type: 'integer' } },
            required: ['ticket', 'expires_in'],
          },
          401: errorBodySchema,
          403: errorBodySchema,
          429: errorBodySchema,
        },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      const claims = await accessFromHeaderOrCookie(runtime, request);
      const now = runtime.clock();
      const retryAfter = await buckets.take(userKey(claims), now);
      if (retryAfter > 0) throw new WsgateError('rate_limited', undefined, { retryAfter });
      const ticket = await runtime.tickets.issue(claims, now);
      const expiresIn = Math.max(
        0,
        Math.min(ticketTtlMs / 1000, claims.exp - Math.floor(now / 1000)),
      );
      return { ticket, expires_in: expiresIn };
    },
  );
}
