import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** One socket the upstream accepted, and everything it received on it. */
export interface UpstreamConnection {
  readonly ws: WebSocket;
  /** The request target as received: path and query. */
  readonly url: string;
  /** Header names lower-cased; repeated headers keep every value. */
  readonly headers: Readonly<Record<string, string[]>>;
  /** Raw header lines as received, names as sent. */
  readonly rawHeaders: readonly string[];
  readonly protocol: string;
  readonly messages: { data: Buffer; binary: boolean }[];
  readonly pings: Buffer[];
  readonly pongs: Buffer[];
  /** The close the client sent, once it has. */
  close: { code: number; reason: string } | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;
}

export interface UpstreamOptions {
  /** Echo every message back (default true). */
  readonly echo?: boolean;
  /** Chooses the subprotocol; default the first offered. */
  readonly protocol?: (offered: Set<string>) => string | false;
  /** Serve `wss://` with the test certificate (signed by test/fixtures/proxy-ca.pem). */
  readonly tls?: boolean;
  /** Refuse every upgrade with this status. */
  readonly refuse?: number;
  /** Let ws answer pings itself (default false: the test sees them all). */
  readonly autoPong?: boolean;
}

/** A real WebSocket server standing in for a backend behind wsgate; it records what it gets. */
export interface Upstream {
  readonly url: string;
  readonly port: number;
  readonly connections: UpstreamConnection[];
  /** Resolves with the next connection (or the n-th, counting from 1). */
  connection(n?: number): Promise<UpstreamConnection>;
  /** Open sockets right now. */
  readonly open: number;
  close(): Promise<void>;
}

const fixtures = new URL('../fixtures/', import.meta.url);

export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  const server: Server = options.tls
    ? createTlsServer({
        cert: readFileSync(new URL('proxy-upstream.pem', fixtures)),
        key: readFileSync(new URL('proxy-upstream.key', fixtures)),
      })
    : createServer();
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    autoPong: options.autoPong ?? false,
    handleProtocols: options.protocol ?? ((offered) => [...offered][0] ?? false),
  });
  const connections: UpstreamConnection[] = [];
  const waiters: { n: number; resolve: (c: UpstreamConnection) => void }[] = [];
  const sockets = new Set<WebSocket>();
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    if (options.refuse !== undefined) {
      socket.end(
        `HTTP/1.1 ${options.refuse} Refused\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const headers: Record<string, string[]> = {};
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        const name = (req.rawHeaders[i] as string).toLowerCase();
        (headers[name] ??= []).push(req.rawHeaders[i + 1] as string);
      }
      let resolveClosed!: (c: { code: number; reason: string }) => void;
      const connection: UpstreamConnection = {
        ws,
        url: req.url ?? '',
        headers,
        rawHeaders: [...req.rawHeaders],
        protocol: ws.protocol,
        messages: [],
        pings: [],
        pongs: [],
        close: undefined,
        closed: new Promise((resolve) => (resolveClosed = resolve)),
      };
      sockets.add(ws);
      ws.on('message', (data: Buffer, binary) => {
        connection.messages.push({ data, binary });
        if (options.echo ?? true) ws.send(data, { binary });
      });
      ws.on('ping', (data) => {
        connection.pings.push(data);
        if (!(options.autoPong ?? false)) ws.pong(data);
      });
      ws.on('pong', (data) => connection.pongs.push(data));
      ws.on('error', () => undefined);
      ws.on('close', (code, reason) => {
        sockets.delete(ws);
        connection.close = { code, reason: reason.toString() };
        resolveClosed(connection.close);
      });
      connections.push(connection);
      for (const waiter of [...waiters]) {
        if (connections.length >= waiter.n) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(connections[waiter.n - 1] as UpstreamConnection);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${options.tls ? 'wss' : 'ws'}://127.0.0.1:${port}`,
    port,
    connections,
    get open() {
      return sockets.size;
    },
    connection(n = connections.length + 1) {
      const existing = connections[n - 1];
      if (existing) return Promise.resolve(existing);
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A backend's choice of subprotocol: none, as FastAPI's `accept()`, unless it is offered `chat.v2`. */
export function chatV2OrNone(offered: Set<string>): string | false {
  return offered.has('chat.v2') ? 'chat.v2' : false;
}

/** The test CA that signed the `wss://` upstream's certificate. */
export function testCa(): string {
  return readFileSync(new URL('proxy-ca.pem', fixtures), 'utf8');
}
