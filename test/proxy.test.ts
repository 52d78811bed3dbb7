import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { createServer as createHttpServer } from 'node:http';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { startTestServer, passwordGrant, testIssuer, type TestServer } from './support/server.js';
import {
  chatV2OrNone,
  startUpstream,
  type Upstream,
  type UpstreamConnection,
} from './support/upstream.js';
import { connect, wsUrl } from './support/ws.js';
import {
  openRaw,
  handshake,
  parseHead,
  framesAfterHead,
  closeCodeOf,
} from './support/raw-socket.js';
import { identityTokenType } from '../src/proxy/identity.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { RedisPubSub } from '../src/pubsub/redis.js';
import { ensureBuilt, wsgate } from './support/cli.js';
import {
  redisReachable,
  redisUrl,
  requireReachable,
  skipUnlessReachable,
} from './support/services.js';

/** A client socket that records what the upstream sends back through wsgate. */
function client(url: string, protocols: string[] = [], headers: Record<string, string> = {}) {
  const ws = new WebSocket(url, protocols, { headers, perMessageDeflate: false });
  const handshake: { protocol?: string | undefined } = {};
  // Accept a server that chooses none of the offered subprotocols, to see what wsgate answered
  // (a browser, like `ws`, fails that handshake: see the browser-strict test).
  ws.once('upgrade', (res) => {
    handshake.protocol = res.headers['sec-websocket-protocol'];
    res.headers['sec-websocket-protocol'] ??= protocols[0];
  });
  const messages: { data: Buffer; binary: boolean }[] = [];
  const pongs: Buffer[] = [];
  const pings: Buffer[] = [];
  ws.on('message', (data: Buffer, binary) => messages.push({ data, binary }));
  ws.on('pong', (data) => pongs.push(data));
  ws.on('ping', (data) => pings.push(data));
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('close', (code) => reject(new Error(`closed with ${code} before opening`)));
  });
  return { ws, messages, pongs, pings, closed, opened, handshake };
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A TCP server that accepts and never answers: an upstream that hangs. */
async function hangingUpstream(): Promise<{ url: string; sockets: Set<Socket>; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.resume();
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`, sockets, server };
}

/** Sends a handshake exactly as written (no URL normalisation) and reads the answer. */
async function rawHandshake(
  server: TestServer,
  target: string,
  headers: Record<string, string>,
): Promise<{ status: number; closeCode: number | undefined }> {
  const raw = await openRaw(server.port);
  try {
    raw.write(handshake(target, headers));
    await raw.waitFor(() => {
      const head = parseHead(raw.received());
      return head !== undefined && (head.status !== 101 || framesAfterHead(raw).length > 0);
    });
    const head = parseHead(raw.received());
    const frame = head?.status === 101 ? framesAfterHead(raw)[0] : undefined;
    return { status: head?.status ?? 0, closeCode: frame && closeCodeOf(frame) };
  } finally {
    raw.destroy();
  }
}

async function metric(server: TestServer, line: RegExp): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const match = new RegExp(`^${line.source} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

describe('proxy mode', () => {
  let upstream: Upstream;
  let server: TestServer;
  let token: string;

  before(async () => {
    upstream = await startUpstream({
      protocol: chatV2OrNone,
    });
    server = await startTestServer({
      proxy: [
        `/app=${upstream.url}/ws?v=2`,
        `/rooms/*=${upstream.url}/r`,
        `/ws=${upstream.url}/seed`,
      ],
      'proxy-scope': ['/rooms/*=chat:write'],
      origin: ['https://app.example'],
    });
    token = (await passwordGrant(server)).access_token;
  });
  after(async () => {
    await server.stop();
    await upstream.close();
  });

  /** Opens a proxied socket and returns both ends. */
  async function pair(
    path = '/app',
    protocols: string[] = [],
    headers: Record<string, string> = { authorization: `Bearer ${token}` },
  ): Promise<{ near: ReturnType<typeof client>; far: UpstreamConnection }> {
    const n = upstream.connections.length + 1;
    const near = client(wsUrl(server, path), protocols, headers);
    await near.opened;
    return { near, far: await upstream.connection(n) };
  }

  it('tells the upstream who the client is, in headers and a JWT it verifies with the JWKS', async () => {
    const { near, far } = await pair();
    assert.deepEqual(far.headers['x-wsgate-user'], ['johndoe']);
    assert.deepEqual(far.headers['x-wsgate-scope'], ['chat:read chat:write']);
    assert.deepEqual(far.headers['x-wsgate-issuer'], [testIssuer]);
    const [identity] = far.headers['x-wsgate-identity'] ?? [];
    assert.ok(identity);
    const jwks = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(identity, jwks, {
      issuer: testIssuer,
      audience: `${upstream.url}/ws`, // the upstream URL without its query
      typ: identityTokenType,
      algorithms: ['EdDSA'],
      currentDate: new Date(server.clock()),
    });
    assert.equal(protectedHeader.kid, server.runtime.identity.kid);
    assert.equal(payload.sub, 'johndoe');
    assert.equal(payload.name, 'johndoe');
    assert.equal(payload.idp, testIssuer);
    assert.equal(payload.sid, decodeJwt(token).sid);
    assert.deepEqual(far.headers['x-wsgate-session'], [payload.sid]);
    assert.ok((payload.exp ?? 0) - (payload.iat ?? 0) <= 60);
    for (const absent of ['type', 'fresh', 'csrf']) assert.ok(!(absent in payload), absent);
    near.ws.close();
    await until(() => upstream.open === 0);
  });

  it('refuses the identity token as a credential, on its own endpoints and on proxied ones', async () => {
    const { near, far } = await pair();
    const identity = far.headers['x-wsgate-identity']?.[0] ?? '';
    near.ws.close();
    for (const path of ['/secured-ws', '/app', '/chat']) {
      const outcome = await connect(wsUrl(server, path), {
        headers: { authorization: `Bearer ${identity}` },
      });
      assert.equal(outcome.kind, 'http', path);
      assert.equal(outcome.kind === 'http' && outcome.status, 401, path);
    }
    const res = await fetch(`${server.url}/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${identity}` },
    });
    assert.equal(res.status, 401);
  });

  it('publishes the identity key beside the signing keys, and signs no credential with it', async () => {
    const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string; d?: string }[];
    };
    const kids = jwks.keys.map((k) => k.kid);
    assert.ok(kids.includes(server.runtime.identity.kid));
    assert.ok(kids.includes(server.runtime.keys.kid));
    assert.ok(jwks.keys.every((k) => k.d === undefined));
    assert.notEqual(server.runtime.keys.kid, server.runtime.identity.kid);
  });

  it('lets no credential or spoofed identity reach the upstream, whatever the transport', async () => {
    const ticket = (
      (await (
        await fetch(`${server.url}/ws-ticket`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        })
      ).json()) as { ticket: string }
    ).ticket;
    const spoofed = {
      'X-Wsgate-User': 'admin',
      'X-Wsgate_User': 'admin2',
      x_wsgate_scope: 'wsgate:admin',
      'X-Wsgate-Identity': 'forged.identity.jwt',
      'X-WSGATE-SESSION': 'spoofed-session',
      'X-Wsgate_Issuer': 'https://evil.example',
      'X-Forwarded-For': '6.6.6.6',
      'X-Forwarded-Host': 'evil.example',
      'X-Forwarded-Proto': 'https',
      Forwarded: 'for=6.6.6.6',
    };
    const transports: {
      name: string;
      path: string;
      protocols?: string[];
      headers: Record<string, string>;
    }[] = [
      { name: 'bearer header', path: '/app?x=1', headers: { authorization: `Bearer ${token}` } },
      {
        name: 'subprotocol',
        path: '/app?x=1',
        protocols: ['wsgate.v1', `wsgate.bearer.${token}`, 'chat.v2'],
        headers: {},
      },
      { name: 'ticket', path: `/app?token=${ticket}&x=1`, headers: {} },
    ];
    const secrets = [
      token,
      ticket,
      'admin',
      'forged',
      'spoofed',
      'evil',
      '6.6.6.6',
      'wsgate.v1',
      'wsgate.bearer',
    ];
    for (const transport of transports) {
      const { near, far } = await pair(transport.path, transport.protocols, {
        ...transport.headers,
        ...spoofed,
      });
      const seen = JSON.stringify({ url: far.url, headers: far.rawHeaders });
      for (const secret of secrets) {
        assert.ok(
          !seen.includes(secret),
          `${transport.name}: "${secret}" reached the upstream: ${seen}`,
        );
      }
      assert.equal(far.url, '/ws?v=2&x=1', transport.name);
      assert.deepEqual(far.headers['x-wsgate-user'], ['johndoe'], transport.name);
      assert.deepEqual(far.headers['x-forwarded-for'], ['127.0.0.1'], transport.name);
      assert.deepEqual(far.headers['x-forwarded-proto'], ['http'], transport.name);
      assert.deepEqual(far.headers['x-forwarded-host'], [new URL(server.url).host], transport.name);
      // Only wsgate's own X-Wsgate-* headers, one of each.
      const names = far.rawHeaders
        .filter((_, i) => i % 2 === 0)
        .map((h) => h.toLowerCase().replaceAll('_', '-'));
      assert.deepEqual(
        names.filter((h) => h.startsWith('x-wsgate-')).sort(),
        [
          'x-wsgate-identity',
          'x-wsgate-issuer',
          'x-wsgate-scope',
          'x-wsgate-session',
          'x-wsgate-user',
        ],
        transport.name,
      );
      near.ws.close();
    }
    await until(() => upstream.open === 0);
  });

  it('passes the cookie transport with Origin as sent, without wsgate cookies or the CSRF value', async () => {
    const login = await fetch(`${server.url}/session`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url },
      body: 'username=johndoe&password=secret&next=/',
    });
    const cookies = login.headers.getSetCookie().map((c) => c.split(';')[0] as string);
    const csrf = cookies.find((c) => c.startsWith('csrf_access_token='))?.split('=')[1] ?? '';
    assert.ok(csrf);
    const { near, far } = await pair(`/app?csrf_token=${csrf}`, [], {
      cookie: [...cookies, 'theme=dark'].join('; '),
      origin: 'https://app.example',
    });
    assert.deepEqual(far.headers.origin, ['https://app.example']);
    assert.deepEqual(far.headers.cookie, ['theme=dark']);
    assert.equal(far.url, '/ws?v=2');
    assert.ok(!JSON.stringify(far.rawHeaders).includes(csrf));
    near.ws.close();
    await until(() => upstream.open === 0);
  });

  it("gives the client the upstream's subprotocol, never wsgate.v1, and no wsgate frames", async () => {
    const chosen = await pair('/app', ['wsgate.v1', `wsgate.bearer.${token}`, 'chat.v2'], {});
    assert.equal(chosen.near.handshake.protocol, 'chat.v2');
    assert.equal(chosen.far.protocol, 'chat.v2');
    chosen.far.ws.send('from upstream');
    await until(() => chosen.near.messages.length === 1);
    assert.equal(chosen.near.messages[0]?.data.toString(), 'from upstream');
    chosen.near.ws.close();
    const none = await pair('/app', ['wsgate.v1', `wsgate.bearer.${token}`], {});
    assert.equal(none.near.handshake.protocol, undefined);
    none.near.ws.close();
    await until(() => upstream.open === 0);
  });

  it('opens for a client as strict as a browser: no subprotocol, or the backend’s own beside wsgate’s', async () => {
    // A browser (and `ws`, used here as it comes) fails a handshake that offered subprotocols
    // when the server picks none of them, as the backend does for a client that offered none.
    const echo = { send: ['hi'], messages: 1 };
    const ticket = (await (
      await fetch(`${server.url}/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as { ticket: string };
    const byTicket = await connect(wsUrl(server, `/app?token=${ticket.ticket}`), echo);
    assert.deepEqual(byTicket.kind === 'open' && [byTicket.protocol, byTicket.messages], [
      '',
      ['hi'],
    ]);
    const beside = await connect(wsUrl(server, '/app'), {
      ...echo,
      protocols: ['chat.v2', 'wsgate.v1', `wsgate.bearer.${token}`],
    });
    assert.deepEqual(beside.kind === 'open' && [beside.protocol, beside.messages], [
      'chat.v2',
      ['hi'],
    ]);
    const refused = await connect(wsUrl(server, '/app'), {
      protocols: ['chat.v2', 'wsgate.v1', 'wsgate.bearer.not-a-token'],
    });
    assert.deepEqual(refused.kind === 'open' && [refused.protocol, refused.close?.code], [
      'wsgate.v1',
      4401,
    ]);
    // wsgate's subprotocols alone reach the backend as none, and wsgate answers none: the
    // handshake fails, for a browser too, unless the client offered wsgate.proxy as well.
    const strict = new WebSocket(wsUrl(server, '/app'), ['wsgate.v1', `wsgate.bearer.${token}`]);
    const failed = await new Promise<Error>((resolve) => strict.once('error', resolve));
    assert.match(failed.message, /Server sent no subprotocol/);
    const marked = await connect(wsUrl(server, '/app'), {
      ...echo,
      protocols: ['wsgate.v1', 'wsgate.proxy', `wsgate.bearer.${token}`],
    });
    assert.deepEqual(marked.kind === 'open' && [marked.protocol, marked.messages], [
      'wsgate.proxy',
      ['hi'],
    ]);
    for (const outcome of [byTicket, beside, marked]) {
      if (outcome.kind === 'open') outcome.socket.close();
    }
    await until(() => upstream.open === 0);
  });

  it('never forwards wsgate.proxy, and answers it only when the upstream chose none', async () => {
    const none = await pair('/app', ['wsgate.v1', 'wsgate.proxy', `wsgate.bearer.${token}`], {});
    assert.equal(none.near.handshake.protocol, 'wsgate.proxy');
    assert.equal(none.far.headers['sec-websocket-protocol'], undefined);
    const own = await pair(
      '/app',
      ['wsgate.proxy', 'chat.v2', 'wsgate.v1', `wsgate.bearer.${token}`],
      {},
    );
    assert.equal(own.near.handshake.protocol, 'chat.v2');
    assert.deepEqual(own.far.headers['sec-websocket-protocol'], ['chat.v2']);
    // wsgate.proxy stands in for wsgate.v1 beside the bearer subprotocol, and with any other
    // transport; a refusal is then an HTTP status, as for any client that did not offer wsgate.v1.
    const alone = await pair('/app', ['wsgate.proxy', `wsgate.bearer.${token}`], {});
    assert.equal(alone.near.handshake.protocol, 'wsgate.proxy');
    const header = await pair('/app', ['wsgate.proxy']);
    assert.equal(header.near.handshake.protocol, 'wsgate.proxy');
    for (const { far } of [none, own, alone, header]) {
      assert.ok(!far.rawHeaders.join('\n').includes('wsgate.proxy'), far.url);
    }
    const plain = await connect(wsUrl(server, '/app'), {
      protocols: ['wsgate.proxy', 'wsgate.bearer.not-a-token'],
    });
    assert.equal(plain.kind === 'http' && plain.status, 401);
    const v1 = await connect(wsUrl(server, '/app'), {
      protocols: ['wsgate.v1', 'wsgate.proxy', 'wsgate.bearer.not-a-token'],
    });
    assert.deepEqual(v1.kind === 'open' && [v1.protocol, v1.close?.code], ['wsgate.v1', 4401]);
    for (const { near } of [none, own, alone, header]) near.ws.close();
    await until(() => upstream.open === 0);
  });

  it('selects wsgate.v1 over wsgate.proxy on its own endpoints, and wsgate.proxy offered alone', async () => {
    const v1 = await connect(wsUrl(server, '/secured-ws'), {
      protocols: ['wsgate.proxy', 'wsgate.v1', `wsgate.bearer.${token}`],
      messages: 1,
    });
    assert.deepEqual(v1.kind === 'open' && [v1.protocol, v1.messages], [
      'wsgate.v1',
      ['Welcome johndoe!'],
    ]);
    const alone = await connect(wsUrl(server, '/secured-ws'), {
      protocols: ['wsgate.proxy', `wsgate.bearer.${token}`],
      messages: 1,
    });
    assert.deepEqual(alone.kind === 'open' && [alone.protocol, alone.messages], [
      'wsgate.proxy',
      ['Welcome johndoe!'],
    ]);
    for (const outcome of [v1, alone]) if (outcome.kind === 'open') outcome.socket.close();
  });

  it('has no first-message authentication: a v1 client without a credential gets 4401', async () => {
    const outcome = await connect(wsUrl(server, '/app'), { protocols: ['wsgate.v1'] });
    assert.equal(outcome.kind === 'open' && outcome.close?.code, 4401);
    const plain = await connect(wsUrl(server, '/app'));
    assert.equal(plain.kind === 'http' && plain.status, 401);
  });

  it('passes text, binary, ping and pong both ways unchanged', async () => {
    const { near, far } = await pair();
    const bin = Buffer.from([0, 255, 1, 254]);
    near.ws.send('héllo');
    near.ws.send(bin);
    near.ws.ping(Buffer.from('near'));
    await until(
      () => far.messages.length === 2 && far.pings.length === 1 && near.pongs.length === 1,
    );
    assert.deepEqual(far.messages, [
      { data: Buffer.from('héllo'), binary: false },
      { data: bin, binary: true },
    ]);
    assert.equal(near.pongs[0]?.toString(), 'near');
    await until(() => near.messages.length === 2); // the upstream echoes
    far.ws.ping(Buffer.from('far'));
    await until(() => near.pings.length === 1 && far.pongs.length === 1);
    assert.equal(far.pongs[0]?.toString(), 'far');
    near.ws.close();
    await until(() => upstream.open === 0);
  });

  it('serves a prefix route with its path and query, and answers 400 to traversal attempts', async () => {
    const { near, far } = await pair(`/rooms/lobby/42?since=7&z=%2F&since=8`);
    assert.equal(far.url, '/r/lobby/42?since=7&z=%2F&since=8');
    near.ws.close();
    const before = upstream.connections.length;
    for (const path of [
      '/rooms/../admin',
      '/rooms/..',
      '/rooms/a/./b',
      '/rooms/%2e%2e/x',
      '/rooms/a%2fb',
      '/rooms/a%5cb',
      '/rooms/a\\b',
      '/rooms//x',
      '/rooms/.%2E/x',
    ]) {
      const plain = await rawHandshake(server, path, { authorization: `Bearer ${token}` });
      assert.equal(plain.status, 400, path);
      const v1 = await rawHandshake(server, path, {
        'sec-websocket-protocol': `wsgate.v1, wsgate.bearer.${token}`,
      });
      assert.deepEqual(v1, { status: 101, closeCode: 4400 }, path);
    }
    assert.equal(upstream.connections.length, before, 'no traversal attempt reached the upstream');
    await until(() => upstream.open === 0);
  });

  it('checks the scopes a proxy route needs before dialling', async () => {
    const readOnly = (
      (await (
        await fetch(`${server.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'username=johndoe&password=secret&scope=chat:read',
        })
      ).json()) as { access_token: string }
    ).access_token;
    const before = upstream.connections.length;
    const outcome = await connect(wsUrl(server, '/rooms/x'), {
      headers: { authorization: `Bearer ${readOnly}` },
    });
    assert.equal(outcome.kind === 'http' && outcome.status, 403);
    assert.equal(upstream.connections.length, before);
  });

  it('replaces the built-in WebSocket endpoint of the same path', async () => {
    const { near, far } = await pair('/ws');
    assert.equal(far.url, '/seed');
    near.ws.close();
    await until(() => upstream.open === 0);
  });

  it('mirrors closes: the client 4000, the upstream 4001, an upstream gone as 1014', async () => {
    let { near, far } = await pair();
    near.ws.close(4000, 'client bye');
    assert.deepEqual(await far.closed, { code: 4000, reason: 'client bye' });
    ({ near, far } = await pair());
    far.ws.close(4001, 'upstream bye');
    assert.deepEqual(await near.closed, { code: 4001, reason: 'upstream bye' });
    ({ near, far } = await pair());
    far.ws.send('partial');
    far.ws.terminate(); // the upstream process dies mid-stream
    assert.deepEqual(await near.closed, { code: 1014, reason: 'Upstream connection lost' });
    await until(() => upstream.open === 0 && server.gate.size === 0);
  });

  it('closes a client that sends more than the message limit with 1009, and the upstream with it', async () => {
    const { near, far } = await pair();
    near.ws.send(Buffer.alloc(64 * 1024 + 1));
    assert.equal((await near.closed).code, 1009);
    assert.equal((await far.closed).code, 1009);
    assert.equal(far.messages.length, 0);
  });

  it('counts proxied sockets, frames and bytes each way, and upstream connects', async () => {
    const connects = await metric(server, /wsgate_upstream_connect_duration_seconds_count/);
    const up = await metric(server, /wsgate_proxy_bytes_total\{direction="up"\}/);
    const { near, far } = await pair();
    assert.equal(await metric(server, /wsgate_proxied_sockets_open/), 1);
    near.ws.send('12345');
    await until(() => near.messages.length === 1);
    assert.equal(
      await metric(server, /wsgate_upstream_connect_duration_seconds_count/),
      connects + 1,
    );
    assert.equal(await metric(server, /wsgate_proxy_bytes_total\{direction="up"\}/), up + 5);
    assert.ok((await metric(server, /wsgate_proxy_frames_total\{direction="down"\}/)) >= 1);
    near.ws.close();
    await far.closed;
    await until(() => server.gate.size === 0);
    await until(() => upstream.open === 0);
  });
});

