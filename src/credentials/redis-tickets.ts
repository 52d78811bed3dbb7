import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { TokenClaims } from '../tokens/claims.js';
import { newTicket, ticketTtlMs, type TicketStore } from './tickets.js';

export interface RedisTicketStoreOptions {
  /** Prefix of every key, so several deployments can share one Redis (default `wsgate:`). */
  readonly prefix?: string;
}

/** What is kept per ticket: the bound claims and when the ticket stops working (ms, injected clock). */
interface StoredTicket {
  readonly claims: TokenClaims;
  readonly expiresAt: number;
}

/**
 * Tickets shared by every node of a cluster. A ticket is kept under the SHA-256 of its value, so
 * neither the keys nor the values in Redis can be replayed; `GETDEL` makes consumption atomic, so
 * when two nodes race for one ticket exactly one gets the claims.
 */
export class RedisTicketStore implements TicketStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  /** `redis` is a command connection the caller owns (and closes). */
  constructor(redis: Redis, options: RedisTicketStoreOptions = {}) {
    this.#redis = redis;
    this.#prefix = options.prefix ?? 'wsgate:';
  }

  #key(ticket: string): string {
    return `${this.#prefix}ticket:${createHash('sha256').update(ticket, 'utf8').digest('hex')}`;
  }

  async issue(claims: TokenClaims, now: number): Promise<string> {
    const ticket = newTicket();
    const stored: StoredTicket = { claims, expiresAt: now + ticketTtlMs };
    await this.#redis.set(this.#key(ticket), JSON.stringify(stored), 'PX', ticketTtlMs);
    return ticket;
  }

  async consume(ticket: string, now: number): Promise<TokenClaims | undefined> {
    const raw = await this.#redis.getdel(this.#key(ticket));
    if (raw === null) return undefined;
    const stored = parseStored(raw);
    // Redis expires the key in its own time; the injected clock has the last word.
    return stored && stored.expiresAt > now ? stored.claims : undefined;
  }
}

function parseStored(raw: string): StoredTicket | undefined {
  try {
    const value = JSON.parse(raw) as Partial<StoredTicket> | null;
    if (
      typeof value === 'object' &&
      value !== null &&
      typeof value.expiresAt === 'number' &&
      typeof value.claims === 'object' &&
      value.claims !== null
    ) {
      return { claims: value.claims, expiresAt: value.expiresAt };
    }
  } catch {
    // Not ours, or corrupted: treat as unknown.
  }
  return undefined;
}
