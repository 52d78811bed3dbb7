import WebSocket from 'ws';

/** How a handshake ended: refused over HTTP, or upgraded and then (maybe) closed. */
export type Outcome =
  | {
      kind: 'http';
      status: number;
      headers: Record<string, string | string[] | undefined>;
      body: unknown;
    }
  | {
      kind: 'open';
      protocol: string;
      messages: string[];
      close: { code: number; reason: string } | null;
      socket: WebSocket;
    };

export interface ConnectOptions {
  headers?: Record<string, string>;
  protocols?: string[];
  /** Messages to send right after the upgrade. */
  send?: string[];
  /** Stop collecting after this many messages (the socket is left open). */
  messages?: number;
  /** Give up waiting after this long; the outcome then has whatever arrived. */
  timeoutMs?: number;
  /** The client's own address (any of 127.0.0.0/8 reaches a loopback server as another client). */
  localAddress?: string;
}

/**
 * Opens a WebSocket and reports what happened: the HTTP refusal, or the upgrade, the messages
 * received and the close frame. Resolves when the socket closes or `messages` have arrived.
 */
export function connect(url: string, options: ConnectOptions = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], {
      headers: options.headers ?? {},
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    const messages: string[] = [];
    let settled = false;
    const timer = setTimeout(() => finish(null), options.timeoutMs ?? 3000);
    function finish(close: { code: number; reason: string } | null): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ kind: 'open', protocol: ws.protocol, messages, close, socket: ws });
    }
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        settled = true;
        clearTimeout(timer);
        let parsed: unknown = body;
        try {
          parsed = JSON.parse(body);
        } catch {
          // not JSON: keep the text
        }
        resolve({ kind: 'http', status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        ws.terminate();
      });
    });
    ws.on('open', () => {
      for (const m of options.send ?? []) ws.send(m);
    });
    ws.on('message', (data: Buffer) => {
      messages.push(data.toString('utf8'));
      if (options.messages !== undefined && messages.length >= options.messages) finish(null);
    });
    ws.on('close', (code, reason) => finish({ code, reason: reason.toString() }));
    ws.on('error', (err) => {
      if (!settled && ws.readyState !== WebSocket.OPEN && ws.readyState !== WebSocket.CLOSING) {
        // 'unexpected-response' settles refused handshakes; anything else is a real failure.
        setTimeout(() => {
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            reject(err);
          }
        }, 50);
      }
    });
  });
}

/** The WebSocket URL of a server's path. */
export function wsUrl(server: { url: string }, path: string): string {
  return server.url.replace(/^http/, 'ws') + path;
}
