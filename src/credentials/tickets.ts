import { randomBytes } from 'node:crypto';
import type { TokenClaims } from '../tokens/claims.js';

/** Longest a ticket lives: short enough that one leaked from a URL is of no use (≤ 30 s). */
export const ticketTtlMs = 30_000;

/**
 * Single-use handshake tickets: an opaque value standing in for the access token that minted it,
 * so no JWT ever appears in a URL. Cluster mode swaps in a Redis store with the same contract.
 */
export interface TicketStore {
  /** Mints a ticket bound to the claims (user, session, scopes) of a verified access token. */
  issue(claims: TokenClaims, now: number): Promise<string>;
  /** Returns the bound claims and forgets the ticket, atomically; undefined if unknown, used or expired. */
  consume(ticket: string, now: number): Promise<TokenClaims | undefined>;
}

export function newTicket(): string {
  return randomBytes(32).toString('base64url');
}

/** The in-process store: a map swept as it is used, bounded so a flood cannot grow it forever. */
export class MemoryTicketStore implements TicketStore {
  readonly #tickets = new Map<string, { claims: TokenClaims; expiresAt: number }>();
  readonly #max: number;

  constructor(options: { max?: number } = {}) {
    this.#max = options.max ?? 100_000;
  }

  issue(claims: TokenClaims, now: number): Promise<string> {
    this.#sweep(now);
    if (this.#tickets.size >= this.#max) {
      const oldest = this.#tickets.keys().next();
      if (!oldest.done) this.#tickets.delete(oldest.value);
    }
    const ticket = newTicket();
    this.#tickets.set(ticket, { claims, expiresAt: now + ticketTtlMs });
    return Promise.resolve(ticket);
  }

  consume(ticket: string, now: number): Promise<TokenClaims | undefined> {
    const entry = this.#tickets.get(ticket);
    // Deleting before returning is what makes a ticket single-use: JavaScript runs this
    // synchronously, so two handshakes racing for one ticket cannot both see it.
    this.#tickets.delete(ticket);
    return Promise.resolve(entry && entry.expiresAt > now ? entry.claims : undefined);
  }

  get size(): number {
    return this.#tickets.size;
  }

  #sweep(now: number): void {
    // Insertion order is expiry order (fixed TTL), so stop at the first live ticket.
    for (const [ticket, entry] of this.#tickets) {
      if (entry.expiresAt > now) break;
      this.#tickets.delete(ticket);
    }
  }
}
