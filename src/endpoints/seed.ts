import type { WebSocket, RawData } from 'ws';
import { closeSocket, messageText, sendJson } from '../sockets/io.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { ConnectionHandler, Gate, SocketControl } from '../handshake/gate.js';
import type { WsgateError } from '../errors.js';
import { isAuthFrame, parseAuthFrame } from '../handshake/first-message.js';

/**
 * Echoes each text frame as `You wrote: {data}`; a binary frame is refused with 4400. A
 * `wsgate.v1` client's `{"type":"auth"}` is an in-band re-authentication, not text to echo.
 */
function echo(ws: WebSocket, control: SocketControl, onSent: () => void): void {
  ws.on('message', (data: RawData, isBinary: boolean) => {
    if (isBinary) return closeSocket(ws, CloseCode.malformed, 'Text frames only');
    if (control.v1 && isAuthFrame(data, isBinary)) {
      let token: string;
      try {
        token = parseAuthFrame(data, isBinary);
      } catch (err) {
        const error = err as WsgateError;
        return sendJson(ws, { type: 'error', code: error.code, message: error.message });
      }
      return void control.reauthenticate(token);
    }
    ws.send(`You wrote: ${messageText(data)}`);
    onSent();
  });
}

/**
 * The seed documents' endpoints: the cookbook's `/secured-ws` and fastapi-jwt-auth's `/ws`
 * family (`jwt_required`, `jwt_optional`, `fresh_jwt_required`, `jwt_refresh_token_required`).
 * `onSent` is called once per message sent, for metrics.
 */
export function registerSeedEndpoints(gate: Gate, hooks: { onSent?: () => void } = {}): void {
  const onSent = hooks.onSent ?? (() => undefined);

  /** fastapi-jwt-auth's answer: the login line, the decoded token as JSON, then an echo. */
  const decodedToken: ConnectionHandler = (ws, principal, _request, control) => {
    if (principal.claims === null) {
      ws.send('Welcome guest!');
      onSent();
    } else {
      ws.send('Successfully Login!');
      ws.send(`Here your decoded token: ${JSON.stringify(principal.claims)}`);
      onSent();
      onSent();
    }
    echo(ws, control, onSent);
  };

  gate.route('/secured-ws', { requirement: 'required' }, (ws, principal, _request, control) => {
    ws.send(`Welcome ${principal.username ?? 'guest'}!`);
    onSent();
    echo(ws, control, onSent);
  });
  gate.route('/ws', { requirement: 'required' }, decodedToken);
  gate.route('/ws/optional', { requirement: 'optional' }, decodedToken);
  gate.route('/ws/fresh', { requirement: 'fresh' }, decodedToken);
  gate.route('/ws/refresh', { requirement: 'refresh' }, decodedToken);
}
