// fastapi-jwt-auth's "authorize from query URL" demo page: paste a token, connect, see the answers.
import { byId, showSocket, wsBase } from './dom.js';

const messages = byId<HTMLUListElement>('messages');
byId<HTMLFormElement>('connect').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = byId<HTMLTextAreaElement>('token').value.trim();
  // wsgate.v1: a refused token still upgrades, then closes with a code and reason the page can show.
  showSocket(
    messages,
    new WebSocket(`${wsBase()}/ws?token=${encodeURIComponent(token)}`, ['wsgate.v1']),
  );
});
