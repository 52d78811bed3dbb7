import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import WebSocket from 'ws';
import { WsgateClient, type ServerFrame } from '../src/client/index.js';
import { ensureBuilt, startServeProcess, wsgate, type ServeProcess } from './support/cli.js';
import {
  postgresReachable,
  postgresUrl as pgUrl,
  redisReachable,
  redisUrl,
  unreachable,
} from './support/services.js';
import { eventWaiter } from './support/client-events.js';

/**
 * DESIGN §6 with real processes: two or three `wsgate serve` nodes (`bin/wsgate.js`, as an operator
 * starts them) on one PostgreSQL schema and one Redis, with real faults — SIGKILL, SIGTERM and a
 * Redis restart — and the client SDK reconnecting through them. The nodes share nothing but the
 * database and Redis: each has its own data dir.
 */

async function whyUnavailable(): Promise<string | false> {
  if (!(await postgresReachable())) return unreachable('PostgreSQL', pgUrl);
  if (!(await redisReachable(redisUrl))) return unreachable('Redis', redisUrl);
  return false;
}

// Outside CI a missing service skips this file; in CI it must run, and fail.
const skip = process.env.CI !== 'true' ? await whyUnavailable() : false;

/**
 * The Redis-restart test restarts a Redis server of its own (the same `redis-server` flags as
 * .ci/run, on a free port): shutting down the shared one on 6379 would pull Redis from under the
 * other suites that `npm test` runs in parallel, and from anyone else using it.
 */
const redisServerMissing =
  spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0
    ? false
    : 'redis-server is not installed, so Redis cannot be restarted';
const restartSkip = process.env.CI !== 'true' ? redisServerMissing : false;

/** This run's schema, Redis prefix and rooms; all dropped or deleted in `after`. */
const run = randomBytes(6).toString('hex');
const schema = `wsgate_test_cluster_${run}`;
const redisPrefix = `wsgate-test-${run}:`;
const database = (() => {
  const address = new URL(pgUrl);
  address.searchParams.set('options', `-c search_path=${schema}`);
  return address.toString();
})();

const dirs: string[] = [];
function tempDir(kind: string): string {
  const dir = mkdtempSync(join(tmpdir(), `wsgate-${kind}-`));
  dirs.push(dir);
  return dir;
}

let roomSeq = 0;
function freshRoom(): string {
  return `c-${run}-${++roomSeq}`;
}

/** Polls `condition` every 10 ms; fails with `what` after `timeoutMs`. */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(10);
  }
}

// ---------------------------------------------------------------------------------------------
// Node processes

interface NodeProcess extends ServeProcess {
  readonly name: string;
}

const nodes = new Set<NodeProcess>();

/**
 * Starts `wsgate serve --demo` on port 0 as a real process in cluster mode. No `--issuer`, as
 * docs/deploy.md starts nodes: the deployment's first start stores the issuer for all of them.
 */
