import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { type WsgateError, isWsgateError, type ErrorCode } from '../errors.js';
import { bearerChallenge } from '../credentials/authorization-header.js';

/** The JSON body of every error wsgate answers over HTTP. */
export interface ErrorBody {
  error: string;
  error_description: string;
}

export const errorBodySchema = {
  type: 'object',
  properties: { error: { type: 'string' }, error_description: { type: 'string' } },
  required: ['error', 'error_description'],
} as const;

const tokenErrors = new Set<ErrorCode>([
  'invalid_token',
  'token_too_large',
  'wrong_token_type',
  'token_expired',
  'session_revoked',
]);

/** Sends a catalogue error with its status, body and, for 401, a `WWW-Authenticate` challenge. */
export function sendError(reply: FastifyReply, err: WsgateError): FastifyReply {
  if (err.reason !== undefined) {
    reply.request.log.debug({ code: err.code, reason: err.reason }, `refused: ${err.reason}`);
  }
  if (err.status === 401) {
    reply.header(
      'www-authenticate',
      bearerChallenge(tokenErrors.has(err.code) ? 'invalid_token' : undefined),
    );
  } else if (err.code === 'insufficient_scope') {
    reply.header('www-authenticate', bearerChallenge('insufficient_scope'));
  }
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
  return reply
    .code(err.status)
    .send({ error: err.code, error_description: err.message } satisfies ErrorBody);
}

/** Fastify's error handler: catalogue errors as they are, validation as 400, the rest as 500. */
export function errorHandler(
  err: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (isWsgateError(err)) return sendError(reply, err);
  if (err.validation) {
    return reply
      .code(400)
      .send({ error: 'invalid_request', error_description: err.message } satisfies ErrorBody);
  }
  const status = err.statusCode ?? 500;
  if (status >= 500) {
    request.log.error({ err }, 'request failed');
    return reply
      .code(500)
      .send({ error: 'internal_error', error_description: 'Internal error' } satisfies ErrorBody);
  }
  // Framework messages can quote the request body (a JSON parse error does), so none is echoed.
  return reply.code(status).send({
    error: 'invalid_request',
    error_description: genericMessages[status] ?? 'Bad request',
  } satisfies ErrorBody);
}

const genericMessages: Record<number, string> = {
  400: 'Malformed request body',
  404: 'Not found',
  405: 'Method not allowed',
  406: 'Not acceptable',
  413: 'Request body too large',
  415: 'Unsupported content type',
};
