import type { WebSocket } from 'ws';
import type { Clock } from '../clock.js';
import { WsgateError, type ErrorCode } from '../errors.js';
import { principalKey, sessionKey, type Principal } from '../credentials/principal.js';
import type { TokenClaims } from '../tokens/claims.js';
import { DeadlineQueue } from './deadline-queue.js';
import { closeWithError, sendJson } from './io.js';

/** One open, authenticated socket as the registry knows it. */
export interface LiveSocket {
  readonly ws: WebSocket;
  /** The client offered `wsgate.v1`: it gets `expiring` notices and may re-authenticate in band. */
  readonly v1: boolean;
  /** Replaced by an in-band re-authentication. */
  principal: Principal;
  /** Answered the last heartbeat ping. */
  alive: boolean;
  /** The deadline the queue should act on next; queue entries for other times are stale. */
  next: number | undefined;
  warned: boolean;
  /** Set for a proxied socket: kicks and heartbeats go through its pipe to both sides. */
  readonly upstream?: UpstreamLink;
}

/** How the registry reaches the upstream of a proxied socket. */
export interface UpstreamLink {
  /** Closes the client with the error's close code and the upstream with its own. */
  close(error: WsgateError): void;
  /** One heartbeat on both legs. */
  beat(): void;
}

export interface RegistryOptions {
  readonly clock: Clock;
  /** `wsgate.v1` sockets hear `{"type":"expiring"}` this long before their token's `exp`. */
  readonly warnBeforeMs?: number;
  /** Told of every socket closed by a kick or expiry (for audit and metrics). */
  readonly onClose?: (live: LiveSocket, code: ErrorCode) => void;
}

/**
 * Every open socket by user and session, so that a revocation closes exactly the right ones, and
 * their expiry deadlines in one queue with one timer.
 */
export class SocketRegistry {
  readonly #all = new Map<WebSocket, LiveSocket>();
  readonly #bySession = new Map<string, Set<LiveSocket>>();
  readonly #byUser = new Map<string, Set<LiveSocket>>();
  readonly #queue = new DeadlineQueue<LiveSocket>();
  readonly #clock: Clock;
  readonly #warnBeforeMs: number;
  readonly #onClose: RegistryOptions['onClose'];
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  /**
   * The `close` and `pong` listeners of every socket, made once: `ws` calls them on the socket, so
   * no socket needs listeners of its own (closures that would each keep their scope alive).
   */
  readonly #closed: (this: WebSocket) => void;
  readonly #ponged: (this: WebSocket) => void;

