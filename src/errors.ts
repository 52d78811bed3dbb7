import { CloseCode } from './protocol/close-codes.js';

/**
 * The error catalogue: every failure wsgate reports to a client, with its stable code, the HTTP
 * status used before an upgrade, the WebSocket close code used after one, and the client-facing
 * text. The chat's error frames and the login endpoints take their codes from here too.
 * `docs/protocol.md`, `docs/http-api.md` and `docs/chat.md` are tested against this table.
 */

export interface CatalogueEntry {
  /** HTTP status when the failure is reported as an HTTP response. */
  readonly status: number;
  /** WebSocket close code when the failure is reported on an open socket. */
  readonly close: number;
  /** Client-facing text; never contains secrets, always fits a close reason (≤123 bytes). */
  readonly message: string;
}

export const catalogue = {
  invalid_request: { status: 400, close: CloseCode.malformed, message: 'Malformed request' },
  ambiguous_credential: {
    status: 400,
    close: CloseCode.malformed,
    message: 'More than one credential was presented',
  },
  credential_missing: { status: 401, close: CloseCode.unauthorized, message: 'Not authenticated' },
  invalid_token: {
    status: 401,
    close: CloseCode.unauthorized,
    message: 'Invalid authentication credentials',
  },
  token_too_large: { status: 401, close: CloseCode.unauthorized, message: 'Token is too large' },
  wrong_token_type: {
    status: 401,
    close: CloseCode.unauthorized,
    message: 'Wrong token type for this endpoint',
  },
  token_expired: { status: 401, close: CloseCode.expired, message: 'Token has expired' },
  session_revoked: { status: 401, close: CloseCode.revoked, message: 'Session has been revoked' },
  user_disabled: { status: 403, close: CloseCode.forbidden, message: 'User is disabled' },
  not_fresh: { status: 403, close: CloseCode.forbidden, message: 'Fresh token required' },
  insufficient_scope: { status: 403, close: CloseCode.forbidden, message: 'Insufficient scope' },
  origin_not_allowed: { status: 403, close: CloseCode.forbidden, message: 'Origin not allowed' },
  csrf_failed: {
    status: 403,
    close: CloseCode.forbidden,
    message: 'CSRF token missing or invalid',
  },
  rate_limited: { status: 429, close: CloseCode.rateLimited, message: 'Too many requests' },
  auth_timeout: { status: 408, close: CloseCode.authTimeout, message: 'Authentication timed out' },
  message_too_big: { status: 413, close: CloseCode.messageTooBig, message: 'Message too big' },
  policy_violation: { status: 400, close: CloseCode.policyViolation, message: 'Policy violation' },
  overloaded: { status: 503, close: CloseCode.tryAgainLater, message: 'Server overloaded' },
  draining: { status: 503, close: CloseCode.goingAway, message: 'Server is shutting down' },
  internal_error: { status: 500, close: CloseCode.internalError, message: 'Internal error' },
  bad_gateway: { status: 502, close: CloseCode.badGateway, message: 'Upstream unavailable' },
  not_found: { status: 404, close: CloseCode.malformed, message: 'Not found' },
  method_not_allowed: { status: 405, close: CloseCode.malformed, message: 'Method not allowed' },
  upgrade_required: { status: 426, close: CloseCode.malformed, message: 'Upgrade required' },
  misdirected_request: {
    status: 421,
    close: CloseCode.policyViolation,
    message: 'This server does not answer to that host name',
  },
  invalid_grant: {
    status: 400,
    close: CloseCode.unauthorized,
    message: 'Bad username or password',
  },
  invalid_scope: {
    status: 400,
    close: CloseCode.forbidden,
    message: 'Requested scope is not allowed',
  },
  invalid_room: { status: 400, close: CloseCode.malformed, message: 'Invalid room name' },
  invalid_text: { status: 400, close: CloseCode.malformed, message: 'Invalid message text' },
  not_joined: {
    status: 400,
    close: CloseCode.malformed,
    message: 'Join the room before sending to it',
  },
  too_many_rooms: { status: 429, close: CloseCode.rateLimited, message: 'Too many rooms' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof catalogue;

/** The one error type wsgate throws for client-facing failures; callers switch on `code`. */
export class WsgateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly closeCode: number;
  /** Seconds a client should wait before retrying, for `rate_limited`. */
  readonly retryAfter: number | undefined;
  /**
   * Why, for the operator's debug log only (e.g. `iss expected X, got Y`): never sent to the
   * client, never holding a secret.
   */
  readonly reason: string | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options?: { retryAfter?: number; cause?: unknown; reason?: string },
  ) {
    const entry: CatalogueEntry = catalogue[code];
    super(
      message ?? entry.message,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'WsgateError';
    this.code = code;
    this.status = entry.status;
    this.closeCode = entry.close;
    this.retryAfter = options?.retryAfter;
    this.reason = options?.reason;
  }
}

/**
 * True for a {@link WsgateError}, also one made by another copy of this package (a library that
 * bundles its own wsgate, say): a custom `verify` that throws one keeps its status and close code.
 */
export function isWsgateError(err: unknown): err is WsgateError {
  if (err instanceof WsgateError) return true;
  if (!(err instanceof Error) || err.name !== 'WsgateError') return false;
  const { code, status, closeCode } = err as Partial<WsgateError>;
  return (
    typeof code === 'string' &&
    Object.hasOwn(catalogue, code) &&
    status === catalogue[code].status &&
    closeCode === catalogue[code].close
  );
}

/** The JSON body of every error wsgate answers over HTTP. */
export interface ErrorBody {
  error: string;
  error_description: string;
}

/** `WWW-Authenticate` for a Bearer resource (RFC 6750 §3), with an `error` when there is one. */
export function bearerChallenge(
  error?: 'invalid_token' | 'insufficient_scope' | 'invalid_request',
): string {
  return error === undefined ? 'Bearer realm="wsgate"' : `Bearer realm="wsgate", error="${error}"`;
}

/**
 * The one rendering of an error as an HTTP answer, for the gate's raw responses and Fastify's
 * alike: the status, the JSON body, a Bearer challenge on 401 (naming `invalid_token` when a
 * token was presented) and on `insufficient_scope`, and `Retry-After` when there is a delay.
 */
export function httpAnswer(err: WsgateError): {
  status: number;
  headers: Record<string, string>;
  body: ErrorBody;
} {
  const headers: Record<string, string> = {};
  if (err.status === 401) {
    headers['www-authenticate'] = bearerChallenge(
      err.code === 'credential_missing' ? undefined : 'invalid_token',
    );
  } else if (err.code === 'insufficient_scope') {
    headers['www-authenticate'] = bearerChallenge('insufficient_scope');
  }
  if (err.retryAfter !== undefined) headers['retry-after'] = String(err.retryAfter);
  return { status: err.status, headers, body: { error: err.code, error_description: err.message } };
}

/** The one rendering of an error as a close frame: its close code, and a reason that fits. */
export function closeFrame(err: WsgateError): { code: number; reason: string } {
  const reason =
    err.retryAfter === undefined ? err.message : `${err.message}; retry after ${err.retryAfter}s`;
  return { code: err.closeCode, reason: truncateReason(reason) };
}

const maxReasonBytes = 123;
const utf8 = new TextEncoder();

/** Close reasons are limited to 123 bytes of UTF-8. */
export function truncateReason(reason: string): string {
  if (utf8.encode(reason).length <= maxReasonBytes) return reason;
  let out = reason;
  while (utf8.encode(out).length > maxReasonBytes) out = out.slice(0, -1);
  return out;
}
