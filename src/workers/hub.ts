import type { TicketStore } from '../credentials/tickets.js';
import type { TokenClaims } from '../tokens/claims.js';
import type { LoginLimiter } from '../sessions/login-limiter.js';
import type { RecentRotations, RotatedPair } from '../sessions/recent-rotations.js';
import type { RateBuckets, Release, SocketCounts } from '../handshake/shared-limits.js';
import { HashSlotsFull, type PasswordSlots } from '../users/hash-slots.js';
import { Peer, PeerError, type Channel, type Serve } from './peer.js';

/** What the primary holds for every worker: the one-node stores, shared over IPC. */
export interface HubServices {
  readonly tickets: TicketStore;
  readonly loginLimiter: LoginLimiter;
  readonly addressLimiter: LoginLimiter;
  readonly rotations: RecentRotations;
  /** Handshakes per client address. */
  readonly handshakes: RateBuckets;
  /** `POST /ws-ticket` calls per user. */
  readonly ticketRequests: RateBuckets;
  /** Open sockets per user. */
  readonly sockets: SocketCounts;
  /** Password hashes at once, and waiting, on the whole machine. */
  readonly hashSlots: PasswordSlots;
}

/**
 * The primary's side of `--workers`: answers every worker's requests from one set of stores, and
 * relays the bus, so that a ticket, a limit or a kick means the same on every worker. The sockets
 * and hashing slots a worker held are given back when it goes away.
 */
export class Hub {
  readonly #services: HubServices;
  readonly #peers = new Set<Peer>();
  /** What `metrics.aggregate` answers (the primary gathers every worker's metrics). */
  #metrics: (() => Promise<string>) | undefined;

  constructor(services: HubServices) {
    this.#services = services;
  }

  /** The workers connected now. */
  get peers(): ReadonlySet<Peer> {
    return this.#peers;
  }

  aggregateMetrics(source: () => Promise<string>): void {
    this.#metrics = source;
  }

  /** Serves one worker over `channel`; requests the hub does not know go to `other`. */
  connect(channel: Channel, other?: Serve): Peer {
    let nextHandle = 1;
    let gone = false;
    const held = new Map<number, Release>();
    /** Holds `release` for the worker under a handle it gives back; a worker gone gets none. */
    const hold = (release: Release): number | null => {
      if (gone) {
        // Granted after the worker died (a slot it queued for): back at once.
        release();
        return null;
      }
      const id = nextHandle++;
      held.set(id, release);
      return id;
    };
    const peer = new Peer(channel);
    peer.serve((op, args) => this.#serve(op, args, held, hold, other));
    // The bus: every worker hears every message, the publisher included (as on Redis).
    peer.onBus((name, message) => {
      for (const other of this.#peers) other.bus(name, message);
    });
    channel.onClose(() => {
      gone = true;
      this.#peers.delete(peer);
      for (const release of held.values()) release();
      held.clear();
    });
    this.#peers.add(peer);
    return peer;
  }

  #serve(
    op: string,
    args: readonly unknown[],
    held: Map<number, Release>,
    hold: (release: Release) => number | null,
    other: Serve | undefined,
  ): unknown {
    const s = this.#services;
    switch (op) {
      case 'tickets.issue':
        return s.tickets.issue(args[0] as TokenClaims, num(args[1]));
      case 'tickets.consume':
        return s.tickets.consume(str(args[0]), num(args[1]));
      case 'login.retryAfter':
        return limiter(s, args[0]).retryAfter(str(args[1]), num(args[2]));
      case 'login.recordFailure':
        return limiter(s, args[0]).recordFailure(str(args[1]), num(args[2]));
      case 'login.reset':
        return limiter(s, args[0]).reset(str(args[1]));
      case 'rotations.remember':
        return s.rotations.remember(
          str(args[0]),
          args[1] as RotatedPair,
          num(args[2]),
          num(args[3]),
        );
      case 'rotations.recall':
        return s.rotations.recall(str(args[0]), num(args[1]));
      case 'buckets.take':
        return (args[0] === 'handshakes' ? s.handshakes : s.ticketRequests).take(
          str(args[1]),
          num(args[2]),
        );
      case 'sockets.acquire':
        return Promise.resolve(s.sockets.acquire(str(args[0]), num(args[1]))).then((release) =>
          release ? hold(release) : null,
        );
      case 'hash.acquire':
        // null: every slot busy and the queue full, or the client address holds its share
        // (the worker answers 503).
        return s.hashSlots
          .acquire(args[0] == null ? undefined : str(args[0]))
          .then(hold, (err: unknown) => {
            if (err instanceof HashSlotsFull) return null;
            throw err;
          });
      case 'sockets.release':
      case 'hash.release': {
        const id = num(args[0]);
        held.get(id)?.();
        held.delete(id);
        return null;
      }
      case 'bus.ping':
        return null;
      case 'metrics.aggregate':
        if (!this.#metrics) throw new PeerError('no metrics here');
        return this.#metrics();
      default:
        if (other) return other(op, args);
        throw new PeerError(`unknown request ${op}`);
    }
  }
}

function limiter(s: HubServices, which: unknown): LoginLimiter {
  return which === 'address' ? s.addressLimiter : s.loginLimiter;
}

function str(value: unknown): string {
  if (typeof value !== 'string') throw new PeerError('expected a string');
  return value;
}

function num(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new PeerError('expected a number');
  return value;
}
