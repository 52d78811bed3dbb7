import { createPublicKey } from 'node:crypto';
import type { JWK } from 'jose';
import { WsgateError } from '../errors.js';
import type { Clock } from '../clock.js';
import type { TokenClaims } from '../tokens/claims.js';
import type { KeySet } from '../tokens/keys.js';
import {
  createVerifier as createKeySetVerifier,
  wsgateClaims,
  type VerifyJwt,
} from '../tokens/verify.js';
import { externalClaims, mapExternalAccessToken } from './access-token.js';
import { normalisedTyp, verifyExternalJwt } from './external-jwt.js';
import { checkIssuerUrl } from './issuer-url.js';
import { IssuerKeySet, keySetDefaults, type KeySource } from './key-set.js';

/**
 * Public keys a service verifies with, never a private one: a JWK, an array of them or a JWK Set,
 * a PEM `PUBLIC KEY`, or the URL of a JWK Set (fetched and refreshed as for `--trust`).
 */
export type PublicKeys = JWK | readonly JWK[] | { readonly keys: readonly JWK[] } | string | URL;

export interface VerifierOptions {
  /** The `iss` every token must carry. */
  readonly issuer: string;
  /** The `aud` every token must carry (one of its values). */
  readonly audience: string;
  readonly clock?: Clock;
  /** Refuses sessions you have ended; runs on every handshake, so it must not do I/O. */
  readonly isRevoked?: (sessionId: string) => boolean;
  /** With public keys: the claim an external user is shown by (default `sub`). */
  readonly usernameClaim?: string;
  /** With public keys: a claim (name or dotted path) whose values add scopes. */
  readonly scopeClaim?: string;
}

function isKeySet(keys: KeySet | PublicKeys): keys is KeySet {
  return typeof keys === 'object' && 'verificationKeys' in keys && 'signingKey' in keys;
}

/** A JWK Set of public keys from any accepted form; a private key is refused, not stripped. */
function publicJwks(keys: Exclude<PublicKeys, URL>): Record<string, unknown> {
  let list: readonly JWK[];
  if (typeof keys === 'string') {
    if (/PRIVATE KEY/.test(keys))
      throw new TypeError('createVerifier takes a public key; this PEM holds a private key');
    let key;
    try {
      key = createPublicKey(keys);
    } catch (err) {
      throw new TypeError('createVerifier: not a PEM public key', { cause: err });
    }
    list = [key.export({ format: 'jwk' })];
  } else if (Array.isArray(keys)) list = keys as readonly JWK[];
  else {
    const set = (keys as { keys?: unknown }).keys;
    list = Array.isArray(set) ? (set as JWK[]) : [keys as JWK];
  }
  for (const jwk of list) {
    if ('d' in jwk || 'k' in jwk)
      throw new TypeError('createVerifier takes public keys; a JWK holds a private or secret key');
  }
  return { keys: list };
}

/**
 * A {@link VerifyJwt} for the gate used alone. With a `KeySet`: wsgate's own tokens, checked as
 * the server checks them. With public keys (JWKs, PEM, or a JWKS URL), for a service that only
 * verifies: wsgate tokens signed by those keys (the deployment's `/.well-known/jwks.json`), and
 * any other access token of `issuer` under the external-issuer rules of docs/identity-providers.md — RS, PS, ES or
 * EdDSA as the key allows, never `none` or HS*; `exp` required; never fresh, never a refresh token.
 * Every failure is a `WsgateError`, whose status and close code the gate reports.
 */
export function createVerifier(keys: KeySet | PublicKeys, options: VerifierOptions): VerifyJwt {
  if (isKeySet(keys)) return createKeySetVerifier(keys, options);
  const clock = options.clock ?? Date.now;
  const source: KeySource =
    keys instanceof URL || (typeof keys === 'string' && /^https?:\/\//.test(keys))
      ? { jwksUri: checkIssuerUrl(String(keys), 'createVerifier JWKS URL') }
      : { jwks: publicJwks(keys) };
  const keySet = new IssuerKeySet(options.issuer, source, { ...keySetDefaults, clock });
  const mapping = {
    audiences: [options.audience],
    usernameClaim: options.usernameClaim ?? 'sub',
    scopeClaim: options.scopeClaim,
    adminIssuers: new Set<string>(),
  };
  return async (token, type) => {
    const verified = await verifyExternalJwt(token, (iss) =>
      iss === options.issuer ? keySet : undefined,
    );
    const typ = normalisedTyp(verified.header.typ);
    let claims: TokenClaims;
    // wsgate's own tokens say what they are (typ and type); anything else is an access token.
    if ((typ === 'at+jwt' || typ === 'refresh+jwt') && typeof verified.payload.type === 'string') {
      claims = wsgateClaims(
        verified.header,
        { ...verified.payload },
        {
          type,
          issuer: options.issuer,
          audience: options.audience,
          now: clock(),
        },
      );
    } else {
      claims = externalClaims(mapExternalAccessToken(token, verified, mapping, clock()));
      if (type !== 'access') throw new WsgateError('wrong_token_type');
    }
    if (options.isRevoked?.(claims.sid)) throw new WsgateError('session_revoked');
    return claims;
  };
}
