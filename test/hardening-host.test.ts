/**
 * DNS rebinding and the Origin's scheme (issue 13, item 4), open sockets per client address
 * (item 12) and `--trust-proxy` on WebSocket handshakes, against real servers and sockets.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { passwordGrant, postForm, startTestServer, type TestServer } from './support/server.js';
import { openRaw } from './support/raw-socket.js';
import { connect, wsUrl, type Outcome } from './support/ws.js';
import { createGate, createVerifier, issueToken, keySetFromSecret } from '../src/index.js';
import { refusedHostsLogged } from '../src/runtime.js';

const rebinding = 'rebind.attacker.example';

/** An HTTP request with a `Host` of our choosing (fetch does not let a page set it either). */
function get(
  port: number,
  path: string,
  host: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method, headers: { ...headers, host } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A password grant over a connection that closes after it (no idle keep-alive left behind). */
async function grantClosing(server: TestServer): Promise<{ access_token: string }> {
  const res = await postForm(
    `${server.url}/token`,
    { username: 'johndoe', password: 'secret' },
    { connection: 'close' },
  );
  assert.equal(res.status, 200);
  return (await res.json()) as { access_token: string };
}

/** Polls `check` every 20 ms until it holds (at most 2 s): a closed socket's place comes back. */
async function waitUntil(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail('never held');
}

function refusedWith(outcome: Outcome, status: number, code: string): void {
  // A socket that opened after all must not keep the server from closing.
  if (outcome.kind === 'open') outcome.socket.terminate();
  assert.equal(outcome.kind, 'http', `expected ${status}, the socket opened`);
  if (outcome.kind !== 'http') return;
  assert.equal(outcome.status, status);
  assert.equal((outcome.body as { error: string }).error, code);
}

function opened(outcome: Outcome): void {
  assert.equal(
    outcome.kind,
    'open',
    outcome.kind === 'http' ? `refused ${outcome.status} ${JSON.stringify(outcome.body)}` : '',
  );
  if (outcome.kind === 'open') {
    assert.equal(outcome.close, null, `closed ${JSON.stringify(outcome.close)}`);
    outcome.socket.terminate();
  }
}

describe('DNS rebinding: the Host check', () => {
  let server: TestServer;
  let token: string;
  before(async () => {
    server = await startTestServer({ 'allowed-host': ['chat.internal', 'alt.internal:8443'] });
    token = (await passwordGrant(server)).access_token;
  });
  after(() => server.stop());

  it('answers 421 to HTTP requests whose Host is a rebinding name, and nothing else happens', async () => {
    for (const path of ['/', '/login', '/.well-known/jwks.json', '/docs', '/metrics']) {
      const res = await get(server.port, path, `${rebinding}:${server.port}`);
      assert.equal(res.status, 421, path);
      assert.equal((JSON.parse(res.body) as { error: string }).error, 'misdirected_request');
    }
    // The published demo passwords are no use through a rebinding name.
    const token = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/token',
          method: 'POST',
          headers: {
            host: `${rebinding}:${server.port}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
        },
        (res) => resolve(res.statusCode ?? 0),
      );
      req.on('error', reject);
      req.end('username=johndoe&password=secret');
    });
    assert.equal(token, 421);
    const logins = (await server.runtime.storage.listAudit({ limit: 1000 })).filter((e) =>
      e.event.startsWith('login.'),
    );
    assert.equal(logins.length, 1, 'only the before() login reached the login code');
  });

  it('refuses a WebSocket upgrade from a rebinding page, whose Origin matches its Host', async () => {
    const host = `${rebinding}:${server.port}`;
    for (const protocols of [[], ['wsgate.v1']]) {
      const outcome = await connect(wsUrl(server, '/secured-ws'), {
        protocols,
        headers: { host, origin: `http://${host}`, authorization: `Bearer ${token}` },
      });
      // v1 clients too: a misdirected request is never upgraded.
      refusedWith(outcome, 421, 'misdirected_request');
    }
  });

  it("answers loopback names, the issuer's host and --allowed-host", async () => {
    for (const host of [
      `127.0.0.1:${server.port}`,
      `localhost:${server.port}`,
      'wsgate.test',
      'chat.internal:9999',
      'alt.internal:8443',
    ]) {
      assert.equal((await get(server.port, '/.well-known/jwks.json', host)).status, 200, host);
      opened(
        await connect(wsUrl(server, '/secured-ws'), {
          headers: { host, authorization: `Bearer ${token}` },
          messages: 1,
        }),
      );
    }
    assert.equal((await get(server.port, '/', 'alt.internal:8444')).status, 421);
  });

  it('refuses two Host headers with 400, and reads the authority of an absolute-form target', async () => {
    const own = `127.0.0.1:${server.port}`;
    const exchange = async (head: string) => {
      const client = await openRaw(server.port);
      client.write(head);
      await client.waitForEnd();
      client.destroy();
      return client.received().toString('latin1');
    };
    // Node keeps the first Host; a proxy in front may have routed by the second.
    for (const [first, second] of [
      [own, `${rebinding}:${server.port}`],
      [`${rebinding}:${server.port}`, own],
    ]) {
      const http = await exchange(
        `GET /login HTTP/1.1\r\nhost: ${first}\r\nHost: ${second}\r\nconnection: close\r\n\r\n`,
      );
      assert.match(http, /^HTTP\/1\.1 400 [^]*More than one Host header/);
      const upgrade = await exchange(
        `GET /secured-ws HTTP/1.1\r\nhost: ${first}\r\nHost: ${second}\r\n` +
          'upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\n' +
          `sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nauthorization: Bearer ${token}\r\n\r\n`,
      );
      assert.match(upgrade, /^HTTP\/1\.1 400 [^]*More than one Host header/);
    }
    const absolute = (authority: string) =>
      exchange(
        `GET http://${authority}/login HTTP/1.1\r\nhost: ${own}\r\nconnection: close\r\n\r\n`,
      );
    assert.match(await absolute(`${rebinding}:${server.port}`), /^HTTP\/1\.1 421 /);
    assert.match(await absolute(own), /^HTTP\/1\.1 200 /);
  });

  it('leaves /healthz and /readyz to any Host (load balancers probe by address)', async () => {
    for (const path of ['/healthz', '/readyz'])
      assert.equal((await get(server.port, path, `${rebinding}:1`)).status, 200, path);
  });

  it('refuses a bad --allowed-host at start', async () => {
    const { loadConfig, ConfigError } = await import('../src/config.js');
    for (const bad of ['http://chat.example', 'chat.example:99999', 'a b', ''])
      assert.throws(() => loadConfig({ 'allowed-host': [bad] }), ConfigError, bad);
    assert.deepEqual(
      loadConfig({}, { WSGATE_ALLOWED_HOSTS: 'Chat.Example, [::1]:8443' }).allowedHosts,
      ['chat.example', '[::1]:8443'],
    );
  });
});

