import type { TokenClaims } from '../tokens/claims.js';
import type { TransportName } from './credential.js';

/** A verified identity, or a guest on an optional endpoint: what a credential becomes. */
export interface Principal {
  /** Null for a guest. */
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
