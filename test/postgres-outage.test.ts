import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import WebSocket from 'ws';
import type { ServerFrame } from '../src/client/index.js';
import { ensureBuilt, startServeProcess, type ServeProcess } from './support/cli.js';
import {
  postgresReachable,
  postgresUrl as pgUrl,
  skipUnlessReachable,
} from './support/services.js';

/**
 * A PostgreSQL restart under a running node, without touching the shared PostgreSQL that the other
 * test files use at the same time: the node reaches PostgreSQL through a TCP proxy of this file's
 * own, and "restarting" PostgreSQL means the proxy destroys every open connection and refuses new
 * ones for ~1.5 s — what a client sees when the server restarts.
 *
 * The node is a real `wsgate serve --demo` process (`bin/wsgate.js`), not `startTestServer`: the
 * first thing checked is that the process does not crash when its pooled connections die, and an
 * unhandled 'error' or rejection would take down the test runner itself if the node ran in it.
 * One node, no Redis: the fault under test is the database's, and a lone node needs no bus.
 */

const upstream = new URL(pgUrl);
const upstreamHost = upstream.hostname || '127.0.0.1';
const upstreamPort = Number(upstream.port || 5432);

// Outside CI a missing server skips this file; in CI it must run, and fail.
const skip = await skipUnlessReachable('PostgreSQL', pgUrl, postgresReachable);

const run = randomBytes(6).toString('hex');
const schema = `wsgate_test_outage_${run}`;
const room = `outage-${run}`;

/** Polls `condition` every 20 ms; fails with `what` after `timeoutMs`. */
async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------
// The proxy standing in for PostgreSQL

interface PgProxy {
  readonly port: number;
  /** Connections relayed so far. */
  readonly accepted: () => number;
  /** Connections refused while down. */
  readonly refused: () => number;
  /** Destroys every open connection and refuses new ones; returns how many were destroyed. */
  down(): number;
  /** Forwards new connections again. */
  up(): void;
  close(): Promise<void>;
}

async function pgProxy(): Promise<PgProxy> {
  const open = new Set<Socket>();
  let refusing = false;
  let accepted = 0;
  let refused = 0;
  const server = createServer((client) => {
    client.on('error', () => client.destroy());
    if (refusing) {
      refused += 1;
      return void client.destroy();
    }
    accepted += 1;
    const server = tcpConnect(upstreamPort, upstreamHost);
    open.add(client);
    client.on('close', () => {
      open.delete(client);
      server.destroy();
    });
    server.on('error', () => server.destroy());
    server.on('close', () => client.destroy());
    client.pipe(server);
    server.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    accepted: () => accepted,
    refused: () => refused,
    down: () => {
      refusing = true;
      const killed = open.size;
      for (const socket of open) socket.destroy();
      return killed;
    },
    up: () => {
      refusing = false;
    },
    close: async () => {
      refusing = true;
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The node

function startNode(database: string, dataDir: string): Promise<ServeProcess> {
  return startServeProcess([
    '--demo',
    '--port',
    '0',
    '--data-dir',
    dataDir,
    '--database',
    database,
  ]);
}

const alive = (node: ServeProcess) =>
  node.child.exitCode === null && node.child.signalCode === null;

function login(node: ServeProcess, username = 'johndoe', password = 'secret') {
  return fetch(`${node.url}/token`, {
    method: 'POST',
    body: new URLSearchParams({ username, password }),
    signal: AbortSignal.timeout(15_000),
  });
}

async function readyz(node: ServeProcess) {
  const res = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(15_000) });
  return { status: res.status, body: (await res.json()) as { checks?: Record<string, string> } };
}

// ---------------------------------------------------------------------------------------------
// Sockets

interface Socketed<F> {
  readonly ws: WebSocket;
  readonly frames: F[];
  readonly closes: number[];
  next(match: (f: F) => boolean, what: string, timeoutMs?: number): Promise<F>;
}

async function openSocket<F>(
  url: string,
  token: string,
  parse: (text: string) => F,
): Promise<Socketed<F>> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  const frames: F[] = [];
  const closes: number[] = [];
  ws.on('message', (data: Buffer) => frames.push(parse(data.toString('utf8'))));
  ws.on('close', (code) => closes.push(code));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    closes,
    next: async (match, what, timeoutMs = 5_000) => {
      let found: F | undefined;
      await waitFor(
        () => (found = frames.find(match)) !== undefined,
        `${what}; got ${JSON.stringify(frames)}`,
        timeoutMs,
      );
      return found as F;
    },
  };
}

