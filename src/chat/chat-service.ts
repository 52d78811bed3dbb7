import type { WebSocket, RawData } from 'ws';
import type { Duplex } from 'node:stream';
import {
  closeSocket,
  closeWithError,
  framePayload,
  frameWriter,
  messageText,
  textFrame,
} from '../sockets/io.js';
import { WsgateError } from '../errors.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { Logger } from 'pino';
import type { Clock, Timers } from '../clock.js';
import type { ChatMessage, Storage } from '../storage/types.js';
import type { Principal } from '../credentials/principal.js';
import type { SocketControl } from '../handshake/gate.js';
import type { JoinedFrame, MessageFrame, PresenceFrame } from '../protocol/frames.js';
import { Rooms, type RoomMember } from '../rooms/rooms.js';
import { TokenBuckets } from '../token-bucket.js';
import {
  FrameError,
  messageFrame,
  parseClientFrame,
  type ClientFrame,
  type ServerFrame,
} from './protocol.js';

export interface ChatOptions {
  readonly storage: Storage;
  readonly clock: Clock;
  readonly log?: Logger;
  /** Messages in a `joined` frame. */
  readonly historyLimit?: number;
  /** Most messages replayed for `since`. */
  readonly replayLimit?: number;
  /** Presence changes are batched per room over this window. */
  readonly presenceIntervalMs?: number;
  /** The timers of the presence batches (default Node's, unref'd); tests step their own. */
  readonly timers?: Timers;
  readonly maxRoomsPerConnection?: number;
  /** Bad frames tolerated per connection before it is closed with 4400. */
  readonly maxErrors?: number;
  /** Cluster mode: handed to the rooms, which tell it what to publish to the other nodes. */
  readonly relay?: (frame: MessageFrame | PresenceFrame) => void;
  /** Told how many frames each write sent (for metrics). */
  readonly onSent?: (count: number) => void;
  /** Unsent bytes a member may pile up before it is closed with 1013 (a slow consumer). */
  readonly maxBufferedBytes?: number;
  /** Live rooms (with members, on any node) at most; joining a new one beyond is refused. */
  readonly maxRooms?: number;
  /** New rooms one user may create per minute (all at once at most). */
  readonly roomCreationsPerMinute?: number;
  /** Rooms listed in `welcome` at most (`general` and the busiest live rooms). */
  readonly welcomeRooms?: number;
  /**
   * Bytes of `joined` frames (history, replay, members) one user may be sent per minute, all at
   * once at most: leaving and joining again, or reconnecting, re-reads the history each time.
   */
  readonly joinedBytesPerMinute?: number;
}

interface Member extends RoomMember {
  readonly ws: WebSocket;
  /** Where broadcast frames are written, framed once for the whole room (see `frameWriter`). */
  readonly socket: Duplex | undefined;
  /** Scopes are read from here on each frame: an in-band re-authentication may change them. */
  readonly control: SocketControl;
  errors: number;
  /** Frames of one connection are handled one after another, in the order they arrived. */
  queue: Promise<void>;
  /** While a join reads the room's history: the frames that arrive meanwhile, sent after it. */
  held: { frames: Buffer[]; bytes: number } | undefined;
}

export const defaultRoom = 'general';

/**
 * The chat on `/chat`: frame handling over {@link Rooms} and the storage interface — rooms
 * created on join, messages persisted, history and `since` replay, acks, per-message scope checks.
 */
export class ChatService {
  readonly #o: Required<Omit<ChatOptions, 'log' | 'onSent' | 'relay' | 'timers'>> &
    Pick<ChatOptions, 'log' | 'onSent' | 'relay' | 'timers'>;
  /** The rooms of this node; the cluster feeds them what other nodes publish. */
  readonly rooms: Rooms<Member>;
  readonly #creations: TokenBuckets;
  readonly #joinedBytes: TokenBuckets;

