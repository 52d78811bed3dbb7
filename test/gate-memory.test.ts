import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createGate, createVerifier, issueToken, keySetFromSecret } from '../src/index.js';
import { connect } from './support/ws.js';

// A full collection on demand, without starting the test runner with --expose-gc.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

const keys = keySetFromSecret('a secret for the gate memory test, 32+ bytes');
const issuer = 'https://memory.test';
const audience = 'memory';

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    collect();
  }
}

describe('gate memory', () => {
  it('keeps neither the upgrade request nor the handshake scope alive while the socket is open', async () => {
    const gate = createGate({ verify: createVerifier(keys, { issuer, audience }) });
    gate.route('/live', { requirement: 'required' }, (socket) => socket.send('hello'));
    const server = createServer((_req, res) => res.writeHead(404).end());
    const requests: WeakRef<IncomingMessage>[] = [];
    // Registered first, so it sees each request before the gate does; it keeps only a weak reference.
    server.on('upgrade', (req: IncomingMessage) => requests.push(new WeakRef(req)));
    server.on('upgrade', gate.handleUpgrade);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const sockets = [];
    try {
      // Two sockets per transport whose parsing the gate does itself: header, cookie, first message.
      for (let i = 0; i < 6; i++) {
        const csrf = `csrf-${i}`;
        const { token } = await issueToken(keys, {
          type: 'access',
          subject: `user${i}`,
          sessionId: `session-${i}`,
          scope: '',
          ttl: 900,
          issuer,
          audience,
          now: Date.now(),
          csrf,
        });
        const url = `ws://127.0.0.1:${port}/live`;
        const outcome = await (i % 3 === 0
          ? connect(url, { headers: { Authorization: `Bearer ${token}` }, messages: 1 })
          : i % 3 === 1
            ? connect(`${url}?csrf_token=${csrf}`, {
                headers: {
                  Cookie: `access_token_cookie=${token}`,
                  Origin: `http://127.0.0.1:${port}`,
                },
                messages: 1,
              })
            : connect(url, {
                protocols: ['wsgate.v1'],
                send: [JSON.stringify({ type: 'auth', token })],
                messages: 1,
              }));
        assert.equal(outcome.kind, 'open');
        if (outcome.kind === 'open') {
          assert.deepEqual(outcome.messages, ['hello']);
          sockets.push(outcome.socket);
        }
      }
      assert.equal(gate.size, 6);
      await settle();
      const alive = requests.filter((ref) => ref.deref() !== undefined).length;
      assert.equal(alive, 0, `${alive} of 6 upgrade requests still reachable from open sockets`);
      assert.equal(gate.size, 6, 'the sockets are still open');
    } finally {
      for (const socket of sockets) socket.terminate();
      await gate.drain(1000);
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
