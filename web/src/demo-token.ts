// fastapi-jwt-auth's "authorize from query URL" demo page: paste a token, connect, see the answers.
import { appendLine, byId, wsBase } from './dom.js';

const messages = byId<HTMLUListElement>('messages');
byId<HTMLFormElement>('connect').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = byId<HTMLTextAreaElement>('token').value.trim();
  const ws = new WebSocket(`${wsBase()}/ws?token=${encodeURIComponent(token)}`);
  ws.onmessage = (e: MessageEvent<string>) => appendLine(messages, e.data);
  ws.onclose = (e) =>
    appendLine(messages, `Connection closed (${e.code}${e.reason ? `: ${e.reason}` : ''})`);
});
