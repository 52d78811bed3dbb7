import type { FastifyReply, FastifyRequest } from 'fastify';
import { safeEqual } from '../credentials/compare.js';
import { WsgateError } from '../errors.js';
import {
  accessCookie,
  csrfCookie,
  csrfRefreshCookie,
  refreshCookie,
} from '../credentials/cookie.js';
import { parseCookies } from '../credentials/request.js';
import type { TokenPair } from '../sessions/session-service.js';

function serialize(
  name: string,
  value: string,
  options: { httpOnly: boolean; secure: boolean; maxAge: number },
): string {
  return [
    `${name}=${value}`,
    'Path=/',
    `Max-Age=${options.maxAge}`,
    'SameSite=Strict',
    ...(options.httpOnly ? ['HttpOnly'] : []),
    ...(options.secure ? ['Secure'] : []),
  ].join('; ');
}

/**
 * Sets fastapi-jwt-auth's cookies: the tokens HttpOnly, the CSRF values readable by page script
 * (they equal the tokens' `csrf` claims, for the double-submit check).
 */
export function setTokenCookies(
  reply: FastifyReply,
  pair: TokenPair,
  options: { secure: boolean },
): void {
  const accessAge = pair.access.exp - pair.access.iat;
  const refreshAge = pair.refresh.exp - pair.refresh.iat;
  reply.header('set-cookie', [
    serialize(accessCookie, pair.accessToken, {
      httpOnly: true,
      secure: options.secure,
      maxAge: accessAge,
    }),
    serialize(refreshCookie, pair.refreshToken, {
      httpOnly: true,
      secure: options.secure,
      maxAge: refreshAge,
    }),
    // The CSRF value must outlive the access cookie: POST /session/refresh, which renews an
    // expired access cookie, is guarded by it.
    serialize(csrfCookie, pair.access.csrf ?? '', {
      httpOnly: false,
      secure: options.secure,
      maxAge: refreshAge,
    }),
    serialize(csrfRefreshCookie, pair.refresh.csrf ?? '', {
      httpOnly: false,
      secure: options.secure,
      maxAge: refreshAge,
    }),
  ]);
}

export function clearTokenCookies(reply: FastifyReply, options: { secure: boolean }): void {
  reply.header(
    'set-cookie',
    [accessCookie, refreshCookie, csrfCookie, csrfRefreshCookie].map((name) =>
      serialize(name, '', {
        httpOnly: name === accessCookie || name === refreshCookie,
        secure: options.secure,
        maxAge: 0,
      }),
    ),
  );
}

export function requestCookie(request: FastifyRequest, name: string): string | undefined {
  return parseCookies(request.headers.cookie).get(name);
}

/** Double-submit check: the `X-CSRF-Token` header must equal the token's `csrf` claim. */
export function checkCsrfHeader(request: FastifyRequest, expected: string | undefined): void {
  const header = request.headers['x-csrf-token'];
  if (typeof header !== 'string' || !safeEqual(header, expected))
    throw new WsgateError('csrf_failed');
}
