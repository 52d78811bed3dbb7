import type { WebSocket, RawData } from 'ws';
import { messageText } from '../message-text.js';
import type { Gate } from '../handshake/gate.js';
import type { Principal } from '../handshake/authenticate.js';

/** Echoes each text frame as `You wrote: {data}`; a binary frame is refused with 4400. */
function echo(ws: WebSocket): void {
  ws.on('message', (data: RawData, isBinary: boolean) => {
    if (isBinary) return void ws.close(4400, 'Text frames only');
    ws.send(`You wrote: ${messageText(data)}`);
  });
}

/** fastapi-jwt-auth's answer: the login line, the decoded token as JSON, then an echo. */
function decodedToken(ws: WebSocket, principal: Principal): void {
  if (principal.claims === null) {
    ws.send('Welcome guest!');
  } else {
    ws.send('Successfully Login!');
    ws.send(`Here your decoded token: ${JSON.stringify(principal.claims)}`);
  }
  echo(ws);
}

/**
 * The seed documents' endpoints: the cookbook's `/secured-ws` and fastapi-jwt-auth's `/ws`
 * family (`jwt_required`, `jwt_optional`, `fresh_jwt_required`, `jwt_refresh_token_required`).
 */
export function registerSeedEndpoints(gate: Gate): void {
  gate.route('/secured-ws', { requirement: 'required' }, (ws, principal) => {
    ws.send(`Welcome ${principal.username ?? 'guest'}!`);
    echo(ws);
  });
  gate.route('/ws', { requirement: 'required' }, decodedToken);
  gate.route('/ws/optional', { requirement: 'optional' }, decodedToken);
  gate.route('/ws/fresh', { requirement: 'fresh' }, decodedToken);
  gate.route('/ws/refresh', { requirement: 'refresh' }, decodedToken);
}
