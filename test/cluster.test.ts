import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { MemoryBus } from '../src/pubsub/memory.js';
import { RedisPubSub } from '../src/pubsub/redis.js';
import type { PubSub } from '../src/pubsub/types.js';
import { startTestServer, passwordGrant, type TestServer } from './support/server.js';
import { redacted, redisReachable, redisUrl } from './support/services.js';
import { wsUrl } from './support/ws.js';
import { manualTimers } from './support/timers.js';
import { inMachineBuses } from './support/workers.js';
import { chatSocket as chatSocketOn } from './support/chat-socket.js';

/**
 * Lets everything published on a MemoryBus arrive, and everything those arrivals publish in
 * turn: the bus delivers on microtasks, which all run before the next macrotask.
 */
const busSettled = () => new Promise((resolve) => setImmediate(resolve));

/** A chat socket on `server`. */
const chatSocket = (server: TestServer, token: string) =>
  chatSocketOn(wsUrl(server, '/chat'), token);

/** The cluster contract, run over each bus: two nodes, one database, no sticky sessions. */
function clusterSuite(
  name: string,
  connect: () => Promise<{ a: PubSub; b: PubSub; close?: () => Promise<void> }>,
  skip?: () => Promise<string | false>,
) {
  describe(`cluster mode over ${name}`, () => {
    let a: TestServer;
    let b: TestServer;
    let closeBuses: (() => Promise<void>) | undefined;
    let dataDir: string;
    let skipped: string | false = false;

    before(async () => {
      skipped = (await skip?.()) ?? false;
      if (skipped) return;
      dataDir = mkdtempSync(join(tmpdir(), 'wsgate-cluster-'));
      const buses = await connect();
      closeBuses = buses.close;
      // Both nodes start at once on one database: seeding and key creation must not collide.
      [a, b] = await Promise.all([
        startTestServer({}, { dataDir, bus: buses.a }),
        startTestServer({}, { dataDir, bus: buses.b }),
      ]);
    });

    after(async () => {
      if (skipped) return;
      await a.stop();
      await b.stop();
      // What carries the buses (the in-machine hub's ports) would keep the process alive.
      await closeBuses?.();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('lets users on different nodes chat both ways and see each other arrive', async (t) => {
      if (skipped) return t.skip(skipped);
      const john = (await passwordGrant(a)).access_token;
      const jane = (await passwordGrant(b, 'janedoe', 'secret2')).access_token; // node B accepts A's keys too
      const onA = await chatSocket(a, john);
      const onB = await chatSocket(b, jane);
      const room = `x-${randomUUID().slice(0, 8)}`;
      onA.send({ type: 'join', room });
      await onA.next((f) => f.type === 'joined');
      onB.send({ type: 'join', room });
      const joined = await onB.next((f) => f.type === 'joined');
      // A's arrival crosses the bus asynchronously: B lists A as a member if it already knows,
      // and otherwise hears A's presence in the next batch. Either way B sees A.
      if (!(joined.type === 'joined' && joined.members.includes('johndoe'))) {
        await onB.next((f) => f.type === 'presence' && f.user === 'johndoe' && f.state === 'join');
      }
      await onA.next((f) => f.type === 'presence' && f.user === 'janedoe' && f.state === 'join');

      onA.send({ type: 'send', room, text: 'from A', id: 'a1' });
      const atB = await onB.next((f) => f.type === 'message' && f.text === 'from A');
      onB.send({ type: 'send', room, text: 'from B', id: 'b1' });
      const atA = await onA.next((f) => f.type === 'message' && f.text === 'from B');
      assert.ok(
        atB.type === 'message' && atA.type === 'message' && atA.id > atB.id,
        'ids grow across nodes',
      );

      onB.ws.close();
      await onA.next((f) => f.type === 'presence' && f.user === 'janedoe' && f.state === 'leave');
      onA.ws.close();
    });

    it('closes a socket on node B with 4410 within a second of a logout on node A', async (t) => {
      if (skipped) return t.skip(skipped);
      const pair = await passwordGrant(a);
      const onB = await chatSocket(b, pair.access_token);
      const started = performance.now();
      const res = await fetch(`${a.url}/logout`, {
        method: 'POST',
        headers: { authorization: `Bearer ${pair.access_token}` },
      });
      assert.equal(res.status, 204);
      const { code, at } = await onB.closed;
      assert.equal(code, 4410);
      const ms = at - started;
      t.diagnostic(`cross-node kick: ${ms.toFixed(1)} ms`);
      assert.ok(ms < 1000, `kick took ${ms} ms`);
      // And node B refuses the token at the next handshake, without asking the database.
      const again = await fetch(`${b.url}/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${pair.access_token}` },
      });
      assert.equal(again.status, 401);
    });
  });
}

clusterSuite('an in-process bus', () => {
  const bus = new MemoryBus();
  return Promise.resolve({ a: bus.connect(), b: bus.connect() });
});

clusterSuite('the in-machine bus of --workers (relayed by a primary)', () =>
  Promise.resolve(inMachineBuses()),
);

