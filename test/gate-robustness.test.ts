/**
 * The gate under stress and hostile input: heartbeats against a peer that never answers pings,
 * random handshakes (fast-check) over raw `node:net` sockets, many concurrent handshakes, and a
 * drain while a `wsgate.v1` client is still waiting to authenticate (DESIGN.md §3, §4).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import WebSocket from 'ws';
import { authScheme } from '../src/credentials/authorization-header.js';
import { startTestServer, passwordGrant, type TestServer } from './support/server.js';
import { connect, wsUrl, type Outcome } from './support/ws.js';
import {
  openRaw,
  parseHead,
  handshakeBytes,
  wire,
  op,
  framesAfterHead,
  closeCodeOf,
  eventually,
} from './support/raw-socket.js';
import { manualTimers } from './support/timers.js';

// ---------------------------------------------------------------------------------------------

describe('heartbeat', () => {
  // The default interval: the test steps the gate's timers, so nothing waits for it.
  const heartbeatMs = 30_000;
  const timers = manualTimers();
  let server: TestServer;
  let accessToken: string;

  before(async () => {
    server = await startTestServer(
      {},
      // The revocation poll shares the timers; slowed, it stays out of the way of the beats.
      { timers, gateLimits: { heartbeatMs }, revocationPollMs: 10 * heartbeatMs },
    );
    accessToken = (await passwordGrant(server)).access_token;
  });

  after(async () => {
    await server.stop();
  });

  it('pings at every heartbeat and drops a peer that did not answer by the next one, while a client that answers pings stays open through many beats and still gets its echo', async () => {
    // A ws client answers pings on its own; it runs alongside the silent raw peer.
    const polite = await connect(wsUrl(server, '/secured-ws'), {
      headers: { authorization: `Bearer ${accessToken}` },
      messages: 1,
    });
    assert.equal(polite.kind, 'open');
    if (polite.kind !== 'open') return;
    const { socket } = polite;
    let pingsSeen = 0;
    socket.on('ping', () => pingsSeen++);
    let politeClosed = false;
    socket.on('close', () => (politeClosed = true));
    const echo = async (text: string) => {
      const reply = new Promise<string>((resolve) =>
        socket.once('message', (data: Buffer) => resolve(data.toString('utf8'))),
      );
      socket.send(text);
      return reply;
    };
    let beats = 0;
    /**
     * One heartbeat, over once the polite client has answered it: ws sends its pong before the
     * echo asked for after the ping, and the server reads one socket's frames in order.
     */
    const beat = async () => {
      beats += 1;
      const pinged = new Promise((resolve) => socket.once('ping', resolve));
      timers.advance(heartbeatMs);
      await pinged;
      assert.equal(await echo(`beat ${beats}`), `You wrote: beat ${beats}`);
    };

    const raw = await openRaw(server.port);
    try {
      raw.write(
        handshakeBytes('/secured-ws', `127.0.0.1:${server.port}`, [
          ['authorization', `Bearer ${accessToken}`],
        ]),
      );
      assert.ok(
        await raw.waitFor(() =>
          framesAfterHead(raw).some((f) => f.payload.toString() === 'Welcome johndoe!'),
        ),
        'the raw peer is upgraded and welcomed',
      );
      assert.equal(parseHead(raw.received())?.status, 101);
      assert.equal(server.gate.size, 2);

      // The first beat pings both; the raw peer never answers.
      await beat();
      assert.ok(
        await raw.waitFor(() => framesAfterHead(raw).some((f) => f.opcode === op.ping)),
        'the server sent a ping frame (opcode 0x9)',
      );
      const ping = framesAfterHead(raw).findIndex((f) => f.opcode === op.ping);
      assert.ok(ping > 0, 'the ping came after the welcome');
      assert.equal(server.gate.size, 2, 'a peer has until the next beat to answer');

      // The next beat finds it silent and drops it (no close handshake: it is not listening).
      await beat();
      assert.equal(await raw.waitForClose(), true, 'the silent peer was dropped at the next beat');
      assert.equal(
        framesAfterHead(raw).filter((f) => f.opcode === op.ping).length,
        1,
        'one ping, then the drop',
      );
    } finally {
      raw.destroy();
    }

    // The polite client lives through more beats, one ping each.
    for (let i = 0; i < 4; i++) await beat();
    assert.equal(pingsSeen, 6, 'the ping-answering client was pinged at every beat');
    assert.equal(politeClosed, false, 'the ping-answering client was not dropped');
    assert.equal(socket.readyState, WebSocket.OPEN);
    assert.equal(await echo('still here'), 'You wrote: still here');
    assert.equal(server.gate.size, 1, 'only the polite client is still tracked');
    socket.close();
  });
});

