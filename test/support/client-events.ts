import type { ClientEvents, WsgateClient } from '../../src/client/index.js';

/** Waits for an SDK client event whose payload passes a check. */
export type NextEvent = <K extends keyof ClientEvents>(
  c: WsgateClient,
  event: K,
  match?: (payload: ClientEvents[K]) => boolean,
  timeoutMs?: number,
) => Promise<ClientEvents[K]>;

/**
 * A `next(client, event, match?, timeoutMs?)` that resolves with the next `event` whose payload
 * passes `match`, and fails after `timeoutMs` (by default `defaultTimeoutMs`).
 */
export function eventWaiter(defaultTimeoutMs: number): NextEvent {
  return (c, event, match = () => true, timeoutMs = defaultTimeoutMs) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no '${String(event)}' event within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = c.on(event, (payload) => {
        if (!match(payload)) return;
        clearTimeout(timer);
        off();
        resolve(payload);
      });
    });
}
