import type { FastifyInstance, FastifyReply } from 'fastify';
import { httpAnswer, isWsgateError } from '../../errors.js';
import { LoginError, type TokenPair } from '../../sessions/session-service.js';
import type { Runtime } from '../../runtime.js';

/** RFC 6749 §5.2 error codes. */
type OAuthError =
  | 'invalid_request'
  | 'invalid_grant'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'rate_limited'
  | 'temporarily_unavailable';

const field = { type: 'string', maxLength: 8192 } as const;

const tokenResponse = {
  type: 'object',
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string', enum: ['bearer'] },
    expires_in: { type: 'integer' },
    refresh_token: { type: 'string' },
    scope: { type: 'string' },
  },
  required: ['access_token', 'token_type', 'expires_in', 'refresh_token', 'scope'],
} as const;

const oauthErrorBody = {
  type: 'object',
  properties: { error: { type: 'string' }, error_description: { type: 'string' } },
  required: ['error'],
} as const;

interface TokenBody {
  grant_type?: string;
  username?: string;
  password?: string;
  scope?: string;
  refresh_token?: string;
}

function oauthError(
  reply: FastifyReply,
  status: number,
  error: OAuthError,
  description: string,
): FastifyReply {
  return reply.code(status).send({ error, error_description: description });
}

export function tokenResponseBody(pair: TokenPair) {
  return {
    access_token: pair.accessToken,
    token_type: 'bearer' as const,
    expires_in: pair.expiresIn,
    refresh_token: pair.refreshToken,
    scope: pair.access.scope,
  };
}

/** `POST /token`: the OAuth2 token endpoint (password and refresh_token grants). */
export function tokenRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.post<{ Body: TokenBody }>(
    '/token',
    {
      schema: {
        summary: 'OAuth2 token endpoint',
        description:
          'Form-encoded. `grant_type=password` (the default when absent) with `username`, `password` and optional `scope`, or `grant_type=refresh_token` with `refresh_token`. Refresh tokens rotate; presenting a rotated one revokes its whole family.',
        tags: ['tokens'],
        consumes: ['application/x-www-form-urlencoded'],
        body: {
          type: 'object',
          properties: {
            grant_type: field,
            username: field,
            password: field,
            scope: field,
            refresh_token: field,
          },
        },
        response: {
          200: tokenResponse,
          400: oauthErrorBody,
          429: oauthErrorBody,
          503: oauthErrorBody,
        },
      },
      // RFC 6749 §5.1: token responses must not be cached; errors neither.
      onSend: (_request, reply, payload, done) => {
        reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
        done(null, payload);
      },
      attachValidation: true,
    },
    async (request, reply) => {
      if (request.validationError) {
        return oauthError(
          reply,
          400,
          'invalid_request',
          'Each parameter must appear once, as text',
        );
      }
      const body = request.body;
      const grant = body.grant_type ?? 'password';
      try {
        if (grant === 'password') {
          if (!body.username || body.password === undefined) {
            return oauthError(reply, 400, 'invalid_request', 'username and password are required');
          }
          const pair = await runtime.sessions.login({
            username: body.username,
            password: body.password,
            ip: request.ip,
            scope: body.scope,
          });
          return tokenResponseBody(pair);
        }
        if (grant === 'refresh_token') {
          if (!body.refresh_token) {
            return oauthError(reply, 400, 'invalid_request', 'refresh_token is required');
          }
          if (body.scope !== undefined) {
            return oauthError(
              reply,
              400,
              'invalid_scope',
              'A refresh keeps the scopes of the session',
            );
          }
          const pair = await runtime.sessions.refresh(body.refresh_token, { ip: request.ip });
          return tokenResponseBody(pair);
        }
        return oauthError(
          reply,
          400,
          'unsupported_grant_type',
          'Supported: password, refresh_token',
        );
      } catch (err) {
        if (err instanceof LoginError) {
          const { status, headers } = httpAnswer(err);
          reply.headers(headers);
          const error = err.failure === 'overloaded' ? 'temporarily_unavailable' : err.failure;
          return oauthError(reply, status, error, err.message);
        }
        if (isWsgateError(err)) {
          return oauthError(
            reply,
            400,
            'invalid_grant',
            'Refresh token is invalid, expired or revoked',
          );
        }
        throw err;
      }
    },
  );
}
