import { createHmac, createPublicKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWK } from 'jose';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import { serveIpc } from './ipc.js';

/**
 * The baselines wsgate is measured against: a plain `ws` server (`--auth none`, the ceiling) and
 * the same server with a hand-written `jose` check of `Authorization: Bearer` in the upgrade
 * (`--auth jose`), or the same check by hand on `node:crypto` (`--auth crypto`: Ed25519 with the
 * JWKS, or HS256 with `--hs256-secret`), the floor for a server that checks a signature per
 * handshake. All speak wsgate's texts: `/secured-ws` greets and echoes like wsgate's, and `/chat`
 * answers `join` and `send` with the chat protocol's frames, encoding each broadcast once; with
 * `--fanout preframed` it also frames it once (`WebSocket.Sender.frame`) and writes that one
 * buffer to every member's socket.
 */

const { values } = parseArgs({
  options: {
    auth: { type: 'string', default: 'none' },
    jwks: { type: 'string' },
    issuer: { type: 'string' },
    'hs256-secret': { type: 'string' },
    fanout: { type: 'string', default: 'send' },
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

/** The `--auth crypto` key: the first JWK of the set (Ed25519), or the HS256 secret. */
const cryptoKey: { alg: 'EdDSA'; key: KeyObject } | { alg: 'HS256'; secret: Buffer } | null =
  values.auth !== 'crypto'
    ? null
    : values['hs256-secret'] !== undefined
      ? { alg: 'HS256', secret: Buffer.from(values['hs256-secret'], 'utf8') }
      : {
          alg: 'EdDSA',
          key: createPublicKey({
            key: (JSON.parse(values.jwks ?? '') as JSONWebKeySet).keys[0] as JWK,
            format: 'jwk',
          }),
        };

/** A JWT checked by hand: header, signature, then `iss`, `aud`, `exp` and `sub`. */
function verifyByHand(token: string): string | null {
  if (!cryptoKey) return null;
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first === -1 || second === -1) return null;
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, first), 'base64url').toString()) as {
      alg?: string;
    };
    if (header.alg !== cryptoKey.alg) return null;
    const signed = Buffer.from(token.slice(0, second));
    const signature = Buffer.from(token.slice(second + 1), 'base64url');
    if (cryptoKey.alg === 'EdDSA') {
      if (!verify(null, signed, cryptoKey.key, signature)) return null;
    } else {
      const expected = createHmac('sha256', cryptoKey.secret).update(signed).digest();
      if (expected.length !== signature.length || !timingSafeEqual(expected, signature))
        return null;
    }
    const claims = JSON.parse(
      Buffer.from(token.slice(first + 1, second), 'base64url').toString(),
    ) as { iss?: unknown; aud?: unknown; exp?: unknown; sub?: unknown };
    if (claims.iss !== values.issuer || claims.aud !== 'wsgate') return null;
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now()) return null;
    return typeof claims.sub === 'string' ? claims.sub : null;
  } catch {
    return null;
  }
}

async function authenticate(req: IncomingMessage): Promise<string | null> {
  if (cryptoKey) {
    const header = req.headers.authorization ?? '';
    return header.startsWith('Bearer ') ? verifyByHand(header.slice(7)) : null;
  }
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
      if (values.fanout === 'preframed') {
        // One frame for everyone: header and payload in one buffer, one write per member.
        const framed = Buffer.concat(
          Sender.frame(encoded, {
            fin: true,
            opcode: 1,
            mask: false,
            readOnly: true,
            rsv1: false,
          }),
        );
        for (const member of rooms.get(frame.room) ?? []) {
          if (member.readyState === WebSocket.OPEN) rawSocket(member).write(framed);
        }
      } else {
        for (const member of rooms.get(frame.room) ?? []) member.send(encoded, { binary: false });
      }
    }
  });
  ws.on('close', () => {
    for (const name of joined) rooms.get(name)?.delete(ws);
  });
}

/** `ws`'s own framing (its `Sender`), which its type declarations leave out. */
const { Sender } = wsModule as unknown as {
  Sender: {
    frame(
      data: Buffer,
      options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean },
    ): Buffer[];
  };
};

/** The TCP socket under a `ws` socket (no permessage-deflate: nothing is ever queued in `ws`). */
function rawSocket(ws: WebSocket): Duplex {
  return (ws as unknown as { _socket: Duplex })._socket;
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
