import type { WebSocket, RawData } from 'ws';
import { closeSocket, messageText } from '../sockets/io.js';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Storage } from '../storage/types.js';
import type { Principal } from '../credentials/principal.js';
import type { SocketControl } from '../handshake/gate.js';
import type { MessageFrame, PresenceFrame } from '../protocol/frames.js';
import { TokenBuckets } from '../handshake/token-bucket.js';
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
  readonly maxRoomsPerConnection?: number;
  /** Bad frames tolerated per connection before it is closed with 4400. */
  readonly maxErrors?: number;
  /**
   * Cluster mode: told of each message stored and each presence change made on this node, to
   * publish to the other nodes, which hand them to {@link ChatService.deliverRemote}.
   */
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
}

interface Member {
  readonly ws: WebSocket;
  readonly user: string;
  /** Scopes are read from here on each frame: an in-band re-authentication may change them. */
  readonly control: SocketControl;
  readonly rooms: Set<string>;
  errors: number;
  /** Frames of one connection are handled one after another, in the order they arrived. */
  queue: Promise<void>;
}

interface Room {
  readonly members: Set<Member>;
  /** Sockets per user in the room: presence is about users, not sockets. */
  readonly users: Map<string, number>;
  /**
   * Users whose presence changed in the current window: their presence before it, and how often
   * it flipped (a join and a leave inside one window are two flips, and still a visit to show).
   */
  readonly pending: Map<string, { before: boolean; last: boolean; flips: number }>;
}

export const defaultRoom = 'general';

/**
 * The chat on `/chat`: rooms created on join, messages persisted through the storage interface,
 * history and `since` replay, presence batched per room, acks, and per-message scope checks.
 */
