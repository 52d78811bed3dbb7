import type { KeySet } from './keys.js';
import type { TokenClaims } from './claims.js';

/**
 * Tokens whose signature and static claims were verified recently, so that a client reconnecting
 * (or opening a second tab) with the same token skips the Ed25519 check, the one costly step of a
 * handshake. The same idea as Envoy's `jwt_cache_config`.
 *
 * Sound because an entry is only ever made from a fully verified token, is keyed by the exact
 * token text (same text, same signature bytes, same verdict under the same keys), belongs to one
 * key set (a new key set starts empty), and is only used for the issuer and audience it was checked
 * against. Time is not cached: `exp` and `nbf` are checked on every use, and revocation is the
 * caller's check, after this one, as before.
 */

/** Verified tokens kept per key set; at about 1 KiB each, the cap holds memory near 4 MiB. */
export const verifiedCacheCapacity = 4096;

/** A verified token: its claims, what they were checked against, and its raw `nbf`. */
export interface VerifiedEntry {
  readonly claims: TokenClaims;
  readonly issuer: string;
  readonly audience: string;
  /** The token's own `nbf`, which `claims.nbf` fills from `iat` when absent. */
  readonly notBefore: number | undefined;
}

const caches = new WeakMap<KeySet, Map<string, VerifiedEntry>>();

function cacheOf(keys: KeySet): Map<string, VerifiedEntry> {
  let cache = caches.get(keys);
  if (!cache) caches.set(keys, (cache = new Map<string, VerifiedEntry>()));
  return cache;
}

/** The entry of `token` if it was verified with these keys for this issuer and audience. */
export function cachedVerification(
  keys: KeySet,
  token: string,
  issuer: string,
  audience: string,
): VerifiedEntry | undefined {
  const cache = caches.get(keys);
  const entry = cache?.get(token);
  if (!cache || !entry || entry.issuer !== issuer || entry.audience !== audience) return undefined;
  // Least recently used goes first: a Map iterates in insertion order, so move this one last.
  cache.delete(token);
  cache.set(token, entry);
  return entry;
}

/** Remembers a token that passed every check; the least recently used entry makes room. */
export function rememberVerified(keys: KeySet, token: string, entry: VerifiedEntry): void {
  const cache = cacheOf(keys);
  if (cache.size >= verifiedCacheCapacity && !cache.has(token)) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  cache.set(token, entry);
}

/** How many verified tokens are kept for a key set (for tests and diagnostics). */
export function verifiedCacheSize(keys: KeySet): number {
  return caches.get(keys)?.size ?? 0;
}
