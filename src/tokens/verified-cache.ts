import type { KeyObject } from 'node:crypto';
import type { KeySet } from './keys.js';
import type { TokenClaims } from './claims.js';

/**
 * Tokens whose signature and static claims were verified recently, so that a client reconnecting
 * (or opening a second tab) with the same token skips the Ed25519 check, the one costly step of a
 * handshake. The same idea as Envoy's `jwt_cache_config`.
 *
 * Sound because an entry is only ever made from a fully verified token, is keyed by the exact
 * token text (same text, same signature bytes, same verdict under the same key), answers only
 * while the key that verified it is still the key set's key for its `kid` (a removed or replaced
 * key ends it), and only for the issuer and audience it was checked against. Time is not cached:
 * `exp` and `nbf` are checked on every use, and revocation is the caller's check, after this one.
 */

/** Verified tokens kept per key set. */
export const verifiedCacheCapacity = 4096;

/**
 * Longer tokens are verified every time rather than kept: wsgate's own are about 600 characters,
 * so the cache holds at most about 8 MiB of token text whoever issues the tokens.
 */
export const maxCachedTokenLength = 2048;

/** A verified token: its claims, what they were checked against, and its raw `nbf`. */
export interface VerifiedEntry {
  readonly claims: TokenClaims;
  readonly issuer: string;
  readonly audience: string;
  /** The token's own `nbf`, which `claims.nbf` fills from `iat` when absent. */
  readonly notBefore: number | undefined;
  readonly kid: string;
  /** The key that verified the signature; the entry is void once `kid` names another or none. */
  readonly key: KeyObject;
}

const caches = new WeakMap<KeySet, Map<string, VerifiedEntry>>();

/** The entry of `token` if it was verified with these keys for this issuer and audience. */
export function cachedVerification(
  keys: KeySet,
  token: string,
  issuer: string,
  audience: string,
): VerifiedEntry | undefined {
  const cache = caches.get(keys);
  const entry = cache?.get(token);
  if (!cache || !entry) return undefined;
  if (keys.verificationKeys.get(entry.kid) !== entry.key) {
    cache.delete(token);
    return undefined;
  }
  if (entry.issuer !== issuer || entry.audience !== audience) return undefined;
  // Least recently used goes first: a Map iterates in insertion order, so move this one last.
  cache.delete(token);
  cache.set(token, entry);
  return entry;
}

/** Remembers a token that passed every check; the least recently used entry makes room. */
export function rememberVerified(keys: KeySet, token: string, entry: VerifiedEntry): void {
  if (token.length > maxCachedTokenLength) return;
  let cache = caches.get(keys);
  if (!cache) caches.set(keys, (cache = new Map<string, VerifiedEntry>()));
  if (!cache.delete(token) && cache.size >= verifiedCacheCapacity) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  cache.set(token, entry);
}

/** Forgets a token, e.g. once it has expired: an expired token never verifies again. */
export function forgetVerified(keys: KeySet, token: string): void {
  caches.get(keys)?.delete(token);
}

/** How many verified tokens are kept for a key set (for tests and diagnostics). */
export function verifiedCacheSize(keys: KeySet): number {
  return caches.get(keys)?.size ?? 0;
}

/** Whether a token is kept for a key set, without touching its place in the order (for tests). */
export function isVerifiedCached(keys: KeySet, token: string): boolean {
  return caches.get(keys)?.has(token) ?? false;
}
