import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { KeySet } from './keys.js';
import { headerTypes, type TokenClaims, type TokenType } from './claims.js';

export interface IssueOptions {
  readonly type: TokenType;
  readonly subject: string;
  readonly sessionId: string;
  readonly scope: string;
  readonly fresh?: boolean;
  readonly csrf?: string;
  /** Lifetime in seconds. */
  readonly ttl: number;
  readonly issuer: string;
  readonly audience: string;
  /** Current time in milliseconds. */
  readonly now: number;
}

export interface IssuedToken {
  readonly token: string;
  readonly claims: TokenClaims;
}

/** Signs an access or refresh token with the key set's current key. */
export async function issueToken(keys: KeySet, options: IssueOptions): Promise<IssuedToken> {
  const iat = Math.floor(options.now / 1000);
  const claims: TokenClaims = {
    iss: options.issuer,
    aud: options.audience,
    sub: options.subject,
    iat,
    nbf: iat,
    exp: iat + options.ttl,
    jti: randomUUID(),
    sid: options.sessionId,
    scope: options.scope,
    fresh: options.type === 'access' && options.fresh === true,
    type: options.type,
    ...(options.csrf === undefined ? {} : { csrf: options.csrf }),
  };
  const token = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: keys.alg, typ: headerTypes[options.type], kid: keys.kid })
    .sign(keys.signingKey);
  return { token, claims };
}
