import { WsgateError } from '../errors.js';

/**
 * Reads `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1). Returns
 * undefined when the header is absent; a header in any other form is `invalid_request`.
 */
export function parseBearer(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header))
    throw new WsgateError('invalid_request', 'More than one Authorization header');
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  if (!match) throw new WsgateError('invalid_request', 'Authorization must be "Bearer <token>"');
  return match[1];
}

/** The `WWW-Authenticate` challenge for a 401 or 403 (RFC 6750 §3). */
export function bearerChallenge(
  error?: 'invalid_token' | 'insufficient_scope' | 'invalid_request',
): string {
  return error === undefined ? 'Bearer realm="wsgate"' : `Bearer realm="wsgate", error="${error}"`;
}
