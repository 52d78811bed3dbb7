import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, passwordGrant, type TestServer } from './support/server.js';
import { connect, wsUrl } from './support/ws.js';
import { ensureBuilt, wsgate } from './support/cli.js';

/** The value of a sample line in Prometheus text, e.g. `wsgate_connections_open 2`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(server: TestServer): Promise<string> {
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return res.text();
}

describe('metrics and audit', () => {
  let server: TestServer;
  const secrets: string[] = [];

  before(async () => {
    ensureBuilt();
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  it('exposes connections, handshakes by transport and outcome, messages, kicks and latencies', async () => {
    const pair = await passwordGrant(server);
    secrets.push(pair.access_token, pair.refresh_token);
    const open = await connect(wsUrl(server, '/secured-ws'), {
      headers: { authorization: `Bearer ${pair.access_token}` },
      send: ['one', 'two'],
      messages: 3,
    });
    assert.equal(open.kind, 'open');
    const refused = await connect(wsUrl(server, '/secured-ws'), {
      headers: { authorization: 'Bearer not.a.token' },
    });
    assert.equal(refused.kind, 'http');

    let text = await scrape(server);
    assert.equal(sample(text, 'wsgate_connections_open'), 1);
    assert.equal(sample(text, 'wsgate_handshakes_total{transport="bearer",outcome="accepted"}'), 1);
    assert.equal(
      sample(text, 'wsgate_handshakes_total{transport="bearer",outcome="invalid_token"}'),
      1,
    );
    assert.equal(sample(text, 'wsgate_messages_in_total'), 2);
    assert.equal(sample(text, 'wsgate_messages_out_total'), 3); // the welcome and two echoes
    assert.equal(sample(text, 'wsgate_handshake_duration_seconds_count'), 1);
    assert.ok(sample(text, 'nodejs_eventloop_lag_seconds') !== undefined, 'event-loop lag');

    // A logout kicks the socket: a kick is counted and its latency observed.
    const closed = new Promise<number>((resolve) => {
      if (open.kind === 'open') open.socket.once('close', (code) => resolve(code));
    });
    await fetch(`${server.url}/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${pair.access_token}` },
    });
    assert.equal(await closed, 4410);
    text = await scrape(server);
    assert.equal(sample(text, 'wsgate_kicks_total{reason="session_revoked"}'), 1);
    assert.equal(sample(text, 'wsgate_kick_duration_seconds_count'), 1);
    assert.equal(sample(text, 'wsgate_connections_open'), 0);
    for (const secret of secrets) assert.ok(!text.includes(secret));
  });

  it('records refused handshakes and kicks in the audit trail, without secrets', async () => {
    const events = await server.runtime.storage.listAudit({ limit: 10_000 });
    const reject = events.find((e) => e.event === 'handshake.reject');
    assert.ok(reject, 'handshake.reject recorded');
    assert.equal(reject.ip, '127.0.0.1');
    assert.deepEqual(reject.detail, {
      code: 'invalid_token',
      path: '/secured-ws',
      transport: 'bearer',
      closeCode: null,
      status: 401,
    });
    const kick = events.find((e) => e.event === 'socket.kick');
    assert.deepEqual(kick?.detail, { reason: 'logout', sessions: 1, sockets: 1 });
    const all = JSON.stringify(events);
    for (const secret of secrets) assert.ok(!all.includes(secret));
  });

  it('lists the audit trail with `wsgate audit --since`', async () => {
    const run = await wsgate([
      'audit',
      '--since',
      '1h',
      '--json',
      '--limit',
      '1000',
      '--data-dir',
      server.dataDir,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const events = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string });
    const kinds = new Set(events.map((e) => e.event));
    for (const kind of ['login.success', 'handshake.reject', 'session.revoke', 'socket.kick']) {
      assert.ok(kinds.has(kind), `${kind} in ${[...kinds].join(', ')}`);
    }
    const table = await wsgate(['audit', '--since', '2h', '--data-dir', server.dataDir]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^TIME\s+EVENT\s+USER\s+SESSION\s+IP\s+DETAIL/);
    const bad = await wsgate(['audit', '--since', 'yesterday-ish', '--data-dir', server.dataDir]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--since/);
  });
});
