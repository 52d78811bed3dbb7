import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import {
  WsgateClient,
  WsgateClientError,
  type ClientEvents,
  type ClientFrame,
  type MessageFrame,
  type ServerFrame,
  type WsgateClientOptions,
} from './index.js';

/**
 * The chat side of the client, against a real WebSocket peer that plays the server's part of
 * docs/chat.md's protocol frame by frame (so each test controls exactly what the server says and when).
 */

/** One socket as the peer sees it: the handshake, and the client's frames in order. */
class PeerSocket {
  readonly #frames: ClientFrame[] = [];
  readonly #waiting: Array<(frame: ClientFrame) => void> = [];

  constructor(
    readonly ws: WebSocket,
    readonly req: IncomingMessage,
  ) {
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as ClientFrame;
      const waiter = this.#waiting.shift();
      if (waiter) waiter(frame);
      else this.#frames.push(frame);
    });
  }

  /** The next frame the client sends. */
  frame(): Promise<ClientFrame> {
    const queued = this.#frames.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** The subprotocols the client offered, in order. */
  get offered(): string[] {
    return (this.req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  }

  send(...frames: ServerFrame[]): void {
    for (const frame of frames) this.ws.send(JSON.stringify(frame));
  }
}

/** A scripted chat server on 127.0.0.1:0. */
class Peer {
  readonly #sockets: PeerSocket[] = [];
  readonly #waiting: Array<(socket: PeerSocket) => void> = [];

  private constructor(readonly wss: WebSocketServer) {
    wss.on('connection', (ws, req) => {
      const socket = new PeerSocket(ws, req);
      const waiter = this.#waiting.shift();
      if (waiter) waiter(socket);
      else this.#sockets.push(socket);
    });
  }

  static start(): Promise<Peer> {
    return new Promise((resolve) => {
      const wss = new WebSocketServer({
        host: '127.0.0.1',
        port: 0,
        handleProtocols: (protocols) => (protocols.has('wsgate.v1') ? 'wsgate.v1' : false),
      });
      wss.on('listening', () => resolve(new Peer(wss)));
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/chat`;
  }

  /** The next socket the client opens. */
  accept(): Promise<PeerSocket> {
    const queued = this.#sockets.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}

const clients: WsgateClient[] = [];

function client(peer: Peer, options: Partial<WsgateClientOptions> = {}): WsgateClient {
  const c = new WsgateClient({
    url: peer.url,
    WebSocket,
    backoff: { baseMs: 20, maxMs: 100 },
    ...options,
  });
  clients.push(c);
  return c;
}

function next<K extends keyof ClientEvents>(
  c: WsgateClient,
  event: K,
  timeoutMs = 3_000,
): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no '${String(event)}' event within ${timeoutMs} ms`)),
      timeoutMs,
    );
    c.once(event, (payload) => {
      clearTimeout(timer);
      resolve(payload);
    });
  });
}

function message(room: string, id: number, text = `message ${id}`): MessageFrame {
  return { type: 'message', room, id, user: 'johndoe', text, ts: 1_700_000_000_000 + id };
}

const welcome: ServerFrame = { type: 'welcome', user: 'johndoe', rooms: ['general'] };

const code = (expected: string) => (err: unknown) =>
  err instanceof WsgateClientError && err.code === expected;