clusterSuite(
  'Redis',
  () => {
    const prefix = `wsgate-test-${randomUUID().slice(0, 8)}:`;
    return Promise.resolve({
      a: new RedisPubSub(redisUrl, { prefix }),
      b: new RedisPubSub(redisUrl, { prefix }),
    });
  },
  async () => {
    if (await redisReachable()) return false;
    if (process.env.CI === 'true')
      throw new Error(`Redis is required in CI and is not reachable at ${redacted(redisUrl)}`);
    return `skipped: Redis not reachable at ${redacted(redisUrl)}`;
  },
);

describe('cluster presence over an in-process bus', () => {
  it('delivers a message a node stored and acknowledged but never published before it died', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wsgate-cluster-lost-'));
    const bus = new MemoryBus();
    const busB = bus.connect();
    const [timersA, timersB] = [manualTimers(), manualTimers()];
    const cluster = { heartbeatMs: 50, deadAfterMs: 200 };
    const a = await startTestServer(
      {},
      { dataDir, bus: bus.connect(), cluster: { ...cluster, timers: timersA } },
    );
    const b = await startTestServer(
      {},
      { dataDir, bus: busB, cluster: { ...cluster, timers: timersB } },
    );
    try {
      const room = `lost-${randomUUID().slice(0, 8)}`;
      const onA = await chatSocket(a, (await passwordGrant(a)).access_token);
      onA.send({ type: 'join', room });
      await onA.next((f) => f.type === 'joined');
      onA.send({ type: 'send', room, text: 'before', id: 'c1' });
      const before = await onA.next((f) => f.type === 'message' && f.text === 'before');
      for (let beats = 0; beats < 3; beats += 1) {
        timersB.advance(50); // a few of B's heartbeats reach A
        await busSettled();
      }

      // Node B goes silent, having stored (and acknowledged) one more message that it never
      // got to publish: as a process killed between its acknowledgement and its publish.
      await busB.close();
      const lost = await b.runtime.storage.appendMessage({
        room,
        username: 'janedoe',
        text: 'stored, acked, never published',
        ts: Date.now(),
      });

      // Once A declares B dead, it reads what B stored and its member gets it, once.
      timersA.advance(250);
      const got = await onA.next((f) => f.type === 'message' && f.id === lost.id, 3000);
      assert.ok(got.type === 'message');
      assert.equal(got.text, 'stored, acked, never published');
      assert.ok(before.type === 'message');
      const twice = (await onA.unclaimed()).filter(
        (f) => f.type === 'message' && (f.id === before.id || f.id === lost.id),
      );
      assert.deepEqual(twice, [], 'nothing is sent twice');
      onA.ws.close();
    } finally {
      await a.stop();
      await b.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('heals when a node falls silent: its users leave, and a newcomer learns who is here', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wsgate-cluster-heal-'));
    const bus = new MemoryBus();
    const busB = bus.connect();
    // Heartbeats the test steps by hand; the defaults are 2 s and 6 s.
    const [timersA, timersB, timersC] = [manualTimers(), manualTimers(), manualTimers()];
    const cluster = { heartbeatMs: 50, deadAfterMs: 200 };
    const a = await startTestServer(
      {},
      { dataDir, bus: bus.connect(), cluster: { ...cluster, timers: timersA } },
    );
    const b = await startTestServer(
      {},
      { dataDir, bus: busB, cluster: { ...cluster, timers: timersB } },
    );
    let c: TestServer | undefined;
    try {
      const room = `heal-${randomUUID().slice(0, 8)}`;
      const onA = await chatSocket(a, (await passwordGrant(a)).access_token);
      const onB = await chatSocket(b, (await passwordGrant(b, 'janedoe', 'secret2')).access_token);
      onA.send({ type: 'join', room });
      await onA.next((f) => f.type === 'joined');
      onB.send({ type: 'join', room });
      await onB.next((f) => f.type === 'joined');
      await onA.next((f) => f.type === 'presence' && f.user === 'janedoe' && f.state === 'join');

      // A node that starts later is told who is already in the room.
      c = await startTestServer(
        {},
        { dataDir, bus: bus.connect(), cluster: { ...cluster, timers: timersC } },
      );
      const onC = await chatSocket(c, (await passwordGrant(c, 'test', 'test')).access_token);
      await busSettled(); // the hello and its answers cross the bus
      onC.send({ type: 'join', room });
      const joined = await onC.next((f) => f.type === 'joined');
      assert.ok(joined.type === 'joined');
      assert.deepEqual(joined.members, ['janedoe', 'johndoe', 'test']);

      // Node B goes silent (its bus connection dies, as when the process is killed).
      await busB.close();
      timersA.advance(250);
      timersC.advance(250);
      await onA.next(
        (f) => f.type === 'presence' && f.user === 'janedoe' && f.state === 'leave',
        3000,
      );
      await onC.next(
        (f) => f.type === 'presence' && f.user === 'janedoe' && f.state === 'leave',
        3000,
      );
      onA.ws.close();
      onC.ws.close();
      onB.ws.close();
    } finally {
      await c?.stop();
      await a.stop();
      await b.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
