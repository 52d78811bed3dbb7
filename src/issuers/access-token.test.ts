import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WsgateError } from '../errors.js';
import { FixtureIssuer } from '../../test/support/issuer.js';
import { mapExternalAccessToken, type ClaimMapping } from './access-token.js';
import { TrustedIssuers } from './trusted-issuers.js';

const issuer = 'https://idp.example:8443/realms/demo';
const now = Date.UTC(2026, 5, 1, 12, 0, 0);
const t = Math.floor(now / 1000);

const mapping: ClaimMapping = {
  audiences: ['wsgate'],
  usernameClaim: 'sub',
  scopeClaim: undefined,
  adminIssuers: new Set(),
};

function map(
  payload: Record<string, unknown>,
  header: Record<string, unknown> = { alg: 'RS256', typ: 'at+jwt' },
  options: Partial<ClaimMapping> = {},
) {
  return mapExternalAccessToken(
    'header.payload.signature',
    {
      issuer,
      header,
      payload: { iss: issuer, aud: 'wsgate', sub: 'alice', iat: t, exp: t + 300, ...payload },
    },
    { ...mapping, ...options },
    now,
  );
}

function refused(fn: () => unknown): { code: string; reason: string | undefined } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WsgateError);
    return { code: err.code, reason: (err.cause as Error | undefined)?.message };
  }
  assert.fail('accepted');
}

