import type { RawData, WebSocket } from 'ws';

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
