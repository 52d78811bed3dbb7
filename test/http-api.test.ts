import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { catalogue } from '../src/errors.js';
import { decodeJwt, decodeProtectedHeader, createLocalJWKSet, jwtVerify, UnsecuredJWT } from 'jose';
import {
  startTestServer,
  postForm,
  postJson,
  passwordGrant,
  testIssuer,
  type TestServer,
  type TokenResponse,
} from './support/server.js';

const secrets = new Set<string>();
function remember(tokens: TokenResponse): TokenResponse {
  secrets.add(tokens.access_token);
  secrets.add(tokens.refresh_token);
  return tokens;
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

describe('HTTP API', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
  });

  after(async () => {
    await server.stop();
  });

  describe('POST /token', () => {
    it('issues a bearer token pair for a password grant, without caching', async () => {
      const res = await postForm(`${server.url}/token`, {
        grant_type: 'password',
        username: 'johndoe',
        password: 'secret',
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.equal(res.headers.get('pragma'), 'no-cache');
      const body = remember((await res.json()) as TokenResponse);
      assert.equal(body.token_type, 'bearer');
      assert.equal(body.expires_in, 900);
      assert.equal(body.scope, 'chat:read chat:write');
      const claims = decodeJwt(body.access_token);
      assert.equal(claims.sub, 'johndoe');
      assert.equal(claims.iss, testIssuer);
      assert.equal(claims.aud, 'wsgate');
      assert.equal(claims.type, 'access');
      assert.equal(claims.fresh, true);
      assert.equal(claims.scope, 'chat:read chat:write');
      assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 900);
      assert.equal(typeof claims.jti, 'string');
      assert.equal(typeof claims.sid, 'string');
      assert.equal(decodeProtectedHeader(body.access_token).typ, 'at+jwt');
      const refresh = decodeJwt(body.refresh_token);
      assert.equal(refresh.type, 'refresh');
      assert.equal(refresh.sid, claims.sid);
      assert.equal((refresh.exp ?? 0) - (refresh.iat ?? 0), 14 * 86400);
    });

    it('treats a missing grant_type as password, as the cookbook does', async () => {
      const body = remember(await passwordGrant(server, 'janedoe', 'secret2'));
      assert.equal(decodeJwt(body.access_token).sub, 'janedoe');
    });

    it('issues tokens that verify against the published JWKS', async () => {
      const tokens = remember(await passwordGrant(server));
      const jwks = (await (
        await fetch(`${server.url}/.well-known/jwks.json`)
      ).json()) as Parameters<typeof createLocalJWKSet>[0];
      const { payload } = await jwtVerify(tokens.access_token, createLocalJWKSet(jwks), {
        issuer: testIssuer,
        audience: 'wsgate',
        currentDate: new Date(server.clock()),
      });
      assert.equal(payload.sub, 'johndoe');
    });

    it('answers a wrong password and an unknown user identically', async () => {
      const wrong = await postForm(`${server.url}/token`, {
        username: 'janedoe',
        password: 'nope',
      });
      const unknown = await postForm(`${server.url}/token`, {
        username: 'nobody-here',
        password: 'nope',
      });
      assert.equal(wrong.status, 400);
      assert.equal(unknown.status, 400);
      const a = await wrong.text();
      const b = await unknown.text();
      assert.equal(a, b);
      assert.deepEqual(JSON.parse(a), {
        error: 'invalid_grant',
        error_description: 'Bad username or password',
      });
      assert.equal(wrong.headers.get('cache-control'), 'no-store');
    });

    it('grants a requested subset of scopes and refuses scopes the user lacks', async () => {
      const ok = await postForm(`${server.url}/token`, {
        username: 'johndoe',
        password: 'secret',
        scope: 'chat:read',
      });
      assert.equal(ok.status, 200);
      const body = remember((await ok.json()) as TokenResponse);
      assert.equal(body.scope, 'chat:read');
      assert.equal(decodeJwt(body.access_token).scope, 'chat:read');
      const bad = await postForm(`${server.url}/token`, {
        username: 'johndoe',
        password: 'secret',
        scope: 'chat:read admin',
      });
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { error: string }).error, 'invalid_scope');
    });

    it('answers invalid_request for missing or repeated parameters', async () => {
      const missing = await postForm(`${server.url}/token`, { username: 'johndoe' });
      assert.equal(missing.status, 400);
      assert.equal(((await missing.json()) as { error: string }).error, 'invalid_request');
      const repeated = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'username=johndoe&password=secret&password=other',
      });
      assert.equal(repeated.status, 400);
      assert.equal(((await repeated.json()) as { error: string }).error, 'invalid_request');
      const noRefresh = await postForm(`${server.url}/token`, { grant_type: 'refresh_token' });
      assert.equal(((await noRefresh.json()) as { error: string }).error, 'invalid_request');
    });

    it('answers unsupported_grant_type for other grants', async () => {
      const res = await postForm(`${server.url}/token`, { grant_type: 'client_credentials' });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'unsupported_grant_type');
    });

    it('rotates refresh tokens, and reuse revokes the whole family', async () => {
      const first = remember(await passwordGrant(server));
      const res = await postForm(`${server.url}/token`, {
        grant_type: 'refresh_token',
        refresh_token: first.refresh_token,
      });
      assert.equal(res.status, 200);
      const second = remember((await res.json()) as TokenResponse);
      assert.notEqual(second.refresh_token, first.refresh_token);
      assert.equal(decodeJwt(second.access_token).fresh, false);
      assert.equal(decodeJwt(second.access_token).sid, decodeJwt(first.access_token).sid);

      server.clock.advance(5_000); // past the refresh grace period
      const reuse = await postForm(`${server.url}/token`, {
        grant_type: 'refresh_token',
        refresh_token: first.refresh_token,
      });
      assert.equal(reuse.status, 400);
      assert.equal(((await reuse.json()) as { error: string }).error, 'invalid_grant');
      // The family is gone: the newest refresh token and the access tokens stop working too.
      const afterReuse = await postForm(`${server.url}/token`, {
        grant_type: 'refresh_token',
        refresh_token: second.refresh_token,
      });
      assert.equal(afterReuse.status, 400);
      const logout = await fetch(`${server.url}/logout`, {
        method: 'POST',
        headers: bearer(second.access_token),
      });
      assert.equal(logout.status, 401);
      assert.equal(((await logout.json()) as { error: string }).error, 'session_revoked');
    });

    it('refuses an access token as a refresh token', async () => {
      const tokens = remember(await passwordGrant(server));
      const res = await postForm(`${server.url}/token`, {
        grant_type: 'refresh_token',
        refresh_token: tokens.access_token,
      });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_grant');
    });
  });

  describe('POST /login', () => {
    it('returns a fresh access token and a refresh token', async () => {
      const res = await postJson(`${server.url}/login`, { username: 'test', password: 'test' });
      assert.equal(res.status, 200);
      const body = remember((await res.json()) as TokenResponse);
      assert.equal(body.token_type, 'bearer');
      assert.equal(body.expires_in, 900);
      assert.equal(decodeJwt(body.access_token).fresh, true);
      assert.equal(decodeJwt(body.refresh_token).type, 'refresh');
    });

    it('answers 401 with the fastapi-jwt-auth detail for bad credentials', async () => {
      for (const body of [
        { username: 'test', password: 'wrong' },
        { username: 'ghost', password: 'test' },
      ]) {
        const res = await postJson(`${server.url}/login`, body);
        assert.equal(res.status, 401);
        assert.deepEqual(await res.json(), { detail: 'Bad username or password' });
      }
    });

    it('answers 400 for a body without username or password', async () => {
      const res = await postJson(`${server.url}/login`, { username: 'test' });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
    });

    it('does not echo a malformed JSON body in its error', async () => {
      const res = await fetch(`${server.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"username":"test","password":"hunter2-leak',
      });
      assert.equal(res.status, 400);
      const text = await res.text();
      assert.ok(!text.includes('hunter2'), text);
    });
  });

  describe('POST /refresh', () => {
    it('rotates a refresh token given as a bearer header or in JSON', async () => {
      const login = remember(await passwordGrant(server));
      const viaHeader = await fetch(`${server.url}/refresh`, {
        method: 'POST',
        headers: bearer(login.refresh_token),
      });
      assert.equal(viaHeader.status, 200);
      const one = remember((await viaHeader.json()) as TokenResponse);
      assert.equal(decodeJwt(one.access_token).fresh, false);
      const viaBody = await postJson(`${server.url}/refresh`, { refresh_token: one.refresh_token });
      assert.equal(viaBody.status, 200);
      remember((await viaBody.json()) as TokenResponse);
    });

    it('refuses two refresh tokens in one request', async () => {
      const login = remember(await passwordGrant(server));
      const res = await postJson(
        `${server.url}/refresh`,
        { refresh_token: login.refresh_token },
        bearer(login.refresh_token),
      );
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'ambiguous_credential');
    });

    it('answers 401 on reuse and closes the family', async () => {
      const login = remember(await passwordGrant(server));
      const rotated = await postJson(`${server.url}/refresh`, {
        refresh_token: login.refresh_token,
      });
      const next = remember((await rotated.json()) as TokenResponse);
      server.clock.advance(5_000); // past the refresh grace period
      const reuse = await postJson(`${server.url}/refresh`, { refresh_token: login.refresh_token });
      assert.equal(reuse.status, 401);
      assert.match(
        reuse.headers.get('www-authenticate') ?? '',
        /^Bearer realm="wsgate", error="invalid_token"$/,
      );
      assert.equal(((await reuse.json()) as { error: string }).error, 'session_revoked');
      const again = await postJson(`${server.url}/refresh`, { refresh_token: next.refresh_token });
      assert.equal(again.status, 401);
    });

    it('refuses an access token', async () => {
      const login = remember(await passwordGrant(server));
      const res = await postJson(`${server.url}/refresh`, { refresh_token: login.access_token });
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as { error: string }).error, 'wrong_token_type');
    });

    it('answers 401 without a token', async () => {
      const res = await postJson(`${server.url}/refresh`, {});
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="wsgate"');
    });
  });

  describe('POST /logout', () => {
    it('revokes the session: its access and refresh tokens stop working', async () => {
      const login = remember(await passwordGrant(server));
      const res = await fetch(`${server.url}/logout`, {
        method: 'POST',
        headers: bearer(login.access_token),
      });
      assert.equal(res.status, 204);
      const again = await fetch(`${server.url}/logout`, {
        method: 'POST',
        headers: bearer(login.access_token),
      });
      assert.equal(again.status, 401);
      const refresh = await postJson(`${server.url}/refresh`, {
        refresh_token: login.refresh_token,
      });
      assert.equal(refresh.status, 401);
      const session = await server.runtime.storage.getSession(
        String(decodeJwt(login.access_token).sid),
      );
      assert.equal(session?.revokedReason, 'logout');
    });

    it('refuses a refresh token in place of an access token', async () => {
      const login = remember(await passwordGrant(server));
      const res = await fetch(`${server.url}/logout`, {
        method: 'POST',
        headers: bearer(login.refresh_token),
      });
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as { error: string }).error, 'wrong_token_type');
    });

    it('answers 401 with a challenge for a missing, tampered, oversized or alg:none token', async () => {
      const login = remember(await passwordGrant(server));
      const none = await fetch(`${server.url}/logout`, { method: 'POST' });
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="wsgate"');
      assert.equal(((await none.json()) as { error: string }).error, 'credential_missing');

      const [h, p, s] = login.access_token.split('.') as [string, string, string];
      const flipped = `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`;
      const unsecured = new UnsecuredJWT({
        sub: 'johndoe',
        sid: 'x',
        jti: 'y',
        scope: '',
        type: 'access',
      })
        .setIssuer(testIssuer)
        .setAudience('wsgate')
        .setExpirationTime('1h')
        .setIssuedAt()
        .encode();
      for (const [token, code] of [
        [flipped, 'invalid_token'],
        [`${'e'.repeat(9000)}.a.b`, 'token_too_large'],
        [unsecured, 'invalid_token'],
      ] as const) {
        const res = await fetch(`${server.url}/logout`, { method: 'POST', headers: bearer(token) });
        assert.equal(res.status, 401, code);
        assert.equal(
          res.headers.get('www-authenticate'),
          'Bearer realm="wsgate", error="invalid_token"',
        );
        assert.equal(((await res.json()) as { error: string }).error, code);
      }
    });

    it('answers 401 with a bare challenge for an Authorization header that is not Bearer', async () => {
      const res = await fetch(`${server.url}/logout`, {
        method: 'POST',
        headers: { authorization: 'Basic dGVzdDp0ZXN0' },
      });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="wsgate"');
      assert.equal(((await res.json()) as { error: string }).error, 'credential_missing');
    });

    it('refuses an expired access token, after the clock passes exp', async () => {
      const login = remember(await passwordGrant(server));
      server.clock.advance(900_000);
      try {
        const res = await fetch(`${server.url}/logout`, {
          method: 'POST',
          headers: bearer(login.access_token),
        });
        assert.equal(res.status, 401);
        assert.equal(((await res.json()) as { error: string }).error, 'token_expired');
      } finally {
        server.clock.advance(-900_000);
      }
    });
  });

  describe('discovery, health and docs', () => {
    it('publishes the public Ed25519 signing and identity keys and no private part', async () => {
      const res = await fetch(`${server.url}/.well-known/jwks.json`);
      assert.equal(res.status, 200);
      const { keys } = (await res.json()) as { keys: Record<string, string>[] };
      // The signing key, then the identity key that signs X-Wsgate-Identity for proxied upstreams.
      assert.deepEqual(
        keys.map((k) => k.kid),
        [server.runtime.keys.kid, server.runtime.identity.kid],
      );
      for (const key of keys) {
        assert.equal(key.kty, 'OKP');
        assert.equal(key.crv, 'Ed25519');
        assert.equal(key.alg, 'EdDSA');
        assert.equal(key.d, undefined);
      }
    });

    it('publishes RFC 8414 metadata', async () => {
      const meta = (await (
        await fetch(`${server.url}/.well-known/oauth-authorization-server`)
      ).json()) as Record<string, unknown>;
      assert.equal(meta.issuer, testIssuer);
      assert.equal(meta.token_endpoint, `${testIssuer}/token`);
      assert.equal(meta.jwks_uri, `${testIssuer}/.well-known/jwks.json`);
      assert.deepEqual(meta.grant_types_supported, ['password', 'refresh_token']);
    });

    it('answers liveness and readiness', async () => {
      assert.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { status: 'ok' });
      const ready = await fetch(`${server.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: 'ready', checks: { database: 'ok' } });
    });

    it('describes every HTTP endpoint in OpenAPI 3', async () => {
      const spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
        openapi: string;
        paths: Record<string, unknown>;
        info: { description: string };
      };
      assert.match(spec.openapi, /^3\./);
      for (const path of [
        '/token',
        '/login',
        '/refresh',
        '/logout',
        '/.well-known/jwks.json',
        '/healthz',
        '/readyz',
      ]) {
        assert.ok(spec.paths[path], `missing ${path}`);
      }
      assert.match(spec.info.description, /\/secured-ws/);
    });

    it('serves /docs as HTML under a CSP without inline script, its scripts from this origin', async () => {
      const res = await fetch(`${server.url}/docs`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /style-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline/);
      const html = await res.text();
      assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/);
      assert.doesNotMatch(html, /<style/);
      const scripts = [...html.matchAll(/<script[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1] ?? '');
      assert.ok(scripts.length > 0);
      for (const src of scripts) {
        assert.match(src, /^\/docs\/static\//);
        const script = await fetch(`${server.url}${src}`);
        assert.equal(script.status, 200, src);
        assert.match(script.headers.get('content-type') ?? '', /javascript/, src);
      }
      // The page renders the same description as /openapi.json.
      const shown = (await (await fetch(`${server.url}/docs/json`)).json()) as { paths: object };
      assert.ok('/token' in shown.paths);
    });

    it('shows the WebSocket endpoints, transports and close codes as tables, and plain-text summaries', async () => {
      const spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
        info: { description: string };
        paths: Record<string, Record<string, { summary?: string }>>;
      };
      const { description } = spec.info;
      for (const heading of ['WebSocket endpoints', 'Credential transports', 'Close codes'])
        assert.match(
          description,
          new RegExp(`^## ${heading}\n(?:(?![#|]).*\n)*\\| `, 'm'),
          heading,
        );
      // Every close code of the catalogue has its row.
      for (const [code, entry] of Object.entries(catalogue))
        assert.match(
          description,
          new RegExp(`^\\| \`${code}\` \\| ${entry.status} \\| ${entry.close} \\| `, 'm'),
        );
      // Summaries are shown as plain text: Markdown there would show its backticks.
      for (const [path, methods] of Object.entries(spec.paths))
        for (const [method, op] of Object.entries(methods))
          assert.doesNotMatch(op.summary ?? '', /`/, `${method} ${path}`);
    });

    it('answers unknown paths with a JSON 404', async () => {
      const res = await fetch(`${server.url}/nope`);
      assert.equal(res.status, 404);
      assert.deepEqual(await res.json(), { error: 'not_found', error_description: 'Not found' });
    });
  });

  describe('brute-force limit', () => {
    it('answers 429 with Retry-After after 5 failures a minute, even for the right password', async () => {
      server.clock.advance(61_000); // forget the failures of earlier tests
      const attempt = (password: string) =>
        postForm(`${server.url}/token`, { username: 'test', password });
      for (let i = 0; i < 5; i++) assert.equal((await attempt('wrong')).status, 400);
      const blocked = await attempt('test');
      assert.equal(blocked.status, 429);
      const retryAfter = Number(blocked.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      // Another user from the same address is not affected; /login shares the limit.
      remember(await passwordGrant(server, 'janedoe', 'secret2'));
      const login = await postJson(`${server.url}/login`, { username: 'test', password: 'test' });
      assert.equal(login.status, 429);
      assert.ok(Number(login.headers.get('retry-after')) >= 1);
      server.clock.advance(61_000);
      remember(await passwordGrant(server, 'test', 'test'));
    });

    it('treats unknown users the same way, so the limit reveals nothing', async () => {
      const attempt = () =>
        postForm(`${server.url}/token`, { username: 'no-such-user', password: 'x' });
      for (let i = 0; i < 5; i++) assert.equal((await attempt()).status, 400);
      assert.equal((await attempt()).status, 429);
    });
  });

  describe('audit and logs', () => {
    it('records logins, refreshes and revocations in the database', async () => {
      const events = await server.runtime.storage.listAudit({ limit: 10_000 });
      const kinds = new Set(events.map((e) => e.event));
      for (const kind of [
        'login.success',
        'login.failure',
        'login.throttled',
        'token.refresh',
        'session.revoke',
      ]) {
        assert.ok(kinds.has(kind), `no ${kind} in ${[...kinds].join(', ')}`);
      }
      const failure = events.find((e) => e.event === 'login.failure');
      assert.equal(failure?.ip, '127.0.0.1');
    });

    it('writes no token or password to the log', () => {
      const text = server.logs.text;
      assert.ok(server.logs.lines.length > 10);
      assert.ok(secrets.size > 10);
      for (const secret of secrets) {
        assert.ok(!text.includes(secret), 'a token reached the log');
        assert.ok(!text.includes(secret.split('.')[2] ?? ''), 'a signature reached the log');
      }
      for (const password of ['secret2', 'hunter2'])
        assert.ok(!text.includes(password), `${password} reached the log`);
      assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
    });
  });
});
