import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startTestServer, passwordGrant, type TestServer } from '../../test/support/server.js';
import { connect as rawConnect, wsUrl } from '../../test/support/ws.js';
import {
  WsgateClient,
  WsgateClientError,
  type ClientEvents,
  type MessageFrame,
  type WsgateClientOptions,
} from './index.js';
import { eventWaiter } from '../../test/support/client-events.js';
import { manualTimers } from '../../test/support/timers.js';
import {
  chatV2OrNone,
  startUpstream,
  type Upstream,
  type UpstreamConnection,
} from '../../test/support/upstream.js';

/** Every client a test made, closed after it so no reconnect timer outlives the test. */
const clients: WsgateClient[] = [];

function client(
  server: { url: string },
  path: string,
  options: Partial<WsgateClientOptions> = {},
): WsgateClient {
  const c = new WsgateClient({
    url: wsUrl(server, path),
    WebSocket,
    protocol: 'raw',
    backoff: { baseMs: 20, maxMs: 100 },
    ...options,
  });
  clients.push(c);
  return c;
}

/** Resolves with the next `event` whose payload passes `match`; fails after 3,000 ms by default. */
const next = eventWaiter(3_000);

/** Records every event of the kinds given, in order. */
function record<K extends keyof ClientEvents>(
  c: WsgateClient,
  ...events: K[]
): Array<[K, ClientEvents[K]]> {
  const seen: Array<[K, ClientEvents[K]]> = [];
  for (const event of events) c.on(event, (payload) => seen.push([event, payload]));
  return seen;
}

/** A getToken that answers with `tokens` in turn (the last one forever) and counts its calls. */
function tokens(...values: Array<string | (() => Promise<string>)>) {
  const source = {
    calls: 0,
    getToken: async (): Promise<string> => {
      const value = values[Math.min(source.calls, values.length - 1)]!;
      source.calls += 1;
      return typeof value === 'string' ? value : value();
    },
  };
  return source;
}

function closeClients(): void {
  for (const c of clients.splice(0)) c.close();
}

