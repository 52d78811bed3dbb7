import { WsgateError } from '../errors.js';
import type { TokenClaims } from '../tokens/claims.js';
import type { VerifyJwt } from '../tokens/verify.js';
import { externalClaims } from '../issuers/access-token.js';
import { peekIssuer } from '../issuers/external-jwt.js';
import type { TrustedIssuers } from '../issuers/trusted-issuers.js';

/**
 * A {@link VerifyJwt} that also accepts access tokens of trusted external issuers
 * (docs/identity-providers.md): a token whose `iss` is one of them is checked against that
 * issuer's keys only, and refused when its session or subject was revoked; any other token goes
 * to `own`. External tokens are never refresh tokens.
 */
export function withTrustedIssuers(
  own: VerifyJwt,
  trusted: TrustedIssuers,
  isRevoked: (claims: TokenClaims) => boolean,
): VerifyJwt {
  if (trusted.size === 0) return own;
  return async (token, type) => {
    const iss = peekIssuer(token);
    if (iss === undefined || !trusted.has(iss)) return own(token, type);
    const claims = externalClaims(await trusted.verifyAccessToken(token));
    if (type !== 'access') throw new WsgateError('wrong_token_type');
    if (isRevoked(claims)) throw new WsgateError('session_revoked');
    return claims;
  };
}
