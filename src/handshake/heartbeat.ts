import type { LiveSocket } from '../sockets/registry.js';

/**
 * One heartbeat over the open sockets: a socket that did not answer the last ping is dropped,
 * the others are pinged again; a proxied socket's pipe beats both of its legs itself.
 */
export function beat(sockets: Iterable<LiveSocket>): void {
  for (const live of sockets) {
    if (live.upstream) {
      live.upstream.beat();
      continue;
    }
    if (!live.alive) {
      live.ws.terminate();
      continue;
    }
    live.alive = false;
    live.ws.ping();
  }
}