describe('WsgateClient against a wsgate server', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({}, { gateLimits: { handshakeBurst: 100_000 } });
  });

  afterEach(closeClients);

  after(async () => {
    await server.stop();
  });

  it('connects to /secured-ws with getToken and receives the greeting', async () => {
    const { access_token } = await passwordGrant(server);
    const source = tokens(access_token);
    const c = client(server, '/secured-ws', { getToken: source.getToken });
    const states = record(c, 'state');
    const greeting = next(c, 'text');
    c.connect();
    assert.equal(await greeting, 'Welcome johndoe!');
    assert.equal(c.state, 'connected');
    assert.deepEqual(states, [
      ['state', 'connecting'],
      ['state', 'connected'],
    ]);
    const echo = next(c, 'text');
    c.sendText('ping');
    assert.equal(await echo, 'You wrote: ping');
    assert.equal(source.calls, 1);
  });

  it('gets 4401 for a bad token, fetches a new one and reconnects', async () => {
    const { access_token } = await passwordGrant(server);
    const source = tokens('not.a.jwt', access_token);
    const c = client(server, '/secured-ws', { getToken: source.getToken });
    const closes = record(c, 'closed');
    const greeting = next(c, 'text');
    c.connect();
    assert.equal(await greeting, 'Welcome johndoe!');
    assert.equal(source.calls, 2);
    assert.equal(closes.length, 1);
    const [, closed] = closes[0]!;
    assert.equal(closed.code, 4401);
    assert.equal(closed.willReconnect, true);
    assert.equal(c.state, 'connected');
  });

  it('stops after three 4401s in a row', async () => {
    const source = tokens('not.a.jwt');
    const c = client(server, '/secured-ws', { getToken: source.getToken });
    const closes = record(c, 'closed');
    const stopped = next(c, 'stopped');
    c.connect();
    assert.deepEqual(await stopped, { code: 4401, reason: 'Invalid authentication credentials' });
    assert.equal(c.state, 'closed');
    assert.equal(source.calls, 3);
    assert.deepEqual(
      closes.map(([, e]) => [e.code, e.willReconnect]),
      [
        [4401, true],
        [4401, true],
        [4401, false],
      ],
    );
  });

  it('gets 4410 for a logged-out session and stops without asking for another token', async () => {
    const { access_token } = await passwordGrant(server);
    const res = await fetch(`${server.url}/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access_token}` },
    });
    assert.equal(res.status, 204);
    const source = tokens(access_token);
    const timers = manualTimers();
    const c = client(server, '/secured-ws', { getToken: source.getToken, timers });
    const states = record(c, 'state');
    const closed = next(c, 'closed');
    const stopped = next(c, 'stopped');
    c.connect();
    assert.deepEqual(await closed, {
      code: 4410,
      reason: 'Session has been revoked',
      willReconnect: false,
    });
    assert.deepEqual(await stopped, { code: 4410, reason: 'Session has been revoked' });
    assert.equal(c.state, 'closed');
    // Whatever `open` said, the client ends closed and never tries again.
    assert.deepEqual(states.at(-1), ['state', 'closed']);
    assert.equal(timers.pending, 0, 'no reconnect is scheduled');
    timers.advance(3_600_000);
    assert.equal(source.calls, 1);
    assert.equal(c.state, 'closed');
  });

  it('refreshes an expired token (4419) and reconnects at once', async () => {
    const { access_token: stale } = await passwordGrant(server);
    server.clock.advance(901_000);
    try {
      const source = tokens(stale, async () => (await passwordGrant(server)).access_token);
      const c = client(server, '/secured-ws', {
        getToken: source.getToken,
        backoff: { baseMs: 10_000, maxMs: 10_000 },
      });
      const closed = next(c, 'closed');
      const greeting = next(c, 'text');
      c.connect();
      assert.deepEqual(await closed, {
        code: 4419,
        reason: 'Token has expired',
        willReconnect: true,
        delayMs: 0,
      });
      assert.equal(await greeting, 'Welcome johndoe!');
      assert.equal(source.calls, 2);
    } finally {
      server.clock.advance(-901_000);
    }
  });

  it('connects with a fresh single-use ticket per attempt (getTicket)', async () => {
    const { access_token } = await passwordGrant(server);
    let calls = 0;
    const getTicket = async (): Promise<string> => {
      calls += 1;
      const res = await fetch(`${server.url}/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${access_token}` },
      });
      return ((await res.json()) as { ticket: string }).ticket;
    };
    // A ticket spent elsewhere is refused (4401); the client fetches another.
    const spent = await getTicket();
    const first = await rawConnect(`${wsUrl(server, '/secured-ws')}?token=${spent}`, {
      messages: 1,
    });
    if (first.kind === 'open') first.socket.terminate();
    calls = 0;
    let handedOut = 0;
    const c = client(server, '/secured-ws', {
      getTicket: async () => (handedOut++ === 0 ? spent : getTicket()),
    });
    const closed = next(c, 'closed');
    const greeting = next(c, 'text');
    c.connect();
    assert.equal((await closed).code, 4401);
    assert.equal(await greeting, 'Welcome johndoe!');
    assert.equal(handedOut, 2);
    assert.equal(calls, 1);
  });

  it('connects with no credential callback where the endpoint allows guests', async () => {
    const c = client(server, '/ws/optional');
    const states = record(c, 'state');
    // A wsgate.v1 client without a credential is a guest once its 5 s for an auth frame pass,
    // or at once when its first message is not one.
    c.on('state', (s) => {
      if (s === 'connected') c.sendText('hello');
    });
    const greeting = next(c, 'text');
    c.connect();
    assert.equal(await greeting, 'Welcome guest!');
    assert.deepEqual(
      states.map(([, s]) => s),
      ['connecting', 'connected'],
    );
  });

  it('reports getToken failures and retries with backoff', async () => {
    const { access_token } = await passwordGrant(server);
    const source = tokens(async () => {
      throw new Error('refresh endpoint down');
    }, access_token);
    const c = client(server, '/secured-ws', { getToken: source.getToken });
    const failure = next(c, 'credentialError');
    const greeting = next(c, 'text');
    c.connect();
    const { error, phase } = await failure;
    assert.equal(phase, 'connect');
    assert.equal((error as Error).message, 'refresh endpoint down');
    assert.equal(await greeting, 'Welcome johndoe!');
    assert.equal(source.calls, 2);
  });

  it('close() closes the socket with 1000 and stops for good', async () => {
    const { access_token } = await passwordGrant(server);
    const timers = manualTimers();
    const c = client(server, '/secured-ws', { getToken: tokens(access_token).getToken, timers });
    const greeting = next(c, 'text');
    c.connect();
    await greeting;
    const events = record(c, 'state', 'closed', 'stopped');
    c.close();
    assert.deepEqual(events, [
      ['state', 'closed'],
      ['closed', { code: 1000, reason: 'Client closed', willReconnect: false }],
      ['stopped', { code: 1000, reason: 'Client closed' }],
    ]);
    assert.throws(
      () => c.sendText('late'),
      (err: unknown) => err instanceof WsgateClientError && err.code === 'not_connected',
    );
    assert.equal(timers.pending, 0, 'no reconnect is scheduled');
    timers.advance(3_600_000);
    assert.equal(events.length, 3);
  });

  it('can connect again after close(), with a new credential', async () => {
    const { access_token } = await passwordGrant(server);
    const source = tokens(access_token);
    const c = client(server, '/secured-ws', { getToken: source.getToken });
    let greeting = next(c, 'text');
    c.connect();
    await greeting;
    c.close();
    greeting = next(c, 'text');
    c.connect();
    assert.equal(await greeting, 'Welcome johndoe!');
    assert.equal(source.calls, 2);
  });
});

