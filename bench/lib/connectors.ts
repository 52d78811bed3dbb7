import { RawWs } from './raw-ws.js';

/**
 * How the load generator opens an authenticated socket on each server under test, one connector
 * per server and credential transport. Every `open` resolves once the server has greeted the
 * socket (`Welcome <user>!`), the point where an application can start talking.
 */

/** A session's credentials, as minted by the wsgate bench server. */
export interface Minted {
  readonly access: string;
  readonly refresh: string;
  readonly sessionId: string;
  readonly csrf: string | null;
}

export interface Connector {
  readonly label: string;
  /** The server process this connector talks to. */
  readonly server:
    | 'wsgate'
    | 'wsgate-hs256'
    | 'wsgate-rs256'
    | 'ws-plain'
    | 'ws-jose'
    | 'ws-crypto'
    | 'ws-crypto-hs256'
    | 'ws-preframed'
    | 'socketio';
  open(this: void, port: number, credential: Minted, path?: string): Promise<RawWs>;
  /** The text frame that carries `text` to the server, and the frame its echo comes back as. */
  message(text: string): string;
  echo(text: string): string;
}

const plainText = {
  message: (text: string) => text,
  echo: (text: string) => `You wrote: ${text}`,
};

async function greeted(ws: RawWs): Promise<RawWs> {
  await ws.nextText();
  return ws;
}

function bearer(credential: Minted): Record<string, string> {
  return { Authorization: `Bearer ${credential.access}` };
}

/** A ticket from `POST /ws-ticket`, as a browser page would fetch one before each connection. */
async function ticket(port: number, credential: Minted): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/ws-ticket`, {
    method: 'POST',
    headers: bearer(credential),
  });
  if (!response.ok) throw new Error(`POST /ws-ticket answered ${response.status}`);
  return ((await response.json()) as { ticket: string }).ticket;
}

export const wsgateConnectors: Record<string, Connector> = {
  header: {
    label: 'wsgate · Authorization header',
    server: 'wsgate',
    open: (port, c, path = '/secured-ws') =>
      RawWs.open({ port, path, headers: bearer(c) }).then(greeted),
    ...plainText,
  },
  subprotocol: {
    label: 'wsgate · subprotocol',
    server: 'wsgate',
    open: (port, c, path = '/secured-ws') =>
      RawWs.open({
        port,
        path,
        headers: { 'Sec-WebSocket-Protocol': `wsgate.v1, wsgate.bearer.${c.access}` },
      }).then(greeted),
    ...plainText,
  },
  ticket: {
    label: 'wsgate · ticket (incl. POST /ws-ticket)',
    server: 'wsgate',
    open: async (port, c, path = '/secured-ws') =>
      greeted(await RawWs.open({ port, path: `${path}?token=${await ticket(port, c)}` })),
    ...plainText,
  },
  cookie: {
    label: 'wsgate · cookie + CSRF + Origin',
    server: 'wsgate',
    open: (port, c, path = '/secured-ws') =>
      RawWs.open({
        port,
        path: `${path}?csrf_token=${c.csrf ?? ''}`,
        headers: {
          Cookie: `access_token_cookie=${c.access}`,
          Origin: `http://127.0.0.1:${port}`,
        },
      }).then(greeted),
    ...plainText,
  },
  'first-message': {
    label: 'wsgate · first message',
    server: 'wsgate',
    open: async (port, c, path = '/secured-ws') => {
      const ws = await RawWs.open({
        port,
        path,
        headers: { 'Sec-WebSocket-Protocol': 'wsgate.v1' },
      });
      ws.send(JSON.stringify({ type: 'auth', token: c.access }));
      return greeted(ws);
    },
    ...plainText,
  },
  query: {
    label: 'wsgate · ?token= (compat)',
    server: 'wsgate',
    open: (port, c, path = '/secured-ws') =>
      RawWs.open({ port, path: `${path}?token=${c.access}` }).then(greeted),
    ...plainText,
  },
};

export const wsPlain: Connector = {
  label: 'ws, no auth (ceiling)',
  server: 'ws-plain',
  open: (port, _c, path = '/secured-ws') => RawWs.open({ port, path }).then(greeted),
  ...plainText,
};

export const wsJose: Connector = {
  label: 'ws + jose in upgrade',
  server: 'ws-jose',
  open: (port, c, path = '/secured-ws') =>
    RawWs.open({ port, path, headers: bearer(c) }).then(greeted),
  ...plainText,
};

/** The same `Authorization: Bearer` check by hand on `node:crypto`: the floor for a signature per handshake. */
export const wsCrypto: Connector = {
  label: 'ws + the same check by hand (node:crypto)',
  server: 'ws-crypto',
  open: (port, c, path = '/secured-ws') =>
    RawWs.open({ port, path, headers: bearer(c) }).then(greeted),
  ...plainText,
};

/** Engine.IO 4 over WebSocket by hand: open packet, CONNECT with `auth`, then events. */
export const socketIo: Connector = {
  label: 'Socket.IO 4 + JWT middleware',
  server: 'socketio',
  open: async (port, c) => {
    const ws = await RawWs.open({ port, path: '/socket.io/?EIO=4&transport=websocket' });
    ws.replies.set('2', '3');
    const open = await ws.nextText();
    if (!open.startsWith('0')) throw new Error(`unexpected Engine.IO open packet ${open}`);
    ws.send(`40${JSON.stringify({ token: c.access })}`);
    const connected = await ws.nextText();
    if (!connected.startsWith('40')) throw new Error(`Socket.IO refused: ${connected}`);
    return greeted(ws);
  },
  message: (text) => `42${JSON.stringify(['message', text])}`,
  echo: (text) => `42${JSON.stringify(['message', `You wrote: ${text}`])}`,
};

/**
 * The four servers every per-socket scenario compares, each with the credential its users would
 * send: wsgate with the Authorization header, the baselines as above. Keyed for `--cases=`.
 */
export const lineup: readonly (readonly [string, Connector])[] = [
  ['ws-plain', wsPlain],
  ['ws-jose', wsJose],
  ['socketio', socketIo],
  ['wsgate', wsgateConnectors.header as Connector],
];