describe('proxy mode: live sessions', () => {
  let upstream: Upstream;
  let server: TestServer;
  before(async () => {
    upstream = await startUpstream();
    server = await startTestServer({ proxy: [`/app=${upstream.url}/ws`], 'access-ttl': '120' });
  });
  after(async () => {
    await server.stop();
    await upstream.close();
  });

  it('closes the client with 4419 and the upstream with 1001 when the token expires', async () => {
    const { access_token } = await passwordGrant(server);
    const near = client(wsUrl(server, '/app'), ['wsgate.v1', `wsgate.bearer.${access_token}`]);
    await near.opened;
    const far = await upstream.connection(upstream.connections.length || 1);
    server.clock.advance(121_000);
    server.gate.checkExpiry();
    assert.deepEqual(await near.closed, { code: 4419, reason: 'Token has expired' });
    assert.deepEqual(await far.closed, { code: 1001, reason: 'Token expired' });
    assert.equal(near.messages.length, 0, 'no expiring frame on a proxied socket');
  });

  it('closes the client with 4410 and the upstream with 1008 revoked on logout', async () => {
    const { access_token } = await passwordGrant(server);
    const n = upstream.connections.length + 1;
    const near = client(wsUrl(server, '/app'), [], { authorization: `Bearer ${access_token}` });
    await near.opened;
    const far = await upstream.connection(n);
    const res = await fetch(`${server.url}/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access_token}` },
    });
    assert.equal(res.status, 204);
    assert.equal((await near.closed).code, 4410);
    assert.deepEqual(await far.closed, { code: 1008, reason: 'revoked' });
  });

  it('closes the client with 4429 and the upstream with 1008 past the message rate', async () => {
    const { access_token } = await passwordGrant(server);
    const n = upstream.connections.length + 1;
    const near = client(wsUrl(server, '/app'), [], { authorization: `Bearer ${access_token}` });
    await near.opened;
    const far = await upstream.connection(n);
    for (let i = 0; i < 150; i++) near.ws.send(`m${i}`);
    assert.equal((await near.closed).code, 4429);
    assert.deepEqual(await far.closed, { code: 1008, reason: 'Too many messages' });
    assert.ok(far.messages.length <= 100, `${far.messages.length} messages passed the limit`);
  });
});

