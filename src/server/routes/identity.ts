import type { FastifyInstance } from 'fastify';
import { WsgateError, isWsgateError } from '../../errors.js';
import { parseBearer } from '../../credentials/authorization-header.js';
import { adminScope } from '../../issuers/access-token.js';
import { parseScope } from '../../tokens/claims.js';
import type { ExternalRevocation } from '../../storage/types.js';
import type { Runtime } from '../../runtime.js';
import { errorBodySchema, errorHandler } from '../errors.js';

/** What a refused back-channel logout hears, whatever was wrong (Back-Channel Logout 1.0 §2.8). */
const invalidLogout = { error: 'invalid_request' } as const;

function refusedLogout(why: string): WsgateError {
  return new WsgateError('invalid_request', undefined, { cause: new Error(why) });
}

/** How long a logout token's `jti` is kept past its `exp`, so a replay is refused. */
const jtiMarginSeconds = 60;

/**
 * `POST /backchannel-logout` (OpenID Connect Back-Channel Logout 1.0) for trusted issuers, and
 * `POST /admin/revoke` for apps: both end sessions cluster-wide and close their sockets (4410).
 */
export function identityRoutes(app: FastifyInstance, runtime: Runtime): void {
  const { sessions, config } = runtime;
  const ttlMs = config.trustRevocationTtl * 1000;

  app.post<{ Body: { logout_token?: unknown } }>(
    '/backchannel-logout',
    {
      schema: {
        summary: 'OpenID Connect back-channel logout from a trusted issuer',
        description:
          'Form field `logout_token`: a logout token of a `--trust` issuer for a `--backchannel-audience`. Ends the named session (`sid`) or subject (`sub`) cluster-wide; their sockets close with 4410 on every node and their tokens are refused. 200 when valid (even when no socket matched); anything else 400 `{"error":"invalid_request"}`. A replayed token (same issuer and `jti`) is refused.',
        tags: ['auth'],
        consumes: ['application/x-www-form-urlencoded'],
        response: { 400: { type: 'object', properties: { error: { type: 'string' } } } },
      },
      // Whatever is wrong with the request — its body, type, size or token — the provider gets
      // the one answer. A failure of ours (the database) is a 500, so that the provider retries.
      errorHandler: (err, request, reply) => {
        if (!isWsgateError(err) && !(err.statusCode !== undefined && err.statusCode < 500))
          return void errorHandler(err, request, reply);
        // The reason for the operator (never the token): a WsgateError's cause says what failed.
        const why = err.cause instanceof Error ? err.cause.message : err.message;
        request.log.info({ reason: why }, 'back-channel logout refused');
        void reply.code(400).header('cache-control', 'no-store').send(invalidLogout);
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      // Form-encoded only (Back-Channel Logout 1.0 §2.5): no provider sends a JSON body.
      if (!/^application\/x-www-form-urlencoded\b/i.test(request.headers['content-type'] ?? ''))
        throw refusedLogout('not form-encoded');
      const token = (request.body as Record<string, unknown> | undefined)?.logout_token;
      if (typeof token !== 'string' || token === '') throw refusedLogout('no logout_token');
      const logout = await runtime.issuers.verifyLogoutToken(token);
      const now = runtime.clock();
      const targets: Pick<ExternalRevocation, 'issuer' | 'kind' | 'value'>[] = [];
      if (logout.sid !== undefined)
        targets.push({ issuer: logout.issuer, kind: 'sid', value: logout.sid });
      if (logout.sub !== undefined)
        targets.push({
          issuer: logout.issuer,
          // A sid logout also ends the subject's tokens that name no session.
          kind: logout.sid === undefined ? 'sub' : 'sub_without_sid',
          value: logout.sub,
        });
      // Tokens issued up to the logout are ended — by the token's own time, so that a replay
      // stores the same revocation again — but never later than now (iat may be 60 s ahead).
      const revokedAt = Math.min(now, logout.iat * 1000);
      await sessions.revokeExternal(targets, 'backchannel_logout', {
        revokedAt,
        ttlMs,
        ip: request.ip,
      });
      // Recorded only once the logout is stored, so a provider whose first try failed may retry.
      const fresh = await runtime.storage.recordLogoutToken(
        logout.issuer,
        logout.jti,
        (logout.exp + jtiMarginSeconds) * 1000,
        now,
      );
      if (!fresh) throw refusedLogout('logout token replayed');
      return reply.code(200).send();
    },
  );

  app.post<{ Body: { user?: string; session?: string; issuer?: string } }>(
    '/admin/revoke',
    {
      schema: {
        summary: 'Revoke a user’s or a session’s sessions (apps with scope wsgate:admin)',
        description:
          'Bearer token with scope `wsgate:admin` (wsgate’s own, or from an `--admin-issuer`). JSON `{"user"}` or `{"session"}`, plus `"issuer"` for an external identity (its `sub`, or its `sid` / `jti`). Every affected socket closes with 4410 on every node. 200 `{"sessions":n}`: the wsgate sessions revoked, or 1 for the external session or subject recorded.',
        tags: ['auth'],
        security: [{ bearer: [] }],
        body: {
          type: 'object',
          properties: {
            user: { type: 'string', minLength: 1, maxLength: 255 },
            session: { type: 'string', minLength: 1, maxLength: 255 },
            issuer: { type: 'string', minLength: 1, maxLength: 2048 },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: { sessions: { type: 'integer' } },
            required: ['sessions'],
          },
          400: errorBodySchema,
          401: errorBodySchema,
          403: errorBodySchema,
        },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      const bearer = parseBearer(request.headers.authorization);
      if (bearer === undefined) throw new WsgateError('credential_missing');
      const claims = await runtime.verify(bearer, 'access');
      if (!parseScope(claims.scope).has(adminScope)) throw new WsgateError('insufficient_scope');
      const { user, session, issuer } = request.body;
      if ((user === undefined) === (session === undefined))
        throw new WsgateError('invalid_request', 'Give exactly one of user and session');
      if (issuer !== undefined) {
        if (!runtime.issuers.has(issuer))
          throw new WsgateError('invalid_request', 'issuer is not a trusted issuer');
        await sessions.revokeExternal(
          [{ issuer, kind: user === undefined ? 'sid' : 'sub', value: user ?? session ?? '' }],
          'admin',
          { ttlMs, ip: request.ip },
        );
        return { sessions: 1 };
      }
      if (user !== undefined)
        return { sessions: (await sessions.revokeUser(user, 'admin')).length };
      const revoked = await sessions.revoke(session ?? '', 'admin', { ip: request.ip });
      return { sessions: revoked ? 1 : 0 };
    },
  );
}
