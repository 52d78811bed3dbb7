/**
 * A plain `ws` backend behind wsgate, verifying X-Wsgate-Identity with jose: it accepts only
 * sockets that came through wsgate, and knows who is on each one without any auth code of its own.
 * Run: GATE_URL=http://127.0.0.1:8000 PORT=9000 npx tsx examples/proxy/node-backend.ts
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

const gateUrl = process.env.GATE_URL ?? 'http://127.0.0.1:8000';
const issuer = process.env.GATE_ISSUER ?? gateUrl;
const port = Number(process.env.PORT ?? 9000);
// The audience wsgate signs for this backend: the upstream URL given to --proxy, without query.
const audience = process.env.IDENTITY_AUDIENCE ?? `ws://127.0.0.1:${port}/secured-ws`;

const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', gateUrl));

interface Identity extends JWTPayload {
  sub: string;
  name: string;
  idp: string;
  sid: string;
  scope: string;
}

/** The user wsgate vouches for, or an error: never trust the plain X-Wsgate-* headers alone. */
async function verifyIdentity(token: string | undefined): Promise<Identity> {
  const { payload } = await jwtVerify<Identity>(token ?? '', jwks, {
    issuer,
    audience,
    typ: 'wsgate-identity+jwt',
    algorithms: ['EdDSA'],
    maxTokenAge: '60s',
    requiredClaims: ['exp', 'iat', 'sub', 'sid'],
  });
  return payload;
}

const server = createServer();
const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  const header = req.headers['x-wsgate-identity'];
  verifyIdentity(Array.isArray(header) ? undefined : header).then(
    (identity) =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.send(`Welcome ${identity.name}!`);
        ws.on('message', (data: Buffer) => ws.send(`You wrote: ${data.toString()}`));
      }),
    () => socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'),
  );
});
server.listen(port, '127.0.0.1', () => {
  const { port: actual } = server.address() as AddressInfo;
  console.log(JSON.stringify({ url: `ws://127.0.0.1:${actual}/secured-ws` }));
});