describe('WsgateClient when the server is rate limiting', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({}, { gateLimits: { handshakeRate: 1, handshakeBurst: 1 } });
  });

  afterEach(closeClients);

  after(async () => {
    await server.stop();
  });

  it('waits the retry-after of a 4429 before reconnecting', async () => {
    const { access_token } = await passwordGrant(server);
    // Spend this address's only handshake token.
    const first = await rawConnect(wsUrl(server, '/secured-ws'), {
      headers: { authorization: `Bearer ${access_token}` },
      messages: 1,
    });
    if (first.kind === 'open') first.socket.terminate();
    const timers = manualTimers();
    const c = client(server, '/secured-ws', {
      getToken: tokens(access_token).getToken,
      random: () => 0,
      timers,
    });
    const closed = next(c, 'closed');
    const greeting = next(c, 'text');
    c.connect();
    const close = await closed;
    assert.deepEqual(close, {
      code: 4429,
      reason: 'Too many requests; retry after 1s',
      willReconnect: true,
      delayMs: 1_000,
    });
    server.clock.advance(5_000); // the bucket refills on the server's clock
    timers.advance(999);
    assert.equal(c.state, 'disconnected', 'still waiting out the server-given delay');
    timers.advance(1);
    assert.equal(c.state, 'connecting');
    assert.equal(await greeting, 'Welcome johndoe!');
  });
});

