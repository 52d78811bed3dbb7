import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Timers } from '../clock.js';
import type { PubSub } from '../pubsub/types.js';
import type { RevocationList, Revocation } from '../sessions/revocations.js';
import type { ChatService } from '../chat/chat-service.js';
import type { MessageFrame, PresenceFrame } from '../protocol/frames.js';

interface RevokeMessage extends Revocation {
  readonly node: string;
}

interface ChatMessage {
  readonly node: string;
  readonly frame: MessageFrame | PresenceFrame;
}

interface NodeMessage {
  readonly node: string;
  /** `hello` when a node starts (others answer with their presence), `beat` while it lives. */
  readonly kind: 'hello' | 'beat';
}

export interface ClusterOptions {
  /** How often a node says it is alive (ms). */
  readonly heartbeatMs?: number;
  /** A node silent this long is taken for dead: its users leave the rooms (ms). */
  readonly deadAfterMs?: number;
  /** The clock and timers of the heartbeat; defaults to Node's (monotonic, unref'd). */
  readonly timers?: Timers;
}

/** A monotonic clock, so a wall-clock jump never takes a live node for dead; timers never hold the process open. */
const nodeTimers: Timers = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Cluster mode, written once above any {@link PubSub}: revocations made on one node kick sockets
 * on every node, and chat messages and presence reach members wherever they are connected.
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
   * The chat's sent marks at each node's last two heartbeats. The older one is taken when the node
   * dies: a message it stored (and acknowledged) just before its last beat may not have been
   * published yet, and a beat's worth of margin covers the store's round trip.
   */
  readonly #marks = new Map<string, [Map<string, number>, Map<string, number>]>();

  constructor(bus: PubSub, log?: Logger, options: ClusterOptions = {}) {
    this.#bus = bus;
    this.#log = log;
    this.#heartbeatMs = options.heartbeatMs ?? 2000;
    this.#deadAfterMs = options.deadAfterMs ?? 3 * this.#heartbeatMs;
    this.#timers = options.timers ?? nodeTimers;
  }

  /** Publishes a locally stored message or presence change (the chat's `relay`). */
  readonly relay = (frame: MessageFrame | PresenceFrame): void => {
    this.#publish('chat', { node: this.node, frame } satisfies ChatMessage);
  };

  async attach(parts: { revocations: RevocationList; chat?: ChatService }): Promise<void> {
    const { revocations, chat } = parts;
    this.#stops.push(
      await this.#bus.subscribe('revoke', (text) => {
        const message = parse<RevokeMessage>(text, this.#log);
        if (!message || message.node === this.node) return;
        revocations.add({
          sessionIds: message.sessionIds,
          reason: message.reason,
          ...(message.external === undefined ? {} : { external: message.external }),
          remote: true,
        });
      }),
      revocations.onRevoke((revocation) => {
        if (revocation.remote) return;
        this.#publish('revoke', {
          node: this.node,
          sessionIds: revocation.sessionIds,
          reason: revocation.reason,
          ...(revocation.external === undefined ? {} : { external: revocation.external }),
        });
      }),
    );
    if (chat) {
      this.#stops.push(
        await this.#bus.subscribe('chat', (text) => {
          const message = parse<ChatMessage>(text, this.#log);
          if (!message || message.node === this.node) return;
          this.#seen.set(message.node, this.#timers.now());
          chat.deliverRemote(message.node, message.frame);
        }),
        await this.#bus.subscribe('nodes', (text) => {
          const message = parse<NodeMessage>(text, this.#log);
          if (!message || message.node === this.node) return;
          this.#seen.set(message.node, this.#timers.now());
          const marks = chat.sentMarks();
          const [, latest] = this.#marks.get(message.node) ?? [marks, marks];
          this.#marks.set(message.node, [latest, marks]);
          // A newcomer knows nobody: tell it who is here.
          if (message.kind === 'hello') for (const frame of chat.localPresence()) this.relay(frame);
        }),
      );
      // Presence heals when a node dies: its users leave once it has been silent too long.
      let timer: unknown;
      const beat = () => {
        timer = this.#timers.setTimeout(beat, this.#heartbeatMs);
        this.#publish('nodes', { node: this.node, kind: 'beat' } satisfies NodeMessage);
        const now = this.#timers.now();
        for (const [node, at] of this.#seen) {
          if (now - at < this.#deadAfterMs) continue;
          this.#seen.delete(node);
          const marks = this.#marks.get(node)?.[0];
          this.#marks.delete(node);
          this.#log?.warn({ node }, 'cluster node silent; forgetting its presence');
          chat.forgetNode(node);
          // What it stored but never published reaches this node's members from the database.
          if (marks)
            chat
              .resyncAfter(marks)
              .catch((err: unknown) => this.#log?.error({ err }, 'chat resync failed'));
        }
      };
      timer = this.#timers.setTimeout(beat, this.#heartbeatMs);
      this.#stops.push(() => this.#timers.clearTimeout(timer));
      // A bus outage loses cross-node messages in flight; the database has them all.
      const stopStatus = this.#bus.onStatus?.((up) => {
        if (!up) return chat.markOutage();
        chat.resync().catch((err: unknown) => this.#log?.error({ err }, 'chat resync failed'));
      });
      if (stopStatus) this.#stops.push(stopStatus);
      this.#publish('nodes', { node: this.node, kind: 'hello' } satisfies NodeMessage);
    }
  }

  async detach(): Promise<void> {
    for (const stop of this.#stops.splice(0)) await stop();
  }

  #publish(channel: string, message: object): void {
    this.#bus.publish(channel, JSON.stringify(message)).catch((err: unknown) => {
      this.#log?.error({ err, channel }, 'cluster publish failed');
    });
  }
}

function parse<T>(text: string, log: Logger | undefined): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    log?.warn({ err }, 'malformed cluster message');
    return undefined;
  }
}
