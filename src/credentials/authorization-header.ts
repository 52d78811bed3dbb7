import { WsgateError } from '../errors.js';

/**
 * Reads `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1). Returns
 * undefined when the header is absent or names another scheme (`Basic …` is no bearer credential
 * at all: RFC 6750 §3.1 answers it with a bare challenge); a malformed `Bearer` header, or more
 * than one header, is `invalid_request`.
 */
export function parseBearer(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header))
    throw new WsgateError('invalid_request', 'More than one Authorization header');
  const scheme = authScheme(header);
  if (scheme === undefined)
    throw new WsgateError('invalid_request', 'Authorization must be "<scheme> <credentials>"');
  if (scheme.toLowerCase() !== 'bearer') return undefined;
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  if (!match) throw new WsgateError('invalid_request', 'Authorization must be "Bearer <token>"');
  return match[1];
}

/** The auth-scheme of an `Authorization` value (RFC 9110 §11.4), or undefined if it has none. */
export function authScheme(header: string): string | undefined {
  return /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?: |$)/.exec(header)?.[1];
}

/**
 * The request's `Authorization` header from its raw header list: Node keeps only the first of
 * several, which would hide the ambiguity, so two or more come back as an array.
 */
export function authorizationOf(req: {
  readonly rawHeaders: readonly string[];
  readonly headers: { readonly authorization?: string | undefined };
}): string | string[] | undefined {
  // Counted without lower-casing (or keeping) every header name: one handshake, one pass.
  const { rawHeaders } = req;
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (isAuthorization(rawHeaders[i] as string)) count += 1;
  }
  if (count < 2) return req.headers.authorization;
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (isAuthorization(rawHeaders[i] as string)) values.push(rawHeaders[i + 1] ?? '');
  }
  return values;
}

function isAuthorization(name: string): boolean {
  return name.length === 13 && (name === 'authorization' || name.toLowerCase() === 'authorization');
}
