import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { backgroundTimers, type Timers } from '../clock.js';
import type { PubSub } from '../pubsub/types.js';
import type { RevocationList } from '../sessions/revocations.js';
import type { Rooms, RoomMember } from '../rooms/rooms.js';
import type { MessageFrame, PresenceFrame } from '../protocol/frames.js';
import {
  channelOf,
  channels,
  decode,
  encode,
  type Channel,
  type ClusterMessage,
} from './messages.js';

export interface ClusterOptions {
  /** How often a node says it is alive (ms). */
  readonly heartbeatMs?: number;
  /** A node silent this long is taken for dead: its users leave the rooms (ms). */
  readonly deadAfterMs?: number;
  /** The clock and timers of the heartbeat; defaults to Node's (monotonic, unref'd). */
  readonly timers?: Timers;
}

/** What the cluster needs of a node's rooms: what other nodes publish goes in, presence comes out. */
export type ClusterRooms = Pick<
  Rooms<RoomMember>,
  | 'applyRemote'
  | 'forgetNode'
  | 'localPresence'
  | 'sentMarks'
  | 'markOutage'
  | 'resync'
  | 'resyncAfter'
>;

/**
 * Cluster mode, written once above any {@link PubSub} (which only publishes): revocations made on
 * one node kick sockets on every node, and messages and presence reach room members wherever they
 * are connected. What socket.io's `ClusterAdapter` owns.
 */
export class Cluster {
  /** This node's id on the bus; a node ignores what it published itself. */
  readonly node = randomUUID();
  readonly #bus: PubSub;
  readonly #log: Logger | undefined;
  readonly #stops: (() => Promise<void> | void)[] = [];
  readonly #heartbeatMs: number;
  readonly #deadAfterMs: number;
  readonly #timers: Timers;
  /** When each other node was last heard from (the timers' clock). */
  readonly #seen = new Map<string, number>();
  /**
   * The rooms' sent marks at each node's last two heartbeats. The older one is taken when the
   * node dies: a message it stored (and acknowledged) just before its last beat may not have been
   * published yet, and a beat's worth of margin covers the store's round trip.
   */
  readonly #marks = new Map<string, [Map<string, number>, Map<string, number>]>();

  constructor(bus: PubSub, log?: Logger, options: ClusterOptions = {}) {
    this.#bus = bus;
    this.#log = log;
    this.#heartbeatMs = options.heartbeatMs ?? 2000;
    this.#deadAfterMs = options.deadAfterMs ?? 3 * this.#heartbeatMs;
    this.#timers = options.timers ?? backgroundTimers;
  }

  /** Publishes a locally stored message or presence change (the rooms' `relay`). */
  readonly relay = (frame: MessageFrame | PresenceFrame): void => {
    this.#publish({ kind: 'chat', node: this.node, frame });
  };

  async attach(parts: { revocations: RevocationList; rooms?: ClusterRooms }): Promise<void> {
    const { revocations, rooms } = parts;
    this.#stops.push(
      await this.#subscribe(channels.revoke, (message) => {
        if (message.kind !== 'revoke') return;
        revocations.add({
          sessionIds: message.sessionIds,
          reason: message.reason,
          ...(message.external === undefined ? {} : { external: message.external }),
          remote: true,
        });
      }),
      revocations.onRevoke((revocation) => {
        if (revocation.remote) return;
        this.#publish({
          kind: 'revoke',
          node: this.node,
          sessionIds: revocation.sessionIds,
          reason: revocation.reason,
          ...(revocation.external === undefined ? {} : { external: revocation.external }),
        });
      }),
    );
    if (rooms) await this.#attachRooms(rooms);
  }

  async #attachRooms(rooms: ClusterRooms): Promise<void> {
    this.#stops.push(
      await this.#subscribe(channels.chat, (message) => {
        if (message.kind !== 'chat') return;
        this.#seen.set(message.node, this.#timers.now());
        rooms.applyRemote(message.node, message.frame);
      }),
      await this.#subscribe(channels.nodes, (message) => {
        this.#seen.set(message.node, this.#timers.now());
        const marks = rooms.sentMarks();
        const [, latest] = this.#marks.get(message.node) ?? [marks, marks];
        this.#marks.set(message.node, [latest, marks]);
        // A newcomer knows nobody: tell it who is here.
        if (message.kind === 'hello') for (const frame of rooms.localPresence()) this.relay(frame);
      }),
    );
    // Presence heals when a node dies: its users leave once it has been silent too long.
    let timer: unknown;
    const beat = () => {
      timer = this.#timers.setTimeout(beat, this.#heartbeatMs);
      this.#publish({ kind: 'beat', node: this.node });
      const now = this.#timers.now();
      for (const [node, at] of this.#seen) {
        if (now - at < this.#deadAfterMs) continue;
        this.#seen.delete(node);
        const marks = this.#marks.get(node)?.[0];
        this.#marks.delete(node);
        this.#log?.warn({ node }, 'cluster node silent; forgetting its presence');
        rooms.forgetNode(node);
        // What it stored but never published reaches this node's members from the database.
        if (marks)
          rooms
            .resyncAfter(marks)
            .catch((err: unknown) => this.#log?.error({ err }, 'chat resync failed'));
      }
    };
    timer = this.#timers.setTimeout(beat, this.#heartbeatMs);
    this.#stops.push(() => this.#timers.clearTimeout(timer));
    // A bus outage loses cross-node messages in flight; the database has them all.
    const stopStatus = this.#bus.onStatus?.((up) => {
      if (!up) return rooms.markOutage();
      rooms.resync().catch((err: unknown) => this.#log?.error({ err }, 'chat resync failed'));
    });
    if (stopStatus) this.#stops.push(stopStatus);
    this.#publish({ kind: 'hello', node: this.node });
  }

  async detach(): Promise<void> {
    for (const stop of this.#stops.splice(0)) await stop();
  }

  /** Subscribes to `channel`, handing over the checked messages of other nodes only. */
  #subscribe(
    channel: Channel,
    handle: (message: ClusterMessage) => void,
  ): Promise<() => Promise<void>> {
    return this.#bus.subscribe(channel, (text) => {
      let message: ClusterMessage;
      try {
        message = decode(channel, text);
      } catch (err) {
        this.#log?.warn({ err, channel }, 'malformed cluster message');
        return;
      }
      if (message.node !== this.node) handle(message);
    });
  }

  #publish(message: ClusterMessage): void {
    const channel = channelOf(message);
    this.#bus.publish(channel, encode(message)).catch((err: unknown) => {
      this.#log?.error({ err, channel }, 'cluster publish failed');
    });
  }
}
