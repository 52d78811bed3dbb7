import type WebSocket from 'ws';

export interface Closed {
  readonly code: number;
  readonly reason: string;
}

/** Follows a socket: its close, and waits on what it does next. */
export class Watch {
  closed: Closed | undefined;
  #waiters = new Set<() => void>();
  #messages = 0;

  constructor(readonly ws: WebSocket) {
    ws.on('message', () => {
      this.#messages++;
      this.#wake();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString('utf8') };
      this.#wake();
    });
    ws.on('error', () => undefined);
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves when `done()` holds (true) or `ms` passed (false). */
  until(done: () => boolean, ms: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        finish(true);
      };
      const finish = (value: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => finish(false), ms);
      this.#waiters.add(check);
    });
  }

  /** Waits for data after now, a close, or `ms`: true when the socket is still open. */
  async survives(ms: number): Promise<boolean> {
    const seen = this.#messages;
    await this.until(() => this.closed !== undefined || this.#messages > seen, ms);
    return this.closed === undefined;
  }

  /** Waits up to `ms` for the server to close; the close, or undefined if the socket stayed open. */
  async closes(ms: number): Promise<Closed | undefined> {
    await this.until(() => this.closed !== undefined, ms);
    return this.closed;
  }

  /**
   * Sends (a fragment when `fin` is false) and resolves once written, or failed because the server
   * already dropped the socket.
   */
  send(data: string | Buffer, binary = false, fin = true): Promise<void> {
    if (this.ws.readyState !== this.ws.OPEN) return Promise.resolve();
    return new Promise((resolve) => this.ws.send(data, { binary, fin }, () => resolve()));
  }
}
