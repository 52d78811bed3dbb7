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
