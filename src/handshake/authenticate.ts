import { WsgateError } from '../errors.js';
import { safeEqual } from '../credentials/compare.js';
import type { Credential } from '../credentials/credential.js';
import type { Principal } from '../credentials/principal.js';
import type { TicketStore } from '../credentials/tickets.js';
import { parseScope, type TokenClaims, type TokenType } from '../tokens/claims.js';
import type { VerifyJwt } from '../tokens/verify.js';

/** What an endpoint demands of a credential, after fastapi-jwt-auth's four modes, plus scopes. */
export interface Policy {
  /** `required` (access token), `optional`, `fresh` (fresh access token) or `refresh`. */
  readonly requirement: 'required' | 'optional' | 'fresh' | 'refresh';
  /** Scopes the token must carry to open the socket at all. */
  readonly scopes?: readonly string[];
}

export { guest, type Principal } from '../credentials/principal.js';

export type { VerifyJwt } from '../tokens/verify.js';

/**
 * Scope sets by scope string, shared by every principal with the same scopes: a handful of
 * distinct strings in practice, so each handshake stops building its own set. Bounded all the same.
 */
const scopeSets = new Map<string, ReadonlySet<string>>();
const maxScopeSets = 1024;

function scopeSet(scope: string): ReadonlySet<string> {
  let set = scopeSets.get(scope);
  if (set) return set;
  set = parseScope(scope);
  if (scopeSets.size >= maxScopeSets) scopeSets.clear();
  scopeSets.set(scope, set);
  return set;
}

/**
 * Turns a credential into a principal under an endpoint's policy. Every failure is a
 * {@link WsgateError} whose status and close code the gate reports.
 */
export async function authenticate(
  credential: Credential,
  policy: Policy,
  deps: {
    verify: VerifyJwt;
    isRevoked: (sessionId: string, claims: TokenClaims) => boolean;
    tickets: TicketStore;
    now: number;
  },
): Promise<Principal> {
  const wanted: TokenType = policy.requirement === 'refresh' ? 'refresh' : 'access';
  let claims: TokenClaims;
  if (credential.transport === 'ticket') {
    if (wanted !== 'access') throw new WsgateError('wrong_token_type');
    const bound = await deps.tickets.consume(credential.value, deps.now);
    if (!bound) throw new WsgateError('invalid_token', 'Unknown, used or expired ticket');
    // Re-check what may have changed since the ticket was minted from a verified access token.
    if (bound.exp * 1000 <= deps.now) throw new WsgateError('token_expired');
    if (deps.isRevoked(bound.sid, bound)) throw new WsgateError('session_revoked');
    claims = bound;
  } else {
    claims = await deps.verify(credential.value, wanted);
  }
  if (credential.transport === 'cookie') {
    // The cookie is wsgate's own sign-in; an external token never rides in it.
    if (claims.external) throw new WsgateError('invalid_token');
    if (!safeEqual(claims.csrf, credential.csrf)) throw new WsgateError('csrf_failed');
  }
  if (policy.requirement === 'fresh' && !claims.fresh) throw new WsgateError('not_fresh');
  const scopes = scopeSet(claims.scope);
  for (const scope of policy.scopes ?? []) {
    if (!scopes.has(scope)) throw new WsgateError('insufficient_scope');
  }
  const username = claims.external?.displayName ?? claims.sub;
  return { username, claims, transport: credential.transport, scopes };
}
