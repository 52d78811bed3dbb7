import type { TokenClaims } from '../tokens/claims.js';
import type { TransportName } from './credential.js';

/** A verified identity, or a guest on an optional endpoint: what a credential becomes. */
export interface Principal {
  /** What the principal is shown as; null for a guest. `<issuer host>:<name>` when external. */
  readonly username: string | null;
  readonly claims: TokenClaims | null;
  readonly transport: TransportName | null;
  readonly scopes: ReadonlySet<string>;
}

export const guest: Principal = Object.freeze({
  username: null,
  claims: null,
  transport: null,
  scopes: new Set<string>(),
});

/**
 * A key for something of an external issuer (a subject, a session) that never equals a local
 * username or a wsgate session id (neither contains `:`), nor the key of another issuer's: the
 * issuer is length-prefixed, so no choice of issuer and value can imitate another pair.
 */
export function externalKey(issuer: string, value: string): string {
  return `${issuer.length}:${issuer} ${value}`;
}

/**
 * Whom limits, kicks and re-authentication key on: the username for wsgate's own tokens, the
 * (issuer, `sub`) pair for an external principal. Null for a guest.
 */
export function principalKey(principal: Principal): string | null {
  return principal.claims === null ? principal.username : userKey(principal.claims);
}

/** {@link principalKey} from a token's claims. */
export function userKey(claims: TokenClaims): string {
  return claims.external ? externalKey(claims.iss, claims.sub) : claims.sub;
}

/** The session a socket belongs to: wsgate's session id, or (issuer, `sid` or `jti`). */
export function sessionKey(claims: TokenClaims): string {
  return claims.external ? externalKey(claims.iss, claims.sid) : claims.sid;
}
