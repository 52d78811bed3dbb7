import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { PubSub } from '../pubsub/types.js';
import type { RevocationList, Revocation } from '../sessions/revocations.js';
import type { ChatService } from '../chat/chat-service.js';
import type { MessageFrame, PresenceFrame } from '../client/protocol.js';

interface RevokeMessage extends Revocation {
  readonly node: string;
}

interface ChatMessage {
  readonly node: string;
  readonly frame: MessageFrame | PresenceFrame;
}

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

  constructor(bus: PubSub, log?: Logger) {
    this.#bus = bus;
    this.#log = log;
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
        revocations.add({ sessionIds: message.sessionIds, reason: message.reason, remote: true });
      }),
      revocations.onRevoke((revocation) => {
        if (revocation.remote) return;
        this.#publish('revoke', {
          node: this.node,
          sessionIds: revocation.sessionIds,
          reason: revocation.reason,
        });
      }),
    );
    if (chat) {
      this.#stops.push(
        await this.#bus.subscribe('chat', (text) => {
          const message = parse<ChatMessage>(text, this.#log);
          if (!message || message.node === this.node) return;
          chat.deliverRemote(message.node, message.frame);
        }),
      );
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