describe('WsgateClient when the server drains', () => {
  it('reconnects with backoff after 1001 and resumes on the server that takes over', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wsgate-client-'));
    let first: TestServer | undefined;
    let second: TestServer | undefined;
    try {
      first = await startTestServer({}, { dataDir });
      const source = tokens((await passwordGrant(first)).access_token);
      const c = client(first, '/secured-ws', { getToken: source.getToken });
      let greeting = next(c, 'text');
      c.connect();
      assert.equal(await greeting, 'Welcome johndoe!');

      const drained = next(c, 'closed');
      const reconnecting = next(c, 'state', (s) => s === 'connecting');
      await first.gate.drain();
      const close = await drained;
      assert.equal(close.code, 1001);
      assert.equal(close.willReconnect, true);
      assert.ok(close.willReconnect && close.delayMs >= 0 && close.delayMs < 20);
      await reconnecting;

      // While nothing listens the client keeps trying, each attempt a failure with backoff.
      const port = first.port;
      await first.stop();
      first = undefined;
      const failures = next(c, 'closed', (e) => e.willReconnect);
      assert.equal((await failures).willReconnect, true);

      greeting = next(c, 'text');
      second = await startTestServer({ port: String(port) }, { dataDir });
      assert.equal(await greeting, 'Welcome johndoe!');
      assert.equal(c.state, 'connected');
      // The token was still good: reconnecting after 1001 / 1006 does not ask for another.
      assert.equal(source.calls, 1);
    } finally {
      closeClients();
      await first?.stop();
      await second?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('WsgateClient on /chat', () => {
  afterEach(closeClients);

  it('chats with the real server, then resumes its rooms after a restart with nothing missed or repeated', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wsgate-client-chat-'));
    let first: TestServer | undefined;
    let second: TestServer | undefined;
    try {
      first = await startTestServer({}, { dataDir });
      const john = tokens((await passwordGrant(first)).access_token);
      // Tokens outlive the node: its successor shares the data dir and so the signing key.
      const jane = await passwordGrant(first, 'janedoe', 'secret2');
      const c = client(first, '/chat', { getToken: john.getToken, protocol: 'chat' });
      // A missed message arrives either live or in the rejoin's history, depending on timing.
      const seen: MessageFrame[] = [];
      c.on('message', (m) => seen.push(m));
      c.on('joined', (f) => seen.push(...f.history));
      const welcome = next(c, 'welcome');
      const joined = next(c, 'joined', (f) => f.room === 'general');
      c.join('general');
      c.connect();
      assert.equal((await welcome).user, 'johndoe');
      await joined;
      const before = await c.send('general', 'before the restart');
      assert.ok(before > 0);

      // The node goes away; while johndoe is disconnected, janedoe writes on its successor.
      const port = first.port;
      const dropped = next(c, 'closed');
      await first.gate.drain();
      assert.equal((await dropped).code, 1001);
      await first.stop();
      first = undefined;
      second = await startTestServer({ port: String(port) }, { dataDir });
      const writer = await rawConnect(wsUrl(second, '/chat'), {
        headers: { authorization: `Bearer ${jane.access_token}` },
        send: [
          JSON.stringify({ type: 'join', room: 'general' }),
          JSON.stringify({ type: 'send', room: 'general', text: 'missed 1', id: 'm1' }),
          JSON.stringify({ type: 'send', room: 'general', text: 'missed 2', id: 'm2' }),
        ],
        messages: 5, // welcome, joined, ack, message, ack (the second message may come later)
      });
      if (writer.kind === 'open') writer.socket.terminate();

      // The client reconnects by itself and rejoins with since: it gets exactly what it missed.
      await Promise.race([
        new Promise<void>((resolve) => {
          const check = () => {
            if (seen.some((m) => m.text === 'missed 2')) resolve();
          };
          check();
          c.on('message', check);
          c.on('joined', check);
        }),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`missed: ${JSON.stringify(seen)}`)), 5_000).unref(),
        ),
      ]);
      const texts = seen.map((m) => m.text);
      assert.deepEqual(texts, ['before the restart', 'missed 1', 'missed 2']);
      const ids = seen.map((m) => m.id);
      assert.deepEqual(
        [...ids].sort((a, b) => a - b),
        ids,
        'in id order',
      );
      assert.equal(c.lastMessageId('general'), ids.at(-1));
      assert.equal(john.calls, 1, 'the token was still good; no new one was asked for');
    } finally {
      closeClients();
      await first?.stop();
      await second?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('WsgateClient on a route wsgate proxies to a backend (raw mode)', () => {
  let upstream: Upstream;
  let server: TestServer;
  let token: string;

  before(async () => {
    upstream = await startUpstream({
      protocol: chatV2OrNone,
    });
    server = await startTestServer(
      { proxy: [`/app=${upstream.url}/ws`] },
      { gateLimits: { handshakeBurst: 100_000 } },
    );
    token = (await passwordGrant(server)).access_token;
  });
  afterEach(closeClients);
  after(async () => {
    await server.stop();
    await upstream.close();
  });

  /** Connects `c`; resolves with the backend's end of its socket once the client is connected. */
  async function open(c: WsgateClient): Promise<UpstreamConnection> {
    const n = upstream.connections.length + 1;
    const connected = next(c, 'state', (s) => s === 'connected');
    c.connect();
    await connected;
    return upstream.connection(n);
  }

  it('opens it where the backend selects no subprotocol, and passes text and binary as they are', async () => {
    const c = client(server, '/app', { getToken: tokens(token).getToken });
    const far = await open(c);
    assert.equal(far.protocol, '');
    assert.equal(far.headers['sec-websocket-protocol'], undefined, 'no wsgate.* subprotocol');
    const text = next(c, 'text');
    c.sendText('héllo');
    assert.equal(await text, 'héllo');
    const binary = next(c, 'binary');
    c.sendBinary(new Uint8Array([0, 255, 7]));
    assert.deepEqual([...new Uint8Array(await binary)], [0, 255, 7]);
    assert.deepEqual(
      far.messages.map((m) => [m.binary, [...m.data]]),
      [
        [false, [...Buffer.from('héllo')]],
        [true, [0, 255, 7]],
      ],
    );
  });

  it("offers the backend's own subprotocols beside wsgate's, and the backend picks one", async () => {
    const c = client(server, '/app', {
      getToken: tokens(token).getToken,
      subprotocols: ['chat.v2'],
    });
    const far = await open(c);
    assert.equal(far.protocol, 'chat.v2');
    assert.deepEqual(far.headers['sec-websocket-protocol'], ['chat.v2']);
  });

  it('counts an open socket as accepted: the backoff starts over after each one', async () => {
    const timers = manualTimers();
    const c = client(server, '/app', {
      getToken: tokens(token).getToken,
      timers,
      random: () => 0.99,
      backoff: { baseMs: 1000, maxMs: 100_000 },
    });
    const delays: number[] = [];
    c.connect();
    for (let i = 0; i < 3; i++) {
      const n = upstream.connections.length + 1;
      await next(c, 'state', (s) => s === 'connected');
      const closed = next(c, 'closed');
      // The backend fails each socket once it is open: retry with backoff.
      (await upstream.connection(n)).ws.close(1011, 'backend error');
      const event = await closed;
      assert.ok(event.willReconnect);
      delays.push(event.delayMs);
      timers.advance(event.delayMs);
    }
    assert.deepEqual(delays, [990, 990, 990]);
  });

  it('does not count the open of a refusal (wsgate.v1, then 4401): stops after three', async () => {
    const source = tokens('not.a.jwt');
    const before = upstream.connections.length;
    const c = client(server, '/app', { getToken: source.getToken });
    const stopped = next(c, 'stopped');
    c.connect();
    assert.deepEqual(await stopped, { code: 4401, reason: 'Invalid authentication credentials' });
    assert.equal(source.calls, 3);
    assert.equal(upstream.connections.length, before, 'the backend never heard of it');
  });

  it('stops at 4410 when the session is logged out', async () => {
    const { access_token } = await passwordGrant(server);
    const c = client(server, '/app', { getToken: tokens(access_token).getToken });
    const far = await open(c);
    const stopped = next(c, 'stopped');
    const res = await fetch(`${server.url}/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access_token}` },
    });
    assert.equal(res.status, 204);
    assert.deepEqual(await stopped, { code: 4410, reason: 'Session revoked (logout)' });
    assert.deepEqual(await far.closed, { code: 1008, reason: 'revoked' });
  });
});

describe('WsgateClient without a connection', () => {
  afterEach(closeClients);

  const offline = (protocol: 'chat' | 'raw') =>
    new WsgateClient({ url: 'ws://127.0.0.1:9/chat', WebSocket, protocol });

  const code = (expected: string) => (err: unknown) =>
    err instanceof WsgateClientError && err.code === expected;

  it('rejects sends and pings at once with not_connected, queueing nothing', async () => {
    const c = offline('chat');
    await assert.rejects(c.send('general', 'hello'), code('not_connected'));
    await assert.rejects(c.ping(), code('not_connected'));
    assert.throws(() => c.sendText('{}'), code('not_connected'));
    assert.equal(c.state, 'disconnected');
  });

  it('remembers joins made while disconnected, to send once connected', () => {
    const c = offline('chat');
    c.join('general');
    c.join('random-2');
    c.leave('random-2');
    assert.deepEqual(c.rooms, ['general']);
  });

  it('refuses room names the protocol does not allow', async () => {
    const c = offline('chat');
    assert.throws(() => c.join('General'), code('invalid_room'));
    assert.throws(() => c.join('-x'), code('invalid_room'));
    assert.throws(() => c.join('x'.repeat(65)), code('invalid_room'));
    await assert.rejects(c.send('no spaces', 'hi'), code('invalid_room'));
  });

  it('refuses chat calls in raw mode', async () => {
    const c = offline('raw');
    assert.throws(() => c.join('general'), code('unsupported'));
    await assert.rejects(c.send('general', 'hi'), code('unsupported'));
  });

  it('refuses bad options', () => {
    assert.throws(
      () =>
        new WsgateClient({
          url: 'ws://127.0.0.1:9/chat',
          WebSocket,
          getToken: async () => 't',
          getTicket: async () => 't',
        }),
      TypeError,
    );
    assert.throws(() => new WsgateClient({ url: 'http://127.0.0.1:9/chat', WebSocket }), TypeError);
    assert.throws(() => new WsgateClient({ url: 'not a url', WebSocket }), TypeError);
    assert.throws(
      () => new WsgateClient({ url: 'ws://127.0.0.1:9/chat', WebSocket, backoff: { baseMs: -1 } }),
      RangeError,
    );
    const url = 'ws://127.0.0.1:9/app';
    for (const subprotocols of [['wsgate.v1'], ['Wsgate.Proxy'], ['a b'], [''], ['x', 'x']]) {
      assert.throws(
        () => new WsgateClient({ url, WebSocket, protocol: 'raw', subprotocols }),
        TypeError,
        subprotocols.join(),
      );
    }
    assert.throws(() => new WsgateClient({ url, WebSocket, subprotocols: ['chat.v2'] }), TypeError);
  });
});
