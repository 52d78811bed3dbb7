/**
 * Small WebSocket servers for the scanner's tests, written the way people write them: a sound one,
 * and variants that each leave out one defence. None of them is wsgate, and none uses its texts or
 * close codes.
 */
import { createServer, STATUS_CODES, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { SignJWT, jwtVerify } from 'jose';

const secret = new TextEncoder().encode('scan-targets: a shared HS256 secret, 32+ bytes long');

/** An HS256 token for the targets, expiring in `seconds`; `csrf` adds a double-submit claim. */
export function mintToken(seconds = 3600, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + seconds)
    .sign(secret);
}

export interface TargetShape {
  /** Where the credential comes from and how it is checked. */
  readonly credential: 'bearer' | 'cookie' | 'query-shape-only' | 'none';
  /**
   * `strict`: an Origin, when present, must be the server's own (cookies need one);
   * `same-host`: Origin's host must equal the Host header (fooled by DNS rebinding);
   * `none`: Origin is never looked at.
   */
  readonly origin: 'strict' | 'same-host' | 'none';
  /** Close each socket when its token expires. */
  readonly closeAtExp: boolean;
  readonly maxPayload: number;
  /** Keep Node's default header timeout (60 s) instead of dropping slow upgrades after 2 s. */
  readonly slowHeaders?: boolean;
  /** Answer every request, upgrade or not, with 404. */
  readonly notFound?: boolean;
  /** Put the presented token in refusals' close reasons and in messages (to test scrubbing). */
  readonly leaky?: boolean;
  /** Answer 429 to every upgrade after this many. */
  readonly throttleAfter?: number;
  /**
   * Close a socket with 1008 past 100 messages, refilled at 5 a second: a flood of 300 crosses it
   * however slowly a loaded machine sends it.
   */
  readonly messageLimit: boolean;
  /**
   * Answer 429 past 100 upgrades, refilled at 2 a second: a flood of 400 crosses it however slowly
   * a loaded machine runs it.
   */
  readonly handshakeLimit: boolean;
}

export const soundShape: TargetShape = {
  credential: 'bearer',
  origin: 'strict',
  closeAtExp: true,
  maxPayload: 64 * 1024,
  messageLimit: true,
  handshakeLimit: true,
};

/** A token bucket: `burst` at once, refilled at `rate` a second. */
function bucket(rate: number, burst: number): () => boolean {
  let tokens = burst;
  let last = Date.now();
  return () => {
    const now = Date.now();
    tokens = Math.min(burst, tokens + ((now - last) / 1000) * rate);
    last = now;
    if (tokens < 1) return false;
    tokens--;
    return true;
  };
}

export interface Target {
  /** `ws://127.0.0.1:<port>/live` */
  readonly url: string;
  readonly origin: string;
  close(): Promise<void>;
}

const jwtShape = /^[\w-]+\.[\w-]+\.[\w-]+$/;

function readCookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

export async function startTarget(shape: TargetShape): Promise<Target> {
  const server = createServer(
    shape.slowHeaders
      ? {}
      : { headersTimeout: 2000, requestTimeout: 4000, connectionsCheckingInterval: 200 },
    (_req, res) => {
      res.writeHead(404).end('not found');
    },
  );
  const wss = new WebSocketServer({ noServer: true, maxPayload: shape.maxPayload });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const ownOrigin = `http://127.0.0.1:${port}`;

  const refuse = (socket: Duplex, status: number) =>
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
    );

  const originAllowed = (req: IncomingMessage): boolean => {
    const origin = req.headers.origin;
    const cookie = shape.credential === 'cookie';
    if (shape.origin === 'none') return true;
    if (origin === undefined) return !cookie;
    if (shape.origin === 'strict') return origin === ownOrigin;
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  };

  const credentialOf = (req: IncomingMessage, url: URL): string | undefined => {
    switch (shape.credential) {
      case 'bearer': {
        const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
        return m?.[1];
      }
      case 'cookie':
        return readCookie(req, 'access_token_cookie');
      case 'query-shape-only':
        return url.searchParams.get('token') ?? undefined;
      case 'none':
        return undefined;
    }
  };

  let upgrades = 0;
  const handshakes = bucket(2, 100);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (shape.throttleAfter !== undefined && ++upgrades > shape.throttleAfter) {
      return refuse(socket, 429);
    }
    if (shape.handshakeLimit && !handshakes()) return refuse(socket, 429);
    void (async () => {
      const url = new URL(req.url ?? '/', ownOrigin);
      if (shape.notFound || url.pathname !== '/live') return refuse(socket, 404);
      if (!originAllowed(req)) return refuse(socket, 403);
      let exp: number | undefined;
      let token: string | undefined;
      if (shape.credential !== 'none') {
        token = credentialOf(req, url);
        if (token === undefined) return refuse(socket, 401);
        if (shape.credential === 'query-shape-only') {
          if (!jwtShape.test(token)) return refuse(socket, 401);
        } else {
          try {
            exp = (await jwtVerify(token, secret, { algorithms: ['HS256'] })).payload.exp;
          } catch {
            if (!shape.leaky) return refuse(socket, 401);
            // The worst habit: tell the client what it sent, in the close reason.
            return wss.handleUpgrade(req, socket, head, (ws) => {
              ws.on('error', () => undefined);
              ws.close(4001, `bad token ${token?.slice(0, 50)}|${token?.slice(-60)}`);
            });
          }
        }
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        // Oversized or invalid frames close the socket; the error itself is not news.
        ws.on('error', () => undefined);
        ws.send(shape.leaky ? `hello, your token is ${token}` : 'hello');
        const messages = bucket(5, 100);
        ws.on('message', (data: Buffer, isBinary) => {
          if (shape.messageLimit && !messages()) return ws.close(1008, 'too many messages');
          ws.send(`got ${isBinary ? 'binary' : 'text'} of ${data.length} bytes`);
        });
        if (shape.closeAtExp && exp !== undefined) {
          const timer = setTimeout(() => ws.close(4001, 'token expired'), exp * 1000 - Date.now());
          ws.on('close', () => clearTimeout(timer));
        }
      });
    })();
  });

  return {
    url: `ws://127.0.0.1:${port}/live`,
    origin: ownOrigin,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