describe('external access tokens: claims', () => {
  it('maps an external principal: (issuer, sub), a name prefixed with the issuer host, a session', () => {
    const identity = map({ sid: 'sess-1', jti: 'tok-1', scope: 'chat:read chat:write' });
    assert.equal(identity.issuer, issuer);
    assert.equal(identity.subject, 'alice');
    assert.equal(identity.displayName, 'idp.example:8443:alice');
    assert.equal(identity.sid, 'sess-1');
    assert.equal(identity.sessionId, 'sess-1');
    assert.equal(identity.scope, 'chat:read chat:write');
    assert.ok(Object.isFrozen(identity) && Object.isFrozen(identity.claims));
  });

  it('keys the session on jti without sid, and on a digest of the token without either', () => {
    assert.equal(map({ jti: 'tok-1' }).sessionId, 'tok-1');
    const a = mapExternalAccessToken(
      'a.b.c',
      {
        issuer,
        header: { alg: 'RS256' },
        payload: { iss: issuer, aud: 'wsgate', sub: 'x', exp: t + 9 },
      },
      mapping,
      now,
    );
    const b = mapExternalAccessToken(
      'a.b.d',
      {
        issuer,
        header: { alg: 'RS256' },
        payload: { iss: issuer, aud: 'wsgate', sub: 'x', exp: t + 9 },
      },
      mapping,
      now,
    );
    assert.match(a.sessionId, /^token:[A-Za-z0-9_-]{22}$/);
    assert.notEqual(a.sessionId, b.sessionId);
    assert.ok(!a.sessionId.includes('a.b.c'), 'the session id never holds the token');
  });

  it('never maps a sub equal to a local username onto that name', () => {
    const identity = map({ sub: 'johndoe' });
    assert.equal(identity.displayName, 'idp.example:8443:johndoe');
    assert.notEqual(identity.displayName, 'johndoe');
  });

  it('takes the displayed name from --username-claim, falling back to sub', () => {
    assert.equal(
      map({ preferred_username: 'Alice' }, undefined, { usernameClaim: 'preferred_username' })
        .displayName,
      'idp.example:8443:Alice',
    );
    assert.equal(
      map({}, undefined, { usernameClaim: 'preferred_username' }).displayName,
      'idp.example:8443:alice',
    );
    assert.equal(
      map({ preferred_username: 'a\u0000b' }, undefined, { usernameClaim: 'preferred_username' })
        .displayName,
      'idp.example:8443:alice',
    );
  });

  it('accepts typ absent, JWT, at+jwt and application/at+jwt; refuses any other typ', () => {
    for (const typ of [undefined, 'JWT', 'at+jwt', 'application/at+JWT'])
      map({}, { alg: 'RS256', typ });
    for (const typ of ['logout+jwt', 'secevent+jwt', 'refresh+jwt', 'id_token+jwt', 7])
      assert.equal(
        refused(() => map({}, { alg: 'RS256', typ })).code,
        'wrong_token_type',
        String(typ),
      );
  });

  it('refuses a token carrying events (a logout token) or cnf (bound to a key)', () => {
    assert.deepEqual(
      refused(() => map({ events: {} })),
      { code: 'invalid_token', reason: 'a security event token is not an access token' },
    );
    assert.deepEqual(
      refused(() => map({ cnf: { jkt: 'x' } })),
      { code: 'invalid_token', reason: 'sender-constrained token' },
    );
  });

  it('requires exp, with no leeway', () => {
    assert.deepEqual(
      refused(() => map({ exp: undefined })),
      { code: 'invalid_token', reason: 'exp missing' },
    );
    assert.deepEqual(
      refused(() => map({ exp: '9999999999' })),
      { code: 'invalid_token', reason: 'bad exp' },
    );
    assert.equal(refused(() => map({ exp: t })).code, 'token_expired');
    assert.equal(map({ exp: t + 1 }).exp, t + 1);
  });

  it('allows 60 s of skew on nbf and iat, no more', () => {
    map({ nbf: t + 60, iat: t + 60 });
    assert.deepEqual(
      refused(() => map({ nbf: t + 61 })),
      { code: 'invalid_token', reason: 'not yet valid' },
    );
    assert.deepEqual(
      refused(() => map({ iat: t + 61 })),
      { code: 'invalid_token', reason: 'issued in the future' },
    );
  });

  it('accepts only the --trust-audience values', () => {
    map({ aud: ['account', 'wsgate'] });
    map({ aud: 'api' }, undefined, { audiences: ['wsgate', 'api'] });
    for (const aud of ['account', ['account'], undefined, 7])
      assert.deepEqual(
        refused(() => map({ aud })),
        { code: 'invalid_token', reason: 'audience not accepted' },
      );
  });

  it('matches a Cognito access token (no aud) by its client_id, and refuses its ID token', () => {
    const cognito = { aud: undefined, token_use: 'access', client_id: 'app-client' };
    map(cognito, undefined, { audiences: ['app-client'] });
    assert.deepEqual(
      refused(() => map(cognito)),
      { code: 'invalid_token', reason: 'audience not accepted' },
    );
    // client_id stands in only where there is no aud, and only on an access token.
    for (const claims of [
      { ...cognito, aud: 'other' },
      { aud: undefined, client_id: 'app-client' },
    ])
      assert.deepEqual(
        refused(() => map(claims, undefined, { audiences: ['app-client'] })),
        { code: 'invalid_token', reason: 'audience not accepted' },
      );
    assert.deepEqual(
      refused(() => map({ aud: 'wsgate', token_use: 'id' })),
      { code: 'invalid_token', reason: 'an ID token is not an access token' },
    );
  });

  it('requires a sub', () => {
    for (const sub of [undefined, '', 42, 'a'.repeat(256)])
      assert.deepEqual(
        refused(() => map({ sub })),
        { code: 'invalid_token', reason: 'sub missing or malformed' },
      );
  });

  it('reads scopes from scope, scp (array or string) and --scope-claim, as written or as a dotted path', () => {
    assert.equal(map({ scp: ['chat:read', 'chat:write'] }).scope, 'chat:read chat:write');
    assert.equal(map({ scp: 'chat:read chat:write' }).scope, 'chat:read chat:write');
    assert.equal(
      map({ scope: 'openid', realm_access: { roles: ['chat:read'] } }, undefined, {
        scopeClaim: 'realm_access.roles',
      }).scope,
      'openid chat:read',
    );
    assert.equal(
      map(
        { 'https://example.com/roles': ['chat:write'], https: { '//example': 'no' } },
        undefined,
        { scopeClaim: 'https://example.com/roles' },
      ).scope,
      'chat:write',
    );
    assert.equal(
      map({ permissions: 'chat:read' }, undefined, { scopeClaim: 'permissions' }).scope,
      'chat:read',
    );
    // Only own properties: a path never walks into Object.prototype.
    assert.equal(map({}, undefined, { scopeClaim: 'constructor.name' }).scope, '');
  });

  it('honours wsgate:admin only from an --admin-issuer', () => {
    assert.equal(map({ scope: 'wsgate:admin chat:read' }).scope, 'chat:read');
    assert.equal(
      map({ scope: 'wsgate:admin' }, undefined, { adminIssuers: new Set([issuer]) }).scope,
      'wsgate:admin',
    );
  });
});

