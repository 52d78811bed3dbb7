// The chat page. It never sees a token: the session lives in HttpOnly cookies, and each
// connection uses a single-use ticket minted with the cookie and the double-submit CSRF value.
import {
  WsgateClient,
  roomPattern,
  type ClientState,
  type MessageFrame,
} from '../../src/client/index.js';
import { byId, cookie, wsBase } from './dom.js';

const app = byId<HTMLDivElement>('app');
const status = byId<HTMLSpanElement>('status');
const me = byId<HTMLElement>('me');
const roomList = byId<HTMLUListElement>('rooms');
const memberList = byId<HTMLUListElement>('members');
const messageList = byId<HTMLOListElement>('messages');
const roomTitle = byId<HTMLHeadingElement>('room-title');
const composer = byId<HTMLFormElement>('composer');
const input = byId<HTMLTextAreaElement>('text');
const joinForm = byId<HTMLFormElement>('join-form');
const joinInput = byId<HTMLInputElement>('join-room');

const messages = new Map<string, MessageFrame[]>();
const members = new Map<string, Set<string>>();
const known = new Set<string>(['general']);
let current = 'general';

function csrfHeaders(): Record<string, string> {
  return { 'x-csrf-token': cookie('csrf_access_token') ?? '' };
}

/** A ticket for the next connection; renews the cookies once when the access cookie expired. */
async function getTicket(): Promise<string> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const res = await fetch('/ws-ticket', {
      method: 'POST',
      headers: csrfHeaders(),
      credentials: 'same-origin',
    });
    if (res.ok) return ((await res.json()) as { ticket: string }).ticket;
    if (res.status !== 401 || attempt > 0) break;
    const refreshed = await fetch('/session/refresh', {
      method: 'POST',
      headers: csrfHeaders(),
      credentials: 'same-origin',
    });
    if (!refreshed.ok) break;
  }
  signedOut('Your session has ended.');
  throw new Error('signed out');
}

const client = new WsgateClient({ url: `${wsBase()}/chat`, getTicket });

const stateLabels: Record<ClientState, [string, string]> = {
  connecting: ['connecting', 'Connecting…'],
  connected: ['connected', 'Connected'],
  disconnected: ['reconnecting', 'Reconnecting…'],
  closed: ['signed-out', 'Disconnected'],
};

function setState(state: string, label: string): void {
  app.dataset.state = state;
  status.textContent = label;
  composer.querySelector('button')?.toggleAttribute('disabled', state !== 'connected');
}

let redirecting = false;
function signedOut(reason: string): void {
  setState('signed-out', 'Signed out');
  if (redirecting) return;
  redirecting = true;
  systemLine(`${reason} Returning to the sign-in page…`);
  setTimeout(() => location.assign('/login?next=%2F'), 1500);
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

function systemLine(text: string): void {
  const li = el('li', 'system', text);
  messageList.appendChild(li);
  li.scrollIntoView({ block: 'end' });
}

function renderMessage(m: MessageFrame): HTMLLIElement {
  const li = document.createElement('li');
  li.dataset.id = String(m.id);
  const time = new Date(m.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  // Message text is always text: textContent, never innerHTML.
  li.append(el('span', 'meta', time), el('span', 'user', m.user), el('span', 'text', m.text));
  return li;
}

function renderMessages(): void {
  roomTitle.textContent = `#${current}`;
  messageList.replaceChildren(...(messages.get(current) ?? []).map(renderMessage));
  messageList.lastElementChild?.scrollIntoView({ block: 'end' });
}

function renderMembers(): void {
  const list = [...(members.get(current) ?? [])].sort();
  memberList.replaceChildren(...list.map((user) => el('li', '', user)));
}

function renderRooms(): void {
  roomList.replaceChildren(
    ...[...known].sort().map((room) => {
      const li = document.createElement('li');
      const button = el('button', '', `#${room}`);
      button.type = 'button';
      button.setAttribute('aria-current', String(room === current));
      button.addEventListener('click', () => openRoom(room));
      li.appendChild(button);
      return li;
    }),
  );
}

function openRoom(room: string): void {
  known.add(room);
  current = room;
  if (!client.rooms.includes(room)) client.join(room);
  renderRooms();
  renderMessages();
  renderMembers();
  input.focus();
}

function addMessage(m: MessageFrame): void {
  const list = messages.get(m.room) ?? [];
  if (list.some((x) => x.id === m.id)) return;
  list.push(m);
  messages.set(m.room, list);
  if (m.room === current) {
    const li = renderMessage(m);
    messageList.appendChild(li);
    li.scrollIntoView({ block: 'end' });
  }
}

client.on('state', (state) => {
  const [name, label] = stateLabels[state];
  if (!redirecting) setState(name, label);
});
client.on('welcome', (frame) => {
  me.textContent = frame.user;
  for (const room of frame.rooms) known.add(room);
  renderRooms();
});
client.on('joined', (frame) => {
  members.set(frame.room, new Set(frame.members));
  for (const m of frame.history) addMessage(m);
  if (frame.room === current) renderMembers();
});
client.on('message', addMessage);
client.on('presence', (frame) => {
  const set = members.get(frame.room) ?? new Set<string>();
  if (frame.state === 'join') set.add(frame.user);
  else set.delete(frame.user);
  members.set(frame.room, set);
  if (frame.room === current) renderMembers();
});
client.on('error', (frame) => systemLine(`Error: ${frame.message}`));
client.on('stopped', (event) => {
  if (event.code === 4410 || event.code === 4401) signedOut('Your session has ended.');
  else if (event.code !== 1000) systemLine(`Disconnected (${event.code}): ${event.reason}`);
});

composer.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = input.value;
  if (text.trim() === '') return;
  client.send(current, text).then(
    () => {
      if (input.value === text) input.value = '';
    },
    (err: unknown) => systemLine(`Not sent: ${err instanceof Error ? err.message : String(err)}`),
  );
});

input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const room = joinInput.value.trim().toLowerCase();
  if (!roomPattern.test(room)) {
    systemLine('Room names are lower-case letters, digits, _ and -, up to 64 characters.');
    return;
  }
  joinInput.value = '';
  openRoom(room);
});

byId<HTMLButtonElement>('logout').addEventListener('click', () => {
  client.close();
  redirecting = true;
  void fetch('/session/logout', {
    method: 'POST',
    headers: csrfHeaders(),
    credentials: 'same-origin',
  }).finally(() => location.assign('/login'));
});

renderRooms();
client.join(current);
client.connect();
