/** Receives each message published on a channel this node subscribed to. */
export type MessageHandler = (message: string) => void;

/**
 * The one thing cluster mode needs from a transport: publish a string on a channel, and hear
 * what others publish. Cluster logic (revocation kicks, chat fan-out) is written once above it;
 * Redis and the in-process bus only implement this.
 */
export interface PubSub {
  publish(channel: string, message: string): Promise<void>;
  /** Resolves once the subscription is active; the returned function unsubscribes. */
  subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>>;
  /**
   * Told when the transport drops (`false`) and when it is back with its subscriptions (`true`),
   * so that what was missed meanwhile can be recovered. Returns a function that stops telling.
   */
  onStatus?(listener: (up: boolean) => void): () => void;
  /** Resolves when the transport answers (for readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