// ---------------------------------------------------------------------------------------------

describe('random handshakes (property)', () => {
  let server: TestServer;
  let accessToken: string;
  const processErrors: string[] = [];
  const onRejection = (error: unknown) =>
    processErrors.push(`unhandledRejection: ${String(error)}`);
  const onException = (error: unknown) => processErrors.push(`uncaughtException: ${String(error)}`);

  before(async () => {
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    server = await startTestServer(
      {},
      { gateLimits: { handshakeBurst: 1_000_000, authTimeoutMs: 100 } },
    );
    accessToken = (await passwordGrant(server)).access_token;
  });

  after(async () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    await server.stop();
  });

  const refusalStatuses = new Set([400, 401, 403, 404, 426, 429, 431]);
  const closeCodes = new Set([4400, 4401, 4403, 4408, 4410, 4419, 4429, 1008]);
  const paths = ['/secured-ws', '/ws', '/ws/optional', '/ws/fresh', '/ws/refresh', '/nowhere'];

  /** Characters Node's HTTP parser accepts in a header value: HTAB, SP, VCHAR (and obs-text). */
  const headerSafe = (s: string) =>
    [...s].filter((c) => c === '\t' || (c >= ' ' && c !== '\x7f')).join('');
  const asciiHeaderSafe = fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    maxLength: 80,
  });
  const unicode = fc.string({ unit: 'grapheme', maxLength: 40 }).map(headerSafe);
  const base64url = fc.string({
    unit: fc.constantFrom(
      ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split(''),
    ),
    minLength: 8,
    maxLength: 60,
  });

  function arbitraries() {
    const [header = '', payload = ''] = accessToken.split('.');
    const flip = (s: string, i: number) =>
      s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    /** Credential-looking values; none of them is a valid token. */
    const token = fc.oneof(
      base64url,
      fc.tuple(base64url, base64url, base64url).map((parts) => `eyJ${parts.join('.')}`),
      // The real header and payload with a forged signature.
      base64url.map((sig) => `${header}.${payload}.${sig}`),
      // The real token with one payload character changed (signature no longer matches).
      fc
        .integer({ min: 4, max: Math.max(4, payload.length - 4) })
        .map((i) => `${header}.${flip(payload, i)}.${accessToken.split('.')[2] ?? ''}`),
      asciiHeaderSafe,
    );
    const protocolItem = fc.oneof(
      fc.constant('wsgate.v1'),
      fc.constant(' wsgate.v1 '),
      fc.constant('wsgate.bearer.'),
      token.map((t) => `wsgate.bearer.${t}`),
      fc.constantFrom('chat', 'wsgate.v2', 'WSGATE.V1', 'wsgate.bearer', ''),
      asciiHeaderSafe,
      unicode,
    );
    const separator = fc.constantFrom(',', ', ', ' ,', ',,', ' ');
    const garbledProtocols = fc
      .array(fc.tuple(protocolItem, separator), { minLength: 1, maxLength: 4 })
      .map((items) => items.map(([item, sep], i) => (i === 0 ? item : sep + item)).join(''));
    // Well-formed lists get past the parser, so the credential checks behind it are reached too.
    const wellFormedProtocols = fc
      .uniqueArray(
        fc.oneof(
          { arbitrary: fc.constant('wsgate.v1'), weight: 3 },
          { arbitrary: base64url.map((t) => `wsgate.bearer.${t}`), weight: 2 },
          { arbitrary: fc.constantFrom('chat', 'wsgate.v2', 'wsgate.bearer.x.y'), weight: 1 },
        ),
        { minLength: 1, maxLength: 3 },
      )
      .chain((items) => separator.map((sep) => items.join(sep === ' ' ? ', ' : sep)));

    const urlChar = fc.constantFrom(
      ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$'()*+,;:@/?%=".split(
        '',
      ),
    );
    const queryItem = fc.oneof(
      token.map((t) => ({ text: `token=${encodeURIComponent(t)}`, secret: t })),
      token.map((t) => ({ text: `csrf_token=${encodeURIComponent(t)}`, secret: t })),
      fc.constantFrom('token=', 'csrf_token=', 'token', 'tok%65n=abc', 'csrf%5Ftoken=x'),
      fc.constantFrom('%', '%zz', '%E0%A4%A', '%00', '%FF%FE', '%%%', '+', '=', '&&', '%C3%28'),
      fc.string({ unit: urlChar, maxLength: 40 }),
      unicode.map((u) => `token=${encodeURIComponent(u)}`),
    );
    const query = fc
      .array(queryItem, { minLength: 1, maxLength: 5 })
      .map((items) =>
        items.map((i) =>
          typeof i === 'string' ? { text: i, secret: undefined as string | undefined } : i,
        ),
      );

    const cookie = fc.oneof(
      token.map((t) => ({ text: `access_token_cookie=${t}`, secrets: [t] })),
      token.map((t) => ({ text: `refresh_token_cookie=${t}`, secrets: [t] })),
      token.map((t) => ({ text: `a=b; access_token_cookie="${t}"; c`, secrets: [t] })),
      fc.tuple(token, token).map(([a, b]) => ({
        text: `access_token_cookie=${a}; access_token_cookie=${b}`,
        secrets: [a, b],
      })),
      asciiHeaderSafe.map((t) => ({ text: t, secrets: [] as string[] })),
      unicode.map((t) => ({ text: t, secrets: [] as string[] })),
    );
    const origin = fc.oneof(
      fc.constantFrom(
        server.url,
        `HTTP://127.0.0.1:${server.port}`,
        'null',
        '',
        'https://evil.example',
        `http://127.0.0.1:${server.port}.evil.example`,
        'file://',
        'ws://127.0.0.1',
      ),
      asciiHeaderSafe,
      unicode,
    );
    const authorization = fc.oneof(
      token.map((t) => ({ text: `Bearer ${t}`, secret: t })),
      token.map((t) => ({ text: `bearer  ${t} `, secret: t })),
      token.map((t) => ({ text: `Basic ${t}`, secret: t })),
      fc.constantFrom('Bearer', 'Bearer ', '', 'Token x').map((text) => ({
        text,
        secret: undefined as string | undefined,
      })),
      asciiHeaderSafe.map((text) => ({ text, secret: text })),
    );
    return fc.record({
      path: fc.constantFrom(...paths),
      protocols: fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 3 },
        { arbitrary: wellFormedProtocols, weight: 4 },
        { arbitrary: garbledProtocols, weight: 2 },
      ),
      query: fc.option(query, { nil: undefined, freq: 2 }),
      cookie: fc.option(cookie, { nil: undefined, freq: 2 }),
      origin: fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 5 },
        { arbitrary: fc.constant(server.url), weight: 3 },
        { arbitrary: origin, weight: 2 },
      ),
      authorization: fc.option(authorization, { nil: undefined, freq: 2 }),
    });
  }

  it('answers every random handshake with a JSON refusal or a 101 and a close code, never echoes a secret, and stays up', async () => {
    const host = `127.0.0.1:${server.port}`;
    await fc.assert(
      fc.asyncProperty(arbitraries(), async (input) => {
        const queryText = input.query?.map((q) => q.text).join('&');
        const target = queryText === undefined ? input.path : `${input.path}?${queryText}`;
        const headers: [string, string][] = [];
        if (input.protocols !== undefined)
          headers.push(['sec-websocket-protocol', input.protocols]);
        if (input.cookie !== undefined) headers.push(['cookie', input.cookie.text]);
        if (input.origin !== undefined) headers.push(['origin', input.origin]);
        if (input.authorization !== undefined)
          headers.push(['authorization', input.authorization.text]);

        const secrets = [
          ...(input.query ?? []).flatMap((q) =>
            q.secret === undefined ? [] : [q.secret, encodeURIComponent(q.secret)],
          ),
          ...(input.cookie?.secrets ?? []),
          ...(input.authorization?.secret === undefined ? [] : [input.authorization.secret]),
          ...(input.protocols ?? '')
            .split(',')
            .map((p) => p.trim())
            .filter((p) => p.startsWith('wsgate.bearer.'))
            .map((p) => p.slice('wsgate.bearer.'.length)),
        ].filter((s) => s.trim().length >= 8);

        // A guest is only allowed on /ws/optional, and only when no credential was presented at all.
        const params = new URLSearchParams(queryText ?? '');
        const guestAllowed =
          input.path === '/ws/optional' &&
          // Another scheme than Bearer (RFC 6750 §3.1) is no credential at all: a guest.
          (input.authorization === undefined ||
            !/^bearer$/i.test(authScheme(input.authorization.text) ?? 'bearer')) &&
          !params.has('token') &&
          !params.has('csrf_token') &&
          !(input.protocols ?? '').includes('wsgate.bearer.');

        const client = await openRaw(server.port);
        try {
          client.write(handshakeBytes(target, host, headers));
          await client.waitFor(() => parseHead(client.received()) !== undefined);
          const head = parseHead(client.received());
          assert.ok(head, `no response head for ${JSON.stringify(input)}`);
          if (head.status === 101) {
            // Wait for the first frame (a v1 client without a credential first waits authTimeoutMs).
            await client.waitFor(() => framesAfterHead(client).length > 0);
            const first = framesAfterHead(client)[0];
            assert.ok(first, 'a frame follows the 101');
            const selected = head.headers['sec-websocket-protocol'];
            if (selected !== undefined) {
              assert.equal(selected, 'wsgate.v1', 'only wsgate.v1 is ever selected');
              if (first.opcode === op.text) {
                assert.ok(guestAllowed, `v1 client welcomed: ${first.payload.toString()}`);
                assert.equal(first.payload.toString('utf8'), 'Welcome guest!');
              } else {
                assert.equal(first.opcode, op.close, `first frame opcode ${first.opcode}`);
                const code = closeCodeOf(first) ?? 0;
                assert.ok(closeCodes.has(code), `close code ${code}`);
                assert.ok(first.payload.length - 2 <= 123, 'close reason ≤ 123 bytes');
              }
            } else {
              assert.ok(
                guestAllowed,
                `a client without wsgate.v1 was upgraded on ${input.path} without a valid credential`,
              );
              assert.equal(first.opcode, op.text);
              assert.equal(first.payload.toString('utf8'), 'Welcome guest!');
            }
          } else {
            assert.ok(refusalStatuses.has(head.status), `status ${head.status}`);
            await client.waitFor(
              () =>
                (parseHead(client.received())?.rest.length ?? 0) >=
                Number(parseHead(client.received())?.headers['content-length'] ?? Infinity),
            );
            const text = parseHead(client.received())?.rest.toString('utf8') ?? '';
            assert.match(
              head.headers['content-type'] ?? '',
              /^application\/json/,
              `a ${head.status} refusal without a JSON body: ${JSON.stringify(text)}`,
            );
            const body = JSON.parse(text) as unknown;
            assert.equal(typeof body, 'object');
            const { error, error_description } = body as Record<string, unknown>;
            assert.equal(typeof error, 'string');
            assert.equal(typeof error_description, 'string');
          }
          const response = client.received().toString('latin1');
          for (const secret of secrets) {
            assert.ok(
              !response.includes(wire(secret)),
              `the response echoed a secret: ${JSON.stringify(secret)}`,
            );
          }
        } finally {
          client.destroy();
        }
      }),
      {
        numRuns: 150,
        includeErrorInReport: true,
        // Always tried: a blank Sec-WebSocket-Protocol header on a handshake that reaches the upgrade.
        examples: [
          [
            {
              path: '/ws/optional',
              protocols: '',
              query: undefined,
              cookie: undefined,
              origin: undefined,
              authorization: undefined,
            },
          ],
        ],
      },
    );

    const res = await fetch(`${server.url}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(processErrors, []);
  });
});

// ---------------------------------------------------------------------------------------------

describe('many concurrent handshakes', () => {
  let server: TestServer;
  let accessToken: string;

  before(async () => {
    // 200 handshakes at once is the documented burst of one address. One user may hold only 20
    // sockets by default; this test is about concurrency, so that limit is raised, explicitly.
    server = await startTestServer({}, { gateLimits: { connectionsPerUser: 200 } });
    accessToken = (await passwordGrant(server)).access_token;
  });

  after(async () => {
    await server.stop();
  });

  it('welcomes 200 simultaneous authenticated connections, tracks all 200, and tracks 0 after they close', async () => {
    const count = 200;
    const outcomes: Outcome[] = await Promise.all(
      Array.from({ length: count }, () =>
        connect(wsUrl(server, '/secured-ws'), {
          headers: { authorization: `Bearer ${accessToken}` },
          messages: 1,
          timeoutMs: 10_000,
        }),
      ),
    );
    const sockets: WebSocket[] = [];
    for (const o of outcomes) if (o.kind === 'open') sockets.push(o.socket);
    try {
      const welcomed = outcomes.filter(
        (o) => o.kind === 'open' && o.close === null && o.messages[0] === 'Welcome johndoe!',
      );
      assert.equal(
        welcomed.length,
        count,
        `not welcomed: ${JSON.stringify(
          outcomes
            .filter((o) => !welcomed.includes(o))
            .slice(0, 3)
            .map((o) => (o.kind === 'http' ? o.body : o.close)),
        )}`,
      );
      assert.equal(server.gate.size, count);
    } finally {
      await Promise.all(
        sockets.map(
          (ws) =>
            new Promise<void>((resolve) => {
              if (ws.readyState === WebSocket.CLOSED) return resolve();
              ws.once('close', () => resolve());
              ws.close(1000);
            }),
        ),
      );
    }
    assert.equal(await eventually(() => server.gate.size === 0), true, `${server.gate.size} left`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('drain', () => {
  it('closes a wsgate.v1 client that is still waiting for its first message with 1001', async () => {
    // The auth wait runs on timers only the test moves, and it never moves them: only the drain
    // can close the socket.
    const timers = manualTimers();
    const node = await startTestServer({}, { timers });
    try {
      const ws = new WebSocket(wsUrl(node, '/secured-ws'), ['wsgate.v1']);
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      assert.equal(ws.protocol, 'wsgate.v1');
      assert.ok(timers.pending > 0, 'the first-message wait is armed on the stepped timers');
      const drained = node.gate.drain(1000);
      assert.equal(await closed, 1001, 'closed by the drain');
      await drained;
    } finally {
      await node.stop();
    }
  });

  it('still refuses a wsgate.v1 client that never authenticates once its wait is over (4408 auth_timeout)', async () => {
    const timers = manualTimers();
    const authTimeoutMs = 5000;
    const node = await startTestServer({}, { timers, gateLimits: { authTimeoutMs } });
    try {
      const ws = new WebSocket(wsUrl(node, '/secured-ws'), ['wsgate.v1']);
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      timers.advance(authTimeoutMs);
      assert.equal(await closed, 4408);
    } finally {
      await node.stop();
    }
  });
});
