import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { type RawData } from 'ws';
import type { ServerFrame } from '../src/chat/protocol.js';
import { startTestServer, passwordGrant, type TestServer } from './support/server.js';
import { wsUrl } from './support/ws.js';

type FrameType = ServerFrame['type'];
type FrameOf<T extends FrameType> = Extract<ServerFrame, { type: T }>;

/** A frame predicate with a label for timeout messages. */
interface Match<F extends ServerFrame> {
  (frame: ServerFrame): frame is F;
  readonly label: string;
}

/** Frames of `type` that also pass `also` (described by `label`). */
function is<T extends FrameType>(
  type: T,
  also: (frame: FrameOf<T>) => boolean = () => true,
  label = '',
): Match<FrameOf<T>> {
  const match = (frame: ServerFrame): frame is FrameOf<T> =>
    frame.type === type && also(frame as FrameOf<T>);
  return Object.assign(match, { label: label ? `${type} (${label})` : type });
}

const presenceOf = (room: string, user: string) =>
  is('presence', (f) => f.room === room && f.user === user, `${user} in ${room}`);
const errorIn = (code: string) => is('error', (f) => f.code === code, code);

interface ChatClient {
  readonly ws: WebSocket;
  readonly welcome: FrameOf<'welcome'>;
  /** Resolves when the server closes the socket. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Sends a frame (objects as JSON, strings as they are). */
  send(frame: object | string): void;
  /** The next not yet consumed frame that matches; fails after `timeoutMs`. */
  next<F extends ServerFrame>(match: Match<F>, timeoutMs?: number): Promise<F>;
  /** After a ping round trip, fails if a matching frame arrived (or is still unconsumed). */
  none(match: Match<ServerFrame>): Promise<void>;
  /** Joins `room` and returns the `joined` frame. */
  join(room: string, since?: number): Promise<FrameOf<'joined'>>;
  /** Sends to `room` with an ack id and returns the acked message id. */
  post(room: string, text: string, id?: string): Promise<number>;
  /** Round trip: every frame sent before has been handled once this resolves. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

let ackCounter = 0;
let roomCounter = 0;
/** A room name no other test uses. */
const freshRoom = (prefix = 'room') => `${prefix}-${++roomCounter}`;

describe('chat on /chat', () => {
  let server: TestServer;
  const tokens = new Map<string, string>();
  const clients = new Set<ChatClient>();

  before(async () => {
    // Every test makes its own rooms as the same few users: room creation is not the subject here.
    server = await startTestServer(
      { 'room-creations-per-minute': '100000' },
      { gateLimits: { handshakeBurst: 100_000 } },
    );
    await server.runtime.users.add('reader', 'reader-pw', 'chat:read');
    await server.runtime.users.add('writer', 'writer-pw', 'chat:write');
    const logins: [string, string][] = [
      ['johndoe', 'secret'],
      ['janedoe', 'secret2'],
      ['test', 'test'],
      ['reader', 'reader-pw'],
      ['writer', 'writer-pw'],
    ];
    for (const [user, password] of logins) {
      tokens.set(user, (await passwordGrant(server, user, password)).access_token);
    }
  });

  after(async () => {
    for (const c of clients) c.ws.terminate();
    await server.stop();
  });

  /**
   * Returns once every presence change made so far in `room` has reached `observer`: presence is
   * flushed in batches, so a marker's join seen by the observer proves the batches before it sent.
   */
  async function presenceFlushed(observer: ChatClient, room: string): Promise<void> {
    const marker = await chat('test');
    await marker.join(room);
    await observer.next(presenceOf(room, 'test'));
    await marker.close();
    assert.equal((await observer.next(presenceOf(room, 'test'))).state, 'leave');
  }

  /** Opens `/chat` as `user` with a bearer header and waits for `welcome`. */
  async function chat(user: string): Promise<ChatClient> {
    const token = tokens.get(user);
    assert.ok(token, `no token for ${user}`);
    const ws = new WebSocket(wsUrl(server, '/chat'), {
      headers: { authorization: `Bearer ${token}` },
    });
    const frames: ServerFrame[] = [];
    const waiters = new Set<() => void>();
    const wake = () => {
      for (const w of [...waiters]) w();
    };
    ws.on('message', (data: RawData, isBinary: boolean) => {
      assert.equal(isBinary, false, 'the server sends text frames only');
      frames.push(JSON.parse((data as Buffer).toString('utf8')) as ServerFrame);
      wake();
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        wake();
      }),
    );
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`/chat refused ${user}: HTTP ${res.statusCode}`)),
      );
      ws.once('error', reject);
    });

    function take<F extends ServerFrame>(match: Match<F>): F | undefined {
      const i = frames.findIndex(match);
      return i < 0 ? undefined : (frames.splice(i, 1)[0] as F);
    }

    const client: ChatClient = {
      ws,
      closed,
      welcome: undefined as unknown as FrameOf<'welcome'>,
      send(frame) {
        ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
      },
      next<F extends ServerFrame>(match: Match<F>, timeoutMs = 2000): Promise<F> {
        return new Promise<F>((resolve, reject) => {
          const check = () => {
            const found = take(match);
            if (found) {
              done();
              resolve(found);
            } else if (ws.readyState === WebSocket.CLOSED) {
              done();
              reject(new Error(`${user}: socket closed while waiting for ${match.label}`));
            }
          };
          const timer = setTimeout(() => {
            done();
            reject(
              new Error(
                `${user}: no ${match.label} frame within ${timeoutMs} ms; unconsumed: ${JSON.stringify(frames)}`,
              ),
            );
          }, timeoutMs);
          const done = () => {
            clearTimeout(timer);
            waiters.delete(check);
          };
          waiters.add(check);
          check();
        });
      },
      async none(match) {
        await client.sync();
        const found = frames.filter(match);
        assert.deepEqual(found, [], `${user}: expected no ${match.label} frame`);
      },
      async join(room, since) {
        client.send(since === undefined ? { type: 'join', room } : { type: 'join', room, since });
        return client.next(is('joined', (f) => f.room === room, room));
      },
      async post(room, text, id = `c${++ackCounter}`) {
        client.send({ type: 'send', room, text, id });
        const ack = await client.next(is('ack', (f) => f.id === id, id));
        return ack.msgId;
      },
      async sync() {
        client.send({ type: 'ping' });
        await client.next(is('pong'));
      },
      async close() {
        if (ws.readyState === WebSocket.CLOSED) return;
        ws.close();
        await closed;
      },
    };
    clients.add(client);
    Object.assign(client, { welcome: await client.next(is('welcome')) });
    return client;
  }

  it('handles the frames of one connection in the order they arrived, even in one packet', async () => {
    const c = await chat('johndoe');
    const room = freshRoom('order');
    const seen: string[] = [];
    c.ws.on('message', (data: RawData) => {
      const frame = JSON.parse((data as Buffer).toString('utf8')) as ServerFrame;
      if (frame.type !== 'presence')
        seen.push(frame.type === 'error' ? `error:${frame.code}` : frame.type);
    });
    // One write, four frames: join must finish (it reads history) before send, leave and ping run.
    c.ws.send(JSON.stringify({ type: 'join', room }));
    c.ws.send(JSON.stringify({ type: 'send', room, text: 'first', id: 'o1' }));
    c.ws.send(JSON.stringify({ type: 'leave', room }));
    c.ws.send(JSON.stringify({ type: 'ping' }));
    await c.next(is('pong'));
    assert.deepEqual(seen, ['joined', 'ack', 'message', 'pong']);
    await c.close();
  });

  it('sends welcome on connect with the user and the known rooms, including general', async () => {
    const john = await chat('johndoe');
    assert.equal(john.welcome.user, 'johndoe');
    assert.ok(Array.isArray(john.welcome.rooms));
    assert.ok(john.welcome.rooms.includes('general'), JSON.stringify(john.welcome.rooms));
    assert.deepEqual(Object.keys(john.welcome).sort(), ['rooms', 'type', 'user']);
    await john.close();
  });

  it('answers join with joined: sorted members and the last 50 messages in ascending id order', async () => {
    const room = freshRoom('hist');
    const john = await chat('johndoe');
    const first = await john.join(room);
    assert.deepEqual(first, { type: 'joined', room, members: ['johndoe'], history: [] });

    // 60 messages, pipelined, then wait for every ack.
    const ids = Array.from({ length: 60 }, (_, i) => `h${i}`);
    ids.forEach((id, i) => john.send({ type: 'send', room, text: `message ${i}`, id }));
    const msgIds: number[] = [];
    for (const id of ids) msgIds.push((await john.next(is('ack', (f) => f.id === id, id))).msgId);

    const jane = await chat('janedoe');
    const joined = await jane.join(room);
    assert.deepEqual(joined.members, ['janedoe', 'johndoe']);
    assert.equal(joined.history.length, 50);
    assert.deepEqual(
      joined.history.map((m) => m.id),
      msgIds.slice(10),
    );
    assert.deepEqual(
      joined.history.map((m) => m.text),
      Array.from({ length: 50 }, (_, i) => `message ${i + 10}`),
    );
    for (const m of joined.history) {
      assert.equal(m.type, 'message');
      assert.equal(m.room, room);
      assert.equal(m.user, 'johndoe');
      assert.equal(typeof m.ts, 'number');
    }
    for (let i = 1; i < joined.history.length; i++) {
      assert.ok(joined.history[i]!.id > joined.history[i - 1]!.id, 'ascending ids');
    }
    await Promise.all([john.close(), jane.close()]);
  });

  it('replays exactly the messages after `since` when a client rejoins', async () => {
    const room = freshRoom('since');
    const john = await chat('johndoe');
    await john.join(room);
    let jane = await chat('janedoe');
    await jane.join(room);
    const seen = await john.post(room, 'seen by jane');
    const last = (await jane.next(is('message', (f) => f.id === seen, 'seen'))).id;
    await jane.close();

    const missed: number[] = [];
    for (let i = 0; i < 3; i++) missed.push(await john.post(room, `missed ${i}`));

    jane = await chat('janedoe');
    const joined = await jane.join(room, last);
    assert.deepEqual(
      joined.history.map((m) => [m.id, m.text]),
      missed.map((id, i) => [id, `missed ${i}`]),
    );

    // Caught up: since the newest id replays nothing.
    const again = await (await chat('janedoe')).join(room, missed.at(-1));
    assert.deepEqual(again.history, []);
    await Promise.all([john.close(), jane.close()]);
  });

  it('acks a send with id to the sender and delivers the message to every member (sender included) and to no one else; messages persist', async () => {
    const room = freshRoom('send');
    const john = await chat('johndoe');
    const jane = await chat('janedoe');
    const outsider = await chat('test');
    await john.join(room);
    await jane.join(room);
    await outsider.join(freshRoom('elsewhere'));

    john.send({ type: 'send', room, text: 'hello room', id: 'abc-1' });
    const ack = await john.next(is('ack'));
    assert.equal(typeof ack.msgId, 'number');
    assert.deepEqual(ack, { type: 'ack', id: 'abc-1', msgId: ack.msgId });

    const mine = await john.next(is('message'));
    const theirs = await jane.next(is('message'));
    assert.equal(typeof mine.ts, 'number');
    const expected = {
      type: 'message',
      room,
      id: ack.msgId,
      user: 'johndoe',
      text: 'hello room',
      ts: mine.ts,
    };
    assert.deepEqual(mine, expected);
    assert.deepEqual(theirs, expected);
    await outsider.none(is('message'));
    await jane.none(is('ack'));

    const later = await outsider.join(room);
    assert.deepEqual(later.history, [expected]);
    await Promise.all([john.close(), jane.close(), outsider.close()]);
  });

  it('returns text with HTML and script byte-for-byte as the same string', async () => {
    const room = freshRoom('html');
    const text = '<img src=x onerror=alert(1)><script>alert(2)</script>';
    const john = await chat('johndoe');
    const jane = await chat('janedoe');
    await john.join(room);
    await jane.join(room);
    const id = await john.post(room, text);
    assert.equal((await john.next(is('message', (f) => f.id === id))).text, text);
    assert.equal((await jane.next(is('message', (f) => f.id === id))).text, text);
    const history = (await (await chat('test')).join(room)).history;
    assert.equal(history[0]?.text, text);
    await Promise.all([john.close(), jane.close()]);
  });

  it('sends presence join when a user joins and leave on leave and on socket close', async () => {
    const room = freshRoom('presence');
    const john = await chat('johndoe');
    await john.join(room);
    const jane = await chat('janedoe');
    await jane.join(room);
    assert.deepEqual(await john.next(presenceOf(room, 'janedoe')), {
      type: 'presence',
      room,
      user: 'janedoe',
      state: 'join',
    });

    jane.send({ type: 'leave', room });
    assert.deepEqual(await john.next(presenceOf(room, 'janedoe')), {
      type: 'presence',
      room,
      user: 'janedoe',
      state: 'leave',
    });

    await jane.join(room);
    assert.equal((await john.next(presenceOf(room, 'janedoe'))).state, 'join');
    await jane.close();
    assert.equal((await john.next(presenceOf(room, 'janedoe'))).state, 'leave');
    await presenceFlushed(john, room);
    await john.none(presenceOf(room, 'janedoe'));
    await john.close();
  });

  it('reports a user with two sockets in a room once: one join, and leave only when the last socket leaves', async () => {
    const room = freshRoom('twice');
    const john = await chat('johndoe');
    await john.join(room);
    const janeA = await chat('janedoe');
    const janeB = await chat('janedoe');

    await janeA.join(room);
    assert.equal((await john.next(presenceOf(room, 'janedoe'))).state, 'join');
    const joined = await janeB.join(room);
    assert.deepEqual(joined.members, ['janedoe', 'johndoe']);
    await presenceFlushed(john, room);
    await john.none(presenceOf(room, 'janedoe'));

    janeA.send({ type: 'leave', room });
    await janeA.sync();
    await presenceFlushed(john, room);
    await john.none(presenceOf(room, 'janedoe'));

    await janeB.close();
    assert.equal((await john.next(presenceOf(room, 'janedoe'))).state, 'leave');
    await presenceFlushed(john, room);
    await john.none(presenceOf(room, 'janedoe'));
    await Promise.all([john.close(), janeA.close()]);
  });

  it('tells the other members of a join and a leave inside one 100 ms window, in order', async () => {
    const room = freshRoom('coalesce');
    const john = await chat('johndoe');
    await john.join(room);
    const other = await chat('test');
    const jane = await chat('janedoe');
    // Presence is flushed in batches: a frame about `test` marks the start of a fresh window.
    await other.join(room);
    await john.next(presenceOf(room, 'test'));
    const started = Date.now();
    await jane.join(room);
    jane.send({ type: 'leave', room });
    await jane.sync();
    assert.ok(Date.now() - started < 80, 'join and leave fit in one presence window');
    // The visit read the history and the members: the others hear of it, join then leave.
    const joined = await john.next(presenceOf(room, 'janedoe'));
    assert.equal(joined.state, 'join');
    const left = await john.next(presenceOf(room, 'janedoe'));
    assert.equal(left.state, 'leave');
    await jane.none(presenceOf(room, 'janedoe'));
    await Promise.all([john.close(), other.close(), jane.close()]);
  });

  it('stops delivering messages to a socket that left the room', async () => {
    const room = freshRoom('leave');
    const john = await chat('johndoe');
    const jane = await chat('janedoe');
    await john.join(room);
    await jane.join(room);
    const before = await john.post(room, 'before');
    await jane.next(is('message', (f) => f.id === before));

    jane.send({ type: 'leave', room });
    await jane.sync();
    const afterId = await john.post(room, 'after');
    await john.next(is('message', (f) => f.id === afterId));
    await jane.none(is('message'));
    await Promise.all([john.close(), jane.close()]);
  });

  it('answers ping with pong', async () => {
    const john = await chat('johndoe');
    john.send({ type: 'ping' });
    assert.deepEqual(await john.next(is('pong')), { type: 'pong' });
    await john.close();
  });

  describe('errors are frames, not closes', () => {
    /** Expects one error frame of `code` and a socket that still works. */
    async function expectError(c: ChatClient, code: string): Promise<FrameOf<'error'>> {
      const error = await c.next(is('error'));
      assert.equal(error.code, code, JSON.stringify(error));
      assert.equal(typeof error.message, 'string');
      await c.sync();
      assert.equal(c.ws.readyState, WebSocket.OPEN);
      return error;
    }

    it('answers invalid JSON with error invalid_request', async () => {
      const c = await chat('johndoe');
      c.send('{not json');
      await expectError(c, 'invalid_request');
      c.send('[1,2]');
      await expectError(c, 'invalid_request');
      await c.close();
    });

    it('answers an unknown frame type with error invalid_request', async () => {
      const c = await chat('johndoe');
      c.send({ type: 'dance', room: 'general' });
      await expectError(c, 'invalid_request');
      c.send({ room: 'general' });
      await expectError(c, 'invalid_request');
      await c.close();
    });

    it('answers a bad room name (General, "a b", 65 characters) with error invalid_room', async () => {
      const c = await chat('johndoe');
      for (const room of ['General', 'a b', 'a'.repeat(65), '', '-x']) {
        c.send({ type: 'join', room });
        await expectError(c, 'invalid_room');
      }
      const longest = 'a'.repeat(64);
      assert.deepEqual((await c.join(longest)).room, longest);
      await c.close();
    });

    it('answers empty and 4001-character text with invalid_text and accepts 4000 characters', async () => {
      const room = freshRoom('text');
      const c = await chat('johndoe');
      await c.join(room);
      c.send({ type: 'send', room, text: '' });
      await expectError(c, 'invalid_text');
      c.send({ type: 'send', room, text: 'x'.repeat(4001) });
      await expectError(c, 'invalid_text');
      const id = await c.post(room, 'x'.repeat(4000));
      const message = await c.next(is('message', (f) => f.id === id));
      assert.equal(message.text.length, 4000);
      await c.close();
    });

    it('answers a send to a room not joined with not_joined', async () => {
      const c = await chat('johndoe');
      c.send({ type: 'send', room: freshRoom('nope'), text: 'hi' });
      await expectError(c, 'not_joined');
      await c.close();
    });

    it('carries the client id on send errors', async () => {
      const room = freshRoom('ids');
      const c = await chat('johndoe');
      await c.join(room);
      c.send({ type: 'send', room: freshRoom('nope'), text: 'hi', id: 'e1' });
      assert.equal((await expectError(c, 'not_joined')).id, 'e1');
      c.send({ type: 'send', room, text: '', id: 'e2' });
      assert.equal((await expectError(c, 'invalid_text')).id, 'e2');
      c.send({ type: 'send', room: 'Bad Room', text: 'hi', id: 'e3' });
      assert.equal((await expectError(c, 'invalid_room')).id, 'e3');
      await c.close();
    });

    it('answers a binary frame with error invalid_request', async () => {
      const c = await chat('johndoe');
      c.ws.send(Buffer.from(JSON.stringify({ type: 'ping' })), { binary: true });
      await expectError(c, 'invalid_request');
      await c.none(is('pong'));
      await c.close();
    });
  });

  describe('scopes', () => {
    it('lets a chat:read user join, but a send gets insufficient_scope', async () => {
      const room = freshRoom('scope-read');
      const c = await chat('reader');
      const joined = await c.join(room);
      assert.deepEqual(joined.members, ['reader']);
      c.send({ type: 'send', room, text: 'hi', id: 's1' });
      const error = await c.next(is('error'));
      assert.equal(error.code, 'insufficient_scope');
      assert.equal(error.id, 's1');
      await c.none(is('message'));
      assert.equal(c.ws.readyState, WebSocket.OPEN);
      await c.close();
    });

    it('refuses join to a chat:write-only user with insufficient_scope', async () => {
      const room = freshRoom('scope-write');
      const c = await chat('writer');
      c.send({ type: 'join', room });
      assert.equal((await c.next(is('error'))).code, 'insufficient_scope');
      await c.none(is('joined'));
      assert.equal(c.ws.readyState, WebSocket.OPEN);
      await c.close();
    });
  });

  it('closes a socket with 4400 after more than 20 malformed frames', async () => {
    const c = await chat('johndoe');
    for (let i = 0; i < 20; i++) c.send(`garbage ${i}`);
    for (let i = 0; i < 20; i++) await c.next(errorIn('invalid_request'));
    await c.sync();
    assert.equal(c.ws.readyState, WebSocket.OPEN, '20 bad frames are tolerated');
    c.send('garbage 21');
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      c.closed,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('not closed after 21 malformed frames')), 2000);
      }),
    ]);
    clearTimeout(timer);
    assert.equal(closed.code, 4400);
  });

  it('delivers 20 quickly sent messages to another member in order with increasing ids', async () => {
    const room = freshRoom('order');
    const john = await chat('johndoe');
    const jane = await chat('janedoe');
    await john.join(room);
    await jane.join(room);
    for (let i = 0; i < 20; i++) john.send({ type: 'send', room, text: `n${i}` });
    const received: FrameOf<'message'>[] = [];
    for (let i = 0; i < 20; i++) received.push(await jane.next(is('message')));
    assert.deepEqual(
      received.map((m) => m.text),
      Array.from({ length: 20 }, (_, i) => `n${i}`),
    );
    for (let i = 1; i < received.length; i++) {
      assert.ok(
        received[i]!.id > received[i - 1]!.id,
        `ids increase: ${received.map((m) => m.id).join(', ')}`,
      );
    }
    await Promise.all([john.close(), jane.close()]);
  });
});
