import { randomBytes } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';
import { CloseCode } from '../protocol/close-codes.js';

/** Which way a frame went: `up` from the client to the upstream, `down` back. */
export type Direction = 'up' | 'down';

export interface PipeOptions {
  /** Stop reading a side while the other has more than this many bytes unsent (1 MiB). */
  readonly highWaterMark?: number;
  /** Resume reading once the other side's unsent bytes fall under this (256 KiB). */
  readonly lowWaterMark?: number;
  /** Told of every frame passed on (for metrics; keep it cheap). */
  readonly onFrame?: (direction: Direction, bytes: number) => void;
  /** Told once, when both legs are closed. */
  readonly onEnd?: (end: PipeEnd) => void;
}

export interface CloseFrame {
  readonly code: number;
  readonly reason: string;
}

/** How a proxied socket ended: what each side was told, and which side ended it. */
export interface PipeEnd {
  readonly by: 'client' | 'upstream' | 'wsgate';
  readonly client: CloseFrame;
  readonly upstream: CloseFrame;
}

export const pipeDefaults = { highWaterMark: 1024 * 1024, lowWaterMark: 256 * 1024 };

/**
 * The payload of wsgate's own heartbeat pings: their pongs are wsgate's to read, while every
 * other ping and pong passes through to the other side.
 */
export const heartbeatPayload = randomBytes(8);

/** The close a client is sent when the upstream closed with `code` (docs/proxy.md). */
export function clientCloseFor(code: number, reason: string): CloseFrame {
  if (code === CloseCode.noStatus) return { code: CloseCode.normal, reason };
  if (code === CloseCode.abnormal || code === CloseCode.tlsFailed)
    return { code: CloseCode.badGateway, reason: 'Upstream connection lost' };
  return { code, reason };
}

/** The close an upstream is sent when the client closed with `code` (docs/proxy.md). */
export function upstreamCloseFor(code: number, reason: string): CloseFrame {
  if (code === CloseCode.noStatus) return { code: CloseCode.normal, reason };
  if (code === CloseCode.abnormal || code === CloseCode.tlsFailed)
    return { code: CloseCode.goingAway, reason: 'Client connection lost' };
  return { code, reason };
}

/** The close code `ws` sent for a protocol error of the peer (its error codes are public). */
function protocolErrorClose(err: NodeJS.ErrnoException): CloseFrame | undefined {
  switch (err.code) {
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
      return { code: CloseCode.messageTooBig, reason: 'Message too big' };
    case 'WS_ERR_INVALID_UTF8':
      return { code: CloseCode.invalidPayload, reason: 'Invalid UTF-8' };
    case undefined:
      return undefined;
    default:
      return err.code.startsWith('WS_ERR_')
        ? { code: CloseCode.protocolError, reason: 'Protocol error' }
        : undefined;
  }
}

interface Leg {
  readonly ws: WebSocket;
  readonly name: 'client' | 'upstream';
  /** Bytes handed to this leg and not yet written to its socket. */
  unsent: number;
  /** Answered the last heartbeat. */
  alive: boolean;
  /** Reading from this leg is paused because the other leg is behind. */
  held: boolean;
  closed: CloseFrame | undefined;
}

/**
 * Joins an accepted client socket to its upstream socket: every message, ping and pong passes
 * unchanged both ways; a side whose peer is behind by more than the high-water mark is read no
 * further until the peer catches up; a close on either side is mirrored to the other, and
 * when either side vanishes the other is closed, so that no socket outlives its partner.
 */
export class Pipe {
  readonly #client: Leg;
  readonly #upstream: Leg;
  readonly #high: number;
  readonly #low: number;
  readonly #onFrame: PipeOptions['onFrame'];
  readonly #onEnd: PipeOptions['onEnd'];
  #by: PipeEnd['by'] | undefined;
  #sent: { client?: CloseFrame; upstream?: CloseFrame } = {};

