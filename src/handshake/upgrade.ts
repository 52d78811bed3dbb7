/**
 * The RFC 6455 checks a handshake passes before anything else, and the raw HTTP answers the gate
 * writes on the socket of a refused upgrade (there is no framework response object there).
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WsgateError, httpAnswer } from '../errors.js';

/** A `Sec-WebSocket-Key` is 16 random bytes in base64 (RFC 6455 §4.1). */
const keyPattern = /^[+/0-9A-Za-z]{22}==$/;

/** Refuses what is not a well-formed RFC 6455 version 13 upgrade; returns the raw response or undefined. */
export function checkUpgrade(req: IncomingMessage): string | undefined {
  if (req.method !== 'GET')
    return rawAnswer(new WsgateError('method_not_allowed', 'WebSocket handshakes use GET'), {
      allow: 'GET',
    });
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket')
    return rawAnswer(new WsgateError('invalid_request', 'Upgrade must be websocket'));
  if (req.headers['sec-websocket-version'] !== '13') {
    return rawAnswer(
      new WsgateError('upgrade_required', 'Only WebSocket version 13 is supported'),
      { 'sec-websocket-version': '13' },
    );
  }
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !keyPattern.test(key.trim()))
    return rawAnswer(new WsgateError('invalid_request', 'Missing or invalid Sec-WebSocket-Key'));
  return undefined;
}

/** A raw HTTP answer to `error`, as the catalogue renders it, with `extra` headers. */
export function rawAnswer(error: WsgateError, extra: Record<string, string> = {}): string {
  const { status, headers, body } = httpAnswer(error);
  return httpResponse(status, body, { ...headers, ...extra });
}

function httpResponse(status: number, body: object, headers: Record<string, string> = {}): string {
  const json = JSON.stringify(body);
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    `connection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `cache-control: no-store\r\ncontent-length: ${Buffer.byteLength(json)}\r\n${extra}\r\n${json}`
  );
}

export function writeHttpError(socket: Duplex, error: WsgateError): void {
  if (socket.writable) socket.end(rawAnswer(error));
  else socket.destroy();
}