describe('proxy mode: an upstream that is down, refuses or hangs', () => {
  const upstreamSays = {
    refused: /Upstream answered 403 to the upgrade$/,
    timeout: /No upstream answer within 100 ms$/,
    unreachable: /Upstream unreachable: ECONNREFUSED$/,
  };

  it('answers 502 bad_gateway, or 1014 to a wsgate.v1 client, counts the failure and logs which', async () => {
    const refusing = await startUpstream({ refuse: 403 });
    const hanging = await hangingUpstream();
    const down = await hangingUpstream();
    await new Promise<void>((resolve) => down.server.close(() => resolve()));
    const server = await startTestServer(
      {
        proxy: [`/refuse=${refusing.url}/`, `/hang=${hanging.url}`, `/down=${down.url}`],
      },
      { proxyDialTimeoutMs: 100 },
    );
    try {
      const { access_token } = await passwordGrant(server);
      for (const [path, reason] of [
        ['/refuse', 'refused'],
        ['/hang', 'timeout'],
        ['/down', 'unreachable'],
      ] as const) {
        const outcome = await connect(wsUrl(server, path), {
          headers: { authorization: `Bearer ${access_token}` },
        });
        assert.equal(outcome.kind, 'http', path);
        if (outcome.kind !== 'http') continue;
        assert.equal(outcome.status, 502, path);
        assert.deepEqual(outcome.body, {
          error: 'bad_gateway',
          error_description: 'Upstream unavailable',
        });
        const v1 = await connect(wsUrl(server, path), {
          protocols: ['wsgate.v1', `wsgate.bearer.${access_token}`],
        });
        assert.equal(v1.kind === 'open' && v1.close?.code, 1014, path);
        assert.equal(v1.kind === 'open' && v1.protocol, 'wsgate.v1', path);
        assert.equal(
          await metric(
            server,
            new RegExp(`wsgate_upstream_failures_total\\{reason="${reason}"\\}`),
          ),
          2,
        ); // The operator's log says which failure it was; the client was told only the above.
        const logged = server.logs.lines
          .map((line) => JSON.parse(line) as { msg: string; handshake?: { path: string } })
          .filter((e) => e.handshake?.path === path && /^handshake rejected: /.test(e.msg));
        assert.equal(logged.length, 2, path);
        assert.match(logged[0]?.msg ?? '', upstreamSays[reason], path);
      }
      await until(() => hanging.sockets.size === 0);
      assert.equal(server.gate.size, 0);
    } finally {
      await server.stop();
      await refusing.close();
      hanging.server.close();
    }
  });

  it('stops dialling when the client leaves mid-dial, leaving no socket on either side', async () => {
    const hanging = await hangingUpstream();
    const server = await startTestServer(
      { proxy: [`/hang=${hanging.url}`] },
      { proxyDialTimeoutMs: 60_000 },
    );
    try {
      const { access_token } = await passwordGrant(server);
      const raw = await openRaw(server.port);
      raw.write(handshake('/hang', { authorization: `Bearer ${access_token}` }));
      await until(() => hanging.sockets.size === 1);
      raw.destroy(); // the client gives up while the upstream is silent
      await until(() => hanging.sockets.size === 0, 2000);
      assert.equal(await metric(server, /wsgate_upstream_failures_total\{reason="aborted"\}/), 1);
      assert.equal(server.gate.size, 0);
    } finally {
      await server.stop();
      hanging.server.close();
    }
  });
});