describe('external access tokens: provider-shaped fixtures', () => {
  let keycloak: FixtureIssuer;
  let auth0: FixtureIssuer;
  before(async () => {
    keycloak = await FixtureIssuer.start('/realms/demo');
    await keycloak.addKey('RS256', 'kc-rsa');
    auth0 = await FixtureIssuer.start('/');
    await auth0.addKey('RS256', 'auth0-rsa');
  });
  after(async () => {
    await keycloak.close();
    await auth0.close();
  });

  it('maps a Keycloak access token: preferred_username, realm_access.roles, sid', async () => {
    const trusted = new TrustedIssuers([{ issuer: keycloak.issuer }], {
      ...mapping,
      audiences: ['wsgate'],
      usernameClaim: 'preferred_username',
      scopeClaim: 'realm_access.roles',
      backchannelAudiences: ['wsgate-web'],
    });
    await trusted.start();
    const s = Math.floor(Date.now() / 1000);
    // As Keycloak 26 issues it (header typ JWT; payload typ Bearer; roles per realm and client).
    const token = await keycloak.sign(
      {
        exp: s + 300,
        iat: s,
        jti: 'onrtac:2c2b',
        aud: ['wsgate', 'account'],
        sub: 'f3a1c0de-0000-4000-8000-000000000001',
        typ: 'Bearer',
        azp: 'wsgate-web',
        sid: '8d3c9a0e-5f2b',
        acr: '1',
        'allowed-origins': ['https://app.example'],
        realm_access: {
          roles: ['chat:read', 'chat:write', 'offline_access', 'default-roles-demo'],
        },
        resource_access: { account: { roles: ['manage-account'] } },
        scope: 'openid email profile',
        email_verified: true,
        preferred_username: 'alice',
        email: 'alice@example.com',
      },
      { header: { typ: 'JWT' } },
    );
    const identity = await trusted.verifyAccessToken(token);
    assert.equal(identity.displayName, `${new URL(keycloak.issuer).host}:alice`);
    assert.equal(identity.subject, 'f3a1c0de-0000-4000-8000-000000000001');
    assert.equal(identity.sessionId, '8d3c9a0e-5f2b');
    assert.deepEqual(identity.scope.split(' ').sort(), [
      'chat:read',
      'chat:write',
      'default-roles-demo',
      'email',
      'offline_access',
      'openid',
      'profile',
    ]);
  });

  it('maps an Auth0 access token: namespaced claims, permissions, no sid', async () => {
    assert.ok(auth0.issuer.endsWith('/'), 'Auth0 issuers end with a slash');
    const trusted = new TrustedIssuers([{ issuer: auth0.issuer }], {
      ...mapping,
      audiences: ['https://chat.example/api'],
      usernameClaim: 'https://chat.example/username',
      scopeClaim: 'permissions',
      backchannelAudiences: ['client-id'],
    });
    await trusted.start();
    const s = Math.floor(Date.now() / 1000);
    const token = await auth0.sign(
      {
        sub: 'auth0|64f1',
        aud: ['https://chat.example/api', `${auth0.issuer}userinfo`],
        iat: s,
        exp: s + 86400,
        scope: 'openid profile',
        azp: 'client-id',
        permissions: ['chat:read', 'chat:write'],
        'https://chat.example/username': 'alice',
      },
      { header: { typ: 'JWT' } },
    );
    const identity = await trusted.verifyAccessToken(token);
    assert.equal(identity.displayName, `${new URL(auth0.issuer).host}:alice`);
    assert.equal(identity.subject, 'auth0|64f1');
    assert.equal(identity.sid, undefined);
    assert.match(identity.sessionId, /^token:/);
    assert.deepEqual(identity.scope.split(' ').sort(), [
      'chat:read',
      'chat:write',
      'openid',
      'profile',
    ]);
  });
});