describe('a refused Host in the log: which name, what the node answers, how to allow it', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'allowed-host': ['chat.internal'] });
  });
  after(() => server.stop());

  const refusals = () =>
    server.logs.lines
      .map((line) => JSON.parse(line) as { level: number; msg: string; host?: string })
      .filter((e) => e.level === 40 && /Host/.test(e.msg));

  it('logs each refused name once, from HTTP requests and upgrades alike, with the names answered', async () => {
    const upgrade = {
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    };
    assert.equal((await get(server.port, '/', 'proxy.internal:8080')).status, 421);
    assert.equal((await get(server.port, '/ws', 'proxy.internal:8080', upgrade)).status, 421);
    assert.equal((await get(server.port, '/ws', 'other.internal', upgrade)).status, 421);
    const logged = refusals();
    assert.deepEqual(
      logged.map((e) => e.host),
      ['proxy.internal:8080', 'other.internal'],
    );
    const [first] = logged;
    assert.match(first?.msg ?? '', /^refused Host "proxy\.internal:8080" with 421/);
    assert.match(
      first?.msg ?? '',
      /answers wsgate\.test \(the issuer's host\), localhost and loopback addresses, --allowed-host chat\.internal\./,
    );
    assert.match(first?.msg ?? '', /add that name with --allowed-host/);
  });

  it(`logs at most ${refusedHostsLogged} names, then says it stops, so made-up names cost a few lines`, async () => {
    for (let i = 0; i < refusedHostsLogged + 5; i++)
      assert.equal((await get(server.port, '/', `made-up-${i}.example`)).status, 421);
    const logged = refusals();
    assert.equal(logged.length, refusedHostsLogged + 1);
    assert.equal(logged.filter((e) => e.host !== undefined).length, refusedHostsLogged);
    assert.match(logged.at(-1)?.msg ?? '', /no more are logged/);
  });
});