describe('proxy mode: a drain while the upstream answers', () => {
  it('answers the client 503 and closes the upstream with 1001, rather than dropping both', async () => {
    // An upstream that holds each upgrade until the test lets it through.
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const requests: string[] = [];
    const closes: Promise<{ code: number; reason: string }>[] = [];
    const wss = new WebSocketServer({ noServer: true });
    const http = createHttpServer();
    http.on('upgrade', (req, socket, head) => {
      requests.push(req.url ?? '');
      void released.then(() =>
        wss.handleUpgrade(req, socket, head, (ws) => {
          closes.push(
            new Promise((resolve) =>
              ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
            ),
          );
        }),
      );
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const port = (http.address() as AddressInfo).port;
    const server = await startTestServer({ proxy: [`/app=ws://127.0.0.1:${port}/ws`] });
    try {
      const { access_token } = await passwordGrant(server);
      const outcome = connect(wsUrl(server, '/app'), {
        headers: { authorization: `Bearer ${access_token}` },
      });
      await until(() => requests.length === 1);
      await server.gate.drain();
      release();
      const answer = await outcome;
      assert.equal(answer.kind === 'http' && answer.status, 503);
      await until(() => closes.length === 1);
      assert.deepEqual(await closes[0], { code: 1001, reason: 'Server is shutting down' });
      assert.equal(server.gate.size, 0);
    } finally {
      await server.stop();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });
});

describe('proxy mode on a two-node cluster over Redis', () => {
  let upstream: Upstream;
  let a: TestServer;
  let b: TestServer;
  let dataDir: string;
  let skipped: string | false = false;

  before(async () => {
    skipped = await skipUnlessReachable('Redis', redisUrl, redisReachable);
    if (skipped) return;
    requireReachable('Redis', redisUrl, await redisReachable());
    upstream = await startUpstream();
    dataDir = mkdtempSync(join(tmpdir(), 'wsgate-proxy-cluster-'));
    const prefix = `wsgate-test-${randomUUID().slice(0, 8)}:`;
    const options = { proxy: [`/app=${upstream.url}/ws`], 'access-ttl': '120' };
    [a, b] = await Promise.all([
      startTestServer(options, { dataDir, bus: new RedisPubSub(redisUrl, { prefix }) }),
      startTestServer(options, { dataDir, bus: new RedisPubSub(redisUrl, { prefix }) }),
    ]);
  });
  after(async () => {
    if (skipped) return;
    await a.stop();
    await b.stop();
    await upstream.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('closes a proxied socket on node B within a second of a logout on node A: 4410, upstream 1008', async (t) => {
    if (skipped) return t.skip(skipped);
    const { access_token } = await passwordGrant(a);
    const n = upstream.connections.length + 1;
    const near = client(wsUrl(b, '/app'), [], { authorization: `Bearer ${access_token}` });
    await near.opened;
    const far = await upstream.connection(n);
    const started = performance.now();
    const res = await fetch(`${a.url}/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access_token}` },
    });
    assert.equal(res.status, 204);
    assert.equal((await near.closed).code, 4410);
    assert.deepEqual(await far.closed, { code: 1008, reason: 'revoked' });
    const ms = performance.now() - started;
    t.diagnostic(`cross-node kick of a proxied socket: ${ms.toFixed(1)} ms`);
    assert.ok(ms < 1000, `kick took ${ms} ms`);
  });

  it('closes a proxied socket on node B with 4419 at expiry, the upstream with 1001', async (t) => {
    if (skipped) return t.skip(skipped);
    const { access_token } = await passwordGrant(a);
    const n = upstream.connections.length + 1;
    const near = client(wsUrl(b, '/app'), [], { authorization: `Bearer ${access_token}` });
    await near.opened;
    const far = await upstream.connection(n);
    b.clock.advance(121_000);
    b.gate.checkExpiry();
    assert.equal((await near.closed).code, 4419);
    assert.deepEqual(await far.closed, { code: 1001, reason: 'Token expired' });
  });
});

describe('proxy mode: a path that overlaps an HTTP route', () => {
  let dir: string;
  let busy: Server;
  before(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'wsgate-proxy-overlap-'));
    // A port someone else holds: a start that got as far as checking it would say so instead.
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    await new Promise<void>((resolve) => busy.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  for (const workers of ['1', '2']) {
    it(`is refused by \`wsgate serve --workers ${workers}\` with exit 2 before anything starts`, async () => {
      const dataDir = join(dir, `data-${workers}`);
      const run = await wsgate([
        'serve',
        '--port',
        String((busy.address() as AddressInfo).port),
        '--data-dir',
        dataDir,
        '--workers',
        workers,
        '--proxy',
        '/app=ws://127.0.0.1:9000/ws',
        '--proxy',
        '/session/*=ws://127.0.0.1:9000/ws',
      ]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(
        run.stderr,
        /^wsgate serve: --proxy \/session\/\* overlaps the HTTP route \/session \(wsgate serve --help\)\n/m,
      );
      // Nothing was created or opened: no data dir (database, keys), no port check, no worker.
      assert.equal(existsSync(dataDir), false);
      assert.doesNotMatch(run.stderr, /in use|worker/);
      assert.equal(run.stdout, '');
    });
  }
});