export class ChatService {
  readonly #o: Required<Omit<ChatOptions, 'log' | 'onSent' | 'relay'>> &
    Pick<ChatOptions, 'log' | 'onSent' | 'relay'>;
  /** Ids of the messages recently sent into each room from this node, to resync without repeats. */
  readonly #sent = new Map<string, { ids: Set<number>; max: number }>();
  /** While the cluster bus is down: per room, the highest id sent before it went down. */
  #outage: Map<string, number> | undefined;
  /** Users present in a room on other nodes: room → user → node ids. */
  readonly #remote = new Map<string, Map<string, Set<string>>>();
  readonly #rooms = new Map<string, Room>();
  readonly #creations: TokenBuckets;
  readonly #flush: NodeJS.Timeout;
  #dirty = new Set<string>();

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
      ...options,
    };
    const perMinute = this.#o.roomCreationsPerMinute;
    this.#creations = new TokenBuckets({ rate: perMinute / 60, burst: perMinute });
    this.#flush = setInterval(() => this.#flushPresence(), this.#o.presenceIntervalMs);
    this.#flush.unref();
  }

  /** Nothing to load: `welcome` lists live rooms only, and history stays in storage. */
  async warm(): Promise<void> {}

  /** Rooms with members on this node or another, and `general`. */
  #liveRooms(): Set<string> {
    return new Set([defaultRoom, ...this.#rooms.keys(), ...this.#remote.keys()]);
  }

  /**
   * What `welcome` lists: `general` and the live rooms with the most members here, at most
   * `welcomeRooms` of them, by name. Empty rooms are gone from it; their history is not.
   */
  #welcomeRooms(): string[] {
    const size = (name: string) =>
      (this.#rooms.get(name)?.users.size ?? 0) + (this.#remote.get(name)?.size ?? 0);
    const others = [...this.#liveRooms()]
      .filter((name) => name !== defaultRoom)
      .sort((a, b) => size(b) - size(a) || (a < b ? -1 : 1))
      .slice(0, Math.max(0, this.#o.welcomeRooms - 1));
    return [defaultRoom, ...others].sort();
  }

  close(): void {
    clearInterval(this.#flush);
  }

  /** The gate's connection handler for `/chat`. */
  readonly handle = (
    ws: WebSocket,
    principal: Principal,
    _request: unknown,
    control: SocketControl,
  ): void => {
    if (principal.username === null) return closeSocket(ws, 4401, 'Not authenticated');
    const member: Member = {
      ws,
      user: principal.username,
      control,
      rooms: new Set(),
      errors: 0,
      queue: Promise.resolve(),
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
    ws.on('close', () => {
      for (const room of member.rooms) this.#leave(member, room);
    });
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
          if (member.rooms.has(frame.room)) this.#leave(member, frame.room);
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
    if (member.rooms.has(name)) {
      // Already a member: say so again, without the history (re-sending it on every repeated
      // join let a few sockets pull hundreds of megabytes).
      return this.#send(member, {
        type: 'joined',
        room: name,
        members: this.#membersOf(name),
        history: [],
      });
    }
    if (member.rooms.size >= this.#o.maxRoomsPerConnection) {
      throw new FrameError(
        'too_many_rooms',
        `At most ${this.#o.maxRoomsPerConnection} rooms per connection`,
      );
    }
    if (!this.#liveRooms().has(name)) this.#checkCreation(member.user);
    const history = await this.#o.storage.listMessages(name, {
      ...(since === undefined ? {} : { afterId: since }),
      limit: since === undefined ? this.#o.historyLimit : this.#o.replayLimit,
    });
    if (member.ws.readyState !== member.ws.OPEN) return;
    const room = this.#room(name);
    if (!member.rooms.has(name)) {
      member.rooms.add(name);
      room.members.add(member);
      const count = room.users.get(member.user) ?? 0;
      room.users.set(member.user, count + 1);
      if (count === 0) this.#localPresence(name, room, member.user, true);
    }
    this.#send(member, {
      type: 'joined',
      room: name,
      members: this.#membersOf(name),
      history: history.map(messageFrame),
    });
  }

  #membersOf(name: string): string[] {
    const room = this.#rooms.get(name);
    return [
      ...new Set([...(room?.users.keys() ?? []), ...(this.#remote.get(name)?.keys() ?? [])]),
    ].sort();
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

  #leave(member: Member, name: string): void {
    member.rooms.delete(name);
    const room = this.#rooms.get(name);
    if (!room || !room.members.delete(member)) return;
    const count = (room.users.get(member.user) ?? 1) - 1;
    if (count > 0) room.users.set(member.user, count);
    else {
      room.users.delete(member.user);
      this.#localPresence(name, room, member.user, false);
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
    const frame = messageFrame(stored);
    this.#broadcast(name, frame);
    this.#o.relay?.(frame);
  }

  #room(name: string): Room {
    let room = this.#rooms.get(name);
    if (!room) {
      room = { members: new Set(), users: new Map(), pending: new Map() };
      this.#rooms.set(name, room);
    }
    return room;
  }

  /** A user's first socket joined, or last socket left, this node's part of a room. */
  #localPresence(name: string, room: Room, user: string, present: boolean): void {
    // Other nodes learn at once (they keep who is where); clients hear it in the next batch.
    this.#o.relay?.({ type: 'presence', room: name, user, state: present ? 'join' : 'leave' });
    this.#changed(name, room, user, !present || this.#presentElsewhere(name, user));
  }

  /** Notes a presence change to announce in the next batch; `before` is the user's presence until now. */
  #changed(name: string, room: Room, user: string, before: boolean): void {
    const now = this.#present(name, user);
    const entry = room.pending.get(user);
    if (entry === undefined)
      room.pending.set(user, { before, last: now, flips: now === before ? 0 : 1 });
    else if (entry.last !== now) {
      entry.last = now;
      entry.flips += 1;
    }
    this.#dirty.add(name);
  }

  /** Whether a user is in a room anywhere in the cluster. */
  #present(name: string, user: string): boolean {
    return (this.#rooms.get(name)?.users.get(user) ?? 0) > 0 || this.#presentElsewhere(name, user);
  }

  #flushPresence(): void {
    if (this.#dirty.size === 0) return;
    const dirty = this.#dirty;
    this.#dirty = new Set();
    for (const name of dirty) {
      const room = this.#rooms.get(name);
      if (!room) continue;
      for (const [user, { before, flips }] of room.pending) {
        const now = this.#present(name, user);
        const frame = (present: boolean): ServerFrame => ({
          type: 'presence',
          room: name,
          user,
          state: present ? 'join' : 'leave',
        });
        if (now !== before) this.#broadcast(name, frame(now));
        else if (flips >= 2) {
          // A join and a leave (or a leave and a join) inside one window: the others still hear
          // of the visit, which read the room's history and members.
          this.#broadcast(name, frame(!before));
          this.#broadcast(name, frame(before));
        }
      }
      room.pending.clear();
      if (room.members.size === 0) this.#rooms.delete(name);
    }
  }

  #presentElsewhere(room: string, user: string): boolean {
    return (this.#remote.get(room)?.get(user)?.size ?? 0) > 0;
  }

  /**
   * A message or presence change from another node: messages go to this node's members of the
   * room; presence updates who is where, and is shown only when it changes the user's presence.
   */
  deliverRemote(node: string, frame: MessageFrame | PresenceFrame): void {
    if (frame.type === 'message') {
      // After an outage a message may come both from the resync and late off the bus: send once.
      if (this.#sent.get(frame.room)?.ids.has(frame.id)) return;
      return this.#broadcast(frame.room, frame);
    }
    const before = this.#present(frame.room, frame.user);
    let users = this.#remote.get(frame.room);
    if (!users) this.#remote.set(frame.room, (users = new Map<string, Set<string>>()));
    let nodes = users.get(frame.user);
    if (!nodes) users.set(frame.user, (nodes = new Set<string>()));
    if (frame.state === 'join') nodes.add(node);
    else nodes.delete(node);
    if (nodes.size === 0) users.delete(frame.user);
    if (users.size === 0) this.#remote.delete(frame.room);
    // Only rooms with members here need telling; the batch sends it if presence really changed.
    const room = this.#rooms.get(frame.room);
    if (room) this.#changed(frame.room, room, frame.user, before);
  }

  /** The cluster bus went down: messages from other nodes may be missed from here on. */
  markOutage(): void {
    if (this.#outage) return;
    this.#outage = new Map([...this.#sent].map(([room, sent]) => [room, sent.max]));
  }

  /**
   * The bus is back: sends this node's members every message stored since the outage began that
   * they have not been sent, read from storage. Nothing acknowledged is lost, nothing repeated.
   */
  async resync(): Promise<void> {
    const outage = this.#outage;
    this.#outage = undefined;
    if (outage) await this.resyncAfter(outage);
  }

  /** Where each room's messages sent to this node's members stand now (room → highest id). */
  sentMarks(): Map<string, number> {
    return new Map([...this.#sent].map(([room, sent]) => [room, sent.max]));
  }

  /**
   * Sends this node's members every message stored after `marks` (per room, from
   * {@link sentMarks}) that they have not been sent, read from storage: after a bus outage, or
   * when a node dies, which may have stored and acknowledged a message it never published.
   */
  async resyncAfter(marks: ReadonlyMap<string, number>): Promise<void> {
    for (const [name, afterId] of marks) {
      if (!this.#rooms.get(name)?.members.size) continue;
      const missed = await this.#o.storage.listMessages(name, {
        afterId,
        limit: this.#o.replayLimit,
      });
      const sent = this.#sent.get(name);
      for (const m of missed) if (!sent?.ids.has(m.id)) this.#broadcast(name, messageFrame(m));
    }
  }

  #remember(name: string, id: number): void {
    let sent = this.#sent.get(name);
    if (!sent) this.#sent.set(name, (sent = { ids: new Set(), max: 0 }));
    sent.ids.add(id);
    sent.max = Math.max(sent.max, id);
    // Enough to cover an outage's worth of traffic; the oldest ids go first.
    if (sent.ids.size > 4096) sent.ids.delete(sent.ids.values().next().value as number);
  }

  /** A node that stopped answering: its users leave every room they were in through it. */
  forgetNode(node: string): void {
    for (const [name, users] of this.#remote) {
      for (const [user, nodes] of users) {
        if (!nodes.has(node)) continue;
        const before = this.#present(name, user);
        nodes.delete(node);
        if (nodes.size === 0) users.delete(user);
        const room = this.#rooms.get(name);
        if (room) this.#changed(name, room, user, before);
      }
      if (users.size === 0) this.#remote.delete(name);
    }
  }

  /** Who is in which room on this node, as presence frames, for a node that just joined. */
  localPresence(): PresenceFrame[] {
    const frames: PresenceFrame[] = [];
    for (const [name, room] of this.#rooms) {
      for (const user of room.users.keys())
        frames.push({ type: 'presence', room: name, user, state: 'join' });
    }
    return frames;
  }

  /** Encodes a frame once and writes the same bytes to every member of the room. */
  #broadcast(name: string, frame: ServerFrame): void {
    const room = this.#rooms.get(name);
    if (!room) return;
    if (frame.type === 'message') this.#remember(name, frame.id);
    const data = Buffer.from(JSON.stringify(frame));
    for (const member of room.members) this.#write(member, data);
    this.#o.onSent?.(room.members.size);
  }

  #send(member: Member, frame: ServerFrame): void {
    this.#write(member, Buffer.from(JSON.stringify(frame)));
    this.#o.onSent?.(1);
  }

  #write(member: Member, data: Buffer): void {
    const { ws } = member;
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > this.#o.maxBufferedBytes) return closeSocket(ws, 1013, 'Slow consumer');
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
      closeSocket(member.ws, 4400, 'Too many malformed frames');
  }
}
