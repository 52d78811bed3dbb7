import type { WebSocket } from 'ws';
import type { WsgateError } from '../errors.js';
import { closeWithError } from '../sockets/io.js';

/**
 * Closes every socket with `error`'s close frame and resolves once they are all closed; a socket
 * whose client does not answer within `timeoutMs` is terminated.
 */
export async function closeAll(
  sockets: readonly WebSocket[],
  error: WsgateError,
  timeoutMs: number,
): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === ws.CLOSED) return resolve();
          const timer = setTimeout(() => {
            ws.terminate();
            resolve();
          }, timeoutMs);
          ws.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          closeWithError(ws, error);
        }),
    ),
  );
}
