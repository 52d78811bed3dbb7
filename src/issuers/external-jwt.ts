import { WsgateError } from '../errors.js';
import { maxTokenLength } from '../tokens/claims.js';
import { invalidToken, jsonObject, splitCompactJws } from '../tokens/jws.js';
import { isExternalAlgorithm, signatureMatches } from './algorithms.js';
import type { IssuerKeySet } from './key-set.js';

/** A JWT from a trusted issuer whose signature checked out with one of that issuer's keys. */
export interface VerifiedExternalJwt {
  readonly issuer: string;
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
}

/**
 * The `iss` a token claims, read without checking anything: only to pick whose keys to try (or
 * whether the token is wsgate's own). Undefined when the token is not a JWT with a string `iss`.
 */
export function peekIssuer(token: string): string | undefined {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first < 0 || second < 0 || token.length > maxTokenLength) return undefined;
  try {
    const iss = jsonObject(token.slice(first + 1, second), 'payload').iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks an external JWT's signature: the algorithm must be an asymmetric one wsgate accepts, the
 * `iss` a trusted issuer, and the key one of *that* issuer's keys for the `kid`, allowed for the
 * algorithm. `jku`, `x5u`, `jwk` and `x5c` headers are ignored: keys come only from the issuer's
 * key set. The claims are not checked here. Every failure is a {@link WsgateError}.
 */
export async function verifyExternalJwt(
  token: string,
  keySetOf: (issuer: string) => IssuerKeySet | undefined,
): Promise<VerifiedExternalJwt> {
  if (token.length > maxTokenLength) throw new WsgateError('token_too_large');
  const { header, encodedPayload, signingInput, signature } = splitCompactJws(token);
  if (!isExternalAlgorithm(header.alg)) throw invalidToken('algorithm not allowed');
  const unverified = jsonObject(encodedPayload, 'payload');
  const keySet = typeof unverified.iss === 'string' ? keySetOf(unverified.iss) : undefined;
  if (!keySet) throw invalidToken('untrusted issuer');
  if (header.kid !== undefined && typeof header.kid !== 'string') throw invalidToken('bad kid');
  const keys = await keySet.keysFor(header.kid, header.alg);
  if (!keys.some((k) => signatureMatches(header.alg as never, k.key, signingInput, signature)))
    throw invalidToken('signature verification failed');
  return { issuer: keySet.issuer, header, payload: unverified };
}

/** The JOSE `typ` without its optional `application/` prefix, lower-cased (RFC 7515 §4.1.9). */
export function normalisedTyp(typ: unknown): string | undefined | null {
  if (typ === undefined) return undefined;
  return typeof typ === 'string' ? typ.toLowerCase().replace(/^application\//, '') : null;
}

/** True when `aud` (a string or an array of strings) names one of `accepted`. */
export function audienceMatches(aud: unknown, accepted: readonly string[]): boolean {
  if (typeof aud === 'string') return accepted.includes(aud);
  return Array.isArray(aud) && aud.some((a) => typeof a === 'string' && accepted.includes(a));
}
