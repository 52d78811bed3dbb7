import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { decodeJwt } from 'jose';
import { startTestServer, passwordGrant, type TestServer } from './support/server.js';
import { connect, wsUrl } from './support/ws.js';
import { startTestProvider, type TestProvider } from './support/oidc.js';
import { FixtureIssuer } from './support/issuer.js';
import { startUpstream, type Upstream } from './support/upstream.js';
import { loadConfig, ConfigError } from '../src/config.js';
import {
  bearer,
  live,
  startLogoutRelay,
  ticketFor,
  typed,
  v1,
  type Live,
  type LogoutRelay,
} from './support/external.js';

const manyHandshakes = { handshakeBurst: 100_000 } as const;

describe('external identity providers at the server (DESIGN §8)', () => {
  let op: TestProvider;
  let idp: FixtureIssuer;
  let server: TestServer;
  let opHost: string;
  let relay: LogoutRelay;

  before(async () => {
    relay = await startLogoutRelay();
    op = await startTestProvider({ accessTokenTtl: 300, backchannelLogoutUri: relay.url });
    idp = await FixtureIssuer.start('/realms/chat');
    await idp.addKey('RS256', 'kc-1');
    server = await startTestServer(
      {
        trust: [op.issuer, idp.issuer],
        'backchannel-audience': [op.clientId],
        'scope-claim': 'realm_access.roles',
        'username-claim': 'preferred_username',
      },
      { gateLimits: { ...manyHandshakes, connectionsPerUser: 3 } },
    );
    opHost = new URL(op.issuer).host;
    relay.target = `${server.url}/backchannel-logout`;
  });

  // The provider signs with the real clock; the server's clock follows it between tests.
  beforeEach(() => server.clock.set(Date.now()));

  after(async () => {
    await server?.stop();
    await op?.close();
    await idp?.close();
    await relay?.close();
  });

  /** A Keycloak-shaped access token from the fixture issuer. */
  function keycloakToken(extra: Record<string, unknown> = {}): Promise<string> {
    const now = Math.floor(server.clock() / 1000);
    return idp.sign({
      sub: randomUUID(),
      preferred_username: 'kate',
      aud: ['account', 'wsgate'],
      azp: 'chat-app',
      sid: randomUUID(),
      realm_access: { roles: ['chat:read', 'chat:write', 'offline_access'] },
      scope: 'openid profile',
      iat: now,
      exp: now + 300,
      jti: randomUUID(),
      ...extra,
    });
  }

  it('opens /ws with a client-credentials token over the header, the subprotocol, a ticket and the first message', async () => {
    const { access_token: token } = await op.clientCredentials('chat:read');
    const expectDecoded = async (c: Live) => {
      const line = await c.next((m) => m.startsWith('Here your decoded token: '));
      const claims = JSON.parse(line.slice('Here your decoded token: '.length)) as Record<
        string,
        unknown
      >;
      assert.equal(claims.iss, op.issuer);
      assert.equal(claims.sub, op.clientId);
      assert.equal(claims.fresh, false);
      c.ws.close();
    };
    await expectDecoded(await bearer(server, '/ws', token));
    await expectDecoded(await v1(server, '/ws', token));
    const res = await ticketFor(server, token);
    assert.equal(res.status, 200);
    const { ticket } = (await res.json()) as { ticket: string };
    await expectDecoded(await live(new WebSocket(wsUrl(server, `/ws?token=${ticket}`))));
    const first = await live(new WebSocket(wsUrl(server, '/ws'), ['wsgate.v1']));
    first.send({ type: 'auth', token });
    await expectDecoded(first);
    // Demo mode accepts ?token=<jwt> too (fastapi-jwt-auth compatibility).
    await expectDecoded(await live(new WebSocket(wsUrl(server, `/ws?token=${token}`))));
  });

  it('refuses an external token in the access cookie: the cookie is wsgate’s own sign-in', async () => {
    const { access_token: token } = await op.clientCredentials();
    const csrf = 'x'.repeat(24);
    const outcome = await connect(wsUrl(server, `/ws?csrf_token=${csrf}`), {
      headers: { cookie: `access_token_cookie=${token}`, origin: server.url },
    });
    assert.equal(outcome.kind, 'http');
    assert.equal(outcome.kind === 'http' && outcome.status, 401);
  });

  it('chats as <issuer host>:<name> with a token from the authorization code flow', async () => {
    const tokens = await op.authorizationCode('alice');
    assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');
    assert.ok(decodeJwt(tokens.access_token).sid, 'the access token carries the provider sid');
    const c = await bearer(server, '/chat', tokens.access_token);
    const welcome = JSON.parse(await c.next(typed('welcome'))) as { user: string };
    // preferred_username is alice at the provider too; the name carries the issuer's host.
    assert.equal(welcome.user, `${opHost}:alice`);
    c.send({ type: 'join', room: 'general' });
    await c.next(typed('joined'));
    c.send({ type: 'send', room: 'general', text: 'hello from the provider', id: 'm1' });
    const message = JSON.parse(await c.next(typed('message'))) as { user: string; text: string };
    assert.equal(message.user, `${opHost}:alice`);
    c.ws.close();
  });

  it('reads scopes from a claim path, so a Keycloak token without chat:write cannot send', async () => {
    const readOnly = await keycloakToken({ realm_access: { roles: ['chat:read'] } });
    const c = await bearer(server, '/chat', readOnly);
    const welcome = JSON.parse(await c.next(typed('welcome'))) as { user: string };
    assert.equal(welcome.user, `${new URL(idp.issuer).host}:kate`);
    c.send({ type: 'send', room: 'general', text: 'nope' });
    const error = JSON.parse(await c.next(typed('error'))) as { code: string };
    assert.equal(error.code, 'insufficient_scope');
    c.ws.close();
  });

  it('refuses a token of an untrusted issuer with 401', async () => {
    const stranger = await FixtureIssuer.start();
    try {
      await stranger.addKey('RS256', 'kc-1');
      const now = Math.floor(server.clock() / 1000);
      const token = await stranger.sign({ sub: 'x', aud: 'wsgate', iat: now, exp: now + 60 });
      const outcome = await connect(wsUrl(server, '/ws'), {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(outcome.kind === 'http' && outcome.status, 401);
    } finally {
      await stranger.close();
    }
  });

  it('never lets an external sub equal to a local username pass for that user', async () => {
    const token = await keycloakToken({ sub: 'johndoe', preferred_username: 'johndoe' });
    const c = await bearer(server, '/secured-ws', token);
    const welcome = await c.next((m) => m.startsWith('Welcome '));
    assert.equal(welcome, `Welcome ${new URL(idp.issuer).host}:johndoe!`);
    // Limits key on (issuer, sub): the local johndoe's sockets and this one count apart.
    const local = await passwordGrant(server);
    const locals = await Promise.all(
      [1, 2, 3].map(() => bearer(server, '/ws', local.access_token)),
    );
    assert.equal(server.gate.countUser('johndoe'), 3);
    const fourth = await connect(wsUrl(server, '/ws'), {
      headers: { authorization: `Bearer ${local.access_token}` },
    });
    assert.equal(fourth.kind === 'http' && fourth.status, 429);
    const second = await bearer(server, '/secured-ws', token);
    await second.next((m) => m.startsWith('Welcome '));
    for (const s of [c, second, ...locals]) s.ws.close();
  });

  it('limits sockets per external (issuer, sub)', async () => {
    const sub = randomUUID();
    const sockets = await Promise.all(
      [1, 2, 3].map(async () => bearer(server, '/ws', await keycloakToken({ sub }))),
    );
    const over = await connect(wsUrl(server, '/ws'), {
      headers: { authorization: `Bearer ${await keycloakToken({ sub })}` },
    });
    assert.equal(over.kind === 'http' && over.status, 429);
    const other = await bearer(server, '/ws', await keycloakToken());
    for (const s of [...sockets, other]) s.ws.close();
  });

  it('never treats an external token as fresh or as a refresh token', async () => {
    const { access_token: token } = await op.clientCredentials();
    const fresh = await connect(wsUrl(server, '/ws/fresh'), {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(fresh.kind === 'http' && fresh.status, 403);
    const refresh = await connect(wsUrl(server, '/ws/refresh'), {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(refresh.kind === 'http' && refresh.status, 401);
    assert.deepEqual(refresh.kind === 'http' && refresh.body, {
      error: 'wrong_token_type',
      error_description: 'Wrong token type for this endpoint',
    });
  });

  it('closes 4419 at exp, and re-authenticates in band only with a token of the same issuer and subject', async () => {
    const tokens = await op.authorizationCode('carol');
    const exp = decodeJwt(tokens.access_token).exp! * 1000;
    const c = await v1(server, '/ws', tokens.access_token);
    await c.next((m) => m.startsWith('Here your decoded token: '));
    server.clock.set(exp - 30_000);
    server.gate.checkExpiry();
    await c.next(typed('expiring'));
    // Another subject of the same issuer, and a local user named like her: refused.
    const dave = await op.authorizationCode('dave');
    c.send({ type: 'auth', token: dave.access_token });
    assert.match(await c.next(typed('error')), /invalid_token/);
    const kc = await keycloakToken({ sub: 'carol' });
    c.send({ type: 'auth', token: kc });
    assert.match(await c.next(typed('error')), /invalid_token/);
    // Her refreshed token: accepted, and the socket lives on past the old exp.
    const renewed = await op.refresh(tokens.refresh_token!);
    const newExp = decodeJwt(renewed.access_token).exp!;
    c.send({ type: 'auth', token: renewed.access_token });
    assert.deepEqual(JSON.parse(await c.next(typed('reauthenticated'))), {
      type: 'reauthenticated',
      exp: newExp,
    });
    server.clock.set(newExp * 1000);
    server.gate.checkExpiry();
    assert.equal((await c.closed).code, 4419);
  });

  it('keeps sockets open across a key rotation, verifies new tokens after one refetch, and stops a withdrawn key', async () => {
    const old = (await op.clientCredentials()).access_token;
    const before = await bearer(server, '/ws', old);
    await op.rotateKeys();
    server.clock.advance(30_000);
    const rotated = (await op.clientCredentials()).access_token;
    const after = await bearer(server, '/ws', rotated);
    await after.next((m) => m.startsWith('Here your decoded token: '));
    before.ws.send('still here');
    await before.next((m) => m === 'You wrote: still here');
    await op.rotateKeys({ withdraw: true });
    server.clock.advance(10 * 60_000);
    const refused = await connect(wsUrl(server, '/ws'), {
      headers: { authorization: `Bearer ${rotated}` },
    });
    assert.equal(refused.kind === 'http' && refused.status, 401);
    before.ws.close();
    after.ws.close();
  });

  it('lists each issuer’s key-set state in /readyz', async () => {
    const res = await fetch(`${server.url}/readyz`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { issuers: { issuer: string; state: string }[] };
    assert.deepEqual(
      body.issuers.map((i) => [i.issuer, i.state]),
      [
        [op.issuer, 'ready'],
        [idp.issuer, 'ready'],
      ],
    );
  });

  it('mints tickets for external bearers, rate-limited per (issuer, sub)', async () => {
    const token = await keycloakToken();
    const res = await ticketFor(server, token);
    assert.equal(res.status, 200);
    const unknown = await ticketFor(server, 'not-a-token');
    assert.equal(unknown.status, 401);
  });
});

describe('external issuers: start and configuration', () => {
  it('starts with an issuer that does not answer, lists it unavailable, and 401s its tokens', async () => {
    const idp = await FixtureIssuer.start();
    await idp.addKey('RS256', 'k');
    idp.override = (_req, res) => {
      res.writeHead(503).end();
      return true;
    };
    const server = await startTestServer({ trust: [idp.issuer] });
    try {
      const ready = await fetch(`${server.url}/readyz`);
      assert.equal(ready.status, 200);
      const body = (await ready.json()) as { issuers: { state: string; error: string }[] };
      assert.equal(body.issuers[0]?.state, 'unavailable');
      const now = Math.floor(server.clock() / 1000);
      const token = await idp.sign({ sub: 'a', aud: 'wsgate', iat: now, exp: now + 60 });
      const outcome = await connect(wsUrl(server, '/ws'), {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(outcome.kind === 'http' && outcome.status, 401);
      // Its keys arrive: the same token verifies (after the 30 s cooldown).
      idp.override = undefined;
      server.clock.advance(30_000);
      const c = await bearer(server, '/ws', token);
      await c.next((m) => m.startsWith('Here your decoded token: '));
      c.ws.close();
    } finally {
      await server.stop();
      await idp.close();
    }
  });

  it('refuses to start when the discovery document names another issuer, naming both', async () => {
    const idp = await FixtureIssuer.start();
    idp.metadataIssuer = 'https://evil.example';
    try {
      await assert.rejects(startTestServer({ trust: [idp.issuer] }), (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, new RegExp(idp.issuer.replace(/[.:/]/g, '\\$&')));
        assert.match(err.message, /https:\/\/evil\.example/);
        return true;
      });
    } finally {
      await idp.close();
    }
  });

  it('parses the issuer options from flags and the environment', () => {
    const config = loadConfig(
      { 'trust-audience': ['api://chat'], 'scope-claim': 'permissions' },
      {
        WSGATE_TRUST:
          'https://id.example/realms/a, https://tenant.example/=https://tenant.example/keys',
        WSGATE_BACKCHANNEL_AUDIENCE: 'chat-app',
        WSGATE_ADMIN_ISSUER: 'https://id.example/realms/a',
        WSGATE_TRUST_STALE: '2h',
        WSGATE_TRUST_REVOCATION_TTL: '12h',
        WSGATE_USERNAME_CLAIM: 'email',
      },
    );
    assert.deepEqual(config.trust, [
      { issuer: 'https://id.example/realms/a' },
      { issuer: 'https://tenant.example/', jwksUri: 'https://tenant.example/keys' },
    ]);
    assert.deepEqual(config.trustAudiences, ['api://chat']);
    assert.deepEqual(config.backchannelAudiences, ['chat-app']);
    assert.deepEqual(config.adminIssuers, ['https://id.example/realms/a']);
    assert.equal(config.trustStale, 7200);
    assert.equal(config.trustRevocationTtl, 43_200);
    assert.equal(config.usernameClaim, 'email');
    assert.equal(config.scopeClaim, 'permissions');
    assert.deepEqual(loadConfig({}).trustAudiences, ['wsgate']);
  });

  it('refuses bad issuer options with a one-line error naming the flag', () => {
    const cases: [Parameters<typeof loadConfig>[0], RegExp][] = [
      [{ trust: ['http://id.example'] }, /--trust must use https/],
      [{ trust: ['not a url'] }, /--trust is not an absolute URL/],
      [
        { 'admin-issuer': ['https://id.example'] },
        /--admin-issuer "https:\/\/id.example" is not a --trust issuer/,
      ],
      [
        { trust: ['https://id.example'], 'trust-stale': '25h' },
        /--trust-stale "25h" must be at most 24h/,
      ],
      [{ 'trust-revocation-ttl': 'soon' }, /--trust-revocation-ttl "soon" must be a duration/],
      [{ 'username-claim': 'a b' }, /--username-claim "a b" must be a claim name/],
      [
        { issuer: 'https://chat.example', trust: ['https://chat.example'] },
        /--trust https:\/\/chat.example is wsgate's own issuer/,
      ],
      [
        {
          trust: ['https://id.example'],
          'trust-audience': ['api://chat'],
          proxy: ['/up=ws://127.0.0.1:9/'],
          'proxy-audience': ['api://chat'],
        },
        /--proxy-audience for \/up is "api:\/\/chat", an audience wsgate accepts credentials for/,
      ],
    ];
    for (const [flags, message] of cases) {
      assert.throws(
        () => loadConfig(flags),
        (err: Error) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });
});

describe('external principals in proxy mode', () => {
  let op: TestProvider;
  let upstream: Upstream;
  let server: TestServer;

  before(async () => {
    op = await startTestProvider();
    upstream = await startUpstream();
    server = await startTestServer(
      { trust: [op.issuer], proxy: [`/backend=${upstream.url}/`] },
      { gateLimits: manyHandshakes },
    );
  });

  after(async () => {
    await server?.stop();
    await upstream?.close();
    await op?.close();
  });

  it('tells the upstream who the external principal is, in X-Wsgate-* and the identity token', async () => {
    const tokens = await op.authorizationCode('erin');
    const c = await bearer(server, '/backend', tokens.access_token);
    const seen = await upstream.connection(1);
    const host = new URL(op.issuer).host;
    assert.deepEqual(seen.headers['x-wsgate-user'], [`${host}:erin`]);
    assert.deepEqual(seen.headers['x-wsgate-issuer'], [op.issuer]);
    const claims = decodeJwt(tokens.access_token);
    // Without a provider sid the session is the token's jti.
    const session = claims.sid ?? claims.jti;
    assert.equal(seen.headers['x-wsgate-session']?.[0], session);
    const identity = decodeJwt(seen.headers['x-wsgate-identity']![0]!);
    assert.equal(identity.sub, 'erin');
    assert.equal(identity.name, `${host}:erin`);
    assert.equal(identity.idp, op.issuer);
    assert.equal(identity.sid, session);
    c.ws.close();
  });
});
