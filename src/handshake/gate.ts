import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { Logger } from 'pino';
import { WsgateError, catalogue, closeFrame, isWsgateError, truncateReason } from '../errors.js';
import { CloseCode } from '../protocol/close-codes.js';
import { backgroundTimers, type Clock, type Timers } from '../clock.js';
import type { Credential, ExtractOptions, TransportName } from '../credentials/credential.js';
import { handshakeTransports } from '../credentials/transports.js';
import {
  parseHandshake,
  proxyProtocol,
  v1Protocol,
  type HandshakeRequest,
} from '../credentials/request.js';
import { MemoryTicketStore, type TicketStore } from '../credentials/tickets.js';
import { principalKey } from '../credentials/principal.js';
import type { TokenClaims } from '../tokens/claims.js';
import { awaitFirstMessage, credentialFromToken, parseAuthFrame } from './first-message.js';
import { reauthenticate } from './reauthenticate.js';
import { authenticate, guest, type Policy, type Principal } from './authenticate.js';
import { isOriginAllowed } from './origin.js';
import { hostChecker, hostRefusal } from './host.js';
import { TokenBuckets } from '../token-bucket.js';
import { addressKey, trustedProxies, type TrustedProxy } from '../client-address.js';
import {
  MemorySocketCounts,
  type RateBuckets,
  type Release,
  type SocketCounts,
} from './shared-limits.js';
import { closeWithError } from '../sockets/io.js';
import { SocketRegistry, type LiveSocket } from '../sockets/registry.js';
import { proxyRoute, type ProxyRoute, type ProxyRouteOptions } from '../proxy/route.js';
import {
  clientProtocol,
  dialForClient,
  findProxyRoute,
  type ProxyOptions,
} from '../proxy/connect.js';
import { DialError } from '../proxy/dial.js';
import { Pipe } from '../proxy/pipe.js';
import {
  defaultGateLimits,
  type ConnectionHandler,
  type GateLimits,
  type GateOptions,
  type RejectEvent,
  type SocketControl,
} from './options.js';
import { checkUpgrade, rawAnswer, writeHttpError } from './upgrade.js';
import { beat } from './heartbeat.js';
import { closeAll } from './drain.js';

export * from './options.js';

interface Endpoint {
  readonly policy: Policy;
  readonly handler: ConnectionHandler;
}

/** Where a proxied handshake goes: its route and the path below the route's base. */
interface ProxyTarget {
  readonly route: ProxyRoute;
  readonly suffix: string;
}

/** A raw socket's `error` listener, shared by all: an error ends the socket. */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

function tooManyForUser(): WsgateError {
  return new WsgateError('rate_limited', 'Too many connections for this user', { retryAfter: 60 });
}

function tooManyFromAddress(): WsgateError {
  return new WsgateError('rate_limited', 'Too many connections from this address', {
    retryAfter: 60,
  });
}

/**
 * The key of a client address among the open-socket counts, which it shares with users: no
 * username starts with `@`, and an external principal's key starts with a digit. An IPv6 client
 * is counted by its /64 ({@link addressKey}).
 */
function countKey(ip: string): string {
  return `@${addressKey(ip)}`;
}

/** Gives a counted place back when the raw socket closes (at once if it already has). */
function releaseOnClose(socket: Duplex, release: Release): void {
  if (socket.destroyed) release();
  else socket.once('close', release);
}

/** Where a socket came from, for reports about it. */
type Where = Pick<HandshakeRequest, 'path' | 'ip'>;

/**
 * An accepted socket as the gate keeps it, in one object: its registry entry, where it came from
 * (not the request and the credential in it), its message bucket, and the endpoint's
 * {@link SocketControl}. The gate's listeners are shared by every socket and find it by socket.
 */
class Accepted implements SocketControl {
  /** The message bucket, a token bucket kept inline: tokens left, and when they were counted. */
  tokens: number;
  at: number;
  readonly live: LiveSocket;
  readonly path: string;
  readonly ip: string;
  readonly #endpoint: Endpoint | undefined;
  readonly #reauthenticate: (
    accepted: Accepted,
    endpoint: Endpoint,
    token: string,
  ) => Promise<void>;

  constructor(
    live: LiveSocket,
    where: Where,
    burst: number,
    now: number,
    endpoint: Endpoint | undefined,
    reauthenticate: (accepted: Accepted, endpoint: Endpoint, token: string) => Promise<void>,
  ) {
    this.live = live;
    this.path = where.path;
    this.ip = where.ip;
    this.tokens = burst;
    this.at = now;
    this.#endpoint = endpoint;
    this.#reauthenticate = reauthenticate;
  }

  get v1(): boolean {
    return this.live.v1;
  }

  get principal(): Principal {
    return this.live.principal;
  }

  reauthenticate(token: string): Promise<void> {
    // A proxied socket has no endpoint here: its frames belong to the upstream.
    if (this.#endpoint === undefined) return Promise.resolve();
    return this.#reauthenticate(this, this.#endpoint, token);
  }
}

