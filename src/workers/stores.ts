import type { TicketStore } from '../credentials/tickets.js';
import type { TokenClaims } from '../tokens/claims.js';
import type { LoginLimiter } from '../sessions/login-limiter.js';
import type { RecentRotations, RotatedPair } from '../sessions/recent-rotations.js';
import type { RateBuckets, Release, SocketCounts } from '../handshake/shared-limits.js';
import type { MachineRelay } from '../pubsub/in-machine.js';
import { HashSlotsFull, type PasswordSlots, type ReleaseSlot } from '../users/hash-slots.js';
import type { Peer } from './peer.js';

/** A worker's view of the primary's ticket store: a ticket is redeemed once on any worker. */
export class WorkerTicketStore implements TicketStore {
  constructor(private readonly peer: Peer) {}

  async issue(claims: TokenClaims, now: number): Promise<string> {
    return (await this.peer.request('tickets.issue', claims, now)) as string;
  }

  async consume(ticket: string, now: number): Promise<TokenClaims | undefined> {
    return ((await this.peer.request('tickets.consume', ticket, now)) ?? undefined) as
      TokenClaims | undefined;
  }
}

/** A worker's view of one of the primary's login limiters (`user`: per username and address). */
export class WorkerLoginLimiter implements LoginLimiter {
  constructor(
    private readonly peer: Peer,
    private readonly which: 'user' | 'address',
  ) {}

  async retryAfter(key: string, now: number): Promise<number> {
    return (await this.peer.request('login.retryAfter', this.which, key, now)) as number;
  }

  async recordFailure(key: string, now: number): Promise<void> {
    await this.peer.request('login.recordFailure', this.which, key, now);
  }

  async reset(key: string): Promise<void> {
    await this.peer.request('login.reset', this.which, key);
  }
}

/** A worker's view of the primary's recent refresh rotations (the refresh grace period). */
export class WorkerRecentRotations implements RecentRotations {
  constructor(private readonly peer: Peer) {}

  async remember(jti: string, pair: RotatedPair, ttlMs: number, now: number): Promise<void> {
    await this.peer.request('rotations.remember', jti, pair, ttlMs, now);
  }

  async recall(jti: string, now: number): Promise<RotatedPair | undefined> {
    return ((await this.peer.request('rotations.recall', jti, now)) ?? undefined) as
      RotatedPair | undefined;
  }
}

/** A worker's view of the primary's token buckets: handshakes per address, tickets per user. */
export class WorkerRateBuckets implements RateBuckets {
  constructor(
    private readonly peer: Peer,
    private readonly which: 'handshakes' | 'ticketRequests',
  ) {}

  async take(key: string, now: number): Promise<number> {
    return (await this.peer.request('buckets.take', this.which, key, now)) as number;
  }
}

/** A worker's view of the primary's open-socket counts per user. */
export class WorkerSocketCounts implements SocketCounts {
  constructor(private readonly peer: Peer) {}

  async acquire(key: string, limit: number): Promise<Release | undefined> {
    const handle = (await this.peer.request('sockets.acquire', key, limit)) as number | null;
    if (handle === null) return undefined;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // A primary that is gone has given the count back with the rest.
      this.peer.request('sockets.release', handle).catch(() => undefined);
    };
  }
}

/**
 * A worker's view of the primary's password-hashing slots: one bound and one queue for the whole
 * machine, however many workers share it. A slot costs one IPC round trip (tens of µs) against
 * a hash of tens of ms.
 */
export class WorkerHashSlots implements PasswordSlots {
  constructor(private readonly peer: Peer) {}

  async acquire(key?: string): Promise<ReleaseSlot> {
    const handle = (await this.peer.request('hash.acquire', key ?? null)) as number | null;
    if (handle === null) throw new HashSlotsFull();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // A primary that is gone has given the slot back with the rest.
      this.peer.request('hash.release', handle).catch(() => undefined);
    };
  }
}

/** The bus relay of a worker: through the primary, to every worker. */
export function machineRelay(peer: Peer): MachineRelay {
  return {
    send: (channel, message) => peer.bus(channel, message),
    onMessage: (listener) => peer.onBus(listener),
    ping: async () => {
      await peer.request('bus.ping');
    },
  };
}
