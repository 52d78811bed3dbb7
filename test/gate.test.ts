import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import {
  startTestServer,
  passwordGrant,
  postJson,
  type TestServer,
  type TokenResponse,
} from './support/server.js';
import WebSocket from 'ws';
import { connect, wsUrl, type Outcome } from './support/ws.js';
import { manualTimers } from './support/timers.js';

type Kind = 'fresh' | 'stale' | 'refresh';
type TransportCase = 'bearer' | 'subprotocol' | 'query' | 'ticket' | 'cookie' | 'first-message';
type Endpoint = '/ws' | '/ws/optional' | '/ws/fresh' | '/ws/refresh' | '/secured-ws';

const v1Transports = new Set<TransportCase>(['subprotocol', 'first-message']);

/** Every secret the suite handles, to check that none reaches the log. */
const secrets = new Set<string>();

const expectations: Record<
  Endpoint,
  Record<Kind, 'ok' | ['wrong_token_type' | 'not_fresh', number, number]>
> = {
  '/ws': { fresh: 'ok', stale: 'ok', refresh: ['wrong_token_type', 401, 4401] },
  '/secured-ws': { fresh: 'ok', stale: 'ok', refresh: ['wrong_token_type', 401, 4401] },
  '/ws/optional': { fresh: 'ok', stale: 'ok', refresh: ['wrong_token_type', 401, 4401] },
  '/ws/fresh': {
    fresh: 'ok',
    stale: ['not_fresh', 403, 4403],
    refresh: ['wrong_token_type', 401, 4401],
  },
  '/ws/refresh': {
    fresh: ['wrong_token_type', 401, 4401],
    stale: ['wrong_token_type', 401, 4401],
    refresh: 'ok',
  },
};

function assertRefused(
  outcome: Outcome,
  v1: boolean,
  code: string,
  status: number,
  close: number,
): void {
  if (v1) {
    assert.equal(outcome.kind, 'open', `v1 clients get the upgrade, then a close (${code})`);
    if (outcome.kind !== 'open') return;
    assert.equal(outcome.protocol, 'wsgate.v1');
    assert.deepEqual(outcome.messages, []);
    assert.equal(
      outcome.close?.code,
      close,
      `close code for ${code}: ${JSON.stringify(outcome.close)}`,
    );
    assert.ok(Buffer.byteLength(outcome.close.reason) <= 123);
    assert.ok((outcome.close?.reason.length ?? 0) > 0);
  } else {
    assert.equal(outcome.kind, 'http', `expected an HTTP refusal (${code})`);
    if (outcome.kind !== 'http') return;
    assert.equal(outcome.status, status);
    assert.equal((outcome.body as { error: string }).error, code);
    assert.equal(
      typeof (outcome.body as { error_description: unknown }).error_description,
      'string',
    );
    if (status === 401)
      assert.match(String(outcome.headers['www-authenticate']), /^Bearer realm="wsgate"/);
  }
}

function assertAccepted(outcome: Outcome, endpoint: Endpoint, username: string, v1: boolean): void {
  assert.equal(
    outcome.kind,
    'open',
    `expected an upgrade, got ${JSON.stringify(outcome.kind === 'http' ? outcome.body : '')}`,
  );
  if (outcome.kind !== 'open') return;
  assert.equal(outcome.protocol, v1 ? 'wsgate.v1' : '');
  if (endpoint === '/secured-ws') {
    assert.deepEqual(outcome.messages, [`Welcome ${username}!`, 'You wrote: ping']);
    return;
  }
  assert.equal(outcome.messages[0], 'Successfully Login!');
  const prefix = 'Here your decoded token: ';
  assert.ok(outcome.messages[1]?.startsWith(prefix), outcome.messages[1]);
  const claims = JSON.parse((outcome.messages[1] ?? '').slice(prefix.length)) as Record<
    string,
    unknown
  >;
  assert.equal(claims.sub, username);
  assert.equal(outcome.messages[2], 'You wrote: ping');
}

