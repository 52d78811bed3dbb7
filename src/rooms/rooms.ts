import { backgroundTimers, type Timers } from '../clock.js';
import type { MessageFrame, PresenceFrame } from '../protocol/frames.js';

/** A socket in rooms: the user it speaks for and the rooms it is in (kept up to date by {@link Rooms}). */
export interface RoomMember {
  readonly user: string;
  readonly rooms: Set<string>;
}

export interface RoomsOptions<M extends RoomMember> {
  /**
   * Writes one frame to one member (the transport: it may drop a slow consumer): the encoded
   * frame, or what {@link frame} made of it. Called for every member of a broadcast: keep it to
   * the write.
   */
  readonly write: (member: M, data: Buffer) => void;
  /** Prepares an encoded frame once for every member's write (the WebSocket framing). */
  readonly frame?: (encoded: Buffer) => Buffer;
  /** Messages stored in `room` after `afterId`, oldest first: what a resync reads. */
  readonly replay: (room: string, afterId: number) => Promise<MessageFrame[]>;
  /**
   * Cluster mode: told of each message published and each presence change made on this node, to
   * publish to the other nodes, which hand them to {@link Rooms.applyRemote}.
   */
  readonly relay?: (frame: MessageFrame | PresenceFrame) => void;
  /** Told how many frames each broadcast wrote (for metrics). */
  readonly onSent?: (count: number) => void;
  /** Presence changes are batched per room over this window (ms). */
  readonly presenceIntervalMs?: number;
  /** The timers of the presence batches; tests step their own. */
  readonly timers?: Timers;
}

interface Room<M> {
  readonly members: Set<M>;
  /** Sockets per user in the room: presence is about users, not sockets. */
  readonly users: Map<string, number>;
  /**
   * Users whose presence changed in the current window: their presence before it, and how often
   * it flipped (a join and a leave inside one window are two flips, and still a visit to show).
   */
  readonly pending: Map<string, { before: boolean; last: boolean; flips: number }>;
}

/** Message ids remembered per room to resync without repeats (an outage's worth of traffic). */
const sentWindow = 4096;

/**
 * The rooms of one node: who is in which room here, who is in it on other nodes, presence
 * batched per room, and the ids recently sent into each room. What socket.io's `Adapter` owns;
 * the chat handles frames over it, and the cluster feeds it what other nodes publish.
 */
export class Rooms<M extends RoomMember> {
  readonly #o: RoomsOptions<M>;
  readonly #rooms = new Map<string, Room<M>>();
  /** Users present in a room on other nodes: room → user → node ids. */
  readonly #remote = new Map<string, Map<string, Set<string>>>();
  /** Ids of the messages recently sent into each room from this node, to resync without repeats. */
  readonly #sent = new Map<string, { ids: Set<number>; max: number }>();
  /** While the cluster bus is down: per room, the highest id sent before it went down. */
  #outage: Map<string, number> | undefined;
  #dirty = new Set<string>();
  readonly #timers: Timers;
  #flush: unknown;

  constructor(options: RoomsOptions<M>) {
    this.#o = options;
    this.#timers = options.timers ?? backgroundTimers;
    const intervalMs = options.presenceIntervalMs ?? 100;
    const tick = () => {
      this.#flush = this.#timers.setTimeout(tick, intervalMs);
      this.#flushPresence();
    };
    this.#flush = this.#timers.setTimeout(tick, intervalMs);
  }

  close(): void {
    this.#timers.clearTimeout(this.#flush);
  }

