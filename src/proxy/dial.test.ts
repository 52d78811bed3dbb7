import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startUpstream, testCa, type Upstream } from '../../test/support/upstream.js';
import { DialError, dialUpstream } from './dial.js';
import type { UpstreamRequest } from './upstream-request.js';

function request(url: string, protocols: string[] = []): UpstreamRequest {
  return {
    url: new URL(url),
    protocols,
    headers: { 'x-wsgate-user': 'johndoe', origin: 'https://app.example' },
  };
}

/** A TCP server that accepts connections and never answers: a hanging upstream. */
async function silentServer(): Promise<{ url: string; sockets: Set<Socket>; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.resume(); // read (and drop) the request, so that its end is seen
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, sockets, server };
}

// A full collection on demand, without starting the test runner with --expose-gc.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

function failsWith(reason: DialError['reason']) {
  return (err: unknown) => err instanceof DialError && err.reason === reason;
}

describe('upstream dial', () => {
  let upstream: Upstream;
  before(async () => {
    upstream = await startUpstream();
  });
  after(() => upstream.close());

  it('keeps nothing of the upstream request (headers, identity token) while the socket is open', async () => {
    const refs: WeakRef<object>[] = [];
    const dial = () => {
      const r = request(`${upstream.url}/ws`, ['chat.v2']);
      refs.push(new WeakRef(r), new WeakRef(r.headers));
      return dialUpstream(r, { timeoutMs: 2000 });
    };
    const { socket: ws } = await dial();
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      collect();
    }
    assert.equal(ws.readyState, ws.OPEN);
    assert.deepEqual(
      refs.map((ref) => ref.deref() === undefined),
      [true, true],
    );
    ws.terminate();
  });

  it('opens the upstream with the headers and subprotocol given, paused until resumed', async () => {
    const { socket: ws, protocol } = await dialUpstream(
      request(`${upstream.url}/ws?x=1`, ['chat.v2']),
      {
        timeoutMs: 2000,
      },
    );
    assert.equal(protocol, 'chat.v2');
    const seen = await upstream.connection(upstream.connections.length || 1);
    assert.equal(ws.protocol, 'chat.v2');
    assert.equal(seen.url, '/ws?x=1');
    assert.deepEqual(seen.headers['x-wsgate-user'], ['johndoe']);
    assert.deepEqual(seen.headers.origin, ['https://app.example']);
    assert.deepEqual(seen.headers.host, [`127.0.0.1:${upstream.port}`]);
    assert.equal(
      seen.headers['sec-websocket-extensions'],
      undefined,
      'no compression: frames pass unchanged',
    );
    assert.ok(ws.isPaused);
    seen.ws.send('hello');
    const got = new Promise<string>((resolve) =>
      ws.once('message', (d: Buffer) => resolve(d.toString())),
    );
    ws.resume();
    assert.equal(await got, 'hello');
    ws.close();
  });

  it('accepts an upstream that chooses none of the offered subprotocols, as browsers do', async () => {
    const choosy = await startUpstream({ protocol: () => false });
    try {
      const { socket, protocol } = await dialUpstream(request(choosy.url, ['a', 'b']), {
        timeoutMs: 2000,
      });
      assert.equal(protocol, '');
      assert.deepEqual((await choosy.connection(1)).headers['sec-websocket-protocol'], ['a,b']);
      socket.resume();
      socket.close();
    } finally {
      await choosy.close();
    }
  });

  it('fails as unreachable when nothing listens', async () => {
    const dead = await silentServer();
    const url = dead.url;
    await new Promise<void>((resolve) => dead.server.close(() => resolve()));
    await assert.rejects(dialUpstream(request(url), { timeoutMs: 2000 }), failsWith('unreachable'));
  });

  it('fails as refused when the upstream answers the upgrade with a status', async () => {
    const refusing = await startUpstream({ refuse: 403 });
    try {
      await assert.rejects(
        dialUpstream(request(refusing.url), { timeoutMs: 2000 }),
        failsWith('refused'),
      );
    } finally {
      await refusing.close();
    }
  });

  it('fails as timeout when the upstream does not answer in time, and leaves no socket behind', async () => {
    const hanging = await silentServer();
    try {
      await assert.rejects(
        dialUpstream(request(hanging.url), { timeoutMs: 50 }),
        failsWith('timeout'),
      );
      await until(() => hanging.sockets.size === 0);
    } finally {
      hanging.server.close();
    }
  });

  it('is aborted when the client leaves, and leaves no socket behind', async () => {
    const hanging = await silentServer();
    try {
      const abort = new AbortController();
      const dial = dialUpstream(request(hanging.url), { timeoutMs: 10_000, signal: abort.signal });
      await until(() => hanging.sockets.size === 1);
      abort.abort();
      await assert.rejects(dial, failsWith('aborted'));
      await until(() => hanging.sockets.size === 0);
      const already = new AbortController();
      already.abort();
      await assert.rejects(
        dialUpstream(request(hanging.url), { timeoutMs: 10_000, signal: already.signal }),
        failsWith('aborted'),
      );
    } finally {
      hanging.server.close();
    }
  });

  it('verifies wss:// certificates: refused by default, accepted with the CA added', async () => {
    const secure = await startUpstream({ tls: true });
    try {
      await assert.rejects(
        dialUpstream(request(`${secure.url}/`), { timeoutMs: 2000 }),
        failsWith('tls'),
      );
      const { socket: ws } = await dialUpstream(request(`${secure.url}/`), {
        timeoutMs: 2000,
        ca: [testCa()],
      });
      assert.equal(ws.readyState, ws.OPEN);
      ws.terminate();
      // The certificate names 127.0.0.1 and localhost: another name is refused even with the CA.
      await assert.rejects(
        dialUpstream(request(`wss://127.0.0.2:${secure.port}/`), {
          timeoutMs: 2000,
          ca: [testCa()],
        }),
        (err: unknown) =>
          err instanceof DialError && (err.reason === 'tls' || err.reason === 'unreachable'),
      );
    } finally {
      await secure.close();
    }
  });
});

/** Waits for a condition that a real event makes true (no fixed sleep decides a result). */
async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setImmediate(resolve));
  }
}
