import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import WebSocket from 'ws';
import { ensureBuilt, startServeProcess, type ServeProcess } from './support/cli.js';
import { passwordGrant } from './support/server.js';
import {
  postgresReachable,
  postgresUrl,
  redisReachable,
  redisUrl,
  unreachable,
} from './support/services.js';
import { startUpstream, type Upstream } from './support/upstream.js';
import { connect, wsUrl } from './support/ws.js';

/**
 * DESIGN §9 with real processes, as an operator runs them: `wsgate serve --proxy` in front of a
 * `ws` backend that has no auth code, as two cluster nodes (PostgreSQL and Redis between them)
 * and as `--workers 2`. A logout on any node closes the proxied socket on every node within a
 * second, and each node's `/metrics` counts what it proxied.
 */

async function whyUnavailable(): Promise<string | false> {
  if (!(await postgresReachable())) return unreachable('PostgreSQL', postgresUrl);
  if (!(await redisReachable(redisUrl))) return unreachable('Redis', redisUrl);
  return false;
}

const run = randomBytes(6).toString('hex');
const schema = `wsgate_test_proxy_${run}`;
const database = (() => {
  const address = new URL(postgresUrl);
  address.searchParams.set('options', `-c search_path=${schema}`);
  return address.toString();
})();

const dirs: string[] = [];
const servers = new Set<ServeProcess>();

async function serve(name: string, args: readonly string[]): Promise<ServeProcess> {
  const dir = mkdtempSync(join(tmpdir(), `wsgate-proxy-${name}-`));
  dirs.push(dir);
  const base = ['--demo', '--port', '0', '--data-dir', dir, '--log-format', 'json'];
  const server = await startServeProcess([...base, ...args], name);
  servers.add(server);
  return server;
}

/** Stops every server this file started (by its own process handle) and removes their dirs. */
async function stopAll(): Promise<void> {
  for (const server of servers) {
    server.child.kill('SIGKILL');
    await server.exit;
  }
  servers.clear();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
after(stopAll);

/** A proxied socket's client end: its close, once it comes. */
async function open(server: ServeProcess, token: string) {
  const ws = new WebSocket(wsUrl(server, '/app'), {
    headers: { authorization: `Bearer ${token}` },
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('close', (code) => reject(new Error(`closed with ${code} before opening`)));
  });
  return { ws, closed };
}

/** The value of the `/metrics` sample `name` (with its labels), 0 when absent. */
async function metric(server: ServeProcess, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

/** Sends POST /logout for `token` to `server`; resolves with the time it was sent. */
async function logout(server: ServeProcess, token: string): Promise<number> {
  const sent = performance.now();
  const res = await fetch(`${server.url}/logout`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 204);
  return sent;
}

describe('proxy mode with real processes', () => {
  let upstream: Upstream;
  let skipped: string | false = false;
  let admin: pg.Client | undefined;

  before(async () => {
    skipped = process.env.CI === 'true' ? false : await whyUnavailable();
    if (skipped) return;
    ensureBuilt();
    upstream = await startUpstream({ autoPong: true });
    admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
  });
  after(async () => {
    await stopAll();
    await upstream?.close();
    await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin?.end();
  });

  it('closes a proxied socket on node B within a second of a logout on node A, and counts it in /metrics', async (t) => {
    if (skipped) return t.skip(`skipped: ${skipped}`);
    const cluster = [
      '--database',
      database,
      '--redis',
      redisUrl,
      '--redis-prefix',
      `wsgate-test-${run}:`,
    ];
    const proxy = ['--proxy', `/app=${upstream.url}/ws`, '--proxy', '/down=ws://127.0.0.1:1/ws'];
    const a = await serve('node-a', [...cluster, ...proxy]);
    const b = await serve('node-b', [...cluster, ...proxy]);
    const { access_token } = await passwordGrant(a);

    const n = upstream.connections.length + 1;
    const { ws, closed } = await open(b, access_token);
    const far = await upstream.connection(n);
    ws.send('hello');
    await waitFor(
      async () => (await metric(b, 'wsgate_proxy_frames_total{direction="down"}')) >= 1,
      'the echo',
    );
    assert.equal(await metric(b, 'wsgate_proxied_sockets_open'), 1);
    assert.equal(await metric(b, 'wsgate_proxy_frames_total{direction="up"}'), 1);
    assert.equal(await metric(b, 'wsgate_proxy_bytes_total{direction="up"}'), 5);
    assert.equal(await metric(b, 'wsgate_upstream_connect_duration_seconds_count'), 1);
    const down = await connect(wsUrl(b, '/down'), {
      headers: { authorization: `Bearer ${access_token}` },
    });
    assert.equal(down.kind === 'http' && down.status, 502);
    assert.equal(await metric(b, 'wsgate_upstream_failures_total{reason="unreachable"}'), 1);

    const sent = await logout(a, access_token);
    assert.equal(await closed, 4410);
    const ms = performance.now() - sent;
    t.diagnostic(`logout on node A to 4410 on node B: ${ms.toFixed(1)} ms`);
    assert.ok(ms < 1000, `closed ${ms.toFixed(0)} ms after the logout`);
    assert.deepEqual(await far.closed, { code: 1008, reason: 'revoked' });
    await waitFor(async () => (await metric(b, 'wsgate_proxied_sockets_open')) === 0, 'the gauge');
  });

  it('closes the proxied sockets on both workers of --workers 2 within a second of a logout', async (t) => {
    if (skipped) return t.skip(`skipped: ${skipped}`);
    const server = await serve('workers', ['--workers', '2', '--proxy', `/app=${upstream.url}/ws`]);
    const { access_token } = await passwordGrant(server);
    // The primary deals connections to the workers in turn: two sockets, one on each.
    const sockets = [await open(server, access_token), await open(server, access_token)];
    assert.equal(await metric(server, 'wsgate_proxied_sockets_open'), 2);
    const sent = await logout(server, access_token);
    assert.deepEqual(await Promise.all(sockets.map((s) => s.closed)), [4410, 4410]);
    const ms = performance.now() - sent;
    t.diagnostic(`logout to the later 4410 across workers: ${ms.toFixed(1)} ms`);
    assert.ok(ms < 1000, `closed ${ms.toFixed(0)} ms after the logout`);
    await waitFor(
      async () => (await metric(server, 'wsgate_proxied_sockets_open')) === 0,
      'the gauge',
    );
  });
});

describe('proxy mode: wsgate serve stopped with SIGTERM', () => {
  it('closes an open proxied socket with 1001 on both sides, and exits 0', async () => {
    ensureBuilt();
    const upstream = await startUpstream({ autoPong: true });
    try {
      const server = await serve('drain', ['--proxy', `/app=${upstream.url}/ws`]);
      const { access_token } = await passwordGrant(server);
      const n = upstream.connections.length + 1;
      const { closed } = await open(server, access_token);
      const far = await upstream.connection(n);
      server.child.kill('SIGTERM');
      assert.equal(await closed, 1001);
      assert.deepEqual(await far.closed, { code: 1001, reason: 'Server is shutting down' });
      assert.equal((await server.exit).code, 0);
    } finally {
      await upstream.close();
    }
  });
});