describe('WsgateClient chat protocol', () => {
  let peer: Peer;

  before(async () => {
    peer = await Peer.start();
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  after(async () => {
    await peer.close();
  });

  it('offers wsgate.v1 with the bearer subprotocol and is connected on welcome, not on open', async () => {
    const c = client(peer, { getToken: async () => 'header.payload.signature' });
    c.connect();
    const socket = await peer.accept();
    assert.deepEqual(socket.offered, ['wsgate.v1', 'wsgate.bearer.header.payload.signature']);
    assert.equal(socket.req.url, '/chat');
    // A frame other than welcome arrives after the socket's open, so open has been handled.
    const ponged = next(c, 'pong');
    socket.send({ type: 'pong' });
    await ponged;
    assert.equal(c.state, 'connecting', 'open alone is not connected');
    const welcomed = next(c, 'welcome');
    socket.send(welcome);
    assert.deepEqual(await welcomed, welcome);
    assert.equal(c.state, 'connected');
  });

  it('sends a ticket as ?token= and offers only wsgate.v1', async () => {
    const c = client(peer, { getTicket: async () => 'tkt_123' });
    c.connect();
    const socket = await peer.accept();
    assert.deepEqual(socket.offered, ['wsgate.v1']);
    assert.equal(socket.req.url, '/chat?token=tkt_123');
  });

  it('resolves send() with the ack msgId and rejects it on an error frame with its id', async () => {
    const c = client(peer);
    c.connect();
    const socket = await peer.accept();
    const connected = next(c, 'welcome');
    socket.send(welcome);
    await connected;

    const sent = c.send('general', 'hello');
    const frame = await socket.frame();
    assert.equal(frame.type, 'send');
    if (frame.type !== 'send') return;
    assert.equal(frame.room, 'general');
    assert.equal(frame.text, 'hello');
    assert.match(frame.id ?? '', /^[A-Za-z0-9_.:-]{1,64}$/);
    socket.send({ type: 'ack', id: frame.id!, msgId: 42 });
    assert.equal(await sent, 42);

    const refused = c.send('general', 'no');
    const second = await socket.frame();
    assert.ok(second.type === 'send' && second.id !== frame.id, 'each send has its own id');
    const errorEvent = next(c, 'error');
    socket.send({
      type: 'error',
      code: 'not_joined',
      message: 'Join the room before sending to it',
      id: second.id!,
    });
    await assert.rejects(refused, (err: unknown) => {
      assert.ok(err instanceof WsgateClientError);
      assert.equal(err.code, 'not_joined');
      assert.equal(err.message, 'Join the room before sending to it');
      return true;
    });
    assert.equal((await errorEvent).code, 'not_joined');
  });

  it('rejects unanswered sends and pings with disconnected when the socket drops', async () => {
    const c = client(peer);
    c.connect();
    const socket = await peer.accept();
    const connected = next(c, 'welcome');
    socket.send(welcome);
    await connected;
    const sent = c.send('general', 'hello');
    const pinged = c.ping();
    await socket.frame();
    await socket.frame();
    const closed = next(c, 'closed');
    socket.ws.close(1011, 'Internal error');
    await assert.rejects(sent, code('disconnected'));
    await assert.rejects(pinged, code('disconnected'));
    const close = await closed;
    assert.equal(close.code, 1011);
    assert.equal(close.willReconnect, true);
  });

  it('resolves ping() on the pong', async () => {
    const c = client(peer);
    c.connect();
    const socket = await peer.accept();
    const connected = next(c, 'welcome');
    socket.send(welcome);
    await connected;
    const pinged = c.ping();
    assert.deepEqual(await socket.frame(), { type: 'ping' });
    socket.send({ type: 'pong' });
    await pinged;
  });

  it('rejoins rooms after a reconnect from the last id seen, and delivers each message once', async () => {
    const c = client(peer);
    const delivered: number[] = [];
    c.on('joined', (frame) => delivered.push(...frame.history.map((m) => m.id)));
    c.on('message', (frame) => delivered.push(frame.id));
    c.join('general'); // before connecting: sent once connected
    c.connect();

    const first = await peer.accept();
    first.send(welcome);
    assert.deepEqual(await first.frame(), { type: 'join', room: 'general' });
    first.send(
      {
        type: 'joined',
        room: 'general',
        members: ['johndoe'],
        history: [message('general', 1), message('general', 2)],
      },
      message('general', 3),
      message('general', 3), // a duplicate
    );
    const dropped = next(c, 'closed');
    first.ws.close(1001, 'Server is shutting down'); // after the frames above, in order
    assert.equal((await dropped).willReconnect, true);
    assert.equal(c.lastMessageId('general'), 3);

    const second = await peer.accept();
    second.send(welcome);
    assert.deepEqual(await second.frame(), { type: 'join', room: 'general', since: 3 });
    const rejoined = next(c, 'joined');
    const presence = next(c, 'presence');
    second.send(
      {
        type: 'joined',
        room: 'general',
        members: ['johndoe', 'janedoe'],
        // Overlaps what was delivered before the drop.
        history: [message('general', 2), message('general', 3), message('general', 4)],
      },
      message('general', 4),
      message('general', 5),
      { type: 'presence', room: 'general', user: 'janedoe', state: 'join' },
    );
    assert.deepEqual(
      (await rejoined).history.map((m) => m.id),
      [4],
    );
    assert.equal((await presence).user, 'janedoe');
    assert.deepEqual(delivered, [1, 2, 3, 4, 5]);
    assert.equal(c.lastMessageId('general'), 5);
  });

  it('forgets a room on leave() and drops its late messages', async () => {
    const c = client(peer);
    const messages: number[] = [];
    c.on('message', (frame) => messages.push(frame.id));
    c.connect();
    const socket = await peer.accept();
    socket.send(welcome);
    await next(c, 'welcome');
    c.join('random');
    assert.deepEqual(await socket.frame(), { type: 'join', room: 'random' });
    socket.send({ type: 'joined', room: 'random', members: ['johndoe'], history: [] });
    await next(c, 'joined');
    c.leave('random');
    assert.deepEqual(await socket.frame(), { type: 'leave', room: 'random' });
    socket.send(message('random', 9));
    c.ping().catch(() => {});
    await socket.frame();
    socket.send({ type: 'pong' });
    await next(c, 'pong');
    assert.deepEqual(messages, []);
    assert.deepEqual(c.rooms, []);
  });

  it('on expiring, fetches a new token and re-authenticates in band', async () => {
    let calls = 0;
    const c = client(peer, { getToken: async () => `token-${++calls}` });
    c.connect();
    const socket = await peer.accept();
    socket.send(welcome);
    await next(c, 'welcome');
    const expiring = next(c, 'expiring');
    socket.send({ type: 'expiring', in: 30 });
    assert.deepEqual(await expiring, { type: 'expiring', in: 30 });
    assert.deepEqual(await socket.frame(), { type: 'auth', token: 'token-2' });
    const reauthenticated = next(c, 'reauthenticated');
    socket.send({ type: 'reauthenticated', exp: 1_900_000_000 });
    assert.equal((await reauthenticated).exp, 1_900_000_000);
    assert.equal(c.state, 'connected');

    // The in-band token is the one a later reconnect presents; it is not fetched again.
    socket.ws.close(1001, 'Server is shutting down');
    const again = await peer.accept();
    assert.deepEqual(again.offered, ['wsgate.v1', 'wsgate.bearer.token-2']);
    assert.equal(calls, 2);
  });

  it('refreshes and reconnects at once on 4419, with backoff if it happens again', async () => {
    let calls = 0;
    const c = client(peer, {
      getToken: async () => `token-${++calls}`,
      backoff: { baseMs: 1_000, maxMs: 60_000 },
      random: () => 0.5,
    });
    const closes: ClientEvents['closed'][] = [];
    c.on('closed', (e) => closes.push(e));
    c.connect();
    const first = await peer.accept();
    first.send(welcome);
    await next(c, 'welcome');
    first.ws.close(4419, 'Token has expired');
    const second = await peer.accept();
    assert.deepEqual(second.offered, ['wsgate.v1', 'wsgate.bearer.token-2']);
    // Refused again before any welcome: this time the client backs off.
    const closed = next(c, 'closed');
    second.ws.close(4419, 'Token has expired');
    await closed;
    assert.deepEqual(closes, [
      { code: 4419, reason: 'Token has expired', willReconnect: true, delayMs: 0 },
      { code: 4419, reason: 'Token has expired', willReconnect: true, delayMs: 1_000 },
    ]);
  });
});
