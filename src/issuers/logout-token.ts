import { invalidToken } from '../tokens/jws.js';
import { audienceMatches, normalisedTyp, type VerifiedExternalJwt } from './external-jwt.js';
import { clockSkewSeconds } from './access-token.js';

/** The event member every logout token carries (Back-Channel Logout 1.0 §2.4). */
export const backchannelLogoutEvent = 'http://schemas.openid.net/event/backchannel-logout';

/** A logout token older than this (by `iat`) is refused. */
export const maxLogoutTokenAgeSeconds = 300;

/** What a valid logout token asks for: end a session (`sid`), a subject's sessions, or both. */
export interface LogoutRequest {
  readonly issuer: string;
  readonly sid: string | undefined;
  readonly sub: string | undefined;
  readonly jti: string;
  /** Seconds since the epoch; the `jti` must be remembered until a little after. */
  readonly exp: number;
  /** Seconds since the epoch: when the provider ended the session. */
  readonly iat: number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Validates a logout token's claims (OpenID Connect Back-Channel Logout 1.0 §2.6) once its
 * signature checked out: `typ` absent or `logout+jwt`; `aud` one of `audiences`; `exp` in the
 * future; `iat` at most 5 min old and at most 60 s ahead; `events` holding the back-channel logout
 * member as an object; `sid` and/or `sub`; no `nonce` (so an ID token cannot pass for one); a
 * `jti`. Replay is the caller's check, across the cluster.
 */
export function checkLogoutToken(
  verified: VerifiedExternalJwt,
  audiences: readonly string[],
  nowMs: number,
): LogoutRequest {
  const { issuer, header, payload } = verified;
  const typ = normalisedTyp(header.typ);
  if (!(typ === undefined || typ === 'logout+jwt')) throw invalidToken('typ is not logout+jwt');
  if (!audienceMatches(payload.aud, audiences)) throw invalidToken('audience not accepted');
  const now = Math.floor(nowMs / 1000);
  const { exp, iat } = payload;
  if (typeof exp !== 'number' || !(exp > now)) throw invalidToken('exp missing or past');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalidToken('iat missing');
  if (now - iat > maxLogoutTokenAgeSeconds) throw invalidToken('issued too long ago');
  if (iat - now > clockSkewSeconds) throw invalidToken('issued in the future');
  if (!isObject(payload.events) || !isObject(payload.events[backchannelLogoutEvent]))
    throw invalidToken('events lacks the back-channel logout event');
  if ('nonce' in payload) throw invalidToken('a logout token has no nonce');
  const sid = nonEmptyString(payload.sid);
  const sub = nonEmptyString(payload.sub);
  if (sid === undefined && sub === undefined) throw invalidToken('neither sid nor sub');
  const jti = nonEmptyString(payload.jti);
  if (jti === undefined) throw invalidToken('jti missing');
  return { issuer, sid, sub, jti, exp, iat };
}
