import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ensureBuilt, type ServeProcess } from './support/cli.js';
import {
  forget,
  lines,
  startWorkers as start,
  stopAllWorkers,
  stopWorkers as stop,
  tempDir,
  waitFor,
  workersOf,
  wsOf as ws,
} from './support/worker-processes.js';
import { connect, type Outcome } from './support/ws.js';
import { passwordGrant, postForm } from './support/server.js';
import { FixtureIssuer } from './support/issuer.js';

/**
 * DESIGN §11 with real processes: `wsgate serve --workers 2` as an operator starts it. The
 * primary hands each new connection to the workers in turn, so consecutive sockets land on
 * different workers; what a worker did is read from its log lines, which carry its id.
 */

/** Opens `count` sockets one after the other (so the primary deals them to both workers). */
async function openSockets(
  server: ServeProcess,
  token: string,
  count: number,
): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i++) {
    const outcome = await connect(ws(server, '/ws'), {
      headers: { authorization: `Bearer ${token}` },
      messages: 1,
    });
    assert.equal(
      outcome.kind,
      'open',
      `socket ${i}: ${JSON.stringify(outcome.kind === 'http' && outcome.body)}`,
    );
    if (outcome.kind === 'open') sockets.push(outcome.socket);
  }
  return sockets;
}

function pong(socket: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    socket.once('pong', () => resolve());
    socket.ping();
  });
}

function closed(socket: WebSocket): Promise<number> {
  if (socket.readyState === WebSocket.CLOSED) return Promise.resolve(-1);
  return new Promise((resolve) => socket.once('close', (code) => resolve(code)));
}

before(() => ensureBuilt());
after(() => stopAllWorkers());

describe('wsgate serve --workers 2', () => {
  let server: ServeProcess;
  before(async () => {
    server = await start(['--max-connections-per-user', '4']);
  });

  it('starts two workers on one port and says so once', () => {
    const started = lines(server).filter((l) => l.msg === 'worker listening');
    assert.equal(new Set(started.map((l) => l.pid)).size, 2);
    const listening = lines(server).filter((l) => l.msg?.startsWith('wsgate listening on'));
    assert.equal(listening.length, 1);
    assert.match(listening[0]?.msg ?? '', /with 2 workers$/);
  });

  it('closes with 4410 the sockets on both workers when a logout reaches one', async () => {
    const { access_token: token } = await passwordGrant(server, 'johndoe', 'secret');
    const sockets = await openSockets(server, token, 4);
    const codes = Promise.all(sockets.map(closed));
    const res = await fetch(`${server.url}/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 204);
    assert.deepEqual(await codes, [4410, 4410, 4410, 4410]);
    // Both workers kicked sockets, so one of them kicked for a logout the other received.
    await waitFor(() => workersOf(server, 'socket.kick').size === 2, 'a kick on each worker');
  });

  it('lets a ticket open one socket only, whichever worker it is tried on', async () => {
    const { access_token: token } = await passwordGrant(server, 'janedoe', 'secret2');
    const minted = await fetch(`${server.url}/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    const { ticket } = (await minted.json()) as { ticket: string };
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(await connect(ws(server, `/ws?token=${ticket}`), { messages: 1 }));
    }
    assert.deepEqual(
      outcomes.map((o) => (o.kind === 'http' ? o.status : 'open')),
      ['open', 401, 401, 401],
    );
    for (const o of outcomes) if (o.kind === 'open') o.socket.close();
    // Refused on both workers: one of them is not the worker that accepted it.
    await waitFor(
      () => workersOf(server, 'handshake.reject').size === 2,
      'refusals on both workers',
    );
  });

  it('counts a user’s sockets across workers against one limit', async () => {
    const { access_token: token } = await passwordGrant(server, 'test', 'test');
    const sockets = await openSockets(server, token, 4);
    for (let i = 0; i < 2; i++) {
      const refused = await connect(ws(server, '/ws'), {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(refused.kind === 'http' && refused.status, 429, `attempt ${i}`);
    }
    const first = sockets[0] as WebSocket;
    first.close();
    await closed(first);
    // The slot given back over IPC is free again, on either worker.
    const again = await waitFor(async () => {
      const outcome = await connect(ws(server, '/ws'), {
        headers: { authorization: `Bearer ${token}` },
        messages: 1,
      });
      return outcome.kind === 'open' ? outcome : undefined;
    }, 'a socket after one closed');
    again.socket.close();
    for (const socket of sockets) socket.close();
  });

  it('counts failed logins across workers against one limit', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      // A new connection each time, so the primary deals the attempts to both workers.
      const res = await postForm(
        `${server.url}/token`,
        { username: 'mallory', password: 'wrong' },
        { connection: 'close' },
      );
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [400, 400, 400, 400, 400, 429, 429]);
  });

  it('adds up every worker’s metrics at /metrics', async () => {
    const { access_token: token } = await passwordGrant(server, 'janedoe', 'secret2');
    const sockets = await openSockets(server, token, 3);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(text, /^wsgate_connections_open 3$/m);
    for (const socket of sockets) socket.close();
  });
});

