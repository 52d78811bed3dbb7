import type { FastifyInstance, FastifyRequest } from 'fastify';
import { WsgateError, httpAnswer } from '../../errors.js';
import { parseBearer } from '../../credentials/authorization-header.js';
import { LoginError } from '../../sessions/session-service.js';
import type { TokenClaims } from '../../tokens/claims.js';
import type { Runtime } from '../../runtime.js';
import { errorBodySchema, loginRefused } from '../errors.js';

const pairResponse = {
  type: 'object',
  properties: {
    access_token: { type: 'string' },
    refresh_token: { type: 'string' },
    token_type: { type: 'string', enum: ['bearer'] },
    expires_in: { type: 'integer' },
  },
  required: ['access_token', 'refresh_token', 'token_type', 'expires_in'],
} as const;

const detailBody = {
  type: 'object',
  properties: { detail: { type: 'string' } },
  required: ['detail'],
} as const;

const bearerSecurity = [{ bearer: [] }];

/** Verifies the request's bearer access token, refusing revoked sessions. */
export async function requireAccessToken(
  runtime: Runtime,
  request: FastifyRequest,
): Promise<TokenClaims> {
  const token = parseBearer(request.headers.authorization);
  if (token === undefined) throw new WsgateError('credential_missing');
  return runtime.sessions.verify(token, 'access');
}

/** `POST /login`, `POST /refresh`, `POST /logout` (fastapi-jwt-auth style, JSON). */
export function authRoutes(app: FastifyInstance, runtime: Runtime): void {
  app.post<{ Body: { username: string; password: string } }>(
    '/login',
    {
      schema: {
        summary: 'Log in with a username and password',
        description: 'Returns a fresh access token and a refresh token, and opens a session.',
        tags: ['tokens'],
        body: {
          type: 'object',
          properties: {
            username: { type: 'string', minLength: 1, maxLength: 256 },
            password: { type: 'string', maxLength: 4096 },
          },
          required: ['username', 'password'],
        },
        response: { 200: pairResponse, 401: detailBody, 429: detailBody, 503: detailBody },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      try {
        const pair = await runtime.sessions.login({
          username: request.body.username,
          password: request.body.password,
          ip: request.ip,
        });
        return {
          access_token: pair.accessToken,
          refresh_token: pair.refreshToken,
          token_type: 'bearer',
          expires_in: pair.expiresIn,
        };
      } catch (err) {
        if (!(err instanceof LoginError)) throw err;
        // fastapi-jwt-auth's shape: `{detail}`, and 401 for bad credentials.
        const { status, headers } = httpAnswer(err);
        return reply
          .code(loginRefused(err) ? 401 : status)
          .headers(headers)
          .send({ detail: err.message });
      }
    },
  );

  app.post<{ Body: { refresh_token?: string } | undefined }>(
    '/refresh',
    {
      schema: {
        summary: 'Rotate a refresh token',
        description:
          'Refresh token as `Authorization: Bearer` or JSON `{refresh_token}`. Returns a new, not fresh access token and a rotated refresh token. Presenting a refresh token that was already rotated revokes the whole family (its sockets close with 4410).',
        tags: ['tokens'],
        security: bearerSecurity,
        body: {
          type: 'object',
          properties: { refresh_token: { type: 'string', maxLength: 16384 } },
        },
        response: { 200: pairResponse, 400: errorBodySchema, 401: errorBodySchema },
      },
      // A refresh token in the header needs no body at all.
      preValidation: (request, _reply, done) => {
        request.body ??= {};
        done();
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      const fromHeader = parseBearer(request.headers.authorization);
      const fromBody = request.body?.refresh_token;
      if (fromHeader !== undefined && fromBody !== undefined)
        throw new WsgateError('ambiguous_credential');
      const token = fromHeader ?? fromBody;
      if (token === undefined) throw new WsgateError('credential_missing');
      const pair = await runtime.sessions.refresh(token, { ip: request.ip });
      return {
        access_token: pair.accessToken,
        refresh_token: pair.refreshToken,
        token_type: 'bearer',
        expires_in: pair.expiresIn,
      };
    },
  );

  app.post(
    '/logout',
    {
      schema: {
        summary: 'End the session of a bearer access token',
        description:
          "Revokes the session and its refresh family; the session's sockets close with 4410.",
        tags: ['tokens'],
        security: bearerSecurity,
        response: { 204: { type: 'null' }, 401: errorBodySchema },
      },
    },
    async (request, reply) => {
      const claims = await requireAccessToken(runtime, request);
      await runtime.sessions.revoke(claims.sid, 'logout', { username: claims.sub, ip: request.ip });
      return reply.code(204).send();
    },
  );
}
