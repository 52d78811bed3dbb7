import { hash, type KeyObject } from 'node:crypto';
import type { KeySet } from './keys.js';
import type { TokenClaims } from './claims.js';

/**
 * Tokens whose signature and static claims were verified recently, so that a client reconnecting
 * (or opening a second tab) with the same token skips the Ed25519 check, the one costly step of a
 * handshake. The same idea as Envoy's `jwt_cache_config`.
 *
 * Sound because an entry is only ever made from a fully verified token, is keyed by the SHA-256
 * of the exact token text (same text, same signature bytes, same verdict under the same key; and
 * no bearer token is kept in memory beyond its request), answers only
 * while the key that verified it is still the key set's key for its `kid` (a removed or replaced
 * key ends it), and only for the issuer and audience it was checked against. Time is not cached:
 * `exp` and `nbf` are checked on every use, and revocation is the caller's check, after this one.
 */

/** Verified tokens kept per key set. */
export const verifiedCacheCapacity = 4096;

/** Longer tokens are verified every time rather than hashed and kept (wsgate's are ~600). */
export const maxCachedTokenLength = 2048;

/**
 * The cache key of a token, or undefined for one too long to keep. A digest rather than the token:
 * 43 characters instead of ~600 per entry, and no usable credential sitting in the cache.
 */
export function cacheKey(token: string): string | undefined {
  if (token.length > maxCachedTokenLength) return undefined;
  // One call, no Hash object: this runs on every handshake, cached or not.
  return hash('sha256', token, 'base64url');
}

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

/** The entry of the token with key `id` if it was verified with these keys for this issuer and audience. */
export function cachedVerification(
  keys: KeySet,
  id: string,
  issuer: string,
  audience: string,
): VerifiedEntry | undefined {
  const cache = caches.get(keys);
  const entry = cache?.get(id);
  if (!cache || !entry) return undefined;
  if (keys.verificationKeys.get(entry.kid) !== entry.key) {
    cache.delete(id);
    return undefined;
  }
  if (entry.issuer !== issuer || entry.audience !== audience) return undefined;
  // Least recently used goes first: a Map iterates in insertion order, so move this one last.
  cache.delete(id);
  cache.set(id, entry);
  return entry;
}

/** Remembers a token that passed every check; the least recently used entry makes room. */
export function rememberVerified(keys: KeySet, id: string, entry: VerifiedEntry): void {
  let cache = caches.get(keys);
  if (!cache) caches.set(keys, (cache = new Map<string, VerifiedEntry>()));
  if (!cache.delete(id) && cache.size >= verifiedCacheCapacity) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  cache.set(id, entry);
}

/** Forgets a token, e.g. once it has expired: an expired token never verifies again. */
export function forgetVerified(keys: KeySet, id: string): void {
  caches.get(keys)?.delete(id);
}

/** How many verified tokens are kept for a key set (for tests and diagnostics). */
export function verifiedCacheSize(keys: KeySet): number {
  return caches.get(keys)?.size ?? 0;
}

/** Whether a token is kept for a key set, without touching its place in the order (for tests). */
export function isVerifiedCached(keys: KeySet, token: string): boolean {
  const id = cacheKey(token);
  return id !== undefined && (caches.get(keys)?.has(id) ?? false);
}
