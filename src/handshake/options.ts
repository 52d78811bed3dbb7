import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { Clock, Timers } from '../clock.js';
import type { ErrorCode } from '../errors.js';
import type { TransportName } from '../credentials/credential.js';
import type { HandshakeRequest } from '../credentials/request.js';
import type { TicketStore } from '../credentials/tickets.js';
import type { LiveSocket } from '../sockets/registry.js';
import type { ProxyOptions } from '../proxy/connect.js';
import type { Principal, VerifyJwt } from './authenticate.js';
import type { TokenClaims } from '../tokens/claims.js';
import type { RateBuckets, SocketCounts } from './shared-limits.js';
import type { HostPolicy } from './host.js';

/** What an endpoint may ask of the gate about one of its sockets. */
export interface SocketControl {
  /** The client offered `wsgate.v1` (JSON control frames, close codes, in-band auth). */
  readonly v1: boolean;
  /** The current principal; an in-band re-authentication replaces it. */
  readonly principal: Principal;
  /**
   * Handles `{"type":"auth","token"}`: a valid token of the same user, satisfying the endpoint's
   * policy, extends the socket's life (answered `reauthenticated`); anything else gets an `error`
   * frame and the socket keeps its old expiry.
   */
  reauthenticate(token: string): Promise<void>;
}

/** Called with each socket the gate lets through, already authenticated. */
export type ConnectionHandler = (
  socket: WebSocket,
  principal: Principal,
  request: HandshakeRequest,
  control: SocketControl,
) => void;

export interface GateOptions {
  /** Verifies a JWT and refuses revoked sessions, with no database round trip. */
  readonly verify: VerifyJwt;
  /**
   * Refuses tickets of ended sessions (given the ticket's session id and claims); JWTs are
   * checked by `verify`. Default: nothing is revoked.
   */
  readonly isRevoked?: (sessionId: string, claims: TokenClaims) => boolean;
  /** Where `POST /ws-ticket` tickets live. Default: an in-memory store. */
  readonly tickets?: TicketStore;
  /** Default: `Date.now`. */
  readonly clock?: Clock;
  /**
   * The timers of the heartbeat and of a `wsgate.v1` client's wait for its first message.
   * Default: Node's, unref'd (they never hold the process open); tests step their own.
   */
  readonly timers?: Timers;
  /** Browser origins allowed besides the request's own site (scheme, host and port). */
  readonly origins?: readonly string[];
  /**
   * The names this deployment answers to: a handshake whose `Host` is none of them is refused
   * with 421 before anything else (DNS rebinding). Default: no `Host` check, for a gate mounted
   * on a server that does its own.
   */
  readonly hosts?: HostPolicy;
  /**
   * The scheme browsers use to reach this server, for the `Origin` check: the issuer's. Default:
   * `https` on a TLS connection, else `http`. `X-Forwarded-Proto` from a `trustProxy` peer wins.
   */
  readonly scheme?: 'http' | 'https';
  /**
   * Peers (CIDR blocks such as `10.0.0.0/8`) whose `X-Forwarded-For` gives the client address
   * for limits and reports, and whose `X-Forwarded-Proto` the scheme. Default: none.
   */
  readonly trustProxy?: readonly string[];
  /** Accept `?token=<jwt>` (fastapi-jwt-auth compatibility). Off unless asked for. */
  readonly allowQueryTokens?: boolean;
  readonly log?: Logger;
  readonly limits?: Partial<GateLimits>;
  /** Told of every refused handshake, e.g. for audit and metrics. Never sees a secret. */
  readonly onReject?: (event: RejectEvent) => void;
  /** Told of every accepted socket; `durationMs` is the gate's own time for upgrade-time accepts. */
  readonly onAccept?: (event: AcceptEvent) => void;
  /** Told of every message received on an accepted socket (for metrics; keep it cheap). */
  readonly onMessage?: () => void;
  /** Told of every socket the gate closes on purpose: revoked (4410) or expired (4419). */
  readonly onKick?: (live: LiveSocket, code: ErrorCode) => void;
  /** Needed for {@link Gate.proxy}: the identity key, the issuer, how upstreams are reached. */
  readonly proxy?: ProxyOptions;
  /**
   * Handshake buckets per client address shared with other processes (`--workers`); by default
   * the gate's own, with the `handshakeRate` and `handshakeBurst` limits.
   */
  readonly handshakeBuckets?: RateBuckets;
  /**
   * Open sockets per user and per client address counted across processes (`--workers`); by
   * default the gate's own.
   */
  readonly userSockets?: SocketCounts;
}

export interface GateLimits {
  /** Largest message in bytes; larger closes with 1009. */
  readonly maxPayload: number;
  /** Handshakes per second per client address, and the burst allowed above that. */
  readonly handshakeRate: number;
  readonly handshakeBurst: number;
  /** How long a `wsgate.v1` client may take to send `{"type":"auth"}` when it brought no credential. */
  readonly authTimeoutMs: number;
  /** Ping interval; a peer that has not answered the previous ping by the next one is dropped. */
  readonly heartbeatMs: number;
  /** Messages per second per connection, and the burst allowed above that (then 4429). */
  readonly messageRate: number;
  readonly messageBurst: number;
  /** Open sockets per user (then 429 / 4429). */
  readonly connectionsPerUser: number;
  /**
   * Open connections per client address, counted from the upgrade request until the socket
   * closes (then 429 / 4429).
   */
  readonly connectionsPerAddress: number;
  /** `wsgate.v1` sockets hear `{"type":"expiring"}` this long before their token expires. */
  readonly expiryWarningMs: number;
}

export const defaultGateLimits: GateLimits = {
  maxPayload: 64 * 1024,
  handshakeRate: 50,
  handshakeBurst: 200,
  authTimeoutMs: 5000,
  heartbeatMs: 30_000,
  messageRate: 50,
  messageBurst: 100,
  connectionsPerUser: 20,
  connectionsPerAddress: 1000,
  expiryWarningMs: 60_000,
};

export interface AcceptEvent {
  readonly path: string;
  readonly transport: TransportName | null;
  /** From the upgrade request to the decision; absent for first-message authentication. */
  readonly durationMs?: number;
}

export interface RejectEvent {
  readonly code: string;
  readonly status: number;
  readonly closeCode: number;
  readonly path: string;
  readonly ip: string;
  readonly transport: TransportName | null;
  /** True when reported as a close frame after the upgrade (`wsgate.v1` clients). */
  readonly afterUpgrade: boolean;
}