describe('WebSocket gate', () => {
  let server: TestServer;
  // The first-message wait runs out when the test steps these.
  const timers = manualTimers();
  const authTimeoutMs = 5000;

  before(async () => {
    server = await startTestServer(
      {},
      { timers, gateLimits: { handshakeBurst: 100_000, authTimeoutMs } },
    );
  });

  after(async () => {
    await server.stop();
  });

  async function token(kind: Kind, cookies: boolean): Promise<string> {
    let value: string;
    if (cookies) {
      const pair = await server.runtime.sessions.openSession('johndoe', { cookies: true });
      if (kind === 'refresh') value = pair.refreshToken;
      else if (kind === 'fresh') value = pair.accessToken;
      else
        value = (await server.runtime.sessions.refresh(pair.refreshToken, { cookies: true }))
          .accessToken;
    } else {
      const pair = await passwordGrant(server);
      if (kind === 'refresh') value = pair.refresh_token;
      else if (kind === 'fresh') value = pair.access_token;
      else {
        const res = await postJson(`${server.url}/refresh`, { refresh_token: pair.refresh_token });
        value = ((await res.json()) as TokenResponse).access_token;
      }
    }
    secrets.add(value);
    return value;
  }

  async function ticketFor(accessToken: string): Promise<string> {
    const res = await fetch(`${server.url}/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}` },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as { ticket: string; expires_in: number };
    assert.ok(body.expires_in > 0 && body.expires_in <= 30);
    assert.match(body.ticket, /^[A-Za-z0-9_-]{43}$/);
    secrets.add(body.ticket);
    return body.ticket;
  }

  /** Opens `endpoint` presenting a token of `kind` over `transport`. */
  async function open(endpoint: Endpoint, kind: Kind, transport: TransportCase): Promise<Outcome> {
    const base = wsUrl(server, endpoint);
    const common = { send: ['ping'], timeoutMs: 2000 };
    const expectMessages = endpoint === '/secured-ws' ? 2 : 3;
    switch (transport) {
      case 'bearer':
        return connect(base, {
          ...common,
          messages: expectMessages,
          headers: { authorization: `Bearer ${await token(kind, false)}` },
        });
      case 'subprotocol':
        return connect(base, {
          ...common,
          messages: expectMessages,
          protocols: ['wsgate.v1', `wsgate.bearer.${await token(kind, false)}`],
        });
      case 'query':
        return connect(`${base}?token=${await token(kind, false)}`, {
          ...common,
          messages: expectMessages,
        });
      case 'ticket': {
        // Tickets are minted from access tokens; a refresh token cannot mint one.
        const access = await token(kind === 'refresh' ? 'fresh' : kind, false);
        const ticket = await ticketFor(access);
        if (kind === 'refresh') {
          const refused = await fetch(`${server.url}/ws-ticket`, {
            method: 'POST',
            headers: { authorization: `Bearer ${await token('refresh', false)}` },
          });
          assert.equal(refused.status, 401);
        }
        return connect(`${base}?token=${ticket}`, { ...common, messages: expectMessages });
      }
      case 'cookie': {
        const value = await token(kind, true);
        const csrf = String(decodeJwt(value).csrf);
        const name = endpoint === '/ws/refresh' ? 'refresh_token_cookie' : 'access_token_cookie';
        return connect(`${base}?csrf_token=${encodeURIComponent(csrf)}`, {
          ...common,
          messages: expectMessages,
          headers: { cookie: `${name}=${value}`, origin: server.url },
        });
      }
      case 'first-message':
        return connect(base, {
          messages: expectMessages,
          timeoutMs: 2000,
          protocols: ['wsgate.v1'],
          send: [JSON.stringify({ type: 'auth', token: await token(kind, false) }), 'ping'],
        });
    }
  }

  const transports: TransportCase[] = [
    'bearer',
    'subprotocol',
    'query',
    'ticket',
    'cookie',
    'first-message',
  ];
  for (const endpoint of Object.keys(expectations) as Endpoint[]) {
    describe(endpoint, () => {
      for (const transport of transports) {
        for (const kind of ['fresh', 'stale', 'refresh'] as Kind[]) {
          let expected = expectations[endpoint][kind];
          // A ticket stands for an access token; presenting one where a refresh token is required is the wrong type.
          if (transport === 'ticket' && kind === 'refresh' && endpoint !== '/ws/refresh')
            expected = expectations[endpoint].fresh;
          if (transport === 'ticket' && endpoint === '/ws/refresh')
            expected = ['wrong_token_type', 401, 4401];
          const v1 = v1Transports.has(transport);
          const title =
            expected === 'ok'
              ? `accepts a ${kind} token over ${transport}`
              : `refuses a ${kind} token over ${transport} with ${v1 ? expected[2] : expected[1]} ${expected[0]}`;
          it(title, async () => {
            const outcome = await open(endpoint, kind, transport);
            if (expected === 'ok') assertAccepted(outcome, endpoint, 'johndoe', v1);
            else assertRefused(outcome, v1, expected[0], expected[1], expected[2]);
            if (outcome.kind === 'open') outcome.socket.terminate();
          });
        }
      }
    });
  }

  describe('without a credential', () => {
    it('greets a guest on /ws/optional and echoes', async () => {
      const outcome = await connect(wsUrl(server, '/ws/optional'), { send: ['hi'], messages: 2 });
      assert.equal(outcome.kind, 'open');
      if (outcome.kind === 'open') {
        assert.deepEqual(outcome.messages, ['Welcome guest!', 'You wrote: hi']);
        outcome.socket.terminate();
      }
    });

    it('refuses /ws before the upgrade with 401 and a bare challenge', async () => {
      const outcome = await connect(wsUrl(server, '/ws'));
      assert.equal(outcome.kind, 'http');
      if (outcome.kind !== 'http') return;
      assert.equal(outcome.status, 401);
      assert.equal(outcome.headers['www-authenticate'], 'Bearer realm="wsgate"');
      assert.deepEqual(outcome.body, {
        error: 'credential_missing',
        error_description: 'Not authenticated',
      });
    });

    it('closes a wsgate.v1 client with 4408 when no auth message comes in time', async () => {
      const ws = new WebSocket(wsUrl(server, '/ws'), ['wsgate.v1']);
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      // The wait is armed before the upgrade's answer is written: the client is waited for.
      timers.advance(authTimeoutMs - 1);
      const stillOpen = new Promise<string>((resolve) => ws.once('pong', () => resolve('open')));
      ws.ping();
      const early = closed.then((code) => `closed with ${code}`);
      assert.equal(await Promise.race([stillOpen, early]), 'open', 'open until the wait is over');
      timers.advance(1);
      assert.equal(await closed, 4408);
    });

    it('closes a wsgate.v1 client with 4401 when the first message is not auth', async () => {
      const outcome = await connect(wsUrl(server, '/ws'), {
        protocols: ['wsgate.v1'],
        send: ['{"type":"ping"}'],
      });
      assert.equal(outcome.kind, 'open');
      if (outcome.kind === 'open') assert.equal(outcome.close?.code, 4401);
    });

    it('closes a wsgate.v1 client with 4400 when the first message is not JSON', async () => {
      const outcome = await connect(wsUrl(server, '/ws'), {
        protocols: ['wsgate.v1'],
        send: ['hello'],
      });
      assert.equal(outcome.kind, 'open');
      if (outcome.kind === 'open') assert.equal(outcome.close?.code, 4400);
    });
  });

  describe('bad and conflicting credentials', () => {
    it('refuses two different credentials in one handshake with 400 / 4400', async () => {
      const a = await token('fresh', false);
      const b = await token('fresh', false);
      const http = await connect(`${wsUrl(server, '/ws')}?token=${b}`, {
        headers: { authorization: `Bearer ${a}` },
      });
      assertRefused(http, false, 'ambiguous_credential', 400, 4400);
      const v1 = await connect(wsUrl(server, '/ws'), {
        protocols: ['wsgate.v1', `wsgate.bearer.${a}`],
        headers: { authorization: `Bearer ${b}` },
      });
      assertRefused(v1, true, 'ambiguous_credential', 400, 4400);
    });

    it('refuses a bad token on /ws/optional rather than treating it as a guest', async () => {
      const outcome = await connect(wsUrl(server, '/ws/optional'), {
        headers: { authorization: 'Bearer not.a.token' },
      });
      assertRefused(outcome, false, 'invalid_token', 401, 4401);
      if (outcome.kind === 'http')
        assert.equal(
          outcome.headers['www-authenticate'],
          'Bearer realm="wsgate", error="invalid_token"',
        );
    });

    it('refuses an expired token with 401 / 4419', async () => {
      const access = await token('fresh', false);
      server.clock.advance(901_000);
      try {
        assertRefused(
          await connect(wsUrl(server, '/ws'), { headers: { authorization: `Bearer ${access}` } }),
          false,
          'token_expired',
          401,
          4419,
        );
        assertRefused(
          await connect(wsUrl(server, '/ws'), {
            protocols: ['wsgate.v1', `wsgate.bearer.${access}`],
          }),
          true,
          'token_expired',
          401,
          4419,
        );
      } finally {
        server.clock.advance(-901_000);
      }
    });

    it('refuses a token of a revoked session with 401 / 4410', async () => {
      const pair = await passwordGrant(server);
      secrets.add(pair.access_token);
      await fetch(`${server.url}/logout`, {
        method: 'POST',
        headers: { authorization: `Bearer ${pair.access_token}` },
      });
      assertRefused(
        await connect(wsUrl(server, '/ws'), {
          headers: { authorization: `Bearer ${pair.access_token}` },
        }),
        false,
        'session_revoked',
        401,
        4410,
      );
      assertRefused(
        await connect(wsUrl(server, '/ws'), {
          protocols: ['wsgate.v1', `wsgate.bearer.${pair.access_token}`],
        }),
        true,
        'session_revoked',
        401,
        4410,
      );
    });

    it('refuses a bearer subprotocol offered without wsgate.v1', async () => {
      const access = await token('fresh', false);
      const outcome = await connect(wsUrl(server, '/ws'), {
        protocols: [`wsgate.bearer.${access}`],
      });
      assertRefused(outcome, false, 'invalid_request', 400, 4400);
    });

    it('selects wsgate.v1 and never echoes the token in the handshake response', async () => {
      const access = await token('fresh', false);
      const outcome = await connect(wsUrl(server, '/ws'), {
        protocols: ['wsgate.v1', `wsgate.bearer.${access}`],
        messages: 1,
      });
      assert.equal(outcome.kind, 'open');
      if (outcome.kind === 'open') {
        assert.equal(outcome.protocol, 'wsgate.v1');
        outcome.socket.terminate();
      }
    });
  });

  describe('tickets', () => {
    it('work once and never twice', async () => {
      const ticket = await ticketFor(await token('fresh', false));
      const first = await connect(`${wsUrl(server, '/secured-ws')}?token=${ticket}`, {
        messages: 1,
      });
      assert.equal(first.kind, 'open');
      if (first.kind === 'open') {
        assert.deepEqual(first.messages, ['Welcome johndoe!']);
        first.socket.terminate();
      }
      const second = await connect(`${wsUrl(server, '/secured-ws')}?token=${ticket}`);
      assertRefused(second, false, 'invalid_token', 401, 4401);
    });

    it('work for exactly one of many sockets racing for the same ticket', async () => {
      const ticket = await ticketFor(await token('fresh', false));
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, () =>
          connect(`${wsUrl(server, '/secured-ws')}?token=${ticket}`, {
            messages: 1,
            timeoutMs: 2000,
          }),
        ),
      );
      const opened = outcomes.filter((o) => o.kind === 'open');
      const refused = outcomes.filter((o) => o.kind === 'http');
      assert.equal(opened.length, 1);
      assert.equal(refused.length, 7);
      for (const o of refused) if (o.kind === 'http') assert.equal(o.status, 401);
      for (const o of opened) if (o.kind === 'open') o.socket.terminate();
    });

    it('expire after 30 seconds', async () => {
      const ticket = await ticketFor(await token('fresh', false));
      server.clock.advance(30_001);
      try {
        assertRefused(
          await connect(`${wsUrl(server, '/ws')}?token=${ticket}`),
          false,
          'invalid_token',
          401,
          4401,
        );
      } finally {
        server.clock.advance(-30_001);
      }
    });

    it('stop working when their session is revoked', async () => {
      const pair = await passwordGrant(server);
      secrets.add(pair.access_token);
      const ticket = await ticketFor(pair.access_token);
      await fetch(`${server.url}/logout`, {
        method: 'POST',
        headers: { authorization: `Bearer ${pair.access_token}` },
      });
      assertRefused(
        await connect(`${wsUrl(server, '/ws')}?token=${ticket}`),
        false,
        'session_revoked',
        401,
        4410,
      );
    });

    it('can be minted with the access cookie and X-CSRF-Token, not with the cookie alone', async () => {
      const access = await token('fresh', true);
      const csrf = String(decodeJwt(access).csrf);
      const without = await fetch(`${server.url}/ws-ticket`, {
        method: 'POST',
        headers: { cookie: `access_token_cookie=${access}` },
      });
      assert.equal(without.status, 403);
      assert.equal(((await without.json()) as { error: string }).error, 'csrf_failed');
      const wrong = await fetch(`${server.url}/ws-ticket`, {
        method: 'POST',
        headers: { cookie: `access_token_cookie=${access}`, 'x-csrf-token': 'nope' },
      });
      assert.equal(wrong.status, 403);
      const ok = await fetch(`${server.url}/ws-ticket`, {
        method: 'POST',
        headers: { cookie: `access_token_cookie=${access}`, 'x-csrf-token': csrf },
      });
      assert.equal(ok.status, 200);
      secrets.add(((await ok.json()) as { ticket: string }).ticket);
    });
  });

  describe('cookies and origins', () => {
    async function cookieOpen(
      headers: Record<string, string>,
      csrf: string | undefined,
      protocols: string[] = [],
    ) {
      return connect(
        `${wsUrl(server, '/ws')}${csrf === undefined ? '' : `?csrf_token=${encodeURIComponent(csrf)}`}`,
        { headers, protocols, messages: 1 },
      );
    }

    it('refuses a cookie whose csrf_token does not match with 403 / 4403', async () => {
      const access = await token('fresh', true);
      const outcome = await cookieOpen(
        { cookie: `access_token_cookie=${access}`, origin: server.url },
        'wrong',
      );
      assertRefused(outcome, false, 'csrf_failed', 403, 4403);
      const v1 = await cookieOpen(
        { cookie: `access_token_cookie=${access}`, origin: server.url },
        'wrong',
        ['wsgate.v1'],
      );
      assertRefused(v1, true, 'csrf_failed', 403, 4403);
    });

    it('refuses a cookie token minted without a csrf claim', async () => {
      const access = await token('fresh', false);
      assertRefused(
        await cookieOpen(
          { cookie: `access_token_cookie=${access}`, origin: server.url },
          'anything',
        ),
        false,
        'csrf_failed',
        403,
        4403,
      );
    });

    it('refuses a cookie credential without an Origin header', async () => {
      const access = await token('fresh', true);
      const outcome = await cookieOpen(
        { cookie: `access_token_cookie=${access}` },
        String(decodeJwt(access).csrf),
      );
      assertRefused(outcome, false, 'origin_not_allowed', 403, 4403);
    });

    it('ignores an ambient cookie when no csrf_token is given', async () => {
      const access = await token('fresh', true);
      const outcome = await cookieOpen(
        { cookie: `access_token_cookie=${access}`, origin: server.url },
        undefined,
      );
      assertRefused(outcome, false, 'credential_missing', 401, 4401);
    });

    it('refuses a foreign Origin with 403 / 4403, whatever the credential', async () => {
      const access = await token('fresh', false);
      for (const origin of ['https://evil.example', 'null', 'http://127.0.0.1.evil.example']) {
        const http = await connect(wsUrl(server, '/ws'), {
          headers: { authorization: `Bearer ${access}`, origin },
        });
        assertRefused(http, false, 'origin_not_allowed', 403, 4403);
      }
      const v1 = await connect(wsUrl(server, '/ws'), {
        headers: { origin: 'https://evil.example' },
        protocols: ['wsgate.v1', `wsgate.bearer.${access}`],
      });
      assertRefused(v1, true, 'origin_not_allowed', 403, 4403);
    });

    it('accepts the server’s own origin', async () => {
      const access = await token('fresh', false);
      const outcome = await connect(wsUrl(server, '/ws'), {
        headers: { authorization: `Bearer ${access}`, origin: server.url },
        messages: 1,
      });
      assert.equal(outcome.kind, 'open');
      if (outcome.kind === 'open') outcome.socket.terminate();
    });
  });

  describe('limits and lifecycle', () => {
    it('closes a socket that sends more than 64 KiB in one message with 1009', async () => {
      const access = await token('fresh', false);
      const outcome = await connect(wsUrl(server, '/secured-ws'), {
        headers: { authorization: `Bearer ${access}` },
        send: ['x'.repeat(64 * 1024 + 1)],
      });
      assert.equal(outcome.kind, 'open');
      if (outcome.kind === 'open') assert.equal(outcome.close?.code, 1009);
    });

    it('honours limits given as flags, e.g. --max-message 1024', async () => {
      const small = await startTestServer({
        'max-message': '1024',
        'max-connections-per-user': '1',
      });
      try {
        const pair = await passwordGrant(small);
        secrets.add(pair.access_token);
        const headers = { authorization: `Bearer ${pair.access_token}` };
        const first = await connect(wsUrl(small, '/secured-ws'), {
          headers,
          send: ['x'.repeat(1025)],
        });
        assert.equal(first.kind, 'open');
        if (first.kind === 'open') assert.equal(first.close?.code, 1009);
        const held = await connect(wsUrl(small, '/secured-ws'), { headers, messages: 1 });
        assert.equal(held.kind, 'open');
        const second = await connect(wsUrl(small, '/secured-ws'), { headers });
        assertRefused(second, false, 'rate_limited', 429, 4429);
        if (held.kind === 'open') held.socket.terminate();
      } finally {
        await small.stop();
      }
    });

    it('answers 404 for a path with no endpoint', async () => {
      const outcome = await connect(wsUrl(server, '/nowhere'));
      assert.equal(outcome.kind, 'http');
      if (outcome.kind === 'http') assert.equal(outcome.status, 404);
    });

    it('refuses query JWTs outside demo mode unless allowed', async () => {
      const strict = await startTestServer({ demo: false });
      try {
        await strict.runtime.users.add('alice', 'alice-pass');
        const pair = await passwordGrant(strict, 'alice', 'alice-pass');
        secrets.add(pair.access_token);
        const outcome = await connect(`${wsUrl(strict, '/ws')}?token=${pair.access_token}`);
        assertRefused(outcome, false, 'invalid_request', 400, 4400);
        const bearer = await connect(wsUrl(strict, '/ws'), {
          headers: { authorization: `Bearer ${pair.access_token}` },
          messages: 1,
        });
        assert.equal(bearer.kind, 'open');
        if (bearer.kind === 'open') bearer.socket.terminate();
      } finally {
        await strict.stop();
      }
    });

    it('answers 429 with Retry-After, or 4429, past the handshake rate of one address', async () => {
      const limited = await startTestServer(
        {},
        { gateLimits: { handshakeRate: 1, handshakeBurst: 3 } },
      );
      try {
        for (let i = 0; i < 3; i++) {
          const outcome = await connect(wsUrl(limited, '/ws/optional'), { messages: 1 });
          assert.equal(outcome.kind, 'open');
          if (outcome.kind === 'open') outcome.socket.terminate();
        }
        const http = await connect(wsUrl(limited, '/ws/optional'));
        assertRefused(http, false, 'rate_limited', 429, 4429);
        if (http.kind === 'http') assert.equal(http.headers['retry-after'], '1');
        const v1 = await connect(wsUrl(limited, '/ws/optional'), { protocols: ['wsgate.v1'] });
        assertRefused(v1, true, 'rate_limited', 429, 4429);
        if (v1.kind === 'open') assert.match(v1.close?.reason ?? '', /retry after 1s/);
        limited.clock.advance(1000);
        const again = await connect(wsUrl(limited, '/ws/optional'), { messages: 1 });
        assert.equal(again.kind, 'open');
        if (again.kind === 'open') again.socket.terminate();
      } finally {
        await limited.stop();
      }
    });

    it('drains on close: open sockets get 1001 and new handshakes 503', async () => {
      const node = await startTestServer();
      const pair = await passwordGrant(node);
      secrets.add(pair.access_token);
      const outcome = await connect(wsUrl(node, '/secured-ws'), {
        headers: { authorization: `Bearer ${pair.access_token}` },
        messages: 1,
      });
      assert.equal(outcome.kind, 'open');
      if (outcome.kind !== 'open') return;
      const closed = new Promise<number>((resolve) =>
        outcome.socket.once('close', (code) => resolve(code)),
      );
      const drained = node.gate.drain();
      const during = await connect(wsUrl(node, '/ws/optional'));
      assertRefused(during, false, 'draining', 503, 1001);
      assert.equal(await closed, 1001);
      await drained;
      await node.stop();
    });
  });

  it('writes no token, ticket, cookie or query string to the log', () => {
    const text = server.logs.text;
    assert.ok(
      server.logs.lines.some((l) => l.includes('handshake rejected')),
      'rejections are logged',
    );
    assert.ok(secrets.size > 50);
    for (const secret of secrets) assert.ok(!text.includes(secret), 'a secret reached the log');
    assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]{10,}/);
    assert.doesNotMatch(text, /csrf_token=|token=|\?/);
  });
});
