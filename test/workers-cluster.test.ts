import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { ensureBuilt, type ServeProcess } from './support/cli.js';
import { chatSocket, type ChatSocket } from './support/chat-socket.js';
import { passwordGrant, postForm } from './support/server.js';
import { redisReachable, redisUrl, skipUnlessReachable } from './support/services.js';
import {
  lines,
  startWorkers,
  stopAllWorkers,
  waitFor,
  workersOf,
  wsOf,
} from './support/worker-processes.js';
import { connect } from './support/ws.js';
import { usableCores } from '../src/config.js';

/**
 * The cluster behaviour of DESIGN §6 between the workers of one `wsgate serve --workers auto`
 * (§11; `--workers 2` on a machine with one usable core): separate processes on one real port,
 * the bus, tickets and limits relayed by the primary (or, with `--redis`, each worker a cluster
 * node). The primary deals new connections to the workers in turn; every test checks from the
 * workers' own log lines (each carries its worker's id) that two workers took part, so a
 * behaviour that only held within one worker fails. Kicks, single-use tickets, the per-user
 * socket limit and the login limiter across workers are in workers.test.ts.
 */

before(() => ensureBuilt());
after(() => stopAllWorkers());

/**
 * Johndoe opens two chat sockets one after the other (one on each worker), janedoe one: every
 * message and presence change reaches a socket on the other worker. A logout of johndoe at the
 * end proves where his sockets were: each worker logs the kick of its own.
 */
async function chatAcrossWorkers(server: ServeProcess): Promise<void> {
  const url = wsOf(server, '/chat');
  const john = (await passwordGrant(server)).access_token;
  const jane = (await passwordGrant(server, 'janedoe', 'secret2')).access_token;
  const johns: ChatSocket[] = [await chatSocket(url, john), await chatSocket(url, john)];
  const [john1, john2] = johns as [ChatSocket, ChatSocket];
  const onJane = await chatSocket(url, jane);
  const room = `w-${randomUUID().slice(0, 8)}`;
  for (const socket of johns) {
    socket.send({ type: 'join', room });
    await socket.next((f) => f.type === 'joined');
  }
  onJane.send({ type: 'join', room });
  await onJane.next((f) => f.type === 'joined');
  for (const socket of johns) {
    await socket.next((f) => f.type === 'presence' && f.user === 'janedoe' && f.state === 'join');
  }

  onJane.send({ type: 'send', room, text: 'from jane', id: 'j1' });
  await onJane.next((f) => f.type === 'message' && f.text === 'from jane'); // her own, back
  for (const socket of johns)
    await socket.next((f) => f.type === 'message' && f.text === 'from jane');
  john1.send({ type: 'send', room, text: 'from john 1', id: 'a1' });
  const first = await onJane.next((f) => f.type === 'message' && f.text === 'from john 1');
  john2.send({ type: 'send', room, text: 'from john 2', id: 'a2' });
  const second = await onJane.next((f) => f.type === 'message' && f.text === 'from john 2');
  // Each worker appends to the one SQLite file: the ids grow across them.
  assert.ok(
    first.type === 'message' && second.type === 'message' && second.id > first.id,
    'ids grow across workers',
  );
  const twice = (await onJane.unclaimed()).filter((f) => f.type === 'message');
  assert.deepEqual(twice, [], 'each message arrives once');

  // Both workers write at once to the one SQLite file (WAL, short writes): every message is
  // stored once, with an id of its own, in each sender's order.
  const burst = 30;
  for (let i = 0; i < burst; i++) {
    john1.send({ type: 'send', room, text: `1:${i}`, id: `b1-${i}` });
    john2.send({ type: 'send', room, text: `2:${i}`, id: `b2-${i}` });
  }
  const got: { text: string; id: number }[] = [];
  for (let i = 0; i < 2 * burst; i++) {
    const frame = await onJane.next((f) => f.type === 'message' && /^[12]:/.test(f.text));
    if (frame.type === 'message') got.push({ text: frame.text, id: frame.id });
  }
  assert.equal(new Set(got.map((m) => m.id)).size, 2 * burst, 'distinct ids');
  for (const sender of ['1:', '2:']) {
    const mine = got.filter((m) => m.text.startsWith(sender));
    assert.deepEqual(
      mine.map((m) => m.text),
      Array.from({ length: burst }, (_, i) => `${sender}${i}`),
    );
    assert.ok(
      mine.every((m, i) => i === 0 || m.id > (mine[i - 1] as { id: number }).id),
      `ids grow for ${sender}`,
    );
  }

  onJane.ws.close();
  for (const socket of johns) {
    await socket.next((f) => f.type === 'presence' && f.user === 'janedoe' && f.state === 'leave');
  }

  const since = server.logs.length;
  const res = await fetch(`${server.url}/logout`, {
    method: 'POST',
    headers: { authorization: `Bearer ${john}` },
  });
  assert.equal(res.status, 204);
  assert.deepEqual(
    (await Promise.all(johns.map((socket) => socket.closed))).map((c) => c.code),
    [4410, 4410],
  );
  await waitFor(
    () => workersOf(server, 'socket.kick', since).size === 2,
    'johndoe’s sockets kicked on both workers',
  );
}

