import { backoffDelay, resolveBackoff, type BackoffOptions, type Random } from './backoff.js';
import { CloseCode, decideClose, type CloseStreak } from './close-codes.js';
import { WsgateClientError } from './errors.js';
import { Emitter } from './events.js';
import { systemTimers, type Timers } from '../clock.js';
import { bearerProtocolPrefix, proxyProtocol, v1Protocol } from '../protocol/subprotocols.js';
import {
  roomPattern,
  type AckFrame,
  type ClientFrame,
  type ErrorFrame,
  type ExpiringFrame,
  type JoinedFrame,
  type MessageFrame,
  type PongFrame,
  type PresenceFrame,
  type ReauthenticatedFrame,
  type WelcomeFrame,
} from '../protocol/frames.js';

/**
 * The part of the WebSocket API the client uses. The browser's `WebSocket` and the `ws` package's
 * both fit; handlers are method-shaped so their event classes are accepted as they are.
 */
export interface WebSocketLike {
  readonly readyState: number;
  /** The subprotocol the server selected, once open. */
  readonly protocol: string;
  /** Set to `'arraybuffer'` in raw mode, so that binary frames arrive alike in browsers and Node. */
  binaryType: string;
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/** A WebSocket constructor: `globalThis.WebSocket` in browsers, `ws`'s `WebSocket` in Node. */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;

/** Options of {@link WsgateClient}. Give at most one of `getToken` and `getTicket`. */
export interface WsgateClientOptions {
  /** The endpoint, e.g. `wss://chat.example.com/chat`. */
  url: string;
  /**
   * Returns a valid access token, sent as the subprotocol `wsgate.bearer.<token>`. Called before
   * the first connection, after 4419 / 4401 closes and on `expiring`, never on every reconnect.
   */
  getToken?: () => Promise<string>;
  /** Returns a single-use ticket from `POST /ws-ticket`, sent as `?token=`; called per connection. */
  getTicket?: () => Promise<string>;
  /** Defaults to `globalThis.WebSocket`; Node before 22 needs `ws`'s. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect delays; defaults `{ baseMs: 500, maxMs: 30_000 }`. */
  backoff?: BackoffOptions;
  /** Uniform [0, 1) source for the jitter; defaults to `Math.random`. */
  random?: Random;
  /** The clock and timers for reconnect delays; defaults to the platform's (tests step their own). */
  timers?: Timers;
  /**
   * `chat` (default) speaks the JSON protocol; `raw` delivers every text frame as a `text` event:
   * for the echo endpoints, and for a route that wsgate proxies to a backend (raw mode offers
   * `wsgate.proxy`, so the handshake succeeds when the backend selects no subprotocol).
   */
  protocol?: 'chat' | 'raw';
  /** Raw mode: a proxied backend's own subprotocols, offered beside wsgate's; it picks one. */
  subprotocols?: readonly string[];
}

/** `disconnected` → `connecting` → `connected`, back to `disconnected` on a drop; `closed` ends it. */
export type ClientState = 'disconnected' | 'connecting' | 'connected' | 'closed';

/** Payload of `closed`: one per socket close, saying whether (and when) the client reconnects. */
export type ClosedEvent =
  | { code: number; reason: string; willReconnect: true; delayMs: number }
  | { code: number; reason: string; willReconnect: false };

/** Payload of `stopped`: the client will not reconnect by itself. */
export interface StoppedEvent {
  code: number;
  reason: string;
}

/** Payload of `credentialError`: `getToken` / `getTicket` threw; the client keeps trying. */
export interface CredentialErrorEvent {
  error: unknown;
  phase: 'connect' | 'reauth';
}

/** Every event of {@link WsgateClient} and its payload. */
export interface ClientEvents {
  state: ClientState;
  welcome: WelcomeFrame;
  /** `history` holds only messages not delivered before (a rejoin does not repeat them). */
  joined: JoinedFrame;
  /** Each message id is delivered once per room. */
  message: MessageFrame;
  presence: PresenceFrame;
  ack: AckFrame;
  error: ErrorFrame;
  expiring: ExpiringFrame;
  reauthenticated: ReauthenticatedFrame;
  pong: PongFrame;
  /** Raw mode: each text frame. */
  text: string;
  /** Raw mode: each binary frame (a proxied backend's). */
  binary: ArrayBuffer;
  closed: ClosedEvent;
  stopped: StoppedEvent;
  credentialError: CredentialErrorEvent;
}

interface Pending<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

const clientCloseReason = 'Client closed';
/** Message ids remembered per room to drop duplicates (replays overlap at most a few hundred). */
const seenLimit = 1024;

/**
 * A wsgate WebSocket client for browsers and Node: fetches credentials through callbacks,
 * reconnects with full-jitter backoff, follows the close-code table of docs/protocol.md, re-authenticates
 * in band on `expiring`, and resumes chat rooms from the last message id it saw.
 */
export class WsgateClient extends Emitter<ClientEvents> {
  readonly #url: string;
  readonly #getToken: (() => Promise<string>) | undefined;
  readonly #getTicket: (() => Promise<string>) | undefined;
  readonly #WebSocket: WebSocketConstructor;
  readonly #backoff: Required<BackoffOptions>;
  readonly #random: Random;
  readonly #chat: boolean;
  /** The subprotocols of every handshake, before any `wsgate.bearer.<token>`. */
  readonly #offer: readonly string[];
  readonly #timers: Timers;

