import type { ExternalRevocation, RevocationReason } from '../storage/types.js';
import type { TokenClaims } from '../tokens/claims.js';
import { externalKey } from '../credentials/principal.js';

export interface Revocation {
  readonly sessionIds: readonly string[];
  readonly reason: RevocationReason;
  /** Sessions or subjects of external issuers (back-channel logout, admin revoke). */
  readonly external?: readonly ExternalRevocation[];
  /** Learned from another node (cluster mode): applied here, not published again. */
  readonly remote?: boolean;
}

export type RevocationListener = (revocation: Revocation) => void;

/** External revocations remembered by kind, then by (issuer, value): revokedAt and expiresAt. */
type ExternalIndex = Record<
  ExternalRevocation['kind'],
  Map<string, { revokedAt: number; expiresAt: number }>
>;

/**
 * The in-memory set of revoked session ids, so that a handshake or request can refuse a revoked
 * token without a database round trip. Fed at start from the database and then by events. It
 * also remembers the revoked sessions and subjects of external issuers until they expire.
 */
export class RevocationList {
  readonly #revoked = new Set<string>();
  readonly #listeners = new Set<RevocationListener>();
  readonly #external: ExternalIndex = {
    sid: new Map(),
    sub: new Map(),
    sub_without_sid: new Map(),
  };
  #externalSize = 0;

  has(sessionId: string): boolean {
    return this.#revoked.has(sessionId);
  }

  get size(): number {
    return this.#revoked.size;
  }

  /** Adds ids without telling listeners (used to warm the set at start). */
  load(sessionIds: Iterable<string>, external: Iterable<ExternalRevocation> = []): void {
    for (const id of sessionIds) this.#revoked.add(id);
    for (const r of external) this.#remember(r);
  }

  /** Records a revocation and tells every listener, e.g. the socket registry that kicks sockets. */
  add(revocation: Revocation): void {
    for (const id of revocation.sessionIds) this.#revoked.add(id);
    for (const r of revocation.external ?? []) this.#remember(r);
    for (const listener of this.#listeners) listener(revocation);
  }

  /** True when this external revocation is known already, as late or later. */
  knows(r: ExternalRevocation): boolean {
    const known = this.#external[r.kind].get(externalKey(r.issuer, r.value));
    return known !== undefined && known.revokedAt >= r.revokedAt;
  }

  #remember(r: ExternalRevocation): void {
    const index = this.#external[r.kind];
    const key = externalKey(r.issuer, r.value);
    const known = index.get(key);
    if (known === undefined) this.#externalSize++;
    index.set(key, {
      revokedAt: Math.max(r.revokedAt, known?.revokedAt ?? 0),
      expiresAt: Math.max(r.expiresAt, known?.expiresAt ?? 0),
    });
    // Expired entries are swept now and then, so the map stays as large as the live ones.
    if (this.#externalSize % 1024 === 0) this.#sweep(Date.now());
  }

  #sweep(now: number): void {
    for (const index of Object.values(this.#external)) {
      for (const [key, entry] of index) {
        if (entry.expiresAt > now) continue;
        index.delete(key);
        this.#externalSize--;
      }
    }
  }

  /**
   * Whether an external principal's token is revoked at `now`: its session (`sid`, or `jti`
   * without one) was ended, or its subject was — for every token issued before (or, by a `sid`
   * logout, for those without a `sid`). A token without `iat` counts as issued before.
   */
  isExternalRevoked(claims: TokenClaims, now: number): boolean {
    if (!claims.external || this.#externalSize === 0) return false;
    const live = (kind: ExternalRevocation['kind'], value: string) => {
      const entry = this.#external[kind].get(externalKey(claims.iss, value));
      return entry !== undefined && entry.expiresAt > now ? entry : undefined;
    };
    if (live('sid', claims.sid)) return true;
    const issuedAt = claims.iat * 1000;
    const subject = live('sub', claims.sub);
    if (subject && issuedAt <= subject.revokedAt) return true;
    if (claims.external.providerSid !== undefined) return false;
    const withoutSid = live('sub_without_sid', claims.sub);
    return withoutSid !== undefined && issuedAt <= withoutSid.revokedAt;
  }

  onRevoke(listener: RevocationListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
