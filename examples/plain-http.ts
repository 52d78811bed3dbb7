/**
 * The gate in front of a plain Node `http.Server`, with tokens you issue yourself.
 *
 *   npm run build && npx tsx examples/plain-http.ts
 *
 * then, in another terminal, connect with the token it prints:
 *
 *   npx wscat -c ws://127.0.0.1:3000/live -H "Authorization: Bearer <token>"
 */
import { createServer } from 'node:http';
import { createGate, createVerifier, issueToken, keySetFromSecret } from 'wsgate';

const keys = keySetFromSecret(process.env.SECRET ?? 'change-me-to-a-secret-of-32-bytes-or-more');
const issuer = 'https://example.test';
const audience = 'live-feed';

const gate = createGate({
  verify: createVerifier(keys, { issuer, audience }),
  origins: ['http://localhost:5173'],
  // Only these names are answered (421 otherwise), against DNS rebinding: here, loopback ones.
  hosts: { issuer, loopback: true },
});

// Only tokens carrying the feed:read scope may open /live; the gate checks before the upgrade.
gate.route('/live', { requirement: 'required', scopes: ['feed:read'] }, (socket, principal) => {
  socket.send(`hello ${principal.username ?? ''}`);
  socket.on('message', (data: Buffer) => socket.send(`echo ${data.toString('utf8')}`));
});

const server = createServer((_req, res) => res.writeHead(404).end());
// Every connection counts against its client address (connectionsPerAddress), plain HTTP too.
server.on('connection', gate.handleConnection);
server.on('upgrade', gate.handleUpgrade);

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  void (async () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const { token } = await issueToken(keys, {
      type: 'access',
      subject: 'alice',
      sessionId: 'example-session',
      scope: 'feed:read',
      ttl: 900,
      issuer,
      audience,
      now: Date.now(),
    });
    console.log(JSON.stringify({ url: `ws://127.0.0.1:${port}/live`, token }));
  })();
});

process.on('SIGTERM', () => {
  void gate.drain().then(() => server.close());
});