  constructor(options: ChatOptions) {
    this.#o = {
      historyLimit: 50,
      replayLimit: 500,
      presenceIntervalMs: 100,
      maxRoomsPerConnection: 100,
      maxErrors: 20,
      maxBufferedBytes: 1024 * 1024,
      maxRooms: 1000,
      roomCreationsPerMinute: 30,
      welcomeRooms: 100,
      joinedBytesPerMinute: 4 * 1024 * 1024,
      ...options,
    };
    const perMinute = this.#o.roomCreationsPerMinute;
    this.#creations = new TokenBuckets({ rate: perMinute / 60, burst: perMinute });
    const bytes = this.#o.joinedBytesPerMinute;
    this.#joinedBytes = new TokenBuckets({ rate: bytes / 60, burst: bytes });
    const maxBuffered = this.#o.maxBufferedBytes;
    this.rooms = new Rooms<Member>({
      // Per member of every broadcast: the slow-consumer check and one write of the shared frame.
      write: (member, frame) => {
        // A member whose join is reading the room's history holds what arrives meanwhile.
        if (member.held !== undefined) return this.#write(member, framePayload(frame));
        const { ws } = member;
        if (ws.readyState !== ws.OPEN) return;
        if (ws.bufferedAmount > maxBuffered)
          return closeSocket(ws, CloseCode.tryAgainLater, 'Slow consumer');
        if (member.socket) member.socket.write(frame);
        else ws.send(framePayload(frame), { binary: false });
      },
      frame: textFrame,
      replay: async (room, afterId) =>
        (await this.#o.storage.listMessages(room, { afterId, limit: this.#o.replayLimit })).map(
          messageFrame,
        ),
      presenceIntervalMs: this.#o.presenceIntervalMs,
      ...(this.#o.timers === undefined ? {} : { timers: this.#o.timers }),
      ...(this.#o.relay === undefined ? {} : { relay: this.#o.relay }),
      ...(this.#o.onSent === undefined ? {} : { onSent: this.#o.onSent }),
    });
  }

  /** Nothing to load: `welcome` lists live rooms only, and history stays in storage. */
  async warm(): Promise<void> {}

  /** Rooms with members on this node or another, and `general`. */
  #liveRooms(): Set<string> {
    return new Set([defaultRoom, ...this.rooms.live()]);
  }

  /**
   * What `welcome` lists: `general` and the live rooms with the most members here, at most
   * `welcomeRooms` of them, by name. Empty rooms are gone from it; their history is not.
   */
  #welcomeRooms(): string[] {
    const size = (name: string) => this.rooms.userCount(name);
    const others = [...this.#liveRooms()]
      .filter((name) => name !== defaultRoom)
      .sort((a, b) => size(b) - size(a) || (a < b ? -1 : 1))
      .slice(0, Math.max(0, this.#o.welcomeRooms - 1));
    return [defaultRoom, ...others].sort();
  }

  close(): void {
    this.rooms.close();
  }

  /** The gate's connection handler for `/chat`. */
  readonly handle = (
    ws: WebSocket,
    principal: Principal,
    _request: unknown,
    control: SocketControl,
  ): void => {
    if (principal.username === null)
      return closeWithError(ws, new WsgateError('credential_missing'));
    const member: Member = {
      ws,
      socket: frameWriter(ws),
      user: principal.username,
      control,
      rooms: new Set(),
      errors: 0,
      queue: Promise.resolve(),
      held: undefined,
    };
    this.#send(member, { type: 'welcome', user: member.user, rooms: this.#welcomeRooms() });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      // #onFrame and #fail never throw, so the chain never breaks.
      member.queue = member.queue.then(() =>
        isBinary
          ? this.#fail(member, new FrameError('invalid_request', 'Frames are JSON text'))
          : this.#onFrame(member, messageText(data)),
      );
    });
    ws.on('close', () => this.rooms.leaveAll(member));
  };

  async #onFrame(member: Member, text: string): Promise<void> {
    // Frames queued before the server closed the socket (revoked, expired, flooding) are dropped.
    if (member.ws.readyState !== member.ws.OPEN) return;
    let frame: ClientFrame;
    try {
      frame = parseClientFrame(text);
    } catch (err) {
      return this.#fail(member, err);
    }
    try {
      switch (frame.type) {
        case 'ping':
          return this.#send(member, { type: 'pong' });
        case 'join':
          return await this.#join(member, frame.room, frame.since);
        case 'leave':
          this.rooms.leave(member, frame.room);
          return;
        case 'send':
          return await this.#post(member, frame.room, frame.text, frame.id);
        case 'auth':
          return await member.control.reauthenticate(frame.token);
      }
    } catch (err) {
      // A send that failed (e.g. the database is down) still names its id, so the sender can tell.
      this.#fail(member, err, frame.type === 'send' ? frame.id : undefined);
    }
  }

