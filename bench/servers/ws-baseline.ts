import { createServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { WebSocketServer, type WebSocket } from 'ws';
import { serveIpc } from './ipc.js';

/**
 * The baselines wsgate is measured against: a plain `ws` server (`--auth none`, the ceiling) and
 * the same server with a hand-written `jose` check of `Authorization: Bearer` in the upgrade
 * (`--auth jose`). Both speak wsgate's texts: `/secured-ws` greets and echoes like wsgate's, and
 * `/chat` answers `join` and `send` with the chat protocol's frames, encoding each broadcast once.
 */

const { values } = parseArgs({
  options: {
    auth: { type: 'string', default: 'none' },
    jwks: { type: 'string' },
    issuer: { type: 'string' },
  },
});
const verifyKey =
  values.auth === 'jose' ? createLocalJWKSet(JSON.parse(values.jwks ?? '') as JSONWebKeySet) : null;

const wss = new WebSocketServer({
  noServer: true,
  clientTracking: false,
  perMessageDeflate: false,
});
const rooms = new Map<string, Set<WebSocket>>();
let nextId = 0;

async function authenticate(req: IncomingMessage): Promise<string | null> {
  if (!verifyKey) return 'bench';
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Bearer ')) return null;
  try {
    const { payload } = await jwtVerify(header.slice(7), verifyKey, {
      algorithms: ['EdDSA'],
      issuer: values.issuer ?? '',
      audience: 'wsgate',
    });
    return typeof payload.sub === 'string' ? payload.sub : null;
  } catch {
    return null;
  }
}

function secured(ws: WebSocket, user: string): void {
  ws.send(`Welcome ${user}!`);
  ws.on('message', (data: Buffer) => ws.send(`You wrote: ${data.toString()}`));
}

function chat(ws: WebSocket, user: string): void {
  const joined = new Set<string>();
  ws.send(JSON.stringify({ type: 'welcome', user, rooms: ['general'] }));
  ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString()) as {
      type: string;
      room: string;
      text: string;
      id?: string;
    };
    if (frame.type === 'join') {
      let room = rooms.get(frame.room);
      if (!room) rooms.set(frame.room, (room = new Set()));
      room.add(ws);
      joined.add(frame.room);
      ws.send(JSON.stringify({ type: 'joined', room: frame.room, members: [user], history: [] }));
    } else if (frame.type === 'send') {
      const id = String(++nextId);
      if (frame.id !== undefined) ws.send(JSON.stringify({ type: 'ack', id: frame.id, msgId: id }));
      const message = {
        type: 'message',
        room: frame.room,
        id,
        user,
        text: frame.text,
        ts: Date.now(),
      };
      const encoded = Buffer.from(JSON.stringify(message));
      for (const member of rooms.get(frame.room) ?? []) member.send(encoded, { binary: false });
    }
  });
  ws.on('close', () => {
    for (const name of joined) rooms.get(name)?.delete(ws);
  });
}

const handlers: Record<string, (ws: WebSocket, user: string) => void> = {
  '/secured-ws': secured,
  '/chat': chat,
};

const server = createServer((_req, res) => res.writeHead(404).end());
server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
  socket.on('error', () => socket.destroy());
  const handler = handlers[new URL(req.url ?? '/', 'http://x').pathname];
  if (!handler) return void socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  void authenticate(req).then((user) => {
    if (user === null)
      return void socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => undefined);
      handler(ws, user);
    });
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  serveIpc(typeof address === 'object' && address ? address.port : 0);
});
