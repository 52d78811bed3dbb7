import type { RawData, WebSocket } from 'ws';
import { closeFrame, type WsgateError } from '../errors.js';

/** The UTF-8 text of a received WebSocket message, whatever buffer shape `ws` delivered it in. */
export function messageText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** Sends a JSON frame if the socket is still open; a closing socket just drops it. */
export function sendJson(ws: WebSocket, frame: object): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame));
}

/**
 * Closes a socket from the server side and stops handling it at once: `ws` keeps delivering the
 * frames that arrive until the client answers the close (up to 30 s), and a revoked, expired or
 * rate-limited client must not be served in that time.
 */
export function closeSocket(ws: WebSocket, code: number, reason: string): void {
  ws.removeAllListeners('message');
  if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
}

/** Closes a socket with the close frame the catalogue gives `error` (see {@link closeSocket}). */
export function closeWithError(ws: WebSocket, error: WsgateError): void {
  const { code, reason } = closeFrame(error);
  closeSocket(ws, code, reason);
}