  async #join(member: Member, name: string, since: number | undefined): Promise<void> {
    if (!member.control.principal.scopes.has('chat:read'))
      throw new FrameError('insufficient_scope', 'Joining needs chat:read');
    // Every `joined` is paid for from the user's byte budget: without it, a leave and a join, or
    // a new connection, each read and sent up to 500 messages again (hundreds of MB in seconds).
    const wait = this.#joinedBytes.wait(member.user, this.#o.clock());
    if (wait > 0) {
      throw new FrameError(
        'rate_limited',
        `At most ${this.#o.joinedBytesPerMinute} bytes of joined frames a minute; retry after ${wait}s`,
      );
    }
    if (member.rooms.has(name)) {
      // Already a member: say so again, without the history (re-sending it on every repeated
      // join let a few sockets pull hundreds of megabytes); `since` pages forward.
      const history =
        since === undefined
          ? []
          : await this.#o.storage.listMessages(name, {
              afterId: since,
              limit: this.#o.replayLimit,
            });
      return this.#sendJoined(member, {
        type: 'joined',
        room: name,
        members: this.rooms.membersOf(name),
        history: history.map(messageFrame),
      });
    }
    if (member.rooms.size >= this.#o.maxRoomsPerConnection) {
      throw new FrameError(
        'too_many_rooms',
        `At most ${this.#o.maxRoomsPerConnection} rooms per connection`,
      );
    }
    if (!this.#liveRooms().has(name)) this.#checkCreation(member.user);
    // In the room before its history is read, so that no message falls between the two: one
    // stored before the read is in the history, one published after the join reaches the member.
    // What arrives meanwhile waits until the history is sent, and what the history holds is
    // not sent again.
    this.rooms.join(member, name);
    const held = { frames: [] as Buffer[], bytes: 0 };
    member.held = held;
    let history: ChatMessage[];
    try {
      history = await this.#o.storage.listMessages(name, {
        ...(since === undefined ? {} : { afterId: since }),
        limit: since === undefined ? this.#o.historyLimit : this.#o.replayLimit,
      });
    } catch (err) {
      member.held = undefined;
      this.rooms.leave(member, name);
      this.#release(member, held.frames, (frame) => frame.room !== name);
      throw err;
    }
    member.held = undefined;
    this.#sendJoined(member, {
      type: 'joined',
      room: name,
      members: this.rooms.membersOf(name),
      history: history.map(messageFrame),
    });
    const sent = new Set(history.map((m) => m.id));
    this.#release(
      member,
      held.frames,
      (frame) => frame.room !== name || frame.type !== 'message' || !sent.has(frame.id),
    );
  }

  /** Sends the frames held during a join that `keep` accepts, in the order they arrived. */
  #release(
    member: Member,
    frames: readonly Buffer[],
    keep: (frame: MessageFrame | PresenceFrame) => boolean,
  ): void {
    for (const data of frames) {
      if (keep(JSON.parse(data.toString('utf8')) as MessageFrame | PresenceFrame))
        this.#write(member, data);
    }
  }

  /** Joining a room that is not live creates it: bounded overall and per user. */
  #checkCreation(user: string): void {
    if (this.#liveRooms().size >= this.#o.maxRooms + 1) {
      throw new FrameError('too_many_rooms', `At most ${this.#o.maxRooms} rooms exist at once`);
    }
    if (this.#creations.take(user, this.#o.clock()) > 0) {
      throw new FrameError(
        'rate_limited',
        `At most ${this.#o.roomCreationsPerMinute} new rooms a minute`,
      );
    }
  }

  async #post(member: Member, name: string, text: string, id: string | undefined): Promise<void> {
    if (!member.control.principal.scopes.has('chat:write'))
      throw new FrameError('insufficient_scope', 'Sending needs chat:write', id);
    if (!member.rooms.has(name))
      throw new FrameError('not_joined', 'Join the room before sending to it', id);
    const stored = await this.#o.storage.appendMessage({
      room: name,
      username: member.user,
      text,
      ts: this.#o.clock(),
    });
    if (id !== undefined) this.#send(member, { type: 'ack', id, msgId: stored.id });
    this.rooms.publish(messageFrame(stored));
  }

  /** Sends a `joined` frame and charges its bytes to the user's budget. */
  #sendJoined(member: Member, frame: JoinedFrame): void {
    const data = Buffer.from(JSON.stringify(frame));
    this.#joinedBytes.spend(member.user, this.#o.clock(), data.length);
    this.#write(member, data);
    this.#o.onSent?.(1);
  }

  #send(member: Member, frame: ServerFrame): void {
    this.#write(member, Buffer.from(JSON.stringify(frame)));
    this.#o.onSent?.(1);
  }

  #write(member: Member, data: Buffer): void {
    const { ws, held } = member;
    if (ws.readyState !== ws.OPEN) return;
    if (held !== undefined) {
      held.frames.push(data);
      held.bytes += data.length;
      if (held.bytes > this.#o.maxBufferedBytes)
        closeSocket(ws, CloseCode.tryAgainLater, 'Slow consumer');
      return;
    }
    if (ws.bufferedAmount > this.#o.maxBufferedBytes)
      return closeSocket(ws, CloseCode.tryAgainLater, 'Slow consumer');
    ws.send(data, { binary: false });
  }

  #fail(member: Member, err: unknown, id?: string): void {
    const error =
      err instanceof FrameError
        ? err
        : (this.#o.log?.error({ err }, 'chat frame failed'),
          new FrameError('internal_error', 'Internal error', id));
    this.#send(member, {
      type: 'error',
      code: error.code,
      message: error.message,
      ...(error.id === undefined ? {} : { id: error.id }),
    });
    member.errors += 1;
    if (member.errors > this.#o.maxErrors)
      closeSocket(member.ws, CloseCode.malformed, 'Too many malformed frames');
  }
}
