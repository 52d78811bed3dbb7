/**
 * Limits that several processes of one deployment share (`--workers`): the primary holds the
 * counts and every worker asks it. A lone process uses its own, synchronous ones.
 */

/** Token buckets by key (a client address, a user): 0 when allowed, else seconds to wait. */
export interface RateBuckets {
  take(key: string, now: number): number | Promise<number>;
}

/** Gives back a counted socket; calling it again does nothing. */
export type Release = () => void;

/** Open sockets by key (a user), counted across every process. */
export interface SocketCounts {
  /** Counts one more socket of `key` unless `limit` are open; undefined when at the limit. */
  acquire(key: string, limit: number): Release | undefined | Promise<Release | undefined>;
}

/** The counts of one process, held by the primary for all its workers. */
export class MemorySocketCounts implements SocketCounts {
  readonly #counts = new Map<string, number>();

  acquire(key: string, limit: number): Release | undefined {
    const open = this.#counts.get(key) ?? 0;
    if (open >= limit) return undefined;
    this.#counts.set(key, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#counts.get(key) ?? 1) - 1;
      if (left > 0) this.#counts.set(key, left);
      else this.#counts.delete(key);
    };
  }

  /** Sockets of `key` counted now. */
  count(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  /** Keys with a socket counted (bounded by the open sockets, never by failed attempts). */
  get size(): number {
    return this.#counts.size;
  }
}

/** The limits a worker shares with the others through the primary (`--workers`). */
export interface SharedLimits {
  /** Handshakes per client address. */
  readonly handshakes: RateBuckets;
  /** `POST /ws-ticket` calls per user. */
  readonly ticketRequests: RateBuckets;
  /** Open sockets per user. */
  readonly sockets: SocketCounts;
}