/**
 * The WebSocket gate: decides during the HTTP upgrade, before any socket exists, who may open
 * which endpoint. Framework-neutral: give its `handleUpgrade` to any `http.Server`'s `upgrade`.
 */
export class Gate {
  readonly #o: GateOptions & {
    isRevoked: (sessionId: string, claims: TokenClaims) => boolean;
    tickets: TicketStore;
    clock: Clock;
  };
  readonly #limits: GateLimits;
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #proxies: ProxyRoute[] = [];
  readonly #wss: WebSocketServer;
  /** Upgrades proxied clients with the subprotocol of {@link clientProtocol}; pings pass through. */
  readonly #proxyWss: WebSocketServer;
  readonly #upstreamProtocols = new WeakMap<IncomingMessage, string | false>();
  readonly #buckets: RateBuckets;
  /** Open connections per client address (and, when shared across processes, per user). */
  readonly #sockets: SocketCounts;
  /** True when a `Host` names this deployment; undefined when the gate checks no `Host`. */
  readonly #hostAllowed: ((host: string | undefined) => boolean) | undefined;
  readonly #trusted: TrustedProxy;
  /** Raw sockets counted against their address since they connected ({@link handleConnection}). */
  readonly #counted = new WeakSet<Duplex>();
  /** Raw sockets accepted beyond their address's cap: their request is refused. */
  readonly #overCap = new WeakSet<Duplex>();
  /** Connections whose count the primary has not answered yet. */
  readonly #pendingCounts = new WeakMap<Duplex, Promise<void>>();
  readonly #registry: SocketRegistry;
  /** Upgraded sockets still owing their first `auth` message. */
  readonly #pending = new Set<WebSocket>();
  readonly #timers: Timers;
  #heartbeat: unknown;
  #draining = false;
  /** Every accepted socket's state, for the listeners below. */
  readonly #accepted = new WeakMap<WebSocket, Accepted>();
  /** The first `message` listener of every accepted socket, made once: see {@link #metered}. */
  readonly #meter: (this: WebSocket) => void;
  /** What the transports are told, made once: for refresh-token endpoints and for the rest. */
  readonly #extractAccess: ExtractOptions;
  readonly #extractRefresh: ExtractOptions;
  readonly #reauthenticateSocket = (accepted: Accepted, endpoint: Endpoint, token: string) =>
    this.#reauthenticate(accepted.live, endpoint, accepted, token);

  constructor(options: GateOptions) {
    this.#o = {
      ...options,
      isRevoked: options.isRevoked ?? (() => false),
      tickets: options.tickets ?? new MemoryTicketStore(),
      clock: options.clock ?? Date.now,
    };
    this.#limits = { ...defaultGateLimits, ...options.limits };
    const allowQueryTokens = options.allowQueryTokens ?? false;
    this.#extractAccess = { refresh: false, allowQueryTokens };
    this.#extractRefresh = { refresh: true, allowQueryTokens };
    this.#buckets =
      options.handshakeBuckets ??
      new TokenBuckets({ rate: this.#limits.handshakeRate, burst: this.#limits.handshakeBurst });
    this.#sockets = options.userSockets ?? new MemorySocketCounts();
    this.#hostAllowed = options.hosts === undefined ? undefined : hostChecker(options.hosts);
    this.#trusted = trustedProxies(options.trustProxy ?? []);
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.#limits.maxPayload,
      handleProtocols: selectOwnProtocol,
    });
    this.#proxyWss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      autoPong: false,
      maxPayload: this.#limits.maxPayload,
      handleProtocols: (_protocols, req) => this.#upstreamProtocols.get(req) ?? false,
    });
    this.#registry = new SocketRegistry({
      clock: this.#o.clock,
      warnBeforeMs: this.#limits.expiryWarningMs,
      ...(options.onKick === undefined ? {} : { onClose: options.onKick }),
    });
    this.#timers = options.timers ?? backgroundTimers;
    const heartbeat = () => {
      this.#heartbeat = this.#timers.setTimeout(heartbeat, this.#limits.heartbeatMs);
      beat(this.#registry);
    };
    this.#heartbeat = this.#timers.setTimeout(heartbeat, this.#limits.heartbeatMs);
    const metered = (ws: WebSocket) => this.#metered(ws);
    this.#meter = function (this: WebSocket) {
      metered(this);
    };
  }

  /** Serves `path` to sockets whose credential satisfies `policy`. */
  route(path: string, policy: Policy, handler: ConnectionHandler): this {
    this.#endpoints.set(path, { policy, handler });
    const i = this.#proxies.findIndex((r) => !r.prefix && r.path === path);
    if (i !== -1) this.#proxies.splice(i, 1);
    return this;
  }

  /**
   * Serves `path` (exact, or `/prefix/*` with the rest appended to the upstream path) by piping
   * each accepted socket to `upstream`, a `ws://` or `wss://` URL: a `required` endpoint plus
   * `scopes`. It takes over the endpoints already routed at or under it. Needs the `proxy` option.
   */
  proxy(path: string, upstream: string | URL, options: ProxyRouteOptions = {}): this {
    if (this.#o.proxy === undefined) throw new Error('createGate needs the proxy option to proxy');
    const route = proxyRoute(path, upstream, options);
    for (const existing of [...this.#endpoints.keys()]) {
      if (route.prefix ? findProxyRoute([route], existing) : existing === route.path) {
        this.#endpoints.delete(existing);
      }
    }
    const same = this.#proxies.findIndex((r) => r.path === route.path);
    if (same !== -1) this.#proxies.splice(same, 1);
    this.#proxies.push(route);
    return this;
  }

  /** The proxied routes, in the order given. */
  get proxies(): readonly ProxyRoute[] {
    return this.#proxies;
  }

  /** Number of open sockets. */
  get size(): number {
    return this.#registry.size;
  }

  /** Open sockets of a user (a username, or an external principal's key). */
  countUser(username: string): number {
    return this.#registry.countUser(username);
  }

  /** Closes every socket of these sessions with 4410 (logout, reuse, password change, …). */
  closeSessions(sessionIds: Iterable<string>, reason?: string): number {
    return this.#registry.closeSessions(sessionIds, 'session_revoked', reason);
  }

  /**
   * Closes with 4410 every socket of a principal — a username, or an external (issuer, `sub`)
   * key — whose claims `which` selects (all by default).
   */
  closePrincipal(key: string, which?: (claims: TokenClaims) => boolean, reason?: string): number {
    return this.#registry.closeUser(key, 'session_revoked', reason, which);
  }

  /** Sends due `expiring` notices and closes expired sockets (4419) now; normally a timer does. */
  checkExpiry(): void {
    this.#registry.checkExpiry();
  }

  /** The `upgrade` listener for an `http.Server`. Never throws; every failure is answered. */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', destroyOnError);
    this.#handle(req, socket, head).catch((err: unknown) => {
      this.#o.log?.error({ err }, 'handshake failed');
      writeHttpError(socket, new WsgateError('internal_error'));
    });
  };

  async #handle(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const started = performance.now();
    const malformed = checkUpgrade(req);
    if (malformed) return void socket.end(malformed);
    // Before anything is read: a page on a rebinding name has no business here, whatever it sends.
    const refusal = hostRefusal(req, this.#hostAllowed);
    if (refusal) {
      this.#report(refusal, undefined, req, null, false);
      return writeHttpError(socket, refusal);
    }

    let request: HandshakeRequest;
    try {
      request = parseHandshake(req, this.#trusted);
    } catch (err) {
      return this.#reject(req, socket, head, undefined, null, err);
    }
    const endpoint = this.#endpoints.get(request.path);
    let target: ProxyTarget | undefined;
    if (!endpoint) {
      try {
        target = findProxyRoute(this.#proxies, request.path);
      } catch (err) {
        return this.#reject(req, socket, head, request, null, err);
      }
    }
    const policy: Policy | undefined =
      endpoint?.policy ?? (target && { requirement: 'required', scopes: target.route.scopes });
    if (!policy) {
      return void socket.end(rawAnswer(new WsgateError('not_found', 'No WebSocket endpoint here')));
    }
    let transport: TransportName | null = null;
    try {
      if (this.#draining) throw new WsgateError('draining');
      const counting = this.checkConnection(socket);
      if (counting) await counting;
      if (!this.#counted.has(socket)) await this.#countAddress(request.ip, socket);
      const taken = this.#buckets.take(addressKey(request.ip), this.#o.clock());
      const retryAfter = typeof taken === 'number' ? taken : await taken;
      if (retryAfter > 0) throw new WsgateError('rate_limited', undefined, { retryAfter });
      const scheme =
        request.forwardedProto ?? this.#o.scheme ?? (request.encrypted ? 'https' : 'http');
      if (
        !isOriginAllowed(request.origin, {
          host: request.host,
          scheme,
          allowed: this.#o.origins ?? [],
        })
      ) {
        throw new WsgateError('origin_not_allowed');
      }
      const credential = this.#extract(request, policy);
      transport = credential?.transport ?? null;
      if (credential?.transport === 'cookie' && request.origin === undefined) {
        // A cookie is only safe with an Origin to check (cross-site WebSocket hijacking).
        throw new WsgateError('origin_not_allowed', 'Cookie credentials need an Origin header');
      }
      let principal: Principal | undefined;
      if (credential) {
        principal = await this.#authenticate(credential, policy);
        const release = await this.#checkUserLimit(principal);
        // The raw socket closes however this ends: refused, upgraded and closed, or proxied.
        if (release) releaseOnClose(socket, release);
      } else if (!request.offeredV1 || target) {
        // A proxied stream belongs to the upstream: no first-message authentication there.
        if (policy.requirement !== 'optional') throw new WsgateError('credential_missing');
        principal = guest;
      }
      if (target && principal) {
        return await this.#proxyConnect(req, socket, head, request, principal, target, started);
      }
      if (!endpoint) throw new WsgateError('internal_error');
      this.#upgrade(req, socket, head, (ws) => {
        if (principal) this.#accept(ws, principal, endpoint, request, performance.now() - started);
        else this.#awaitFirstMessage(ws, endpoint, request);
      });
    } catch (err) {
      this.#reject(req, socket, head, request, transport, err);
    }
  }

  /**
   * Dials the upstream of an authenticated client, then upgrades the client with the upstream's
   * subprotocol and joins the two. A client that left during the dial costs the upstream nothing
   * more than a socket closed at once.
   */
  async #proxyConnect(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    request: HandshakeRequest,
    principal: Principal,
    target: ProxyTarget,
    started: number,
  ): Promise<void> {
    const options = this.#o.proxy as ProxyOptions;
    const { socket: upstream, protocol } = await dialForClient(
      req,
      socket,
      request,
      principal,
      target,
      options,
      this.#o.clock(),
    );
    if (this.#draining) {
      // The drain began while the upstream answered: both sides hear what a drain says (1001,
      // or 503 / 1001 to the client), not a connection that drops.
      upstream.close(CloseCode.goingAway, catalogue.draining.message);
      throw new WsgateError('draining');
    }
    if (!socket.writable) {
      upstream.terminate();
      socket.destroy();
      return;
    }
    this.#upstreamProtocols.set(req, clientProtocol(protocol, request.protocols));
    this.#proxyWss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', this.#onSocketError);
      this.#acceptProxied(ws, upstream, principal, request, performance.now() - started);
    });
    socket.resume();
  }

  #acceptProxied(
    ws: WebSocket,
    upstream: WebSocket,
    principal: Principal,
    request: HandshakeRequest,
    durationMs: number,
  ): void {
    const events = this.#o.proxy?.events;
    upstream.on('error', this.#onSocketError);
    const pipe = new Pipe(ws, upstream, {
      ...(events?.frame === undefined ? {} : { onFrame: events.frame }),
      ...(events?.ended === undefined ? {} : { onEnd: events.ended }),
    });
    events?.opened?.();
    const live = this.#registry.add(ws, principal, false, {
      close: (error) => pipe.close(closeFrame(error), upstreamCloseForKick(error)),
      beat: () => pipe.beat(),
    });
    this.#o.onAccept?.({ path: request.path, transport: principal.transport, durationMs });
    // Before the pipe's listener: the message that crosses the limit never reaches the upstream.
    this.#limitMessages(ws, live, request, undefined);
  }

  /**
   * Counts each message of an accepted socket against its rate, with the one listener every
   * socket shares, put first: the message that crosses the limit is the last one the endpoint
   * (or the upstream) sees. The state is the socket's {@link Accepted}.
   */
  #limitMessages(
    ws: WebSocket,
    live: LiveSocket,
    where: Where,
    endpoint: Endpoint | undefined,
  ): Accepted {
    const accepted = new Accepted(
      live,
      where,
      this.#limits.messageBurst,
      this.#o.clock(),
      endpoint,
      this.#reauthenticateSocket,
    );
    this.#accepted.set(ws, accepted);
    ws.prependListener('message', this.#meter);
    return accepted;
  }

  /** One message on an accepted socket: O(1), and nothing allocated unless it is one too many. */
  #metered(ws: WebSocket): void {
    this.#o.onMessage?.();
    const accepted = this.#accepted.get(ws);
    if (accepted === undefined) return;
    const { messageRate: rate, messageBurst: burst } = this.#limits;
    const now = this.#o.clock();
    const tokens = Math.min(burst, accepted.tokens + ((now - accepted.at) / 1000) * rate);
    accepted.at = now;
    if (tokens >= 1) {
      accepted.tokens = tokens - 1;
      return;
    }
    accepted.tokens = tokens;
    const error = new WsgateError('rate_limited', 'Too many messages', { retryAfter: 1 });
    this.#report(error, accepted, undefined, null, true);
    if (accepted.live.upstream) accepted.live.upstream.close(error);
    else closeWithError(ws, error);
  }

  #extract(request: HandshakeRequest, policy: Policy): Credential | undefined {
    const options = policy.requirement === 'refresh' ? this.#extractRefresh : this.#extractAccess;
    let found: Credential | undefined;
    for (const transport of handshakeTransports) {
      const credential = transport.extract(request, options);
      if (!credential) continue;
      if (found) throw new WsgateError('ambiguous_credential');
      found = credential;
    }
    return found;
  }

  #authenticate(credential: Credential, policy: Policy): Promise<Principal> {
    return authenticate(credential, policy, {
      verify: this.#o.verify,
      isRevoked: this.#o.isRevoked,
      tickets: this.#o.tickets,
      now: this.#o.clock(),
    });
  }

  #upgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    then: (ws: WebSocket) => void,
  ): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', this.#onSocketError);
      then(ws);
    });
  }

  /**
   * One listener for every socket, made once: a listener made inside the handshake would keep the
   * handshake's scope (the request, its credential) alive as long as the socket.
   */
  readonly #onSocketError = (err: Error): void => this.#o.log?.debug({ err }, 'socket error');

  /**
   * Counts every connection of a client that is not a `--trust-proxy` peer against its address,
   * from accept to close, plain HTTP ones included: counting upgrades only let one address hold
   * thousands of idle keep-alive or silent connections (16,000 of the server's 20,000 file
   * descriptors in an attack). A trusted proxy's connections carry many clients; theirs are
   * counted at the upgrade, by `X-Forwarded-For`. Listen with it to the server's `connection`
   * event. A connection beyond the cap has a second to send its request, which is refused (429,
   * or 4429 to a `wsgate.v1` client) with {@link checkConnection} for HTTP and by the gate for
   * upgrades; then it closes.
   */
  readonly handleConnection = (socket: Socket): void => {
    const peer = socket.remoteAddress;
    if (peer === undefined || this.#trusted(peer)) return;
    this.#counted.add(socket);
    const acquired = this.#sockets.acquire(countKey(peer), this.#limits.connectionsPerAddress);
    if (!(acquired instanceof Promise)) return this.#settleCount(socket, acquired);
    // Counted by the primary (`--workers`): the request may arrive before the answer.
    this.#pendingCounts.set(
      socket,
      acquired.then(
        (release) => {
          this.#pendingCounts.delete(socket);
          this.#settleCount(socket, release);
        },
        () => {
          this.#pendingCounts.delete(socket);
          socket.destroy();
        },
      ),
    );
  };

  #settleCount(socket: Socket, release: Release | undefined): void {
    if (release) return releaseOnClose(socket, release);
    this.#overCap.add(socket);
    socket.setTimeout(1000, () => socket.destroy());
  }

  /**
   * Refuses (throws 429) a request on a connection accepted beyond its address's cap; a promise
   * when the count is still on its way from the primary.
   */
  checkConnection(socket: Duplex): void | Promise<void> {
    const pending = this.#pendingCounts.get(socket);
    if (pending) return pending.then(() => this.checkConnection(socket));
    if (this.#overCap.has(socket)) throw tooManyFromAddress();
  }

  /**
   * Counts the connection against its address from now until the raw socket closes, whatever
   * becomes of it (refused, upgraded, proxied, or waiting for its first message); refuses it
   * when the address already has as many open as it may.
   */
  async #countAddress(ip: string, socket: Duplex): Promise<void> {
    const acquired = this.#sockets.acquire(countKey(ip), this.#limits.connectionsPerAddress);
    const release = acquired instanceof Promise ? await acquired : acquired;
    if (!release) throw tooManyFromAddress();
    releaseOnClose(socket, release);
  }

  /**
   * Refuses a principal that already has as many sockets open as a user may. With shared counts
   * the socket is counted at once, and the returned function gives it back when it closes.
   */
  #checkUserLimit(principal: Principal): undefined | Promise<Release | undefined> {
    // Keyed on the username, or an external principal's (issuer, sub).
    const username = principalKey(principal);
    if (username === null) return undefined;
    const limit = this.#limits.connectionsPerUser;
    const shared = this.#o.userSockets;
    if (shared) {
      return Promise.resolve(shared.acquire(username, limit)).then((release) => {
        if (!release) throw tooManyForUser();
        return release;
      });
    }
    if (this.#registry.countUser(username) >= limit) throw tooManyForUser();
    return undefined;
  }

  #accept(
    ws: WebSocket,
    principal: Principal,
    endpoint: Endpoint,
    request: HandshakeRequest,
    durationMs?: number,
  ): void {
    if (this.#draining) return closeWithError(ws, new WsgateError('draining'));
    const live = this.#registry.add(ws, principal, request.offeredV1);
    this.#o.onAccept?.({
      path: request.path,
      transport: principal.transport,
      ...(durationMs === undefined ? {} : { durationMs }),
    });
    // What the socket keeps for reports is its path and address: not the request and the
    // credential in it. It is also the endpoint's control of the socket.
    const control = this.#limitMessages(ws, live, request, endpoint);
    try {
      endpoint.handler(ws, principal, request, control);
    } catch (err) {
      this.#o.log?.error({ err, path: request.path }, 'endpoint handler failed');
      closeWithError(ws, new WsgateError('internal_error'));
    }
  }

  /**
   * A `wsgate.v1` client without a handshake credential has a few seconds to send one. On an
   * optional endpoint, silence or any other first message makes it a guest instead.
   */
  #awaitFirstMessage(ws: WebSocket, endpoint: Endpoint, request: HandshakeRequest): void {
    awaitFirstMessage(ws, {
      optional: endpoint.policy.requirement === 'optional',
      timeoutMs: this.#limits.authTimeoutMs,
      timers: this.#timers,
      pending: this.#pending,
      guest: () => this.#accept(ws, guest, endpoint, request),
      refuse: (error, transport) => this.#closeWith(ws, request, transport, error),
      authenticate: (data, isBinary) => this.#firstMessage(ws, endpoint, request, data, isBinary),
    });
  }

  async #firstMessage(
    ws: WebSocket,
    endpoint: Endpoint,
    request: HandshakeRequest,
    data: RawData,
    isBinary: boolean,
  ): Promise<boolean> {
    let transport: TransportName | null = 'first-message';
    try {
      const token = parseAuthFrame(data, isBinary);
      const credential = credentialFromToken(token);
      transport = credential.transport;
      const principal = await this.#authenticate(credential, endpoint.policy);
      const release = await this.#checkUserLimit(principal);
      if (ws.readyState !== ws.OPEN) {
        release?.();
        return false;
      }
      if (release) ws.once('close', release);
      this.#accept(ws, principal, endpoint, request);
      return true;
    } catch (err) {
      this.#closeWith(ws, request, transport, err);
      return false;
    }
  }

  #reject(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    request: HandshakeRequest | undefined,
    transport: TransportName | null,
    err: unknown,
  ): void {
    const error = asWsgateError(err, this.#o.log);
    if (request?.offeredV1) {
      // Browsers cannot read the status of a failed upgrade, so v1 clients learn why from a close code.
      this.#upgrade(req, socket, head, (ws) => this.#closeWith(ws, request, transport, error));
      return;
    }
    this.#report(error, request, req, transport, false);
    writeHttpError(socket, error);
  }

  #closeWith(ws: WebSocket, request: Where, transport: TransportName | null, err: unknown): void {
    const error = asWsgateError(err, this.#o.log);
    this.#report(error, request, undefined, transport, true);
    closeWithError(ws, error);
  }

  #report(
    error: WsgateError,
    request: Where | undefined,
    req: IncomingMessage | undefined,
    transport: TransportName | null,
    afterUpgrade: boolean,
  ): void {
    const event: RejectEvent = {
      code: error.code,
      status: error.status,
      closeCode: error.closeCode,
      path: request?.path ?? pathOf(req?.url),
      ip: request?.ip ?? req?.socket.remoteAddress ?? '',
      transport,
      afterUpgrade,
    };
    // The client hears only "Upstream unavailable"; the operator needs to know which failure
    // (a backend that answered 403 refused wsgate's identity token, or its path is wrong).
    const { cause } = error;
    const upstream =
      cause instanceof DialError && cause.reason !== 'aborted' ? cause.message : undefined;
    if (upstream === undefined) this.#o.log?.info({ handshake: event }, 'handshake rejected');
    else this.#o.log?.warn({ handshake: event, upstream }, `handshake rejected: ${upstream}`);
    if (error.reason !== undefined) {
      this.#o.log?.debug({ code: error.code, reason: error.reason }, `refused: ${error.reason}`);
    }
    this.#o.onReject?.(event);
  }

  #reauthenticate(
    live: LiveSocket,
    endpoint: Endpoint,
    where: Where,
    token: string,
  ): Promise<void> {
    return reauthenticate(live, token, {
      authenticate: (credential) => this.#authenticate(credential, endpoint.policy),
      renew: (principal) => this.#registry.renew(live, principal),
      refused: (err) => {
        const error = asWsgateError(err, this.#o.log);
        this.#report(error, where, undefined, 'first-message', true);
        return error;
      },
    });
  }

  /**
   * Stops accepting handshakes (503, or 1001 for v1 clients) and closes every open socket with
   * 1001 so clients reconnect elsewhere. Resolves when they are closed or after `timeoutMs`.
   */
  async drain(timeoutMs = 5000): Promise<void> {
    this.#draining = true;
    this.#timers.clearTimeout(this.#heartbeat);
    this.#registry.stop();
    // Proxied sockets tell their upstream too; the loop below then waits for them like the rest.
    for (const live of this.#registry) live.upstream?.close(new WsgateError('draining'));
    const open = [...[...this.#registry].map((live) => live.ws), ...this.#pending];
    this.#pending.clear();
    await closeAll(open, new WsgateError('draining'), timeoutMs);
    this.#wss.close();
    this.#proxyWss.close();
  }
}

/**
 * What the upstream of a proxied socket hears when wsgate ends it: 1001 at expiry or drain (the
 * client may come back with a new token), 1008 `revoked` on a revocation, 1008 for a limit.
 */
function upstreamCloseForKick(error: WsgateError): { code: number; reason: string } {
  switch (error.code) {
    case 'token_expired':
      return { code: CloseCode.goingAway, reason: 'Token expired' };
    case 'draining':
      return { code: CloseCode.goingAway, reason: catalogue.draining.message };
    case 'session_revoked':
    case 'user_disabled':
      return { code: CloseCode.policyViolation, reason: 'revoked' };
    default:
      return { code: CloseCode.policyViolation, reason: truncateReason(error.message) };
  }
}

/**
 * The subprotocol wsgate selects where it speaks itself (its own endpoints, a refusal told as a
 * close code): `wsgate.v1`, else `wsgate.proxy` (a client that expected a proxied route still gets
 * a handshake it accepts), else none.
 */
function selectOwnProtocol(protocols: Set<string>): string | false {
  if (protocols.has(v1Protocol)) return v1Protocol;
  return protocols.has(proxyProtocol) ? proxyProtocol : false;
}

/** Creates a gate; see {@link Gate}. */
export function createGate(options: GateOptions): Gate {
  return new Gate(options);
}

function asWsgateError(err: unknown, log: Logger | undefined): WsgateError {
  if (isWsgateError(err)) return err;
  log?.error({ err }, 'unexpected handshake error');
  return new WsgateError('internal_error');
}

function pathOf(url: string | undefined): string {
  const q = (url ?? '').indexOf('?');
  return q === -1 ? (url ?? '') : (url ?? '').slice(0, q);
}