describe('wsgate serve --workers 2: open connections per address, counted by the primary', () => {
  it('refuses the connection over the cap whichever worker it lands on', async () => {
    const server = await start(['--max-connections-per-address', '3']);
    // Over a connection that closes: an idle keep-alive connection would hold a place too.
    const grant = await postForm(
      `${server.url}/token`,
      { username: 'johndoe', password: 'secret' },
      { connection: 'close' },
    );
    const { access_token: token } = (await grant.json()) as { access_token: string };
    // Dealt to both workers in turn: neither holds three, so only a shared count refuses more.
    const sockets = await openSockets(server, token, 3);
    const refused: (number | string)[] = [];
    for (let i = 0; i < 2; i++) {
      const outcome = await connect(ws(server, '/ws'), {
        headers: { authorization: `Bearer ${token}` },
        messages: 1,
      });
      refused.push(outcome.kind === 'http' ? outcome.status : 'open');
      if (outcome.kind === 'open') outcome.socket.close();
    }
    assert.deepEqual(refused, [429, 429]);
    // A closed socket gives its place back, on whichever worker held it.
    const first = sockets.shift() as WebSocket;
    const gone = closed(first);
    first.close();
    await gone;
    await waitFor(async () => {
      const outcome = await connect(ws(server, '/ws'), {
        headers: { authorization: `Bearer ${token}` },
        messages: 1,
      });
      if (outcome.kind === 'open') sockets.push(outcome.socket);
      return outcome.kind === 'open';
    }, 'a place given back');
    for (const socket of sockets) socket.close();
    assert.equal((await stop(server)).code, 0);
  });
});

describe('wsgate serve --workers 2: workers that die, and stopping', () => {
  it('replaces a killed worker, gives back its sockets and keeps the others open', async () => {
    const server = await start(['--max-connections-per-user', '4']);
    const { access_token: token } = await passwordGrant(server, 'johndoe', 'secret');
    const sockets = await openSockets(server, token, 4);
    const pids = lines(server)
      .filter((l) => l.msg === 'worker listening')
      .map((l) => l.pid as number);
    const [victim] = pids as [number];
    const codes: number[] = [];
    for (const socket of sockets) socket.once('close', (code) => codes.push(code));
    process.kill(victim, 'SIGKILL');
    // Every other socket was on the killed worker: two drop…
    await waitFor(() => codes.length === 2, 'two sockets dropped');
    assert.deepEqual(codes, [1006, 1006]);
    // …and the other two still answer.
    const alive = sockets.filter((socket) => socket.readyState === WebSocket.OPEN);
    assert.equal(alive.length, 2);
    await Promise.all(alive.map((socket) => pong(socket)));
    await waitFor(
      () =>
        lines(server).filter((l) => l.msg === 'worker listening' && !pids.includes(l.pid ?? 0))
          .length === 1,
      'a new worker listening',
    );
    // The dead worker's two sockets no longer count against the limit of four.
    const more = await openSockets(server, token, 2);
    for (const socket of [...sockets, ...more]) socket.close();
    assert.equal((await stop(server)).code, 0);
  });

  it('drains the sockets of every worker with 1001 on SIGTERM and exits with 0', async () => {
    const server = await start();
    const { access_token: token } = await passwordGrant(server, 'johndoe', 'secret');
    const sockets = await openSockets(server, token, 4);
    const codes = Promise.all(sockets.map(closed));
    server.child.kill('SIGTERM');
    assert.deepEqual(await codes, [1001, 1001, 1001, 1001]);
    assert.deepEqual(await server.exit, { code: 0, signal: null });
    forget(server);
  });

  it('stops with a clear error when workers keep dying', async () => {
    const server = await start();
    const killed = new Set<number>();
    // Kill every worker as soon as it is started: a crash loop.
    while (server.child.exitCode === null) {
      for (const line of lines(server)) {
        const pid = line.msg === 'worker started' ? line.pid : undefined;
        if (pid === undefined || killed.has(pid)) continue;
        killed.add(pid);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await Promise.race([server.exit, sleep(20)]);
    }
    assert.equal((await server.exit).code, 1);
    assert.match(
      server.stderr(),
      /workers keep dying \(6 in 60 s, the last with SIGKILL\); stopping/,
    );
    assert.ok(killed.size >= 6, `${killed.size} killed`);
    forget(server);
  });

  it('stops with the worker’s error when a worker cannot start', async () => {
    const dir = tempDir();
    // A trusted issuer whose metadata names another issuer from its second answer on: the
    // primary's start reads the first, each worker a wrong one, and refuses to start.
    const issuer = await FixtureIssuer.start();
    issuer.override = () => {
      if (issuer.discoveryFetches >= 1) issuer.metadataIssuer = 'http://127.0.0.1:1/elsewhere';
      return false;
    };
    const run = await import('./support/cli.js')
      .then(({ wsgate }) =>
        wsgate([
          'serve',
          '--port',
          '0',
          '--data-dir',
          dir,
          '--workers',
          '2',
          '--trust',
          issuer.issuer,
        ]),
      )
      .finally(() => issuer.close());
    assert.equal(run.code, 2);
    assert.match(run.stderr, /elsewhere/);
    assert.match(run.stderr, /a worker failed to start \(exit code 2\)/);
  });
});
