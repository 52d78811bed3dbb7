import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import {
  startUpstream,
  type Upstream,
  type UpstreamConnection,
} from '../../test/support/upstream.js';
import { dialUpstream } from './dial.js';
import { heartbeatPayload, Pipe, type PipeEnd, type PipeOptions } from './pipe.js';

/**
 * A minimal proxy front on real sockets: dial the upstream, upgrade the client with the
 * upstream's subprotocol, join them with a Pipe. (The gate does the same after its checks.)
 */
interface Front {
  readonly url: string;
  readonly pipes: Pipe[];
  readonly ends: PipeEnd[];
  /** Client sockets the front holds open. */
  readonly open: number;
  /** Largest unsent backlog seen towards each side. */
  readonly maxUnsent: { client: number; upstream: number };
  close(): Promise<void>;
}

async function startFront(upstreamUrl: string, options: PipeOptions = {}): Promise<Front> {
  const server: Server = createServer();
  const chosen = new WeakMap<IncomingMessage, string | false>();
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    autoPong: false,
    maxPayload: 64 * 1024,
    handleProtocols: (_offered, req) => chosen.get(req) ?? false,
  });
  const pipes: Pipe[] = [];
  const ends: PipeEnd[] = [];
  const clients = new Set<WebSocket>();
  const maxUnsent = { client: 0, upstream: 0 };
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    const protocols = (req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    void dialUpstream(
      { url: new URL(req.url ?? '/', upstreamUrl), protocols, headers: {} },
      { timeoutMs: 2000 },
    ).then(({ socket: upstream, protocol }) => {
      chosen.set(req, protocol === '' ? false : protocol);
      wss.handleUpgrade(req, socket, head, (client) => {
        clients.add(client);
        client.on('close', () => clients.delete(client));
        const pipe: Pipe = new Pipe(client, upstream, {
          ...options,
          onFrame: (direction, bytes) => {
            const { unsent } = pipe;
            maxUnsent.client = Math.max(maxUnsent.client, unsent.client);
            maxUnsent.upstream = Math.max(maxUnsent.upstream, unsent.upstream);
            options.onFrame?.(direction, bytes);
          },
          onEnd: (end) => ends.push(end),
        });
        pipes.push(pipe);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pipes,
    ends,
    maxUnsent,
    get open() {
      return clients.size;
    },
    async close() {
      for (const ws of clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

function open(url: string, protocols: string[] = [], options: WebSocket.ClientOptions = {}) {
  const ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...options });
  // Like a browser, accept a server that chooses none of the offered subprotocols.
  const handshake: { protocol?: string | undefined } = {};
  ws.once('upgrade', (res) => {
    handshake.protocol = res.headers['sec-websocket-protocol'];
    res.headers['sec-websocket-protocol'] ??= protocols[0];
  });
  const messages: { data: Buffer; binary: boolean }[] = [];
  const pongs: Buffer[] = [];
  ws.on('message', (data: Buffer, binary) => messages.push({ data, binary }));
  ws.on('pong', (data) => pongs.push(data));
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, messages, pongs, closed, opened, handshake };
}

describe('proxy pipe', () => {
  let upstream: Upstream;
  let front: Front;
  before(async () => {
    upstream = await startUpstream({
      protocol: (offered) => (offered.has('chat.v2') ? 'chat.v2' : false),
    });
    front = await startFront(upstream.url);
  });
  after(async () => {
    await front.close();
    await upstream.close();
  });

  /** Waits for the last pipe to end, and tells how it ended. */
  async function ended(): Promise<PipeEnd> {
    await until(() => front.ends.length === front.pipes.length);
    return front.ends.at(-1) as PipeEnd;
  }

  async function pair(protocols: string[] = [], options: WebSocket.ClientOptions = {}) {
    const n = upstream.connections.length + 1;
    const client = open(`${front.url}/ws`, protocols, options);
    await client.opened;
    const far: UpstreamConnection = await upstream.connection(n);
    const pipe = front.pipes[front.pipes.length - 1] as Pipe;
    return { client, far, pipe };
  }

  it("gives the client the upstream's subprotocol, or none", async () => {
    const chosen = await pair(['wsgate.v1', 'chat.v2']);
    assert.equal(chosen.client.handshake.protocol, 'chat.v2');
    assert.equal(chosen.far.protocol, 'chat.v2');
    chosen.client.ws.close();
    const none = await pair(['other']);
    assert.equal(none.client.handshake.protocol, undefined);
    none.client.ws.close();
    await until(() => upstream.open === 0 && front.open === 0);
  });

  it('passes text, binary, ping and pong both ways unchanged', async () => {
    const { client, far } = await pair();
    const bin = randomBytes(1000);
    client.ws.send('héllo');
    client.ws.send(bin);
    client.ws.ping(Buffer.from('client-ping'));
    await until(() => far.messages.length === 2 && far.pings.length === 1);
    assert.deepEqual(far.messages[0], { data: Buffer.from('héllo'), binary: false });
    assert.equal(far.messages[1]?.binary, true);
    assert.ok(far.messages[1]?.data.equals(bin));
    assert.equal(far.pings[0]?.toString(), 'client-ping');
    // The upstream echoed both messages and answered the ping with its own pong.
    await until(() => client.messages.length === 2 && client.pongs.length === 1);
    assert.deepEqual(client.messages[0], { data: Buffer.from('héllo'), binary: false });
    assert.ok(client.messages[1]?.data.equals(bin) && client.messages[1].binary);
    assert.equal(client.pongs[0]?.toString(), 'client-ping');
    // And the other way: the upstream's ping reaches the client, whose pong reaches the upstream.
    far.ws.ping(Buffer.from('upstream-ping'));
    far.ws.send(Buffer.from([0, 1, 2]), { binary: true });
    await until(() => far.pongs.length === 1 && client.messages.length === 3);
    assert.equal(far.pongs[0]?.toString(), 'upstream-ping');
    assert.deepEqual(client.messages[2], { data: Buffer.from([0, 1, 2]), binary: true });
    client.ws.close();
    await until(() => upstream.open === 0 && front.open === 0);
  });

  it('pings both legs for the heartbeat, keeps its pongs, and drops a silent client', async () => {
    const { client, far, pipe } = await pair([], { autoPong: false });
    pipe.beat();
    await until(() => far.pings.length === 1);
    assert.ok(far.pings[0]?.equals(heartbeatPayload));
    await until(() => pipe.alive.upstream);
    assert.equal(far.pongs.length + client.pongs.length, 0);
    // The client never answers its ping: the next beat drops it, and the upstream is told 1001.
    pipe.beat();
    assert.deepEqual(await far.closed, { code: 1001, reason: 'Client connection lost' });
    await until(() => upstream.open === 0 && front.open === 0);
    assert.equal(far.pongs.length, 0, "wsgate's heartbeat pongs are not passed on");
  });

  it('drops a silent upstream on the heartbeat and tells the client 1014', async () => {
    const { client, far, pipe } = await pair();
    far.ws.removeAllListeners('ping'); // the upstream stops answering
    pipe.beat();
    await until(() => pipe.alive.client);
    pipe.beat();
    assert.deepEqual(await client.closed, { code: 1014, reason: 'Upstream connection lost' });
    await until(() => upstream.open === 0 && front.open === 0);
  });

  const clientCloses: [string, (ws: WebSocket) => void, { code: number; reason: string }][] = [
    ['a code and reason', (ws) => ws.close(4000, 'bye'), { code: 4000, reason: 'bye' }],
    ['no code (1005) as 1000', (ws) => ws.close(), { code: 1000, reason: '' }],
    [
      'a lost connection (1006) as 1001',
      (ws) => ws.terminate(),
      { code: 1001, reason: 'Client connection lost' },
    ],
  ];
  for (const [name, close, expected] of clientCloses) {
    it(`mirrors a client close to the upstream: ${name}`, async () => {
      const { client, far } = await pair();
      close(client.ws);
      assert.deepEqual(await far.closed, expected);
      await until(() => upstream.open === 0 && front.open === 0);
      assert.equal((await ended()).by, 'client');
    });
  }

  const upstreamCloses: [string, (ws: WebSocket) => void, { code: number; reason: string }][] = [
    ['a code and reason', (ws) => ws.close(4001, 'done'), { code: 4001, reason: 'done' }],
    ['no code (1005) as 1000', (ws) => ws.close(), { code: 1000, reason: '' }],
    [
      'a lost connection (1006) as 1014',
      (ws) => ws.terminate(),
      { code: 1014, reason: 'Upstream connection lost' },
    ],
    ['1011 as 1011', (ws) => ws.close(1011, 'crash'), { code: 1011, reason: 'crash' }],
  ];
  for (const [name, close, expected] of upstreamCloses) {
    it(`mirrors an upstream close to the client: ${name}`, async () => {
      const { client, far } = await pair();
      close(far.ws);
      assert.deepEqual(await client.closed, expected);
      await until(() => upstream.open === 0 && front.open === 0);
      assert.equal((await ended()).by, 'upstream');
    });
  }

  it('closes both sides with their own codes when wsgate ends the socket', async () => {
    const { client, far, pipe } = await pair();
    pipe.close(
      { code: 4410, reason: 'Session has been revoked' },
      { code: 1008, reason: 'revoked' },
    );
    assert.deepEqual(await client.closed, { code: 4410, reason: 'Session has been revoked' });
    assert.deepEqual(await far.closed, { code: 1008, reason: 'revoked' });
    await until(() => upstream.open === 0 && front.open === 0);
    const end = await ended();
    assert.equal(end?.by, 'wsgate');
    assert.deepEqual(end?.upstream, { code: 1008, reason: 'revoked' });
  });

  it('closes a client that sends more than the message limit with 1009, and tells the upstream', async () => {
    const { client, far } = await pair();
    client.ws.send(Buffer.alloc(64 * 1024 + 1));
    assert.equal((await client.closed).code, 1009);
    assert.deepEqual(await far.closed, { code: 1009, reason: 'Message too big' });
    assert.equal(far.messages.length, 0);
    await until(() => upstream.open === 0 && front.open === 0);
  });
});

describe('proxy pipe backpressure', () => {
  const total = 10 * 1024 * 1024;
  const chunk = 64 * 1024;
  let upstream: Upstream;
  let front: Front;
  before(async () => {
    upstream = await startUpstream({ echo: false });
    front = await startFront(upstream.url);
  });
  after(async () => {
    await front.close();
    await upstream.close();
  });

  function payload(): Buffer[] {
    return Array.from({ length: total / chunk }, (_, i) => Buffer.alloc(chunk, i % 251));
  }
  function digest(parts: Buffer[]): string {
    const hash = createHash('sha256');
    for (const p of parts) hash.update(p);
    return hash.digest('hex');
  }

  it('carries 10 MB to a slow client by pausing the upstream, not by buffering or closing', async () => {
    const n = upstream.connections.length + 1;
    const client = open(`${front.url}/ws`);
    await client.opened;
    const far = await upstream.connection(n);
    const pipe = front.pipes.at(-1) as Pipe;
    client.ws.pause(); // a reader that has stopped reading
    const parts = payload();
    for (const part of parts) far.ws.send(part, { binary: true });
    // The backlog reaches the upstream itself: wsgate stopped reading it.
    await until(() => pipe.held.upstream && far.ws.bufferedAmount > 0);
    assert.ok(
      front.maxUnsent.client <= 1024 * 1024 + 2 * chunk,
      `backlog ${front.maxUnsent.client}`,
    );
    client.ws.resume();
    await until(() => client.messages.length === parts.length, 30_000);
    assert.equal(digest(client.messages.map((m) => m.data)), digest(parts));
    assert.ok(
      front.maxUnsent.client <= 1024 * 1024 + 2 * chunk,
      `backlog ${front.maxUnsent.client}`,
    );
    assert.equal(pipe.closing, false);
    client.ws.close();
    await until(() => upstream.open === 0 && front.open === 0);
  });

  it('carries 10 MB to a slow upstream by pausing the client', async () => {
    const n = upstream.connections.length + 1;
    const client = open(`${front.url}/ws`);
    await client.opened;
    const far = await upstream.connection(n);
    const pipe = front.pipes.at(-1) as Pipe;
    far.ws.pause();
    const parts = payload();
    for (const part of parts) client.ws.send(part, { binary: true });
    await until(() => pipe.held.client && client.ws.bufferedAmount > 0);
    assert.ok(
      front.maxUnsent.upstream <= 1024 * 1024 + 2 * chunk,
      `backlog ${front.maxUnsent.upstream}`,
    );
    far.ws.resume();
    await until(() => far.messages.length === parts.length, 30_000);
    assert.equal(digest(far.messages.map((m) => m.data)), digest(parts));
    assert.ok(
      front.maxUnsent.upstream <= 1024 * 1024 + 2 * chunk,
      `backlog ${front.maxUnsent.upstream}`,
    );
    client.ws.close();
    await until(() => upstream.open === 0 && front.open === 0);
  });
});
