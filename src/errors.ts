/**
 * The error catalogue: every failure wsgate reports to a client, with its stable code, the HTTP
 * status used before an upgrade, the WebSocket close code used after one, and the client-facing
 * text. `docs/protocol.md` is tested against this table.
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
  invalid_request: { status: 400, close: 4400, message: 'Malformed request' },
  ambiguous_credential: {
    status: 400,
    close: 4400,
    message: 'More than one credential was presented',
  },
  credential_missing: { status: 401, close: 4401, message: 'Not authenticated' },
  invalid_token: { status: 401, close: 4401, message: 'Invalid authentication credentials' },
  token_too_large: { status: 401, close: 4401, message: 'Token is too large' },
  wrong_token_type: { status: 401, close: 4401, message: 'Wrong token type for this endpoint' },
  token_expired: { status: 401, close: 4419, message: 'Token has expired' },
  session_revoked: { status: 401, close: 4410, message: 'Session has been revoked' },
  user_disabled: { status: 403, close: 4403, message: 'User is disabled' },
  not_fresh: { status: 403, close: 4403, message: 'Fresh token required' },
  insufficient_scope: { status: 403, close: 4403, message: 'Insufficient scope' },
  origin_not_allowed: { status: 403, close: 4403, message: 'Origin not allowed' },
  csrf_failed: { status: 403, close: 4403, message: 'CSRF token missing or invalid' },
  rate_limited: { status: 429, close: 4429, message: 'Too many requests' },
  auth_timeout: { status: 408, close: 4408, message: 'Authentication timed out' },
  message_too_big: { status: 413, close: 1009, message: 'Message too big' },
  policy_violation: { status: 400, close: 1008, message: 'Policy violation' },
  overloaded: { status: 503, close: 1013, message: 'Server overloaded' },
  draining: { status: 503, close: 1001, message: 'Server is shutting down' },
  internal_error: { status: 500, close: 1011, message: 'Internal error' },
  bad_gateway: { status: 502, close: 1014, message: 'Upstream unavailable' },
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

export function isWsgateError(err: unknown): err is WsgateError {
  return err instanceof WsgateError;
}
