import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { RedisPubSub } from '../src/pubsub/redis.js';
import { backchannelLogoutEvent } from '../src/issuers/logout-token.js';
import {
  startTestServer,
  passwordGrant,
  postForm,
  postJson,
  type TestServer,
} from './support/server.js';
import { connect, wsUrl } from './support/ws.js';
import { startTestProvider, type TestProvider } from './support/oidc.js';
import { FixtureIssuer } from './support/issuer.js';
import { redisUrl, requireReachable, redisReachable } from './support/services.js';
import {
  bearer,
  startLogoutRelay,
  ticketFor,
  typed,
  v1,
  type LogoutRelay,
} from './support/external.js';

const manyHandshakes = { handshakeBurst: 100_000 } as const;

/** The status of a handshake refused over HTTP, or the close code of a v1 socket. */
async function refusal(server: TestServer, path: string, token: string, how: 'bearer' | 'v1') {
  const outcome = await connect(
    wsUrl(server, path),
    how === 'bearer'
      ? { headers: { authorization: `Bearer ${token}` } }
      : { protocols: ['wsgate.v1', `wsgate.bearer.${token}`] },
  );
  if (outcome.kind === 'http') return outcome.status;
  return outcome.close?.code;
}

/** `promise`, or a failure once `ms` have passed without it. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

describe('back-channel logout from a real provider, two nodes over Redis', () => {
  let op: TestProvider;
  let relay: LogoutRelay;
  let a: TestServer;
  let b: TestServer;
  let dataDir: string;

  before(async () => {
    requireReachable('Redis', redisUrl, await redisReachable());
    relay = await startLogoutRelay();
    op = await startTestProvider({ backchannelLogoutUri: relay.url, accessTokenTtl: 600 });
    dataDir = mkdtempSync(join(tmpdir(), 'wsgate-bcl-'));
    const prefix = `wsgate-test-${randomUUID().slice(0, 8)}:`;
    const options = { trust: [op.issuer], 'backchannel-audience': [op.clientId] };
    // The database poll is slowed to a minute: what reaches node B comes over Redis.
    const extra = { dataDir, gateLimits: manyHandshakes, revocationPollMs: 60_000 };
    [a, b] = await Promise.all([
      startTestServer(options, { ...extra, bus: new RedisPubSub(redisUrl, { prefix }) }),
      startTestServer(options, { ...extra, bus: new RedisPubSub(redisUrl, { prefix }) }),
    ]);
    relay.target = `${a.url}/backchannel-logout`;
  });

  beforeEach(() => {
    a.clock.set(Date.now());
    b.clock.set(Date.now());
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    await op?.close();
    await relay?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('closes the session’s sockets on both nodes with 4410, and they stay closed on reconnect', async () => {
    const alice = await op.authorizationCode('alice');
    const sid = decodeJwt(alice.access_token).sid;
    assert.equal(typeof sid, 'string');
    const bob = await op.authorizationCode('bob');
    // A ticket minted before the logout must not open a socket after it.
    const ticket = ((await (await ticketFor(a, alice.access_token)).json()) as { ticket: string })
      .ticket;
    const onA = await bearer(a, '/ws', alice.access_token);
    const onB = await v1(b, '/chat', alice.access_token);
    await onB.next(typed('welcome'));
    const bobOnB = await bearer(b, '/ws', bob.access_token);

    await op.endSession(alice.cookies, alice.id_token!);
    assert.deepEqual(relay.answers, [200]);
    // DESIGN §4: within a second on every node; 2 s leaves room for a loaded test machine.
    assert.equal((await within(onA.closed, 2000)).code, 4410);
    assert.equal((await within(onB.closed, 2000)).code, 4410);

    // The same token again, on either node and any transport: refused as a revoked session.
    assert.equal(await refusal(a, '/ws', alice.access_token, 'bearer'), 401);
    assert.equal(await refusal(b, '/ws', alice.access_token, 'bearer'), 401);
    assert.equal(await refusal(b, '/chat', alice.access_token, 'v1'), 4410);
    const byTicket = await connect(wsUrl(a, `/ws?token=${ticket}`));
    assert.equal(byTicket.kind === 'http' && byTicket.status, 401);
    assert.equal((await ticketFor(a, alice.access_token)).status, 401);

    // Bob's session is another one: still open.
    bobOnB.ws.send('still here');
    await bobOnB.next((m) => m === 'You wrote: still here');
    bobOnB.ws.close();

    // The provider's logout token again: a replay, refused; nothing else changes.
    const replay = await postForm(`${b.url}/backchannel-logout`, {
      logout_token: relay.tokens[0]!,
    });
    assert.equal(replay.status, 400);
    assert.deepEqual(await replay.json(), { error: 'invalid_request' });
    assert.equal(replay.headers.get('cache-control'), 'no-store');
  });

  it('remembers the revocation in the database: a node started later refuses the token too', async () => {
    const carol = await op.authorizationCode('carol');
    await op.endSession(carol.cookies, carol.id_token!);
    const c = await startTestServer(
      { trust: [op.issuer], 'backchannel-audience': [op.clientId] },
      { dataDir },
    );
    try {
      c.clock.set(Date.now());
      assert.equal(await refusal(c, '/ws', carol.access_token, 'bearer'), 401);
      const dave = await op.authorizationCode('dave');
      const ok = await bearer(c, '/ws', dave.access_token);
      ok.ws.close();
    } finally {
      await c.stop();
    }
  });
});

describe('back-channel logout: every check (DESIGN §8)', () => {
  let idp: FixtureIssuer;
  let other: FixtureIssuer;
  let server: TestServer;

  before(async () => {
    idp = await FixtureIssuer.start();
    await idp.addKey('RS256', 'k1');
    other = await FixtureIssuer.start();
    await other.addKey('RS256', 'k1');
    server = await startTestServer(
      { trust: [idp.issuer], 'backchannel-audience': ['chat-app'], 'admin-issuer': [idp.issuer] },
      { gateLimits: manyHandshakes },
    );
  });

  beforeEach(() => server.clock.set(Date.now()));

  after(async () => {
    await server?.stop();
    await idp?.close();
    await other?.close();
  });

  const now = () => Math.floor(server.clock() / 1000);

  function accessToken(claims: Record<string, unknown> = {}): Promise<string> {
    return idp.sign({
      sub: 'alice',
      aud: 'wsgate',
      iat: now(),
      exp: now() + 600,
      jti: randomUUID(),
      ...claims,
    });
  }

  function logoutClaims(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      aud: 'chat-app',
      iat: now(),
      exp: now() + 120,
      jti: randomUUID(),
      events: { [backchannelLogoutEvent]: {} },
      ...extra,
    };
  }

  function logoutToken(
    extra: Record<string, unknown> = {},
    signer: FixtureIssuer = idp,
  ): Promise<string> {
    return signer.sign(logoutClaims(extra), { header: { typ: 'logout+jwt' } });
  }

  function logout(token: string) {
    return postForm(`${server.url}/backchannel-logout`, { logout_token: token });
  }

  it('refuses each bad logout token with 400 invalid_request and leaves the session open', async () => {
    const sid = randomUUID();
    const socket = await bearer(server, '/ws', await accessToken({ sid }));
    const bad: [string, string | (() => Promise<Response>)][] = [
      ['with a nonce', await logoutToken({ sid, nonce: 'n' })],
      ['without events', await logoutToken({ sid, events: undefined })],
      ['with events lacking the member', await logoutToken({ sid, events: { other: {} } })],
      ['stale (iat over 5 min old)', await logoutToken({ sid, iat: now() - 301 })],
      ['from the future (iat over 60 s ahead)', await logoutToken({ sid, iat: now() + 61 })],
      ['expired', await logoutToken({ sid, exp: now() })],
      ['for another audience', await logoutToken({ sid, aud: 'someone-else' })],
      ['from an untrusted issuer', await logoutToken({ sid }, other)],
      [
        'typed as an access token',
        await idp.sign(logoutClaims({ sid }), { header: { typ: 'at+jwt' } }),
      ],
      ['without sid or sub', await logoutToken({ sub: undefined })],
      ['not a JWT', 'garbage'],
      ['missing', () => postForm(`${server.url}/backchannel-logout`, {})],
      [
        'sent as JSON',
        async () =>
          postJson(`${server.url}/backchannel-logout`, {
            logout_token: await logoutToken({ sid }),
          }),
      ],
    ];
    for (const [what, token] of bad) {
      const res = typeof token === 'string' ? await logout(token) : await token();
      assert.equal(res.status, 400, what);
      assert.deepEqual(await res.json(), { error: 'invalid_request' }, what);
      assert.equal(res.headers.get('cache-control'), 'no-store', what);
    }
    socket.ws.send('alive');
    await socket.next((m) => m === 'You wrote: alive');
    // Nothing was recorded: the session's own valid logout still works, once.
    const valid = await logoutToken({ sid });
    assert.equal((await logout(valid)).status, 200);
    assert.equal((await socket.closed).code, 4410);
    assert.equal((await logout(valid)).status, 400, 'replayed');
  });

  it('answers 200 to a valid logout that matches no socket', async () => {
    assert.equal((await logout(await logoutToken({ sid: randomUUID() }))).status, 200);
  });

  it('ends a subject (Auth0-shaped tokens, no sid): tokens issued before refused, later ones accepted', async () => {
    const sub = `auth0|${randomUUID()}`;
    const token = await accessToken({
      sub,
      aud: ['wsgate', 'https://tenant.example/userinfo'],
      permissions: ['chat:read'],
    });
    const socket = await bearer(server, '/ws', token);
    // The provider's clock runs 30 s ahead: the revocation still ends only what was issued by now.
    assert.equal((await logout(await logoutToken({ sub, iat: now() + 30 }))).status, 200);
    assert.equal((await socket.closed).code, 4410);
    assert.equal(await refusal(server, '/ws', token, 'bearer'), 401);
    server.clock.advance(2000);
    const later = await bearer(server, '/ws', await accessToken({ sub }));
    later.ws.close();
  });

  it('with a sid and a sub, also ends the subject’s tokens that name no session', async () => {
    const sub = randomUUID();
    const sid = randomUUID();
    const withSid = await bearer(server, '/ws', await accessToken({ sub, sid }));
    const withoutSid = await bearer(server, '/ws', await accessToken({ sub }));
    const otherSession = await bearer(server, '/ws', await accessToken({ sub, sid: randomUUID() }));
    assert.equal((await logout(await logoutToken({ sid, sub }))).status, 200);
    assert.equal((await withSid.closed).code, 4410);
    assert.equal((await withoutSid.closed).code, 4410);
    otherSession.ws.send('alive');
    await otherSession.next((m) => m === 'You wrote: alive');
    otherSession.ws.close();
  });

  it('never lets one issuer’s logout end another issuer’s session of the same sid', async () => {
    const sid = randomUUID();
    const socket = await bearer(server, '/ws', await accessToken({ sid }));
    // A local session id, from another issuer's point of view: nothing of it is ended either.
    const local = await passwordGrant(server);
    const localSocket = await bearer(server, '/ws', local.access_token);
    assert.equal(
      (await logout(await logoutToken({ sid: decodeJwt(local.access_token).sid }))).status,
      200,
    );
    localSocket.ws.send('alive');
    await localSocket.next((m) => m === 'You wrote: alive');
    socket.ws.send('alive');
    await socket.next((m) => m === 'You wrote: alive');
    socket.ws.close();
    localSocket.ws.close();
  });

  describe('POST /admin/revoke', () => {
    const revoke = (token: string | undefined, body: unknown) =>
      postJson(
        `${server.url}/admin/revoke`,
        body,
        token === undefined ? {} : { authorization: `Bearer ${token}` },
      );

    it('revokes an external subject or session with an --admin-issuer token', async () => {
      const admin = await accessToken({ sub: 'ops-bot', scope: 'wsgate:admin' });
      const sub = randomUUID();
      const sid = randomUUID();
      const bySub = await bearer(server, '/ws', await accessToken({ sub }));
      const bySid = await bearer(server, '/ws', await accessToken({ sid }));
      const one = await revoke(admin, { user: sub, issuer: idp.issuer });
      assert.equal(one.status, 200);
      assert.deepEqual(await one.json(), { sessions: 1 });
      assert.equal((await bySub.closed).code, 4410);
      const two = await revoke(admin, { session: sid, issuer: idp.issuer });
      assert.equal(two.status, 200);
      assert.equal((await bySid.closed).code, 4410);
    });

    it('revokes a wsgate user’s sessions with a wsgate token carrying wsgate:admin', async () => {
      await server.runtime.users.add('operator', 'operator-password', 'wsgate:admin');
      const admin = (await passwordGrant(server, 'operator', 'operator-password')).access_token;
      const jane = await passwordGrant(server, 'janedoe', 'secret2');
      const socket = await bearer(server, '/ws', jane.access_token);
      const res = await revoke(admin, { user: 'janedoe' });
      assert.equal(res.status, 200);
      assert.ok(((await res.json()) as { sessions: number }).sessions >= 1);
      assert.equal((await socket.closed).code, 4410);
      assert.equal(await refusal(server, '/ws', jane.access_token, 'bearer'), 401);
    });

    it('answers 403 without the scope, 401 without a token, 400 to a bad body', async () => {
      const plain = (await passwordGrant(server)).access_token;
      assert.equal((await revoke(plain, { user: 'janedoe' })).status, 403);
      // wsgate:admin from an issuer that is not an --admin-issuer is dropped: 403.
      const notAdmin = await other.sign({
        sub: 'x',
        aud: 'wsgate',
        iat: now(),
        exp: now() + 60,
        scope: 'wsgate:admin',
      });
      assert.equal((await revoke(notAdmin, { user: 'janedoe' })).status, 401, 'untrusted');
      assert.equal((await revoke(undefined, { user: 'janedoe' })).status, 401);
      const admin = await accessToken({ sub: 'ops-bot', scope: 'wsgate:admin' });
      assert.equal((await revoke(admin, {})).status, 400);
      assert.equal((await revoke(admin, { user: 'a', session: 'b' })).status, 400);
      assert.equal((await revoke(admin, { user: 'a', issuer: 'https://x.example' })).status, 400);
    });
  });
});

describe('POST /admin/revoke: wsgate:admin only from an --admin-issuer', () => {
  it('refuses the scope from a trusted issuer that is not an admin issuer', async () => {
    const idp = await FixtureIssuer.start();
    await idp.addKey('RS256', 'k1');
    const server = await startTestServer({ trust: [idp.issuer] });
    try {
      const now = Math.floor(server.clock() / 1000);
      const token = await idp.sign({
        sub: 'ops-bot',
        aud: 'wsgate',
        iat: now,
        exp: now + 60,
        scope: 'wsgate:admin',
      });
      const res = await postJson(
        `${server.url}/admin/revoke`,
        { user: 'janedoe' },
        { authorization: `Bearer ${token}` },
      );
      assert.equal(res.status, 403);
    } finally {
      await server.stop();
      await idp.close();
    }
  });
});

describe('back-channel logout when the database fails', () => {
  it('answers 500, not 400, so that the provider sends the logout again', async () => {
    const idp = await FixtureIssuer.start();
    await idp.addKey('RS256', 'k1');
    const server = await startTestServer({
      trust: [idp.issuer],
      'backchannel-audience': ['chat-app'],
    });
    try {
      const now = Math.floor(server.clock() / 1000);
      const token = await idp.sign(
        {
          aud: 'chat-app',
          iat: now,
          exp: now + 120,
          jti: randomUUID(),
          sid: randomUUID(),
          events: { [backchannelLogoutEvent]: {} },
        },
        { header: { typ: 'logout+jwt' } },
      );
      await server.runtime.storage.close();
      const res = await postForm(`${server.url}/backchannel-logout`, { logout_token: token });
      assert.equal(res.status, 500);
    } finally {
      // Closing a closed database fails: the data dir is removed here instead.
      await server.stop().catch(() => rmSync(server.dataDir, { recursive: true, force: true }));
      await idp.close();
    }
  });
});
