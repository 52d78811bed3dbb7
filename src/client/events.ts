/** A listener for one event. */
export type Listener<T> = (payload: T) => void;

/**
 * A tiny typed event emitter: `Events` maps each event name to its payload type. A listener that
 * throws does not break the emitter or the other listeners; its error is rethrown in a microtask,
 * where it surfaces as an uncaught error (console in browsers, `uncaughtException` in Node).
 */
export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Calls `listener` on every `event`; returns a function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Calls `listener` on the next `event` only. */
  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  /** Removes `listener` from `event`. */
  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.#listeners.get(event)?.delete(listener);
  }

  protected emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.#listeners.get(event) as Set<Listener<Events[K]>> | undefined;
    if (!set || set.size === 0) return;
    // A snapshot, so listeners may add or remove listeners while being called.
    for (const listener of [...set]) {
      try {
        listener(payload);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