  constructor(options: RegistryOptions) {
    this.#clock = options.clock;
    this.#warnBeforeMs = options.warnBeforeMs ?? 60_000;
    this.#onClose = options.onClose;
    const all = this.#all;
    const remove = (live: LiveSocket) => this.#remove(live);
    this.#closed = function (this: WebSocket) {
      const live = all.get(this);
      if (live) remove(live);
    };
    this.#ponged = function (this: WebSocket) {
      const live = all.get(this);
      if (live) live.alive = true;
    };
  }

  get size(): number {
    return this.#all.size;
  }

  [Symbol.iterator](): IterableIterator<LiveSocket> {
    return this.#all.values();
  }

  /** The entry of an open socket. */
  get(ws: WebSocket): LiveSocket | undefined {
    return this.#all.get(ws);
  }

  /** Open sockets of a user (for the per-user connection limit). */
  countUser(username: string): number {
    return this.#byUser.get(username)?.size ?? 0;
  }

  add(ws: WebSocket, principal: Principal, v1: boolean, upstream?: UpstreamLink): LiveSocket {
    const live: LiveSocket = {
      ws,
      v1,
      principal,
      alive: true,
      next: undefined,
      warned: false,
      ...(upstream === undefined ? {} : { upstream }),
    };
    this.#all.set(ws, live);
    this.#index(live);
    this.#schedule(live);
    ws.on('close', this.#closed);
    // A proxied socket's pipe answers and checks the heartbeat of both legs itself.
    if (upstream === undefined) ws.on('pong', this.#ponged);
    return live;
  }

  /** Swaps in the principal of a new token (in-band re-authentication) and its expiry. */
  renew(live: LiveSocket, principal: Principal): void {
    this.#unindex(live);
    // `expiring` is sent once per token: the same token again (same exp) is not warned twice.
    if (principal.claims?.exp !== live.principal.claims?.exp) live.warned = false;
    live.principal = principal;
    this.#index(live);
    this.#schedule(live);
  }

  /** Closes every socket of these sessions; returns how many were open. */
  closeSessions(sessionIds: Iterable<string>, code: ErrorCode, reason?: string): number {
    let closed = 0;
    for (const id of sessionIds) {
      for (const live of [...(this.#bySession.get(id) ?? [])]) {
        this.#close(live, code, reason);
        closed += 1;
      }
    }
    return closed;
  }

  /** Closes every socket of a user (those whose claims `which` selects); returns how many. */
  closeUser(
    username: string,
    code: ErrorCode,
    reason?: string,
    which?: (claims: TokenClaims) => boolean,
  ): number {
    const sockets = [...(this.#byUser.get(username) ?? [])].filter(
      (live) =>
        which === undefined || (live.principal.claims !== null && which(live.principal.claims)),
    );
    for (const live of sockets) this.#close(live, code, reason);
    return sockets.length;
  }

  /** Sends `expiring` notices and closes expired sockets whose time has come. */
  checkExpiry(): void {
    const now = this.#clock();
    for (const { at, item: live } of this.#queue.popDue(now)) {
      if (live.next !== at || this.#all.get(live.ws) !== live) continue; // a stale entry
      const exp = (live.principal.claims?.exp ?? Infinity) * 1000;
      if (exp <= now) {
        live.next = undefined;
        this.#close(live, 'token_expired');
      } else {
        live.warned = true;
        sendJson(live.ws, { type: 'expiring', in: Math.max(1, Math.ceil((exp - now) / 1000)) });
        this.#schedule(live);
      }
    }
    this.#arm();
  }

  #close(live: LiveSocket, code: ErrorCode, reason?: string): void {
    this.#remove(live);
    const error = new WsgateError(code, reason);
    this.#onClose?.(live, code);
    if (live.upstream) live.upstream.close(error);
    else closeWithError(live.ws, error);
  }

  #schedule(live: LiveSocket): void {
    const exp = live.principal.claims?.exp;
    if (exp === undefined) {
      live.next = undefined;
      return;
    }
    const expMs = exp * 1000;
    // min(warning, half the token's lifetime): a token shorter than twice the warning is warned
    // halfway, not at once — else every in-band re-auth would draw the next `expiring` at once.
    const iat = live.principal.claims?.iat;
    const lifetimeMs = iat === undefined ? Infinity : (exp - iat) * 1000;
    const warnAt = expMs - Math.min(this.#warnBeforeMs, lifetimeMs / 2);
    // A socket that arrives (or re-authenticates) inside the warning window is warned at once.
    live.next = live.v1 && !live.warned ? Math.min(Math.max(warnAt, this.#clock()), expMs) : expMs;
    this.#queue.push(live.next, live);
    this.#arm();
  }

  /** Keeps one timer, set for the earliest deadline. */
  #arm(): void {
    const at = this.#queue.peek();
    if (at === undefined || at >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    // Timers are capped at ~24.8 days; a later deadline just wakes up early and re-arms.
    const delay = Math.min(Math.max(0, at - this.#clock()), 2 ** 31 - 1);
    this.#timer = setTimeout(() => {
      this.#timerAt = Infinity;
      this.checkExpiry();
    }, delay);
    this.#timer.unref();
  }

  #index(live: LiveSocket): void {
    const { claims } = live.principal;
    const user = principalKey(live.principal);
    if (claims) addTo(this.#bySession, sessionKey(claims), live);
    if (user !== null) addTo(this.#byUser, user, live);
  }

  #unindex(live: LiveSocket): void {
    const { claims } = live.principal;
    const user = principalKey(live.principal);
    if (claims) removeFrom(this.#bySession, sessionKey(claims), live);
    if (user !== null) removeFrom(this.#byUser, user, live);
  }

  #remove(live: LiveSocket): void {
    if (this.#all.get(live.ws) !== live) return;
    this.#all.delete(live.ws);
    this.#unindex(live);
  }

  /** Stops the expiry timer (the server is closing). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timerAt = Infinity;
  }
}

function addTo(index: Map<string, Set<LiveSocket>>, key: string, live: LiveSocket): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(live);
}

function removeFrom(index: Map<string, Set<LiveSocket>>, key: string, live: LiveSocket): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(live);
  if (set.size === 0) index.delete(key);
}