describe('a gate of the library with a Host policy, off loopback', () => {
  let http: Server;
  let port: number;
  let token: string;
  const keys = keySetFromSecret('a-test-secret-of-at-least-thirty-two-bytes');
  before(async () => {
    const gate = createGate({
      verify: createVerifier(keys, { issuer: 'https://feed.example', audience: 'feed' }),
      hosts: { issuer: 'https://feed.example', loopback: false },
      scheme: 'https',
    });
    gate.route('/live', { requirement: 'required' }, (ws) => ws.send('hello'));
    http = createServer((_req, res) => res.writeHead(404).end());
    http.on('upgrade', gate.handleUpgrade);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    port = (http.address() as AddressInfo).port;
    token = (
      await issueToken(keys, {
        type: 'access',
        subject: 'amy',
        sessionId: 's1',
        scope: '',
        ttl: 300,
        now: Date.now(),
        issuer: 'https://feed.example',
        audience: 'feed',
      })
    ).token;
  });
  after(() => new Promise<void>((resolve) => http.close(() => resolve())));

  it('answers only its issuer’s name: loopback names are refused too', async () => {
    const url = `ws://127.0.0.1:${port}/live`;
    const bearer = { authorization: `Bearer ${token}` };
    refusedWith(await connect(url, { headers: bearer }), 421, 'misdirected_request');
    opened(await connect(url, { headers: { ...bearer, host: 'feed.example' }, messages: 1 }));
  });

  it('compares the Origin with its https scheme: a page over http is another site', async () => {
    const url = `ws://127.0.0.1:${port}/live`;
    const headers = { authorization: `Bearer ${token}`, host: 'feed.example' };
    const http = await connect(url, { headers: { ...headers, origin: 'http://feed.example' } });
    refusedWith(http, 403, 'origin_not_allowed');
    opened(
      await connect(url, { headers: { ...headers, origin: 'https://feed.example' }, messages: 1 }),
    );
  });
});

describe('the Origin: scheme, host and port', () => {
  let server: TestServer;
  let trusting: TestServer;
  const tokens = new Map<TestServer, string>();
  before(async () => {
    server = await startTestServer();
    trusting = await startTestServer({ 'trust-proxy': ['127.0.0.1'] });
    for (const target of [server, trusting])
      tokens.set(target, (await passwordGrant(target)).access_token);
  });
  after(async () => {
    await server.stop();
    await trusting.stop();
  });

  const attempt = (target: TestServer, origin: string, extra: Record<string, string> = {}) =>
    connect(wsUrl(target, '/secured-ws'), {
      headers: { origin, authorization: `Bearer ${tokens.get(target) ?? ''}`, ...extra },
      messages: 1,
    });

  it('refuses an https Origin on a plain http server, and another port', async () => {
    refusedWith(
      await attempt(server, `https://127.0.0.1:${server.port}`),
      403,
      'origin_not_allowed',
    );
    refusedWith(
      await attempt(server, `http://127.0.0.1:${server.port + 1}`),
      403,
      'origin_not_allowed',
    );
    opened(await attempt(server, `http://127.0.0.1:${server.port}`));
  });

  it('takes the scheme from X-Forwarded-Proto of a --trust-proxy peer only', async () => {
    const origin = `https://127.0.0.1:${trusting.port}`;
    const forwarded = { 'x-forwarded-proto': 'https' };
    opened(await attempt(trusting, origin, forwarded));
    refusedWith(
      await attempt(server, `https://127.0.0.1:${server.port}`, forwarded),
      403,
      'origin_not_allowed',
    );
    refusedWith(
      await attempt(trusting, `http://127.0.0.1:${trusting.port}`, forwarded),
      403,
      'origin_not_allowed',
    );
  });
});

