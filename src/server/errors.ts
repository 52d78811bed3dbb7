import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorBody, type WsgateError, httpAnswer, isWsgateError } from '../errors.js';
import type { LoginError } from '../sessions/session-service.js';

export type { ErrorBody } from '../errors.js';

export const errorBodySchema = {
  type: 'object',
  properties: { error: { type: 'string' }, error_description: { type: 'string' } },
  required: ['error', 'error_description'],
} as const;

/** Sends a catalogue error as the catalogue renders it (status, body, challenge, Retry-After). */
export function sendError(reply: FastifyReply, err: WsgateError): FastifyReply {
  if (err.reason !== undefined) {
    reply.request.log.debug({ code: err.code, reason: err.reason }, `refused: ${err.reason}`);
  }
  const { status, headers, body } = httpAnswer(err);
  return reply.code(status).headers(headers).send(body);
}

/** Whether a login failed on its credentials (answered 401 outside OAuth), not on a limit. */
export function loginRefused(err: LoginError): boolean {
  return err.failure === 'invalid_grant' || err.failure === 'invalid_scope';
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
