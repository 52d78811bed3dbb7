import { WsgateError } from '../errors.js';
import type { KeySet } from './keys.js';
import { verifyCompactJws } from './jws.js';
import {
  cacheKey,
  cachedVerification,
  forgetVerified,
  rememberVerified,
} from './verified-cache.js';
import { headerTypes, maxTokenLength, type TokenClaims, type TokenType } from './claims.js';

/** Verifies a JWT of a type and returns its claims; what the WebSocket gate calls per handshake. */
export type VerifyJwt = (token: string, type: TokenType) => Promise<TokenClaims>;

/**
 * A {@link VerifyJwt} over a key set, for using the gate with tokens you issue yourself.
 * `isRevoked` lets you refuse sessions you have ended; it must not do I/O (it runs per handshake).
 */
export function createVerifier(
  keys: KeySet,
  options: {
    issuer: string;
    audience: string;
    clock?: () => number;
    isRevoked?: (sessionId: string) => boolean;
  },
): VerifyJwt {
  const clock = options.clock ?? Date.now;
  return async (token, type) => {
    const claims = await verifyToken(keys, token, {
      type,
      issuer: options.issuer,
      audience: options.audience,
      now: clock(),
    });
    if (options.isRevoked?.(claims.sid)) throw new WsgateError('session_revoked');
    return claims;
  };
}

export interface VerifyOptions {
  /** The token type this caller accepts. */
  readonly type: TokenType;
  readonly issuer: string;
  readonly audience: string;
  /** Current time in milliseconds. */
  readonly now: number;
}

const jwtShape = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

function normaliseTyp(typ: unknown): string | undefined {
  return typeof typ === 'string' ? typ.toLowerCase().replace(/^application\//, '') : undefined;
}

const requiredClaims = ['exp', 'iat', 'sub', 'jti', 'sid'] as const;

/** A claim's value as a debug log may quote it: JSON, cut short. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? 'nothing';
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

function refused(reason: string): WsgateError {
  return new WsgateError('invalid_token', undefined, { reason });
}

/** The registered claims (RFC 7519 §4.1) as jose checks them, with no clock tolerance. */
function checkRegisteredClaims(payload: Record<string, unknown>, options: VerifyOptions): void {
  for (const claim of requiredClaims) {
    if (!(claim in payload)) throw refused(`no ${claim} claim`);
  }
  if (payload.iss !== options.issuer) {
    throw refused(`iss expected ${shown(options.issuer)}, got ${shown(payload.iss)}`);
  }
  const aud = payload.aud;
  if (!(aud === options.audience || (Array.isArray(aud) && aud.includes(options.audience))))
    throw refused(`aud expected ${shown(options.audience)}, got ${shown(aud)}`);
  if (typeof payload.iat !== 'number') throw new WsgateError('invalid_token');
  if (payload.nbf !== undefined && typeof payload.nbf !== 'number')
    throw new WsgateError('invalid_token');
  if (typeof payload.exp !== 'number') throw new WsgateError('invalid_token');
  checkTime(payload.exp, payload.nbf, options.now);
}

/** `nbf` and `exp` against the clock: checked on every use, cached or not. */
function checkTime(exp: number, nbf: number | undefined, nowMs: number): void {
  const now = Math.floor(nowMs / 1000);
  if (nbf !== undefined && nbf > now) throw refused(`nbf is ${nbf - now} s in the future`);
  if (exp <= now) {
    throw new WsgateError('token_expired', undefined, { reason: `expired ${now - exp} s ago` });
  }
}

/**
 * The claims of a wsgate token whose signature checked out: its issuer, audience, `nbf`, `exp`,
 * type (`typ` and `type`) and claim shapes are checked. Every failure is a {@link WsgateError}.
 * `payload` becomes the claims and is frozen: pass an object of your own (a parsed payload).
 */
export function wsgateClaims(
  header: { readonly typ?: unknown },
  payload: Record<string, unknown>,
  options: VerifyOptions,
): TokenClaims {
  checkRegisteredClaims(payload, options);
  // The signature is good from here on, so telling the caller the type was wrong leaks nothing.
  if (normaliseTyp(header.typ) !== headerTypes[options.type] || payload.type !== options.type) {
    throw new WsgateError('wrong_token_type');
  }
  if (
    typeof payload.sub !== 'string' ||
    typeof payload.sid !== 'string' ||
    typeof payload.jti !== 'string' ||
    typeof payload.scope !== 'string' ||
    (payload.csrf !== undefined && typeof payload.csrf !== 'string')
  ) {
    throw new WsgateError('invalid_token');
  }
  // Frozen: the same claims go to every socket and request that presents this token. The payload
  // itself, not a copy: spreading a parsed object into a new one costs more than every check here.
  payload.nbf = typeof payload.nbf === 'number' ? payload.nbf : payload.iat;
  payload.fresh = payload.fresh === true;
  return Object.freeze(payload) as unknown as TokenClaims;
}

/**
 * Verifies a token's signature (only the key set's algorithm is accepted), its type, issuer,
 * audience, `nbf` and `exp`, and returns its claims. Every failure is a {@link WsgateError}:
 * `token_too_large`, `invalid_token`, `wrong_token_type` or `token_expired`. The signature is
 * checked before any claim, so a forged token is `invalid_token` whatever its claims say.
 */
export async function verifyToken(
  keys: KeySet,
  token: string,
  options: VerifyOptions,
): Promise<TokenClaims> {
  return verifySync(keys, token, options);
}

function verifySync(keys: KeySet, token: string, options: VerifyOptions): TokenClaims {
  if (token.length > maxTokenLength) throw new WsgateError('token_too_large');
  const id = cacheKey(token);
  const cached =
    id === undefined ? undefined : cachedVerification(keys, id, options.issuer, options.audience);
  if (cached && id !== undefined) {
    if (cached.claims.exp * 1000 <= options.now) forgetVerified(keys, id);
    checkTime(cached.claims.exp, cached.notBefore, options.now);
    if (cached.claims.type !== options.type) throw new WsgateError('wrong_token_type');
    return cached.claims;
  }
  if (!jwtShape.test(token)) throw new WsgateError('invalid_token');
  const { header, payload, key } = verifyCompactJws(keys, token);
  // The token's own nbf, read before the claims fill it in from iat.
  const notBefore = payload.nbf as number | undefined;
  const claims = wsgateClaims(header, payload, options);
  if (id === undefined) return claims;
  rememberVerified(keys, id, {
    claims,
    issuer: options.issuer,
    audience: options.audience,
    notBefore,
    kid: header.kid,
    key,
  });
  return claims;
}
