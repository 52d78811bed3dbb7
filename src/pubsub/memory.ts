import type { MessageHandler, PubSub } from './types.js';

/**
 * An in-process bus: several nodes in one process share it, so cluster behaviour is tested fast
 * and without Redis. Delivery is asynchronous, as over a network.
 */
export class MemoryBus {
  readonly #channels = new Map<string, Set<MessageHandler>>();

  /** A node's connection to the bus. */
  connect(): PubSub {
    const mine = new Set<[string, MessageHandler]>();
    let closed = false;
    return {
      publish: (channel, message) => {
        if (closed) return Promise.reject(new Error('bus connection closed'));
        for (const handler of this.#channels.get(channel) ?? []) {
          queueMicrotask(() => handler(message));
        }
        return Promise.resolve();
      },
      subscribe: (channel, handler) => {
        let set = this.#channels.get(channel);
        if (!set) this.#channels.set(channel, (set = new Set()));
        set.add(handler);
        const entry: [string, MessageHandler] = [channel, handler];
        mine.add(entry);
        return Promise.resolve(() => {
          this.#channels.get(channel)?.delete(handler);
          mine.delete(entry);
          return Promise.resolve();
        });
      },
      ping: () => (closed ? Promise.reject(new Error('bus connection closed')) : Promise.resolve()),
      close: () => {
        closed = true;
        for (const [channel, handler] of mine) this.#channels.get(channel)?.delete(handler);
        mine.clear();
        return Promise.resolve();
      },
    };
  }
}