  constructor(client: WebSocket, upstream: WebSocket, options: PipeOptions = {}) {
    this.#high = options.highWaterMark ?? pipeDefaults.highWaterMark;
    this.#low = options.lowWaterMark ?? pipeDefaults.lowWaterMark;
    this.#onFrame = options.onFrame;
    this.#onEnd = options.onEnd;
    this.#client = {
      ws: client,
      name: 'client',
      unsent: 0,
      alive: true,
      held: false,
      closed: undefined,
    };
    this.#upstream = {
      ws: upstream,
      name: 'upstream',
      unsent: 0,
      alive: true,
      held: false,
      closed: undefined,
    };
    this.#wire(this.#client, this.#upstream, 'up');
    this.#wire(this.#upstream, this.#client, 'down');
    // The dial leaves the upstream paused until something listens.
    upstream.resume();
  }

  /** Bytes waiting to be written to the client and to the upstream. */
  get unsent(): { client: number; upstream: number } {
    return { client: this.#client.unsent, upstream: this.#upstream.unsent };
  }

  /** Which sides are not being read because their partner is behind. */
  get held(): { client: boolean; upstream: boolean } {
    return { client: this.#client.held, upstream: this.#upstream.held };
  }

  /** Which sides answered the last heartbeat. */
  get alive(): { client: boolean; upstream: boolean } {
    return { client: this.#client.alive, upstream: this.#upstream.alive };
  }

  /** True once either side has begun to close. */
  get closing(): boolean {
    return this.#by !== undefined;
  }

  /**
   * One heartbeat on both legs: a leg that has not answered the previous one is dropped (and its
   * partner told, as for any lost connection); the others are pinged.
   */
  beat(): void {
    for (const leg of [this.#client, this.#upstream]) {
      if (leg.closed || leg.ws.readyState !== leg.ws.OPEN) continue;
      if (!leg.alive) {
        leg.ws.terminate();
        continue;
      }
      leg.alive = false;
      leg.ws.ping(heartbeatPayload);
    }
  }

  /**
   * Ends the proxied socket from wsgate's side (expiry, revocation, a limit, drain), with a close
   * for each side. Later closes from either side change nothing.
   */
  close(client: CloseFrame, upstream: CloseFrame = client): void {
    if (this.#by !== undefined) return;
    this.#by = 'wsgate';
    this.#closeLeg(this.#client, client);
    this.#closeLeg(this.#upstream, upstream);
  }

  #wire(from: Leg, to: Leg, direction: Direction): void {
    const { ws } = from;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (this.#by !== undefined) return;
      this.#send(from, to, data as Buffer, isBinary, direction);
    });
    ws.on('ping', (data: Buffer) => {
      if (this.#by !== undefined || to.ws.readyState !== to.ws.OPEN) return;
      this.#onFrame?.(direction, data.length);
      to.ws.ping(data);
    });
    ws.on('pong', (data: Buffer) => {
      if (data.equals(heartbeatPayload)) {
        from.alive = true;
        return;
      }
      if (this.#by !== undefined || to.ws.readyState !== to.ws.OPEN) return;
      this.#onFrame?.(direction, data.length);
      to.ws.pong(data);
    });
    ws.on('error', (err: NodeJS.ErrnoException) => {
      // `ws` has already sent the offender its close; the partner hears why.
      const close = protocolErrorClose(err);
      if (close === undefined || this.#by !== undefined) return;
      this.#by = from.name;
      this.#closeLeg(
        to,
        from.name === 'client'
          ? close
          : { code: CloseCode.badGateway, reason: 'Upstream protocol error' },
      );
    });
    ws.on('close', (code: number, reason: Buffer) => {
      from.closed = { code, reason: reason.toString('utf8') };
      if (this.#by === undefined) {
        this.#by = from.name;
        const text = reason.toString('utf8');
        this.#closeLeg(
          to,
          from.name === 'client' ? upstreamCloseFor(code, text) : clientCloseFor(code, text),
        );
      }
      // The partner may be held waiting for this side to drain; it must read its close.
      this.#release(to);
      this.#finish();
    });
  }

  #send(from: Leg, to: Leg, data: Buffer, isBinary: boolean, direction: Direction): void {
    if (to.ws.readyState !== to.ws.OPEN) return;
    const size = data.length;
    this.#onFrame?.(direction, size);
    to.unsent += size;
    to.ws.send(data, { binary: isBinary }, () => {
      to.unsent -= size;
      if (from.held && to.unsent < this.#low) this.#release(from);
    });
    if (!from.held && to.unsent > this.#high) {
      from.held = true;
      from.ws.pause();
    }
  }

  #release(leg: Leg): void {
    if (!leg.held) return;
    leg.held = false;
    leg.ws.resume();
  }

  #closeLeg(leg: Leg, frame: CloseFrame): void {
    this.#sent[leg.name] = frame;
    this.#release(leg);
    const { ws } = leg;
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING)
      ws.close(frame.code, frame.reason);
  }

  #finish(): void {
    if (!this.#client.closed || !this.#upstream.closed) return;
    this.#onEnd?.({
      by: this.#by ?? 'wsgate',
      client: this.#sent.client ?? this.#client.closed,
      upstream: this.#sent.upstream ?? this.#upstream.closed,
    });
  }
}
