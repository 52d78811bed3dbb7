import type { MessageHandler, PubSub } from './types.js';

/** How a worker reaches the primary that relays the bus between the processes of one machine. */
export interface MachineRelay {
  /** Hands a message to the primary, which passes it to every worker (this one included). */
  send(channel: string, message: string): void;
  /** Where the messages the primary passes on arrive. */
  onMessage(listener: (channel: string, message: string) => void): void;
  /** Resolves when the primary answers. */
  ping(): Promise<void>;
}

/**
 * The bus of `--workers` without Redis: each worker publishes to the primary, which relays to
 * every worker. Delivery is in order from one publisher, and asynchronous, as over Redis.
 */
export class InMachinePubSub implements PubSub {
  readonly #relay: MachineRelay;
  readonly #handlers = new Map<string, Set<MessageHandler>>();
  #closed = false;

  constructor(relay: MachineRelay) {
    this.#relay = relay;
    relay.onMessage((channel, message) => {
      const handlers = this.#handlers.get(channel);
      if (handlers) for (const handler of handlers) handler(message);
    });
  }

  publish(channel: string, message: string): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('bus connection closed'));
    this.#relay.send(channel, message);
    return Promise.resolve();
  }

  subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>> {
    if (this.#closed) return Promise.reject(new Error('bus connection closed'));
    let set = this.#handlers.get(channel);
    if (!set) this.#handlers.set(channel, (set = new Set()));
    set.add(handler);
    return Promise.resolve(() => {
      const handlers = this.#handlers.get(channel);
      handlers?.delete(handler);
      if (handlers?.size === 0) this.#handlers.delete(channel);
      return Promise.resolve();
    });
  }

  ping(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('bus connection closed'));
    return this.#relay.ping();
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#handlers.clear();
    return Promise.resolve();
  }
}
