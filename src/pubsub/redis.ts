import { Redis } from 'ioredis';
import type { MessageHandler, PubSub } from './types.js';

export interface RedisPubSubOptions {
  /** Prefix of every channel, so several deployments can share one Redis (default `wsgate:`). */
  readonly prefix?: string;
}

/**
 * Pub/sub over Redis with ioredis: one connection publishes, one subscribes (a subscribed
 * connection can do nothing else). ioredis reconnects and resubscribes by itself after a restart.
 */
export class RedisPubSub implements PubSub {
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #prefix: string;
  readonly #handlers = new Map<string, Set<MessageHandler>>();
  readonly #statusListeners = new Set<(up: boolean) => void>();
  #down = false;

  constructor(url: string, options: RedisPubSubOptions = {}) {
    this.#prefix = options.prefix ?? 'wsgate:';
    const common = {
      lazyConnect: false,
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
    } as const;
    this.#pub = new Redis(url, common);
    this.#sub = new Redis(url, common);
    // Connection errors are retried by ioredis; readiness reports them. Never crash on them.
    this.#pub.on('error', () => undefined);
    this.#sub.on('error', () => undefined);
    // ioredis resubscribes by itself on reconnect; 'ready' comes once that is done.
    this.#sub.on('close', () => this.#setStatus(false));
    this.#sub.on('ready', () => this.#setStatus(true));
    this.#sub.on('message', (channel: string, message: string) => {
      for (const handler of this.#handlers.get(channel) ?? []) handler(message);
    });
  }

  onStatus(listener: (up: boolean) => void): () => void {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }

  #setStatus(up: boolean): void {
    if (this.#down === !up) return;
    this.#down = !up;
    for (const listener of this.#statusListeners) listener(up);
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#pub.publish(this.#prefix + channel, message);
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>> {
    const name = this.#prefix + channel;
    let set = this.#handlers.get(name);
    if (!set) {
      this.#handlers.set(name, (set = new Set()));
      await this.#sub.subscribe(name);
    }
    set.add(handler);
    return async () => {
      const handlers = this.#handlers.get(name);
      if (!handlers?.delete(handler) || handlers.size > 0) return;
      this.#handlers.delete(name);
      await this.#sub.unsubscribe(name);
    };
  }

  async ping(): Promise<void> {
    await this.#pub.ping();
    if (this.#sub.status !== 'ready') throw new Error(`Redis subscriber ${this.#sub.status}`);
  }

  async close(): Promise<void> {
    this.#handlers.clear();
    await Promise.allSettled([this.#pub.quit(), this.#sub.quit()]);
  }
}
