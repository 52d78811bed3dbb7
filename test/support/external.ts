import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { type RawData } from 'ws';
import { wsUrl } from './ws.js';

/** A socket that keeps what it receives; `next` waits for a message that matches. */
export interface Live {
  readonly ws: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  next(match: (text: string) => boolean, timeoutMs?: number): Promise<string>;
  send(frame: object): void;
}

export function live(ws: WebSocket): Promise<Live> {
  const inbox: string[] = [];
  const wake = new Set<() => void>();
  ws.on('message', (data: RawData) => {
    inbox.push((data as Buffer).toString('utf8'));
    for (const w of [...wake]) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        ws,
        closed,
        send: (frame) => ws.send(JSON.stringify(frame)),
        next: (match, timeoutMs = 3000) =>
          new Promise((done, fail) => {
            const check = () => {
              const i = inbox.findIndex(match);
              if (i < 0) return;
              wake.delete(check);
              clearTimeout(timer);
              done(inbox.splice(i, 1)[0] as string);
            };
            const timer = setTimeout(() => {
              wake.delete(check);
              fail(new Error(`nothing matched: ${JSON.stringify(inbox)}`));
            }, timeoutMs);
            wake.add(check);
            check();
          }),
      }),
    );
  });
}

/**
 * Where the provider sends back-channel logouts: a relay that keeps each logout token (for replay
 * tests) and forwards it to wsgate, whose port is known only after the provider has started.
 */
export interface LogoutRelay {
  readonly url: string;
  target: string | undefined;
  readonly tokens: string[];
  /** wsgate's answers to the forwarded logouts, in order. */
  readonly answers: number[];
  close(): Promise<void>;
}

export async function startLogoutRelay(): Promise<LogoutRelay> {
  const relay: { target: string | undefined } = { target: undefined };
  const tokens: string[] = [];
  const answers: number[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      tokens.push(new URLSearchParams(body).get('logout_token') ?? '');
      if (relay.target === undefined) return void res.writeHead(503).end();
      void fetch(relay.target, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      }).then(
        (answer) => {
          answers.push(answer.status);
          res.writeHead(answer.status).end();
        },
        () => res.writeHead(502).end(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(relay, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    tokens,
    answers,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

export const typed = (type: string) => (text: string) => text.startsWith(`{"type":"${type}"`);

export function bearer(server: { url: string }, path: string, token: string): Promise<Live> {
  return live(
    new WebSocket(wsUrl(server, path), { headers: { authorization: `Bearer ${token}` } }),
  );
}

export function v1(server: { url: string }, path: string, token: string): Promise<Live> {
  return live(new WebSocket(wsUrl(server, path), ['wsgate.v1', `wsgate.bearer.${token}`]));
}

export async function ticketFor(server: { url: string }, token: string): Promise<Response> {
  return fetch(`${server.url}/ws-ticket`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
}
