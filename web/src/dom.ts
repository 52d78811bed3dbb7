/** Small DOM helpers shared by the pages. Text is always set as text, never as markup. */
export function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
}

export function cookie(name: string): string | undefined {
  for (const part of document.cookie.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return undefined;
}

/** Appends a line of text to a list, as the seed pages do. */
export function appendLine(list: HTMLElement, text: string): void {
  const li = document.createElement('li');
  li.textContent = text;
  list.appendChild(li);
}

export function wsBase(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
}

/** The socket shown on a demo page: the list is cleared, then each message and how it closed. */
let shown: WebSocket | undefined;
export function showSocket(list: HTMLElement, ws: WebSocket): void {
  shown?.close(1000);
  shown = ws;
  list.replaceChildren();
  ws.onmessage = (e: MessageEvent<string>) => {
    if (shown === ws) appendLine(list, e.data);
  };
  ws.onclose = (e) => {
    if (shown !== ws) return;
    appendLine(list, `Connection closed: ${e.code}${e.reason ? ` ${e.reason}` : ''}`);
  };
}