async function startNode(name: string, redis = redisUrl): Promise<NodeProcess> {
  const args = [
    '--demo',
    '--port',
    '0',
    '--data-dir',
    tempDir(`node-${name}`),
    '--database',
    database,
    '--redis',
    redis,
    '--redis-prefix',
    redisPrefix,
  ];
  const node: NodeProcess = { name, ...(await startServeProcess(args, `node ${name}`)) };
  nodes.add(node);
  return node;
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Stops a node this file started (SIGTERM, then SIGKILL after 5 s), by its own process handle. */
async function stopNode(node: NodeProcess): Promise<void> {
  if (alive(node.child)) {
    node.child.kill('SIGTERM');
    const timer = setTimeout(() => node.child.kill('SIGKILL'), 5_000);
    await node.exit;
    clearTimeout(timer);
  }
  nodes.delete(node);
}

async function startPair(redis = redisUrl): Promise<[NodeProcess, NodeProcess]> {
  // Both at once on one schema: migrations, demo users and the signing key must not collide.
  return Promise.all([startNode('A', redis), startNode('B', redis)]);
}

async function accessToken(node: NodeProcess, username: string, password: string) {
  const res = await fetch(`${node.url}/token`, {
    method: 'POST',
    body: new URLSearchParams({ username, password }),
  });
  assert.equal(res.status, 200, `login of ${username} on node ${node.name}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

function wsBase(url: string): string {
  return url.replace(/^http/, 'ws');
}

// ---------------------------------------------------------------------------------------------
// A load balancer in front of the nodes

/**
 * The SDK has one fixed `url`, as a browser app behind a load balancer does. So the tests that
 * take a node away put a small TCP proxy in front of both nodes, standing in for that balancer:
 * each new connection goes to the first node that accepts it (A, else B), and bytes are relayed
 * untouched. When A dies its port refuses connections and the SDK's next attempt lands on B —
 * the SDK, its reconnect and its resume are exactly what an application would run.
 */
interface FailoverProxy {
  readonly url: string;
  /** The backend port of every connection relayed so far, in order. */
  readonly routed: number[];
  close(): Promise<void>;
}

const proxies = new Set<FailoverProxy>();

async function failoverProxy(backends: readonly number[]): Promise<FailoverProxy> {
  const sockets = new Set<Socket>();
  const routed: number[] = [];
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };
  const server = createServer((client) => {
    track(client);
    client.on('error', () => client.destroy());
    const attempt = (index: number) => {
      const port = backends[index];
      if (port === undefined || client.destroyed) return void client.destroy();
      const upstream = tcpConnect(port, '127.0.0.1');
      track(upstream);
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        routed.push(port);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      upstream.on('error', () => {
        if (connected) upstream.destroy();
        else attempt(index + 1);
      });
      upstream.on('close', () => {
        if (connected) client.destroy();
      });
      client.on('close', () => upstream.destroy());
    };
    attempt(0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const proxy: FailoverProxy = {
    url: `ws://127.0.0.1:${port}`,
    routed,
    close: async () => {
      proxies.delete(proxy);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  proxies.add(proxy);
  return proxy;
}

// ---------------------------------------------------------------------------------------------
// Chat members

const clients = new Set<WsgateClient>();

/** A chat member through the SDK, recording every message id its UI is given (live and history). */
interface Member {
  readonly name: string;
  readonly client: WsgateClient;
  /** Every message id handed to the application, in order; the SDK deduplicates by id. */
  readonly ids: number[];
  /** How many times the socket dropped. */
  readonly drops: { code: number; at: number }[];
}

function member(name: string, url: string, token: string): Member {
  const client = new WsgateClient({
    url: `${wsBase(url)}/chat`,
    WebSocket,
    protocol: 'chat',
    getToken: async () => token,
    backoff: { baseMs: 50, maxMs: 500 },
  });
  clients.add(client);
  const ids: number[] = [];
  const drops: { code: number; at: number }[] = [];
  client.on('message', (m) => ids.push(m.id));
  client.on('joined', (f) => ids.push(...f.history.map((m) => m.id)));
  client.on('closed', (e) => drops.push({ code: e.code, at: performance.now() }));
  return { name, client, ids, drops };
}

/** Resolves with the next `event` whose payload passes `match`; fails after 5,000 ms by default. */
const next = eventWaiter(5_000);

/** Joins `room` with every member and waits until each is in it. */
async function joinAll(room: string, members: readonly Member[]): Promise<void> {
  await Promise.all(
    members.map((m) => {
      const joined = next(m.client, 'joined', (f) => f.room === room);
      m.client.join(room);
      m.client.connect();
      return joined;
    }),
  );
}

function occurrences(ids: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/**
 * Waits until every member's UI has every acked id, then checks that each was given exactly once
 * and that no id at all was given twice.
 */
async function assertDeliveredOnce(
  members: readonly Member[],
  acked: ReadonlySet<number>,
  timeoutMs = 10_000,
): Promise<void> {
  const missing = (m: Member) => {
    const seen = new Set(m.ids);
    return [...acked].filter((id) => !seen.has(id));
  };
  try {
    await waitFor(
      () => members.every((m) => missing(m).length === 0),
      'every acked id delivered',
      timeoutMs,
    );
  } catch {
    const report = members.map((m) => `${m.name} misses ${JSON.stringify(missing(m))}`);
    assert.fail(`acked messages not delivered to every member: ${report.join('; ')}`);
  }
  // A marker from every member, sent after all of the above: a late duplicate that crossed the
  // bus before the markers has arrived once every member holds every marker.
  const markers = await Promise.all(
    members.map((m) => m.client.send(m.client.rooms[0]!, `${m.name} marker`)),
  );
  await waitFor(
    () => members.every((m) => markers.every((id) => m.ids.includes(id))),
    'every marker delivered',
    timeoutMs,
  );
  for (const m of members) {
    const duplicates = [...occurrences(m.ids)].filter(([, n]) => n > 1);
    assert.deepEqual(duplicates, [], `${m.name} was given these ids more than once`);
    assert.deepEqual(missing(m), [], `${m.name} misses acked ids`);
  }
}

// ---------------------------------------------------------------------------------------------
// Raw sockets (the wire itself, without the SDK's deduplication)

interface RawChat {
  readonly ws: WebSocket;
  readonly frames: ServerFrame[];
  readonly closed: Promise<{ code: number; at: number }>;
  send(frame: object): void;
  next(match: (f: ServerFrame) => boolean, what: string): Promise<ServerFrame>;
}

const raws = new Set<WebSocket>();

async function rawChat(node: NodeProcess, token: string): Promise<RawChat> {
  const ws = new WebSocket(`${wsBase(node.url)}/chat`, {
    headers: { authorization: `Bearer ${token}` },
  });
  raws.add(ws);
  const frames: ServerFrame[] = [];
  ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString('utf8')) as ServerFrame));
  const closed = new Promise<{ code: number; at: number }>((resolve) =>
    ws.once('close', (code) => resolve({ code, at: performance.now() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const chat: RawChat = {
    ws,
    frames,
    closed,
    send: (frame) => ws.send(JSON.stringify(frame)),
    next: async (match, what) => {
      await waitFor(() => frames.some(match), `${what}; got ${JSON.stringify(frames)}`, 5_000);
      return frames.find(match)!;
    },
  };
  await chat.next((f) => f.type === 'welcome', 'welcome');
  return chat;
}

// ---------------------------------------------------------------------------------------------
// A Redis server of the test's own, to restart

interface OwnRedis {
  readonly url: string;
  /** Starts `redis-server` (again) on the same port and waits until `redis-cli ping` answers. */
  start(): Promise<void>;
  /** `redis-cli shutdown nosave`, then waits for the process to exit. */
  shutdown(): Promise<void>;
  running(): boolean;
  /** The current redis-server process, to kill in `after` if a test left it running. */
  child(): ChildProcess | undefined;
}

let ownRedis: OwnRedis | undefined;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

function redisCli(port: number, ...args: string[]) {
  return spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    encoding: 'utf8',
    timeout: 5_000,
  });
}

async function makeOwnRedis(): Promise<OwnRedis> {
  const port = await freePort();
  const dir = tempDir('redis');
  const log = join(dir, 'redis.log');
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  const running = () => child !== undefined && alive(child);
  ownRedis = {
    url: `redis://127.0.0.1:${port}`,
    running,
    child: () => child,
    start: async () => {
      // .ci/run's flags, in the foreground so that this file owns the process.
      const started = spawn(
        'redis-server',
        ['--daemonize', 'no', '--bind', '127.0.0.1', '-::1', '--port', String(port)].concat([
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          dir,
          '--logfile',
          log,
        ]),
        { stdio: 'ignore' },
      );
      child = started;
      exited = new Promise((resolve) => started.once('exit', resolve));
      await waitFor(
        () => !alive(started) || redisCli(port, 'ping').stdout.trim() === 'PONG',
        'redis-cli ping answers',
      );
      assert.ok(alive(started), `redis-server exited at once; see ${log}`);
    },
    shutdown: async () => {
      const res = redisCli(port, 'shutdown', 'nosave');
      assert.ok(res.status === 0 || !running(), `redis-cli shutdown failed: ${res.stderr}`);
      await exited;
    },
  };
  await ownRedis.start();
  return ownRedis;
}

async function readyz(node: NodeProcess): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${node.url}/readyz`);
  return { status: res.status, body: await res.json() };
}

/** Polls /readyz until it answers `status` with these checks; returns the ms it took. */
async function pollReadyz(
  node: NodeProcess,
  status: number,
  checks: Record<string, string>,
  timeoutMs = 10_000,
): Promise<number> {
  const started = performance.now();
  let last: unknown;
  while (performance.now() - started < timeoutMs) {
    const answer = await readyz(node);
    last = answer;
    const body = answer.body as { checks?: Record<string, string> };
    if (
      answer.status === status &&
      Object.entries(checks).every(([name, state]) => body.checks?.[name] === state)
    ) {
      return performance.now() - started;
    }
    await sleep(50);
  }
  assert.fail(
    `node ${node.name}: /readyz never answered ${status} ${JSON.stringify(checks)}; last ${JSON.stringify(last)}`,
  );
}

// ---------------------------------------------------------------------------------------------

describe('cluster of real wsgate processes on PostgreSQL and Redis', { skip }, () => {
  let admin: pg.Pool;

  before(async () => {
    ensureBuilt();
    admin = new pg.Pool({ connectionString: pgUrl, max: 2 });
    admin.on('error', () => undefined);
    await admin.query(`CREATE SCHEMA ${schema}`);
  });

  after(async () => {
    for (const client of clients) client.close();
    for (const ws of raws) ws.terminate();
    for (const proxy of [...proxies]) await proxy.close();
    for (const node of [...nodes]) {
      if (alive(node.child)) node.child.kill('SIGKILL');
      await node.exit;
    }
    const own = ownRedis?.child();
    if (own && alive(own)) {
      own.kill('SIGKILL');
      await new Promise((resolve) => own.once('exit', resolve));
    }
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
    // Pub/sub leaves no keys today, but anything a node stored under this run's prefix goes too.
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    try {
      const keys: string[] = [];
      for await (const batch of redis.scanStream({ match: `${redisPrefix}*`, count: 500 })) {
        keys.push(...(batch as string[]));
      }
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('starts three nodes with no --issuer on one database: tokens from each node and from the CLI verify on every node', async () => {
    const three = await Promise.all([startNode('A'), startNode('B'), startNode('C')]);
    try {
      const issuers = await Promise.all(
        three.map(async (node) => {
          const res = await fetch(`${node.url}/.well-known/oauth-authorization-server`);
          return ((await res.json()) as { issuer: string }).issuer;
        }),
      );
      assert.equal(new Set(issuers).size, 1, `one issuer for the deployment: ${issuers.join(' ')}`);
      const cli = await wsgate([
        'token',
        'issue',
        'johndoe',
        '--database',
        database,
        '--data-dir',
        tempDir('cli'),
      ]);
      assert.equal(cli.code, 0, cli.stderr);
      const tokens = [
        ...(await Promise.all(three.map((node) => accessToken(node, 'johndoe', 'secret')))),
        cli.stdout.trim(),
      ];
      for (const node of three) {
        for (const token of tokens) {
          const res = await fetch(`${node.url}/ws-ticket`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}` },
          });
          assert.equal(res.status, 200, `node ${node.name} accepts every node's token`);
        }
      }
    } finally {
      await Promise.all(three.map(stopNode));
    }
  });

  it('lets johndoe on node A and janedoe on node B chat both ways, each seeing every message once', async () => {
    const [a, b] = await startPair();
    try {
      const john = await rawChat(a, await accessToken(a, 'johndoe', 'secret'));
      // A token from node A works on node B: one database, one signing key, one issuer.
      const jane = await rawChat(b, await accessToken(a, 'janedoe', 'secret2'));
      const room = freshRoom();
      john.send({ type: 'join', room });
      await john.next((f) => f.type === 'joined' && f.room === room, 'john joined');
      jane.send({ type: 'join', room });
      await jane.next((f) => f.type === 'joined' && f.room === room, 'jane joined');

      john.send({ type: 'send', room, text: 'hello from A', id: 'j1' });
      const fromA = await john.next((f) => f.type === 'ack' && f.id === 'j1', 'ack of j1');
      assert.ok(fromA.type === 'ack');
      await jane.next((f) => f.type === 'message' && f.id === fromA.msgId, 'A → B');

      jane.send({ type: 'send', room, text: 'hello from B', id: 'n1' });
      const fromB = await jane.next((f) => f.type === 'ack' && f.id === 'n1', 'ack of n1');
      assert.ok(fromB.type === 'ack');
      await john.next((f) => f.type === 'message' && f.id === fromB.msgId, 'B → A');

      // Each node's marker follows its messages over the bus: once both markers are in, a
      // duplicate published before them has arrived too.
      john.send({ type: 'send', room, text: 'marker', id: 'j2' });
      jane.send({ type: 'send', room, text: 'marker', id: 'n2' });
      await waitFor(
        () =>
          [john, jane].every(
            (socket) =>
              socket.frames.filter((f) => f.type === 'message' && f.text === 'marker').length === 2,
          ),
        'both markers delivered to both',
      );
      const expected = [
        { type: 'message', room, id: fromA.msgId, user: 'johndoe', text: 'hello from A' },
        { type: 'message', room, id: fromB.msgId, user: 'janedoe', text: 'hello from B' },
      ];
      for (const [who, socket] of [
        ['johndoe', john],
        ['janedoe', jane],
      ] as const) {
        const messages = socket.frames
          .filter((f) => f.type === 'message' && f.text !== 'marker')
          .map((f) => (f.type === 'message' ? { ...f, ts: undefined } : f));
        assert.deepEqual(
          messages,
          expected.map((m) => ({ ...m, ts: undefined })),
          `${who} sees each message exactly once, on the wire`,
        );
      }
    } finally {
      await Promise.all([stopNode(a), stopNode(b)]);
    }
  });

  it('closes johndoe’s socket on node B with 4410 within 1 s of a logout on node A', async (t) => {
    const [a, b] = await startPair();
    try {
      const token = await accessToken(a, 'johndoe', 'secret');
      const onB = await rawChat(b, token);
      const bystander = await rawChat(b, await accessToken(b, 'janedoe', 'secret2'));

      const started = performance.now();
      const res = await fetch(`${a.url}/logout`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      const answered = performance.now();
      assert.equal(res.status, 204);
      const close = await Promise.race([
        onB.closed,
        sleep(3_000).then(() => assert.fail('the socket on node B was not closed within 3 s')),
      ]);
      const fromRequest = close.at - started;
      t.diagnostic(
        `logout on A → 4410 on B: ${fromRequest.toFixed(1)} ms from the request, ` +
          `${(close.at - answered).toFixed(1)} ms relative to its 204 arriving`,
      );
      assert.equal(close.code, 4410);
      assert.ok(fromRequest < 1_000, `closed after ${fromRequest.toFixed(1)} ms`);
      assert.equal(bystander.ws.readyState, WebSocket.OPEN, 'janedoe’s session is untouched');
    } finally {
      await Promise.all([stopNode(a), stopNode(b)]);
    }
  });

  it('moves the clients of a node killed mid-conversation to the other node with every acked message delivered exactly once to every member', async (t) => {
    const [a, b] = await startPair();
    const proxy = await failoverProxy([a.port, b.port]);
    try {
      const room = freshRoom();
      const john = member('johndoe', proxy.url, await accessToken(a, 'johndoe', 'secret'));
      const tester = member('test', proxy.url, await accessToken(a, 'test', 'test'));
      const jane = member('janedoe', b.url, await accessToken(b, 'janedoe', 'secret2'));
      const members = [john, tester, jane];
      await joinAll(room, members);
      assert.deepEqual(proxy.routed, [a.port, a.port], 'both proxied clients start on node A');

      // Everyone talks, one message every 20 ms each, until told to stop.
      const acked = new Set<number>();
      const ackedBy = new Map<string, number>();
      let failed = 0;
      let talking = true;
      const talk = async (m: Member) => {
        for (let n = 1; talking; n++) {
          try {
            acked.add(await m.client.send(room, `${m.name} #${n}`));
            ackedBy.set(m.name, (ackedBy.get(m.name) ?? 0) + 1);
          } catch {
            failed += 1; // not acked: the sender knows it may not have gone through
          }
          await sleep(20);
        }
      };
      const conversation = Promise.all(members.map(talk));

      await waitFor(
        () => (ackedBy.get('johndoe') ?? 0) >= 10 && (ackedBy.get('test') ?? 0) >= 10,
        'a conversation under way',
      );
      const ackedBeforeKill = new Set(acked);
      const killedAt = performance.now();
      a.child.kill('SIGKILL');
      assert.equal((await a.exit).signal, 'SIGKILL');

      // The proxied clients drop, reconnect through the proxy (A now refuses), land on B, and
      // rejoin the room with `since`.
      await waitFor(
        () =>
          [john, tester].every(
            (m) => m.drops.some((d) => d.at >= killedAt) && m.client.state === 'connected',
          ),
        'both clients of node A connected again',
        10_000,
      );
      const failover = performance.now() - killedAt;
      assert.ok(
        proxy.routed.slice(2).length >= 2 && proxy.routed.slice(2).every((p) => p === b.port),
        `reconnections went to node B: ${JSON.stringify(proxy.routed)}`,
      );
      const ackedAtRecovery = acked.size;
      await waitFor(() => acked.size >= ackedAtRecovery + 15, 'the conversation goes on on node B');
      talking = false;
      await conversation;

      t.diagnostic(
        `SIGKILL of node A: clients back on node B after ${failover.toFixed(0)} ms; ` +
          `${ackedBeforeKill.size} messages acked before the kill, ${acked.size} in all, ${failed} sends not acked`,
      );
      assert.ok(ackedBeforeKill.size >= 20);
      // Acked before the kill, and everything acked since: each exactly once for every member.
      await assertDeliveredOnce(members, acked);
      for (const m of members) {
        const seen = new Set(m.ids);
        assert.ok(
          [...ackedBeforeKill].every((id) => seen.has(id)),
          `${m.name} has every message acked before the kill`,
        );
      }
    } finally {
      await proxy.close();
      await Promise.all([stopNode(a), stopNode(b)]);
    }
  });

  it(
    'survives a Redis restart: /readyz says 503 while Redis is down and 200 after, messages cross nodes again, and those acked during the outage reach every member once by `since` replay',
    { skip: restartSkip },
    async (t) => {
      const redis = await makeOwnRedis();
      const [a, b] = await startPair(redis.url);
      try {
        const room = freshRoom();
        const john = member('johndoe', a.url, await accessToken(a, 'johndoe', 'secret'));
        const jane = member('janedoe', b.url, await accessToken(b, 'janedoe', 'secret2'));
        const members = [john, jane];
        await joinAll(room, members);
        const acked = new Set<number>();
        const say = async (m: Member, text: string) => {
          const id = await m.client.send(room, text);
          acked.add(id);
          return id;
        };
        const crossed = (id: number) => members.every((m) => m.ids.includes(id));

        const before = [await say(john, 'before, from A'), await say(jane, 'before, from B')];
        await waitFor(() => before.every(crossed), 'messages cross before the outage');

        const outage: number[] = [];
        let downAfter: number;
        const downAt = performance.now();
        try {
          await redis.shutdown();
          downAfter = Math.max(
            ...(await Promise.all(
              [a, b].map((n) => pollReadyz(n, 503, { redis: 'down', database: 'ok' })),
            )),
          );
          // Chat still works on each node: messages are stored in PostgreSQL and acked.
          for (let i = 1; i <= 3; i++) {
            outage.push(await say(john, `during the outage, from A #${i}`));
            outage.push(await say(jane, `during the outage, from B #${i}`));
          }
          // A restart takes a while; ioredis gives up on queued commands after two retries.
          await sleep(Math.max(0, 1_000 - (performance.now() - downAt)));
        } finally {
          if (!redis.running()) await redis.start();
        }
        const restartedAt = performance.now();
        const readyAgain = Math.max(
          ...(await Promise.all(
            [a, b].map((n) => pollReadyz(n, 200, { redis: 'ok', database: 'ok' })),
          )),
        );

        const { rows } = await admin.query<{ id: string }>(
          `SELECT id FROM ${schema}.messages WHERE room = $1 AND id = ANY($2::bigint[])`,
          [room, outage],
        );
        assert.deepEqual(
          rows.map((r) => Number(r.id)).sort((x, y) => x - y),
          [...outage].sort((x, y) => x - y),
          'every message acked during the outage is in the database',
        );
        // ioredis reconnected and resubscribed: what is said now crosses nodes live.
        const afterIds = [await say(john, 'after, from A'), await say(jane, 'after, from B')];
        await waitFor(
          () => afterIds.every(crossed),
          'messages cross nodes again after the restart',
        );
        assert.ok(
          members.every((m) => m.drops.length === 0),
          'the chat sockets stayed open through the outage',
        );

        const liveDuringOutage = outage.filter(crossed).length;
        const gaps = members.map(
          (m) =>
            `${m.name} lacks ${JSON.stringify(outage.filter((id) => !m.ids.includes(id)))} ` +
            `and rejoins with since=${m.client.lastMessageId(room)}`,
        );

        // A rejoin (here forced by reconnecting each client) replays what the bus lost with `since`.
        await Promise.all(
          members.map((m) => {
            const rejoined = next(m.client, 'joined', (f) => f.room === room);
            m.client.close();
            m.client.connect();
            return rejoined;
          }),
        );
        t.diagnostic(
          `Redis restart: /readyz 503 on both nodes ${downAfter.toFixed(0)} ms after shutdown ` +
            `(outage ${(restartedAt - downAt).toFixed(0)} ms), 200 again ${readyAgain.toFixed(0)} ms after restart; ` +
            `${liveDuringOutage}/${outage.length} outage messages reached every member without a rejoin; ` +
            `before the rejoin ${gaps.join(', ')}`,
        );
        await assertDeliveredOnce(members, acked);
      } finally {
        await Promise.all([stopNode(a), stopNode(b)]);
        if (redis.running()) await redis.shutdown();
      }
    },
  );

  it('closes a node’s sockets with 1001 on SIGTERM, exits 0, and the SDK client resumes on the other node', async (t) => {
    const [a, b] = await startPair();
    const proxy = await failoverProxy([a.port, b.port]);
    try {
      const room = freshRoom();
      const john = member('johndoe', proxy.url, await accessToken(a, 'johndoe', 'secret'));
      const jane = member('janedoe', b.url, await accessToken(b, 'janedoe', 'secret2'));
      const members = [john, jane];
      await joinAll(room, members);
      assert.deepEqual(proxy.routed, [a.port]);
      const acked = new Set<number>([await john.client.send(room, 'before the drain')]);

      const dropped = next(john.client, 'closed');
      const sentAt = performance.now();
      a.child.kill('SIGTERM');
      const close = await dropped;
      const closedAfter = performance.now() - sentAt;
      assert.equal(close.code, 1001);
      assert.equal(close.willReconnect, true);
      const exit = await a.exit;
      const exitedAfter = performance.now() - sentAt;
      assert.deepEqual(exit, { code: 0, signal: null }, a.stderr());
      assert.ok(a.logs.some((line) => line.includes('"shutting down"')));

      await waitFor(
        () => john.client.state === 'connected' && proxy.routed.includes(b.port),
        'johndoe connected to node B',
        10_000,
      );
      const resumedAfter = performance.now() - sentAt;
      t.diagnostic(
        `SIGTERM: 1001 after ${closedAfter.toFixed(0)} ms, ` +
          `exit 0 after ${exitedAfter.toFixed(0)} ms; client resumed on node B after ${resumedAfter.toFixed(0)} ms`,
      );
      acked.add(await john.client.send(room, 'after the drain, from B'));
      acked.add(await jane.client.send(room, 'hello again'));
      await assertDeliveredOnce(members, acked);
    } finally {
      await proxy.close();
      await Promise.all([stopNode(a), stopNode(b)]);
    }
  });
});
