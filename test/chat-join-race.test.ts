/**
 * A join reads the room's history while messages keep coming: no message may fall between the
 * history and the live traffic (lost), and none may come in both (twice). Reproduced without
 * timing luck: two nodes on one PostgreSQL database over an in-process bus; node A reaches the
 * database through a relay of this file's own that holds back one direction on demand, so the
 * join's history query is held while node B stores and publishes a message.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import pg from 'pg';
import WebSocket from 'ws';
import type { ServerFrame } from '../src/chat/protocol.js';
import { MemoryBus } from '../src/pubsub/memory.js';
import { passwordGrant, startTestServer, type TestServer } from './support/server.js';
import { manualTimers } from './support/timers.js';
import { wsUrl } from './support/ws.js';
import { postgresReachable, postgresUrl, skipUnlessReachable } from './support/services.js';

const skip = await skipUnlessReachable('PostgreSQL', postgresUrl, postgresReachable);

type Direction = 'toDatabase' | 'fromDatabase';

/** A TCP relay to PostgreSQL that can hold back what flows one way, and let it go later. */
interface HoldingRelay {
  readonly port: number;
  hold(direction: Direction): void;
  /** Everything held so far, as text (the query, or the rows and command tag of its answer). */
  held(): string;
  release(): void;
  close(): Promise<void>;
}

async function holdingRelay(host: string, port: number): Promise<HoldingRelay> {
  const open = new Set<Socket>();
  let holding: Direction | undefined;
  let heldChunks: { to: Socket; data: Buffer }[] = [];
  const forward = (direction: Direction, to: Socket) => (data: Buffer) => {
    if (holding === direction) heldChunks.push({ to, data });
    else to.write(data);
  };
  const server = createServer((client) => {
    const db = tcpConnect(port, host);
    open.add(client).add(db);
    for (const socket of [client, db]) {
      socket.on('error', () => socket.destroy());
      socket.on('close', () => {
        open.delete(socket);
        client.destroy();
        db.destroy();
      });
    }
    client.on('data', forward('toDatabase', db));
    db.on('data', forward('fromDatabase', client));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hold: (direction) => {
      holding = direction;
    },
    held: () => Buffer.concat(heldChunks.map((c) => c.data)).toString('latin1'),
    release: () => {
      holding = undefined;
      const chunks = heldChunks;
      heldChunks = [];
      for (const { to, data } of chunks) to.write(data);
    },
    close: async () => {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Polls `condition` (a state the test waits to reach, never a wait for nothing to happen). */
async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function chatSocket(server: TestServer, token: string) {
  const ws = new WebSocket(wsUrl(server, '/chat'), {
    headers: { authorization: `Bearer ${token}` },
  });
  const frames: ServerFrame[] = [];
  ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString('utf8')) as ServerFrame));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await until(() => frames.some((f) => f.type === 'welcome'), 'welcome');
  const send = (frame: object) => ws.send(JSON.stringify(frame));
  /** Every frame received, once a ping sent now has been answered. */
  const settled = async () => {
    const pongs = frames.filter((f) => f.type === 'pong').length;
    send({ type: 'ping' });
    await until(() => frames.filter((f) => f.type === 'pong').length > pongs, 'pong');
    return frames;
  };
  return { ws, frames, send, settled };
}

/** Ids of the message frames and of the history of `joined` frames of `room`, in order. */
function deliveredIds(frames: readonly ServerFrame[], room: string): number[] {
  return frames.flatMap((f) => {
    if (f.type === 'message' && f.room === room) return [f.id];
    if (f.type === 'joined' && f.room === room) return f.history.map((m) => m.id);
    return [];
  });
}

describe('joining a room while messages arrive', { skip }, () => {
  const schema = `wsgate_test_join_${randomBytes(6).toString('hex')}`;
  const upstream = new URL(postgresUrl);
  let relay: HoldingRelay;
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    relay = await holdingRelay(upstream.hostname || '127.0.0.1', Number(upstream.port || 5432));
    const direct = new URL(postgresUrl);
    direct.searchParams.set('options', `-c search_path=${schema}`);
    const viaRelay = new URL(direct);
    viaRelay.hostname = '127.0.0.1';
    viaRelay.port = String(relay.port);
    const bus = new MemoryBus();
    // Manual timers: no revocation poll or presence batch queries the database unasked.
    b = await startTestServer(
      { database: direct.toString() },
      { bus: bus.connect(), timers: manualTimers() },
    );
    a = await startTestServer(
      { database: viaRelay.toString() },
      { bus: bus.connect(), timers: manualTimers() },
    );
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    await relay?.close();
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  /**
   * Node A's `tester` and node B's `janedoe` are in a fresh room; `johndoe` on node A joins it
   * while the relay holds `direction`, and `janedoe` sends a message meanwhile.
   */
  async function joinDuring(direction: Direction) {
    const room = `race-${randomBytes(4).toString('hex')}`;
    const tester = await chatSocket(a, (await passwordGrant(a, 'test', 'test')).access_token);
    const jane = await chatSocket(b, (await passwordGrant(b, 'janedoe', 'secret2')).access_token);
    const john = await chatSocket(a, (await passwordGrant(a)).access_token);
    for (const member of [tester, jane]) {
      member.send({ type: 'join', room });
      await until(() => member.frames.some((f) => f.type === 'joined'), 'joined');
    }
    jane.send({ type: 'send', room, text: 'before', id: 'j1' });
    await until(
      () => tester.frames.some((f) => f.type === 'message' && f.text === 'before'),
      'the first message reaches node A',
    );

    relay.hold(direction);
    john.send({ type: 'join', room, since: 0 });
    // The history query is on its way (held before PostgreSQL), or answered (held after it).
    await until(() => relay.held().includes('SELECT'), 'the history query reaches the relay');
    jane.send({ type: 'send', room, text: 'during', id: 'j2' });
    await until(
      () => tester.frames.some((f) => f.type === 'message' && f.text === 'during'),
      'the message sent during the join reaches node A',
    );
    const during = tester.frames.find((f) => f.type === 'message' && f.text === 'during');
    relay.release();
    await until(() => john.frames.some((f) => f.type === 'joined'), "john's join completes");
    const frames = await john.settled();
    for (const member of [tester, jane, john]) member.ws.close();
    return { frames, room, during: during?.type === 'message' ? during.id : -1 };
  }

  it('delivers a message stored after the history was read, once, after the history', async () => {
    const { frames, room, during } = await joinDuring('fromDatabase');
    const joined = frames.findIndex((f) => f.type === 'joined' && f.room === room);
    const live = frames.findIndex((f) => f.type === 'message' && f.id === during);
    assert.ok(joined >= 0);
    const history = frames[joined]?.type === 'joined' ? frames[joined].history : [];
    assert.ok(
      !history.some((m) => m.id === during),
      'the history was read before the message was stored',
    );
    assert.ok(live > joined, `the message came live, after the history: ${JSON.stringify(frames)}`);
    assert.equal(deliveredIds(frames, room).filter((id) => id === during).length, 1);
  });

  it('sends a message the history already holds only once', async () => {
    const { frames, room, during } = await joinDuring('toDatabase');
    const joined = frames.find((f) => f.type === 'joined' && f.room === room);
    assert.ok(joined?.type === 'joined');
    assert.ok(
      joined.history.some((m) => m.id === during),
      'the history was read after the message was stored',
    );
    const ids = deliveredIds(frames, room);
    assert.equal(ids.filter((id) => id === during).length, 1, `delivered: ${JSON.stringify(ids)}`);
    assert.equal(new Set(ids).size, ids.length, 'no message twice');
  });
});
