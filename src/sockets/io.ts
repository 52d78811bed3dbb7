import type { Duplex } from 'node:stream';
import * as wsModule from 'ws';
import type { RawData, WebSocket } from 'ws';
import { closeFrame, type WsgateError } from '../errors.js';

/** `ws`'s own framing (its `Sender`, an export its type declarations leave out). */
const { Sender } = wsModule as unknown as {
  Sender: {
    frame(
      data: Buffer,
      options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean },
    ): Buffer[];
  };
};
const textFrameOptions = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false };

/**
 * A text message framed once for many sockets: the WebSocket header and the payload in one
 * buffer, the bytes `ws.send` would write for each of them (a server's frames are not masked).
 */
export function textFrame(payload: Buffer): Buffer {
  return Buffer.concat(Sender.frame(payload, textFrameOptions));
}

/** The payload of a frame made by {@link textFrame}. */
export function framePayload(frame: Buffer): Buffer {
  const length = (frame[1] as number) & 0x7f;
  return frame.subarray(length === 127 ? 10 : length === 126 ? 4 : 2);
}

/**
 * The TCP socket under an open `ws` socket that frames may be written to directly, or undefined
 * if it negotiated an extension: without permessage-deflate `ws` sends every frame at once, in
 * order, so a frame written here cannot overtake one `ws` holds back. Writes here count in
 * `ws.bufferedAmount` like its own.
 */
export function frameWriter(ws: WebSocket): Duplex | undefined {
  if (ws.extensions !== '') return undefined;
  return (ws as unknown as { _socket: Duplex })._socket;
}

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
