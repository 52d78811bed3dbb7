import { jwtVerify, errors as joseErrors, type JWTHeaderParameters } from 'jose';
import { WsgateError } from '../errors.js';
import type { KeySet } from './keys.js';
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

function normaliseTyp(typ: string | undefined): string | undefined {
  return typ?.toLowerCase().replace(/^application\//, '');
}

/**
 * Verifies a token's signature (only the key set's algorithm is accepted), its type, issuer,
 * audience, `nbf` and `exp`, and returns its claims. Every failure is a {@link WsgateError}:
 * `token_too_large`, `invalid_token`, `wrong_token_type` or `token_expired`.
 */
export async function verifyToken(
  keys: KeySet,
  token: string,
  options: VerifyOptions,
): Promise<TokenClaims> {
  if (token.length > maxTokenLength) throw new WsgateError('token_too_large');
  if (!jwtShape.test(token)) throw new WsgateError('invalid_token');
  let payload: Record<string, unknown>;
  let header: JWTHeaderParameters;
  try {
    ({ payload, protectedHeader: header } = await jwtVerify(
      token,
      (protectedHeader) => {
        const key =
          protectedHeader.kid === undefined
            ? undefined
            : keys.verificationKeys.get(protectedHeader.kid);
        if (!key) throw new WsgateError('invalid_token');
        return key;
      },
      {
        algorithms: [keys.alg],
        issuer: options.issuer,
        audience: options.audience,
        currentDate: new Date(options.now),
        requiredClaims: ['exp', 'iat', 'sub', 'jti', 'sid'],
      },
    ));
  } catch (err) {
    if (err instanceof WsgateError) throw err;
    if (err instanceof joseErrors.JWTExpired)
      throw new WsgateError('token_expired', undefined, { cause: err });
    throw new WsgateError('invalid_token', undefined, { cause: err });
  }
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
  return {
    ...(payload as unknown as TokenClaims),
    nbf: typeof payload.nbf === 'number' ? payload.nbf : (payload.iat as number),
    fresh: payload.fresh === true,
  };
}
