import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { Server } from 'socket.io';
import { serveIpc } from './ipc.js';

/**
 * Socket.IO 4 with the JWT middleware most guides show: the token arrives in the handshake's
 * `auth` payload and `io.use` verifies it with `jose` before the connection is accepted. It greets
 * and echoes with wsgate's `/secured-ws` texts as `message` events.
 */

const { values } = parseArgs({ options: { jwks: { type: 'string' }, issuer: { type: 'string' } } });
const verifyKey = createLocalJWKSet(JSON.parse(values.jwks ?? '') as JSONWebKeySet);

const server = createServer();
const io = new Server(server, { transports: ['websocket'], serveClient: false });
io.use((socket, next) => {
  const token: unknown = (socket.handshake.auth as { token?: unknown }).token;
  if (typeof token !== 'string') return next(new Error('unauthorized'));
  jwtVerify(token, verifyKey, {
    algorithms: ['EdDSA'],
    issuer: values.issuer ?? '',
    audience: 'wsgate',
  })
    .then(({ payload }) => {
      (socket.data as { user?: unknown }).user = payload.sub;
      next();
    })
    .catch(() => next(new Error('unauthorized')));
});
io.on('connection', (socket) => {
  socket.send(`Welcome ${String((socket.data as { user?: unknown }).user)}!`);
  socket.on('message', (text: string) => socket.send(`You wrote: ${text}`));
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  serveIpc(typeof address === 'object' && address ? address.port : 0);
});