const chatSocket = (node: ServeProcess, token: string) =>
  openSocket<ServerFrame>(
    `${node.url.replace(/^http/, 'ws')}/chat`,
    token,
    (text) => JSON.parse(text) as ServerFrame,
  );
const echoSocket = (node: ServeProcess, token: string) =>
  openSocket<string>(`${node.url.replace(/^http/, 'ws')}/secured-ws`, token, (text) => text);

/** Echoes `text` through /secured-ws and returns the round trip in ms. */
async function echo(socket: Socketed<string>, text: string): Promise<number> {
  const started = performance.now();
  socket.ws.send(text);
  await socket.next((f) => f === `You wrote: ${text}`, `echo of ${text}`);
  return performance.now() - started;
}

describe('a PostgreSQL restart under a running node', { skip }, () => {
  let admin: pg.Pool;
  let proxy: PgProxy;
  let node: ServeProcess | undefined;
  let dataDir: string;
  const sockets: WebSocket[] = [];

  before(async () => {
    ensureBuilt();
    admin = new pg.Pool({ connectionString: pgUrl, max: 1 });
    admin.on('error', () => undefined);
    await admin.query(`CREATE SCHEMA ${schema}`);
    proxy = await pgProxy();
    dataDir = mkdtempSync(join(tmpdir(), 'wsgate-pg-outage-'));
    const database = new URL(`postgres://127.0.0.1:${proxy.port}${upstream.pathname}`);
    database.username = upstream.username;
    database.password = upstream.password;
    database.searchParams.set('options', `-c search_path=${schema}`);
    node = await startNode(database.toString(), dataDir);
  });

  after(async () => {
    for (const ws of sockets) ws.terminate();
    if (node && alive(node)) {
      node.child.kill('SIGTERM');
      const timer = setTimeout(() => node?.child.kill('SIGKILL'), 5_000);
      await node.exit;
      clearTimeout(timer);
    }
    await proxy?.close();
    if (admin) {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('stays up, reports not ready, fails logins and sends cleanly, and recovers by itself', async (t) => {
    assert.ok(node);
    const n = node;

    // Liveness throughout: /healthz every 100 ms, from before the outage to after recovery.
    const health: { status: number | string; at: number }[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const at = performance.now();
        try {
          const res = await fetch(`${n.url}/healthz`, { signal: AbortSignal.timeout(2_000) });
          health.push({ status: res.status, at });
        } catch (err) {
          health.push({ status: (err as Error).message, at });
        }
        await sleep(100);
      }
    })();

    t.after(() => {
      watching = false;
    });

    // Before: ready, a login, an echo socket and two chat sockets in one room; a message goes through.
    assert.equal((await readyz(n)).status, 200, 'ready before the outage');
    const before = await login(n);
    assert.equal(before.status, 200, 'login before the outage');
    const { access_token: token } = (await before.json()) as { access_token: string };
    const secured = await echoSocket(n, token);
    const sender = await chatSocket(n, token);
    const listener = await chatSocket(n, token);
    sockets.push(secured.ws, sender.ws, listener.ws);
    await secured.next((f) => f === 'Welcome johndoe!', 'welcome on /secured-ws');
    for (const chat of [sender, listener]) {
      await chat.next((f) => f.type === 'welcome', 'chat welcome');
      chat.ws.send(JSON.stringify({ type: 'join', room }));
      await chat.next((f) => f.type === 'joined' && f.room === room, 'joined');
    }
    sender.ws.send(JSON.stringify({ type: 'send', room, text: 'before', id: 'b1' }));
    await sender.next((f) => f.type === 'ack' && f.id === 'b1', 'ack before the outage');

    // The restart: every pooled connection dies, and new ones are refused.
    const downAt = performance.now();
    const killed = proxy.down();
    assert.ok(killed >= 1, `the node had pooled connections to kill (${killed})`);

    // While down: readiness, a login, the gate's echo and a chat send, all at once.
    const [ready, loginResult, echoMs, sendError] = await Promise.all([
      readyz(n),
      (async () => {
        const started = performance.now();
        const res = await login(n);
        return { status: res.status, text: await res.text(), ms: performance.now() - started };
      })(),
      echo(secured, 'during'),
      (async () => {
        // Any error frame after this send; whether it names the send ('d1') is checked last.
        const seen = sender.frames.length;
        sender.ws.send(JSON.stringify({ type: 'send', room, text: 'during', id: 'd1' }));
        return sender.next(
          (f) => f.type === 'error' && sender.frames.indexOf(f) >= seen,
          'an error frame for the send while down',
        );
      })(),
    ]);
    const checksDoneMs = performance.now() - downAt;
    // Hold the outage for ~1.5 s in all, however fast the checks were.
    await sleep(Math.max(0, 1_500 - checksDoneMs));
    assert.ok(proxy.refused() >= 1, 'the node tried to reconnect while PostgreSQL was down');
    proxy.up();
    const outageMs = performance.now() - downAt;

    assert.equal(ready.status, 503, `readyz while down: ${JSON.stringify(ready.body)}`);
    assert.equal(ready.body.checks?.database, 'down');

    assert.ok(
      loginResult.status >= 500 && loginResult.status < 600,
      `login while down: ${loginResult.status} ${loginResult.text}`,
    );
    assert.ok(loginResult.ms < 10_000, `login while down answered in ${loginResult.ms} ms`);
    const body = JSON.parse(loginResult.text) as Record<string, unknown>;
    assert.equal(typeof body.error, 'string', `a JSON error body: ${loginResult.text}`);
    for (const leak of ['secret', 'stack', '    at ', 'postgres', String(proxy.port), 'ECONN']) {
      assert.ok(!loginResult.text.includes(leak), `login error body mentions ${leak}`);
    }

    assert.equal(sendError.type, 'error');
    assert.equal(sendError.type === 'error' && sendError.code, 'internal_error');
    assert.ok(
      !JSON.stringify(sendError).includes('postgres'),
      `error frame: ${JSON.stringify(sendError)}`,
    );
    assert.ok(
      !listener.frames.some((f) => f.type === 'message' && f.text === 'during'),
      'a send that failed was not delivered',
    );

    // Recovery, without restarting the node.
    const upAt = performance.now();
    await waitFor(async () => (await readyz(n)).status === 200, 'readyz 200 after the restart');
    const readyAfterMs = performance.now() - upAt;
    const after = await login(n);
    assert.equal(after.status, 200, `login after the restart: ${await after.clone().text()}`);
    await echo(secured, 'after');
    sender.ws.send(JSON.stringify({ type: 'send', room, text: 'after', id: 'a1' }));
    const ack = await sender.next((f) => f.type === 'ack' && f.id === 'a1', 'ack after recovery');
    const delivered = await listener.next(
      (f) => f.type === 'message' && f.text === 'after',
      'the message sent after recovery, on the other socket',
    );
    assert.ok(ack.type === 'ack' && delivered.type === 'message');
    assert.equal(delivered.id, ack.msgId, 'the acked message is the one delivered');

    watching = false;
    await watcher;

    // The node never went down, and no socket was closed.
    assert.ok(alive(n), `node exited; stderr: ${n.stderr()}`);
    const unhealthy = health.filter((h) => h.status !== 200);
    assert.deepEqual(unhealthy, [], 'every /healthz answered 200');
    assert.ok(
      health.some((h) => h.at > downAt && h.at < downAt + outageMs),
      '/healthz was polled during the outage',
    );
    for (const s of [secured, sender, listener]) {
      assert.deepEqual(s.closes, [], 'socket stayed open');
      assert.equal(s.ws.readyState, WebSocket.OPEN);
    }
    // Logs may carry the driver's errors, but never the password or a credential-bearing URL.
    const logs = n.logs.join('\n') + n.stderr();
    assert.ok(!logs.includes('password=secret') && !logs.includes('"secret"'), 'password logged');

    t.diagnostic(
      `killed ${killed} pooled connection(s); refused ${proxy.refused()} reconnects; ` +
        `outage ${Math.round(outageMs)} ms; checks while down took ${Math.round(checksDoneMs)} ms ` +
        `(login 5xx in ${Math.round(loginResult.ms)} ms, echo ${Math.round(echoMs)} ms); ` +
        `readyz 200 ${Math.round(readyAfterMs)} ms after the proxy came back; ` +
        `${health.length} /healthz polls, all 200`,
    );

    // docs/chat.md: an error frame's `id` is the `send`'s id when it had one — the SDK rejects the
    // pending `send()` by it. Checked last, so that everything above is known to hold either way.
    assert.equal(
      sendError.type === 'error' ? sendError.id : undefined,
      'd1',
      `the error frame names the failed send: ${JSON.stringify(sendError)}`,
    );
  });
});
