import type { RawData, WebSocket } from 'ws';
import type { Timers } from '../clock.js';
import type { Credential, TransportName } from '../credentials/credential.js';
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

/** What {@link awaitFirstMessage} does with a socket once its first message decided. */
export interface FirstMessageWait {
  /** An optional endpoint: silence or a first message other than `auth` makes a guest. */
  readonly optional: boolean;
  readonly timeoutMs: number;
  /** Whose clock `timeoutMs` runs on. */
  readonly timers: Timers;
  /** Sockets still owing their first message (a drain closes them too). */
  readonly pending: Set<WebSocket>;
  /** Accepts the socket as a guest. */
  guest(): void;
  /** Refuses the socket with `error`'s close frame. */
  refuse(error: WsgateError, transport: TransportName | null): void;
  /** Checks the auth message; resolves whether the socket was accepted. */
  authenticate(data: RawData, isBinary: boolean): Promise<boolean>;
}

/**
 * Waits for the first message of a `wsgate.v1` socket that brought no credential: an `auth`
 * message is checked (what follows it meanwhile is kept, 16 messages at most, and handed to the
 * endpoint once it is accepted); silence past `timeoutMs` is `auth_timeout`, or a guest.
 */
export function awaitFirstMessage(ws: WebSocket, wait: FirstMessageWait): void {
  // Messages that follow the auth message while it is checked are kept for the endpoint.
  const queued: [RawData, boolean][] = [];
  let first = true;
  /** Ends the wait for the first message (timer, drain bookkeeping). */
  const stopWaiting = () => {
    wait.timers.clearTimeout(timer);
    wait.pending.delete(ws);
  };
  /** Hands the socket over: the endpoint's own listeners take it from here. */
  const release = () => {
    stopWaiting();
    ws.off('message', onMessage);
    ws.off('close', release);
  };
  const timer = wait.timers.setTimeout(() => {
    release();
    if (wait.optional) wait.guest();
    else wait.refuse(new WsgateError('auth_timeout'), null);
  }, wait.timeoutMs);
  const onMessage = (data: RawData, isBinary: boolean) => {
    if (!first) {
      if (queued.length < 16) return void queued.push([data, isBinary]);
      const error = new WsgateError('policy_violation', 'Wait for authentication');
      return wait.refuse(error, 'first-message');
    }
    first = false;
    if (wait.optional && !isAuthFrame(data, isBinary)) {
      release();
      wait.guest();
      return void ws.emit('message', data, isBinary);
    }
    stopWaiting();
    void wait.authenticate(data, isBinary).then((accepted) => {
      release();
      if (!accepted) return;
      for (const [queuedData, queuedBinary] of queued) ws.emit('message', queuedData, queuedBinary);
    });
  };
  wait.pending.add(ws);
  ws.on('message', onMessage);
  ws.once('close', release);
}

/** A JWT has dots; a ticket from POST /ws-ticket has none. */
export function credentialFromToken(token: string): Credential {
  return token.includes('.')
    ? { transport: 'first-message', value: token }
    : { transport: 'ticket', value: token };
}