  #state: ClientState = 'disconnected';
  #socket: WebSocketLike | undefined;
  /** Bumped by every attempt and by close(); async work from an older epoch is dropped. */
  #epoch = 0;
  #timer: unknown;
  /** Failed attempts since the last good connection; the backoff exponent. */
  #attempt = 0;
  #streak: CloseStreak = { unauthorized: 0, expired: 0 };
  #token: string | undefined;
  #needsToken = true;
  /** Raw mode: whether the current socket has shown that it was accepted (see #onAccepted). */
  #greeted = false;
  #reauthenticating = false;
  /** The token whose `expiring` was answered: each token is replaced in band at most once. */
  #renewed: string | undefined;
  readonly #rooms = new Map<string, RoomLog>();
  readonly #sends = new Map<string, Pending<number>>();
  #pings: Pending<void>[] = [];
  #sendSeq = 0;

  constructor(options: WsgateClientOptions) {
    super();
    if (options.getToken && options.getTicket) {
      throw new TypeError('Give getToken or getTicket, not both');
    }
    const url = new URL(options.url);
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
      throw new TypeError(`url must be ws: or wss:, got ${url.protocol}`);
    }
    const ctor =
      options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!ctor) {
      throw new TypeError('No global WebSocket: pass options.WebSocket (e.g. from the ws package)');
    }
    this.#url = options.url;
    this.#getToken = options.getToken;
    this.#getTicket = options.getTicket;
    this.#WebSocket = ctor;
    this.#backoff = resolveBackoff(options.backoff);
    this.#random = options.random ?? Math.random;
    this.#chat = (options.protocol ?? 'chat') === 'chat';
    const own = checkSubprotocols(options.subprotocols ?? [], this.#chat);
    this.#offer = this.#chat ? [v1Protocol] : [...own, v1Protocol, proxyProtocol];
    this.#timers = options.timers ?? systemTimers;
  }

  /** The current state. */
  get state(): ClientState {
    return this.#state;
  }

