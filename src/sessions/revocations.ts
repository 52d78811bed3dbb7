import type { RevocationReason } from '../storage/types.js';

export interface Revocation {
  readonly sessionIds: readonly string[];
  readonly reason: RevocationReason;
  /** Learned from another node (cluster mode): applied here, not published again. */
  readonly remote?: boolean;
}

export type RevocationListener = (revocation: Revocation) => void;

/**
 * The in-memory set of revoked session ids, so that a handshake or request can refuse a revoked
 * token without a database round trip. Fed at start from the database and then by events.
 */
export class RevocationList {
  readonly #revoked = new Set<string>();
  readonly #listeners = new Set<RevocationListener>();

  has(sessionId: string): boolean {
    return this.#revoked.has(sessionId);
  }

  get size(): number {
    return this.#revoked.size;
  }

  /** Adds ids without telling listeners (used to warm the set at start). */
  load(sessionIds: Iterable<string>): void {
    for (const id of sessionIds) this.#revoked.add(id);
  }

  /** Records a revocation and tells every listener, e.g. the socket registry that kicks sockets. */
  add(revocation: Revocation): void {
    for (const id of revocation.sessionIds) this.#revoked.add(id);
    for (const listener of this.#listeners) listener(revocation);
  }

  onRevoke(listener: RevocationListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