  /** Rooms with members on this node or another. */
  live(): Set<string> {
    return new Set([...this.#rooms.keys(), ...this.#remote.keys()]);
  }

  /** Users in `name`, on any node. */
  userCount(name: string): number {
    return (this.#rooms.get(name)?.users.size ?? 0) + (this.#remote.get(name)?.size ?? 0);
  }

  /** The users in `name` on any node, sorted. */
  membersOf(name: string): string[] {
    const room = this.#rooms.get(name);
    return [
      ...new Set([...(room?.users.keys() ?? []), ...(this.#remote.get(name)?.keys() ?? [])]),
    ].sort();
  }

  /** Puts `member` in `name`; a user's first socket there is a presence change. */
  join(member: M, name: string): void {
    if (member.rooms.has(name)) return;
    member.rooms.add(name);
    const room = this.#room(name);
    room.members.add(member);
    const count = room.users.get(member.user) ?? 0;
    room.users.set(member.user, count + 1);
    if (count === 0) this.#localPresence(name, room, member.user, true);
  }

  /** Takes `member` out of `name`; a user's last socket there is a presence change. */
  leave(member: M, name: string): void {
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

  /** Takes `member` out of every room (its socket closed). */
  leaveAll(member: M): void {
    for (const name of member.rooms) this.leave(member, name);
  }

  /** A message stored on this node: to this node's members of the room, and to the other nodes. */
  publish(frame: MessageFrame): void {
    this.#broadcast(frame.room, frame);
    this.#o.relay?.(frame);
  }

  /**
   * A message or presence change from another node: messages go to this node's members of the
   * room; presence updates who is where, and is shown only when it changes the user's presence.
   */
  applyRemote(node: string, frame: MessageFrame | PresenceFrame): void {
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

  /** The cluster bus went down: messages from other nodes may be missed from here on. */
  markOutage(): void {
    if (this.#outage) return;
    this.#outage = this.sentMarks();
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
   * {@link sentMarks}) that they have not been sent: after a bus outage, or when a node dies,
   * which may have stored and acknowledged a message it never published.
   */
  async resyncAfter(marks: ReadonlyMap<string, number>): Promise<void> {
    for (const [name, afterId] of marks) {
      if (!this.#rooms.get(name)?.members.size) continue;
      const missed = await this.#o.replay(name, afterId);
      const sent = this.#sent.get(name);
      for (const frame of missed) if (!sent?.ids.has(frame.id)) this.#broadcast(name, frame);
    }
  }

  #room(name: string): Room<M> {
    let room = this.#rooms.get(name);
    if (!room) {
      room = { members: new Set(), users: new Map(), pending: new Map() };
      this.#rooms.set(name, room);
    }
    return room;
  }

  /** A user's first socket joined, or last socket left, this node's part of a room. */
  #localPresence(name: string, room: Room<M>, user: string, present: boolean): void {
    // Other nodes learn at once (they keep who is where); clients hear it in the next batch.
    this.#o.relay?.({ type: 'presence', room: name, user, state: present ? 'join' : 'leave' });
    this.#changed(name, room, user, !present || this.#presentElsewhere(name, user));
  }

  /** Notes a presence change to announce in the next batch; `before` is the user's presence until now. */
  #changed(name: string, room: Room<M>, user: string, before: boolean): void {
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

  #presentElsewhere(room: string, user: string): boolean {
    return (this.#remote.get(room)?.get(user)?.size ?? 0) > 0;
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
        const frame = (present: boolean): PresenceFrame => ({
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

  /** Encodes and frames a frame once, and writes the same bytes to every member of the room. */
  #broadcast(name: string, frame: MessageFrame | PresenceFrame): void {
    const room = this.#rooms.get(name);
    if (!room) return;
    if (frame.type === 'message') this.#remember(name, frame.id);
    const encoded = Buffer.from(JSON.stringify(frame));
    const data = this.#o.frame === undefined ? encoded : this.#o.frame(encoded);
    const { write } = this.#o;
    for (const member of room.members) write(member, data);
    this.#o.onSent?.(room.members.size);
  }

  #remember(name: string, id: number): void {
    let sent = this.#sent.get(name);
    if (!sent) this.#sent.set(name, (sent = { ids: new Set(), max: 0 }));
    sent.ids.add(id);
    sent.max = Math.max(sent.max, id);
    // The oldest ids go first.
    if (sent.ids.size > sentWindow) sent.ids.delete(sent.ids.values().next().value as number);
  }
}