  /** Rooms the client is in (or will rejoin on the next connection). */
  get rooms(): string[] {
    return [...this.#rooms.keys()];
  }

  /** The highest message id seen in `room`, sent as `since` when rejoining it. */
  lastMessageId(room: string): number | undefined {
    return this.#rooms.get(room)?.lastId;
  }

  /**
   * Starts connecting. A no-op while connecting or connected; while a reconnect is scheduled it
   * connects now; after `closed` it starts over with a new credential.
   */
  connect(): void {
    if (this.#state === 'connecting' || this.#state === 'connected') return;
    if (this.#state === 'closed') {
      this.#attempt = 0;
      this.#streak = { unauthorized: 0, expired: 0 };
      this.#needsToken = true;
    }
    void this.#open();
  }

  /** Closes the socket (1000) and stops for good; pending sends and pings are rejected. */
  close(): void {
    if (this.#state === 'closed') return;
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) {
      detach(socket);
      try {
        socket.close(CloseCode.normal, clientCloseReason);
      } catch {
        // Already closing; nothing more to do.
      }
    }
    this.#stop(CloseCode.normal, clientCloseReason, socket !== undefined);
  }

  /**
   * Joins `room`, and rejoins it after every reconnect with `since` = the last message id seen.
   * Allowed while disconnected: the join is sent once connected.
   */
  join(room: string): void {
    this.#requireChat('join');
    checkRoom(room);
    let log = this.#rooms.get(room);
    if (!log) {
      log = new RoomLog();
      this.#rooms.set(room, log);
    }
    this.#write(joinFrame(room, log)); // only when connected; otherwise sent on welcome
  }

  /** Leaves `room` and forgets it; its late messages are dropped. */
  leave(room: string): void {
    this.#requireChat('leave');
    checkRoom(room);
    this.#rooms.delete(room);
    this.#write({ type: 'leave', room });
  }

  /**
   * Posts `text` to `room`; resolves with the stored message id from the server's `ack`. Rejects
   * at once when not connected (`not_connected`), on an `error` frame for this send (the server's
   * code), or when the socket closes first (`disconnected`).
   */
  send(room: string, text: string): Promise<number> {
    if (!this.#chat) return Promise.reject(unsupported('send'));
    if (!roomPattern.test(room)) return Promise.reject(invalidRoom(room));
    const id = `m${++this.#sendSeq}`;
    return new Promise<number>((resolve, reject) => {
      if (!this.#write({ type: 'send', room, text, id })) return reject(notConnected());
      this.#sends.set(id, { resolve, reject });
    });
  }

  /** Sends `ping`; resolves on the `pong`. */
  ping(): Promise<void> {
    if (!this.#chat) return Promise.reject(unsupported('ping'));
    return new Promise<void>((resolve, reject) => {
      if (!this.#write({ type: 'ping' })) return reject(notConnected());
      this.#pings.push({ resolve, reject });
    });
  }

  /** Sends a text frame as it is (raw mode, or a frame the chat API does not cover). */
  sendText(data: string): void {
    if (!this.#writeRaw(data)) throw notConnected();
  }

  /** Sends a binary frame as it is (raw mode, to a proxied backend). */
  sendBinary(data: ArrayBuffer | ArrayBufferView): void {
    if (!this.#writeRaw(data)) throw notConnected();
  }

  async #open(): Promise<void> {
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    const epoch = ++this.#epoch;
    this.#setState('connecting');
    if (epoch !== this.#epoch) return;
    let target: { url: string; protocols: string[] };
    try {
      target = await this.#target();
    } catch (error) {
      if (epoch === this.#epoch) this.#credentialFailed(epoch, error);
      return;
    }
    if (epoch !== this.#epoch) return;
    let socket: WebSocketLike;
    try {
      socket = new this.#WebSocket(target.url, target.protocols);
    } catch (error) {
      // As a browser reports a connection that never opened.
      this.#closed(CloseCode.abnormal, errorText(error));
      return;
    }
    this.#socket = socket;
    this.#greeted = false;
    socket.onopen = () => {
      if (socket !== this.#socket || this.#chat) return;
      // A refusal selects wsgate.v1 (see #onRaw); any other subprotocol is a proxied backend's,
      // or wsgate.proxy for a backend that selected none: wsgate dials a backend only once the
      // handshake has passed, so the socket is accepted.
      if (socket.protocol !== v1Protocol) this.#onAccepted();
      this.#setState('connected');
    };
    if (!this.#chat) socket.binaryType = 'arraybuffer';
    socket.onmessage = (event) => {
      if (socket !== this.#socket) return;
      if (typeof event.data !== 'string') {
        if (!this.#chat && event.data instanceof ArrayBuffer) this.#onRaw('binary', event.data);
      } else if (this.#chat) this.#onFrame(event.data);
      else this.#onRaw('text', event.data);
    };
    socket.onclose = (event) => {
      if (socket !== this.#socket) return;
      this.#socket = undefined;
      this.#closed(event.code, event.reason);
    };
    // Every failure is followed by a close event, which decides what happens next.
    socket.onerror = noop;
  }

  /** The URL and subprotocols of the next handshake, with a credential fetched if one is due. */
  async #target(): Promise<{ url: string; protocols: string[] }> {
    const protocols = [...this.#offer];
    if (this.#getToken) {
      if (this.#token === undefined || this.#needsToken) {
        this.#token = checkCredential(await this.#getToken(), 'getToken');
        this.#needsToken = false;
      }
      protocols.push(bearerProtocolPrefix + this.#token);
      return { url: this.#url, protocols };
    }
    if (this.#getTicket) {
      const url = new URL(this.#url);
      url.searchParams.set('token', checkCredential(await this.#getTicket(), 'getTicket'));
      return { url: url.toString(), protocols };
    }
    return { url: this.#url, protocols };
  }

  #credentialFailed(epoch: number, error: unknown): void {
    const delayMs = this.#nextBackoff();
    this.#setState('disconnected');
    if (epoch !== this.#epoch) return;
    this.emit('credentialError', { error, phase: 'connect' });
    if (epoch !== this.#epoch) return;
    this.#schedule(delayMs);
  }

  /** After a socket closed (or could not be created): reconnect or stop, per the close code. */
  #closed(code: number, reason: string): void {
    this.#failPending('disconnected', `The connection closed (${code}) before an answer`);
    this.#reauthenticating = false;
    const decision = decideClose(code, reason, this.#streak);
    if (code === CloseCode.unauthorized) this.#streak.unauthorized += 1;
    if (code === CloseCode.expired) this.#streak.expired += 1;
    if (!decision.reconnect) return this.#stop(code, reason, true);
    if (decision.refresh) this.#needsToken = true;
    let delayMs: number;
    if (decision.delay === 'backoff') delayMs = this.#nextBackoff();
    else {
      // A server-given delay still gets some jitter, so a crowd told "3 s" does not return at once.
      delayMs = decision.delay === 'now' ? 0 : decision.delay + this.#jitter();
      this.#attempt += 1;
    }
    const epoch = this.#epoch;
    this.#setState('disconnected');
    if (epoch !== this.#epoch) return;
    this.emit('closed', { code, reason, willReconnect: true, delayMs });
    if (epoch !== this.#epoch) return;
    this.#schedule(delayMs);
  }

  #stop(code: number, reason: string, socketClosed: boolean): void {
    this.#epoch += 1;
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#failPending('disconnected', 'The client was closed before an answer');
    this.#setState('closed');
    if (socketClosed) this.emit('closed', { code, reason, willReconnect: false });
    this.emit('stopped', { code, reason });
  }

  #schedule(delayMs: number): void {
    this.#timers.clearTimeout(this.#timer);
    this.#timer = this.#timers.setTimeout(() => void this.#open(), delayMs);
  }

  #nextBackoff(): number {
    const delay = backoffDelay(this.#attempt, this.#backoff, this.#random);
    this.#attempt += 1;
    return delay;
  }

  #jitter(): number {
    return backoffDelay(0, this.#backoff, this.#random);
  }

  /** The server accepted us: the next drop starts the backoff and the streaks from zero. */
  #succeeded(): void {
    this.#attempt = 0;
    this.#streak = { unauthorized: 0, expired: 0 };
  }

  #setState(state: ClientState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.emit('state', state);
  }

  #onRaw<K extends 'text' | 'binary'>(kind: K, data: ClientEvents[K]): void {
    // A wsgate.v1 socket is upgraded even when it is about to be refused with a close code, so
    // `open` proves nothing; the seed endpoints greet first, and that is the proof of acceptance.
    this.#onAccepted();
    this.emit(kind, data);
  }

  /** Raw mode: the first sign that the current socket was accepted resets the backoff. */
  #onAccepted(): void {
    if (this.#greeted) return;
    this.#greeted = true;
    this.#succeeded();
  }

  #onFrame(data: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    if (!isRecord(parsed)) return;
    // Unknown or malformed frames are ignored, so a newer server can add frame types.
    switch (parsed.type) {
      case 'welcome':
        return this.#onWelcome(parsed as unknown as WelcomeFrame);
      case 'joined': {
        const frame = parsed as unknown as JoinedFrame;
        const log = this.#rooms.get(frame.room);
        if (!log || !Array.isArray(frame.history)) return;
        this.emit('joined', { ...frame, history: frame.history.filter((m) => log.add(m.id)) });
        return;
      }
      case 'message': {
        const frame = parsed as unknown as MessageFrame;
        if (this.#rooms.get(frame.room)?.add(frame.id)) this.emit('message', frame);
        return;
      }
      case 'presence': {
        const frame = parsed as unknown as PresenceFrame;
        if (this.#rooms.has(frame.room)) this.emit('presence', frame);
        return;
      }
      case 'ack': {
        const frame = parsed as unknown as AckFrame;
        const pending = this.#sends.get(frame.id);
        this.#sends.delete(frame.id);
        pending?.resolve(frame.msgId);
        this.emit('ack', frame);
        return;
      }
      case 'error': {
        const frame = parsed as unknown as ErrorFrame;
        if (frame.id !== undefined) {
          const pending = this.#sends.get(frame.id);
          this.#sends.delete(frame.id);
          pending?.reject(new WsgateClientError(String(frame.code), String(frame.message)));
        }
        this.emit('error', frame);
        return;
      }
      case 'expiring':
        this.emit('expiring', parsed as unknown as ExpiringFrame);
        void this.#reauthenticate();
        return;
      case 'reauthenticated':
        this.emit('reauthenticated', parsed as unknown as ReauthenticatedFrame);
        return;
      case 'pong':
        this.#pings.shift()?.resolve();
        this.emit('pong', parsed as unknown as PongFrame);
        return;
    }
  }

  #onWelcome(frame: WelcomeFrame): void {
    const epoch = this.#epoch;
    this.#succeeded();
    // Rejoin before announcing `connected`, so a listener's own join() is not sent twice.
    for (const [room, log] of this.#rooms) this.#writeFrame(joinFrame(room, log));
    this.#setState('connected');
    if (epoch !== this.#epoch) return;
    this.emit('welcome', frame);
  }

  /** On `expiring`: fetch a new token and present it in band, without dropping the socket. */
  async #reauthenticate(): Promise<void> {
    if (!this.#getToken || this.#reauthenticating) return;
    if (this.#token !== undefined && this.#renewed === this.#token) return;
    const socket = this.#socket;
    this.#reauthenticating = true;
    this.#renewed = this.#token;
    try {
      const token = checkCredential(await this.#getToken(), 'getToken');
      // The same token again renews nothing; the server closes with 4419 at its exp.
      if (token === this.#token) return;
      this.#token = token;
      this.#needsToken = false;
      if (socket === this.#socket) this.#writeFrame({ type: 'auth', token });
    } catch (error) {
      // The server closes with 4419 at expiry; that reconnect fetches a token again.
      if (socket === this.#socket) this.emit('credentialError', { error, phase: 'reauth' });
    } finally {
      if (socket === this.#socket) this.#reauthenticating = false;
    }
  }

  /** Sends a frame if connected; false if not. */
  #write(frame: ClientFrame): boolean {
    return this.#state === 'connected' && this.#writeFrame(frame);
  }

  #writeRaw(data: string | ArrayBuffer | ArrayBufferView): boolean {
    return this.#state === 'connected' && this.#sendOnSocket(data);
  }

  /** Sends on the open socket whatever the state (used before `connected` is announced). */
  #writeFrame(frame: ClientFrame): boolean {
    return this.#sendOnSocket(JSON.stringify(frame));
  }

  #sendOnSocket(data: string | ArrayBuffer | ArrayBufferView): boolean {
    const socket = this.#socket;
    if (!socket || socket.readyState !== 1) return false;
    try {
      socket.send(data);
      return true;
    } catch {
      return false;
    }
  }

  #failPending(code: 'disconnected', message: string): void {
    const sends = [...this.#sends.values()];
    const pings = this.#pings;
    this.#sends.clear();
    this.#pings = [];
    for (const pending of [...sends, ...pings])
      pending.reject(new WsgateClientError(code, message));
  }

  #requireChat(operation: string): void {
    if (!this.#chat) throw unsupported(operation);
  }
}

/**
 * Message ids seen in one room: the highest (for `since`) and a bounded window of recent ones, so
 * a replay that overlaps what was already delivered is not delivered twice.
 */
class RoomLog {
  lastId: number | undefined;
  readonly #seen = new Set<number>();
  /** Ids at or below this fell out of the window and count as seen. */
  #floor = -Infinity;

  /** Records `id`; false if it was seen before. */
  add(id: unknown): boolean {
    if (typeof id !== 'number' || !Number.isFinite(id)) return false;
    if (id <= this.#floor || this.#seen.has(id)) return false;
    this.#seen.add(id);
    if (this.#seen.size > seenLimit) {
      for (const oldest of this.#seen) {
        this.#seen.delete(oldest);
        if (oldest > this.#floor) this.#floor = oldest;
        break;
      }
    }
    if (this.lastId === undefined || id > this.lastId) this.lastId = id;
    return true;
  }
}

function joinFrame(room: string, log: RoomLog): ClientFrame {
  return log.lastId === undefined
    ? { type: 'join', room }
    : { type: 'join', room, since: log.lastId };
}

function checkRoom(room: string): void {
  if (!roomPattern.test(room)) throw invalidRoom(room);
}

/** Raw mode's `subprotocols`: tokens a browser accepts, none of them wsgate's own. */
function checkSubprotocols(protocols: readonly string[], chat: boolean): readonly string[] {
  if (protocols.length > 0 && chat) throw new TypeError("subprotocols needs protocol: 'raw'");
  for (const p of protocols) {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(p) || p.toLowerCase().startsWith('wsgate.')) {
      throw new TypeError(`Not a backend subprotocol: ${JSON.stringify(p)}`);
    }
  }
  if (new Set(protocols).size !== protocols.length) throw new TypeError('Repeated subprotocol');
  return protocols;
}

function checkCredential(value: unknown, source: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new TypeError(`${source}() must resolve to a non-empty string`);
  }
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function detach(socket: WebSocketLike): void {
  socket.onopen = noop;
  socket.onmessage = noop;
  socket.onclose = noop;
  // Kept as a no-op, never null: `ws` throws an 'error' that has no listener.
  socket.onerror = noop;
}

function noop(): void {}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function notConnected(): WsgateClientError {
  return new WsgateClientError('not_connected', 'The client is not connected');
}

function unsupported(operation: string): WsgateClientError {
  return new WsgateClientError('unsupported', `${operation}() needs protocol: 'chat'`);
}

function invalidRoom(room: string): WsgateClientError {
  return new WsgateClientError('invalid_room', `Not a room name: ${JSON.stringify(room)}`);
}
