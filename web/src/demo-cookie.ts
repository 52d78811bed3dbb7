// fastapi-jwt-auth's "authorize from cookie" demo page: the cookie plus its CSRF value.
import { byId, cookie, showSocket, wsBase } from './dom.js';

const messages = byId<HTMLUListElement>('messages');
byId<HTMLButtonElement>('send').addEventListener('click', () => {
  const csrf = cookie('csrf_access_token') ?? '';
  showSocket(
    messages,
    new WebSocket(`${wsBase()}/ws?csrf_token=${encodeURIComponent(csrf)}`, ['wsgate.v1']),
  );
});