/** `auto` where it means several workers (one per usable core); else two. */
const cores = usableCores();
const workers = cores >= 2 ? 'auto' : '2';

describe(`cluster behaviour across the workers of wsgate serve --workers ${workers}`, () => {
  let server: ServeProcess;
  before(async () => {
    server = await startWorkers([
      ...['--workers', workers],
      ...['--handshake-burst', '20', '--handshake-rate', '1'],
      ...['--hash-concurrency', '1', '--hash-queue', '0'],
    ]);
  });

  it('starts one worker per usable core for auto', () => {
    const listening = lines(server).filter((l) => l.msg?.startsWith('wsgate listening on'));
    assert.match(listening[0]?.msg ?? '', new RegExp(`with ${Math.max(cores, 2)} workers$`));
  });

  it('carries chat and presence between sockets on different workers, each message once, stored once in the shared SQLite', () =>
    chatAcrossWorkers(server));

  it('counts a client address’s handshakes across workers against one bucket', async () => {
    // An address of its own, so the other tests’ handshakes are not in its bucket.
    const address = '127.0.0.3';
    const since = server.logs.length;
    const statuses: (number | 'open')[] = [];
    for (let i = 0; i < 40; i++) {
      const outcome = await connect(wsOf(server, '/ws'), { localAddress: address });
      statuses.push(outcome.kind === 'http' ? outcome.status : 'open');
    }
    // The burst of 20 is the address's on both workers together: each worker alone would have
    // let its 20 through (all 401, no credential), and refused none.
    assert.deepEqual(statuses.slice(0, 20), new Array<number>(20).fill(401));
    assert.ok(statuses.includes(429), `no 429 in ${statuses.join(' ')}`);
    const refusedBy = new Set(
      lines(server, since)
        .filter((l) => l.handshake?.code === 'rate_limited' && l.handshake.ip === address)
        .map((l) => l.worker),
    );
    assert.ok(refusedBy.size >= 2, 'the workers all refused the address');
  });

  it('answers 503 with Retry-After to logins beyond the machine’s one hashing slot', async () => {
    // Each on a connection of its own, so the primary deals them to both workers. The one slot
    // is the primary's (src/workers/stores.test.ts holds it across workers deterministically).
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        postForm(
          `${server.url}/token`,
          { username: 'test', password: 'test' },
          { connection: 'close' },
        ),
      ),
    );
    const statuses = answers.map((r) => r.status);
    assert.ok(
      statuses.every((s) => s === 200 || s === 503),
      `statuses ${statuses.join(',')}`,
    );
    assert.ok(statuses.includes(200) && statuses.includes(503), `statuses ${statuses.join(',')}`);
    const busy = answers.find((r) => r.status === 503);
    assert.equal(busy?.headers.get('retry-after'), '1');
    assert.equal(((await busy?.json()) as { error: string }).error, 'temporarily_unavailable');
  });
});

const redisSkip = await skipUnlessReachable('Redis', redisUrl, () => redisReachable());

describe(
  'wsgate serve --workers 2 --redis: every worker a cluster node',
  { skip: redisSkip },
  () => {
    const prefix = `wsgate-test-${randomUUID().slice(0, 8)}:`;
    const nodes = new Set<string>();
    let listener: Redis;
    let server: ServeProcess;
    before(async () => {
      // Listening before the workers start, to hear each one's hello on the cluster channel.
      listener = new Redis(redisUrl);
      listener.on('message', (_channel: string, text: string) => {
        nodes.add((JSON.parse(text) as { node: string }).node);
      });
      await listener.subscribe(`${prefix}nodes`);
      server = await startWorkers(['--redis', redisUrl, '--redis-prefix', prefix]);
    });
    after(async () => {
      await listener.quit();
    });

    it('starts two cluster nodes, one per worker, that chat and kick through Redis', async () => {
      await waitFor(() => nodes.size === 2, 'two node ids on Redis');
      await chatAcrossWorkers(server);
    });
  },
);