describe('open connections per client address', () => {
  let server: TestServer;
  let trusting: TestServer;
  let token: string;
  let trustingToken: string;
  before(async () => {
    server = await startTestServer({ 'max-connections-per-address': '3' });
    trusting = await startTestServer({
      'max-connections-per-address': '1',
      'trust-proxy': ['127.0.0.1'],
    });
    // Tokens over connections that close: an idle keep-alive connection counts as well.
    token = (await grantClosing(server)).access_token;
    trustingToken = (await grantClosing(trusting)).access_token;
  });
  after(async () => {
    await server.stop();
    await trusting.stop();
  });

  /** Opens a socket and waits for its welcome; the caller closes it. */
  async function open(target: TestServer, headers: Record<string, string> = {}) {
    const bearer = target === server ? token : trustingToken;
    const outcome = await connect(wsUrl(target, '/secured-ws'), {
      headers: { authorization: `Bearer ${bearer}`, ...headers },
      messages: 1,
    });
    assert.equal(outcome.kind, 'open', JSON.stringify(outcome.kind === 'http' && outcome.body));
    return outcome.socket;
  }

  function closed(ws: WebSocket): Promise<void> {
    return new Promise((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      ws.once('close', () => resolve());
      ws.close();
    });
  }

  it('answers 429 with Retry-After 60 beyond the cap, and 4429 to wsgate.v1 clients', async () => {
    // The cap counts sockets still owing their first message as much as authenticated ones.
    const waiting = new WebSocket(wsUrl(server, '/secured-ws'), ['wsgate.v1']);
    await new Promise((resolve) => waiting.once('open', resolve));
    const sockets = [await open(server), await open(server)];
    const refused = await connect(wsUrl(server, '/secured-ws'), {
      headers: { authorization: `Bearer ${token}` },
    });
    refusedWith(refused, 429, 'rate_limited');
    assert.equal(refused.kind === 'http' && refused.headers['retry-after'], '60');
    const v1 = await connect(wsUrl(server, '/secured-ws'), {
      protocols: ['wsgate.v1'],
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(v1.kind === 'open' && v1.close?.code, 4429);

    // A closed socket gives its place back.
    await closed(waiting);
    const again = await open(server);
    await Promise.all([...sockets, again].map(closed));
  });

  it('counts each forwarded client on its own behind a --trust-proxy peer', async () => {
    const first = await open(trusting, { 'x-forwarded-for': '203.0.113.1' });
    const second = await open(trusting, { 'x-forwarded-for': '203.0.113.2' });
    const same = await connect(wsUrl(trusting, '/secured-ws'), {
      headers: { authorization: `Bearer ${trustingToken}`, 'x-forwarded-for': '203.0.113.1' },
    });
    refusedWith(same, 429, 'rate_limited');
    await Promise.all([first, second].map(closed));
  });

  it('ignores X-Forwarded-For from a peer it does not trust', async () => {
    const one = await open(server, { 'x-forwarded-for': '203.0.113.1' });
    const two = await open(server, { 'x-forwarded-for': '203.0.113.2' });
    const three = await open(server, { 'x-forwarded-for': '203.0.113.3' });
    const four = await connect(wsUrl(server, '/secured-ws'), {
      headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': '203.0.113.4' },
    });
    refusedWith(four, 429, 'rate_limited');
    await Promise.all([one, two, three].map(closed));
  });

  it('reports refused handshakes with the forwarded client address', async () => {
    const refused = await connect(wsUrl(trusting, '/secured-ws'), {
      headers: { 'x-forwarded-for': '198.51.100.7' },
    });
    refusedWith(refused, 401, 'credential_missing');
    const rows = await trusting.runtime.storage.listAudit({ limit: 100 });
    assert.ok(
      rows.some((e) => e.event.startsWith('handshake') && e.ip === '198.51.100.7'),
      JSON.stringify(rows.map((e) => [e.event, e.ip])),
    );
  });

  it('counts plain HTTP connections too: idle keep-alive and silent ones stop at the cap', async () => {
    // Two keep-alive connections that made a request and one that sends nothing: the cap of 3.
    const idle = [await openRaw(server.port), await openRaw(server.port)];
    for (const client of idle) {
      client.write(`GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\n\r\n`);
      assert.ok(await client.waitFor(() => client.received().includes('"ok"')), 'not answered');
    }
    const silent = await openRaw(server.port);
    // A fourth gets 429 for its request, and one that sends none is dropped within a second.
    const fourth = await openRaw(server.port);
    fourth.write(`GET /healthz HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\n\r\n`);
    assert.ok(await fourth.waitForEnd(), 'a fourth connection is still open');
    assert.match(fourth.received().toString('latin1'), /^HTTP\/1\.1 429 [^]*retry-after: 60/i);
    const fifth = await openRaw(server.port);
    assert.ok(await fifth.waitForEnd(), 'a silent connection beyond the cap is still open');
    // A WebSocket too: the connections hold every place.
    refusedWith(
      await connect(wsUrl(server, '/secured-ws'), {
        headers: { authorization: `Bearer ${token}` },
      }),
      429,
      'rate_limited',
    );
    // A closed connection gives its place back, and a WebSocket's connection is counted once.
    silent.destroy();
    idle[0]!.destroy();
    await waitUntil(async () => {
      const outcome = await connect(wsUrl(server, '/secured-ws'), {
        headers: { authorization: `Bearer ${token}` },
        messages: 1,
      });
      if (outcome.kind === 'open') outcome.socket.terminate();
      return outcome.kind === 'open';
    });
    const sockets = [await open(server), await open(server)];
    await Promise.all(sockets.map(closed));
    idle[1]!.destroy();
  });

  it('counts an IPv6 client by its /64 behind a --trust-proxy peer', async () => {
    const first = await open(trusting, { 'x-forwarded-for': '2001:db8:5:6::1' });
    const same = await connect(wsUrl(trusting, '/secured-ws'), {
      headers: {
        authorization: `Bearer ${trustingToken}`,
        'x-forwarded-for': '2001:db8:5:6:ffff:ffff:ffff:2',
      },
    });
    refusedWith(same, 429, 'rate_limited');
    const other = await open(trusting, { 'x-forwarded-for': '2001:db8:5:7::1' });
    await Promise.all([first, other].map(closed));
  });

  it('is 1,000 by default', async () => {
    const { loadConfig } = await import('../src/config.js');
    assert.equal(loadConfig({}).limits.connectionsPerAddress, undefined);
    const { defaultGateLimits } = await import('../src/handshake/gate.js');
    assert.equal(defaultGateLimits.connectionsPerAddress, 1000);
    assert.equal(
      loadConfig({}, { WSGATE_MAX_CONNECTIONS_PER_ADDRESS: '7' }).limits.connectionsPerAddress,
      7,
    );
  });
});

describe('the handshake rate per client address behind a --trust-proxy peer', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      'trust-proxy': ['127.0.0.1'],
      'handshake-rate': '1',
      'handshake-burst': '1',
    });
  });
  after(() => server.stop());

  const handshake = (client: string) =>
    connect(wsUrl(server, '/secured-ws'), { headers: { 'x-forwarded-for': client } });

  it('counts an IPv6 client by its /64: rotating addresses inside it gains nothing', async () => {
    refusedWith(await handshake('2001:db8:9:9::1'), 401, 'credential_missing');
    refusedWith(await handshake('2001:db8:9:9:1:2:3:4'), 429, 'rate_limited');
    refusedWith(await handshake('2001:db8:9:a::1'), 401, 'credential_missing');
  });
});
