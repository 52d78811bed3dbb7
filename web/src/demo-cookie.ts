// fastapi-jwt-auth's "authorize from cookie" demo page: the cookie plus its CSRF value.
import { appendLine, byId, cookie, wsBase } from './dom.js';

const messages = byId<HTMLUListElement>('messages');
byId<HTMLButtonElement>('send').addEventListener('click', () => {
  const csrf = cookie('csrf_access_token') ?? '';
  const ws = new WebSocket(`${wsBase()}/ws?csrf_token=${encodeURIComponent(csrf)}`);
  ws.onmessage = (e: MessageEvent<string>) => appendLine(messages, e.data);
  ws.onclose = (e) =>
    appendLine(messages, `Connection closed (${e.code}${e.reason ? `: ${e.reason}` : ''})`);
});
