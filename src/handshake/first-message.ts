import type { RawData } from 'ws';
import { WsgateError } from '../errors.js';
import { messageText } from '../sockets/io.js';
import { maxTokenLength } from '../tokens/claims.js';

/** Whether a message is an auth frame at all (cheap check before parsing it fully). */
export function isAuthFrame(data: RawData, isBinary: boolean): boolean {
  if (isBinary) return false;
  try {
    const message: unknown = JSON.parse(messageText(data));
    return (
      typeof message === 'object' &&
      message !== null &&
      (message as { type?: unknown }).type === 'auth'
    );
  } catch {
    return false;
  }
}

/**
 * Reads `{"type":"auth","token":"…"}`, the first message of a `wsgate.v1` client that brought no
 * credential in its handshake (and, later, an in-band refresh). Returns the token.
 */
export function parseAuthFrame(data: RawData, isBinary: boolean): string {
  if (isBinary) throw new WsgateError('invalid_request', 'Expected a text auth message');
  const text = messageText(data);
  if (text.length > maxTokenLength + 64) throw new WsgateError('token_too_large');
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    throw new WsgateError('invalid_request', 'Expected {"type":"auth","token":"…"}');
  }
  if (
    typeof message !== 'object' ||
    message === null ||
    (message as { type?: unknown }).type !== 'auth'
  ) {
    throw new WsgateError('credential_missing', 'Expected {"type":"auth"} first');
  }
  const token = (message as { token?: unknown }).token;
  if (typeof token !== 'string' || token === '')
    throw new WsgateError('invalid_request', 'auth needs a token');
  return token;
}
