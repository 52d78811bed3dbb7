import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WsgateError } from '../errors.js';
import { manualClock, type ManualClock } from '../../test/support/server.js';
import { startTestProvider, type TestProvider } from '../../test/support/oidc.js';
import { TrustedIssuers } from './trusted-issuers.js';

/** The trusted-issuer core against a real OpenID Provider, with tokens obtained as clients do. */
describe('trusted issuers with a real OpenID Provider (oidc-provider)', () => {
  let op: TestProvider;
  let clock: ManualClock;
  let trusted: TrustedIssuers;
  let relyingParty: Server;
  const logoutTokens: string[] = [];

  before(async () => {
    relyingParty = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        logoutTokens.push(new URLSearchParams(body).get('logout_token') ?? '');
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => relyingParty.listen(0, '127.0.0.1', resolve));
    const rpPort = (relyingParty.address() as AddressInfo).port;
    op = await startTestProvider({
      backchannelLogoutUri: `http://127.0.0.1:${rpPort}/backchannel-logout`,
      accessTokenTtl: 3600,
    });
    clock = manualClock(Date.now());
    trusted = new TrustedIssuers([{ issuer: op.issuer }], {
      audiences: ['wsgate'],
      backchannelAudiences: [op.clientId],
      usernameClaim: 'sub',
      scopeClaim: undefined,
      adminIssuers: new Set(),
      clock,
    });
    await trusted.start();
  });

  after(async () => {
    await op.close();
    relyingParty.closeAllConnections();
    relyingParty.close();
  });

  it('verifies a client-credentials access token found through discovery', async () => {
    const { access_token } = await op.clientCredentials('chat:read');
    const identity = await trusted.verifyAccessToken(access_token);
    assert.equal(identity.issuer, op.issuer);
    assert.equal(identity.subject, op.clientId);
    assert.equal(identity.displayName, `${new URL(op.issuer).host}:${op.clientId}`);
    assert.equal(identity.scope, 'chat:read');
    assert.equal(identity.sid, undefined);
  });

  it('verifies an authorization-code access token with the provider sid, and its refreshed successor', async () => {
    const tokens = await op.authorizationCode('alice');
    assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');
    const identity = await trusted.verifyAccessToken(tokens.access_token);
    assert.equal(identity.subject, 'alice');
    assert.ok(identity.sid);
    assert.equal(identity.sessionId, identity.sid);
    assert.deepEqual(identity.scope.split(' ').sort(), ['chat:read', 'chat:write']);
    const refreshed = await trusted.verifyAccessToken(
      (await op.refresh(tokens.refresh_token)).access_token,
    );
    assert.equal(refreshed.sid, identity.sid);
  });

  it('refuses the provider ID token as an access token (wrong audience)', async () => {
    const tokens = await op.authorizationCode('alice');
    await assert.rejects(trusted.verifyAccessToken(tokens.id_token!), (err: WsgateError) => {
      assert.equal(err.code, 'invalid_token');
      return true;
    });
  });

  it('validates the logout token the provider sends on RP-initiated logout', async () => {
    const tokens = await op.authorizationCode('bob');
    const identity = await trusted.verifyAccessToken(tokens.access_token);
    logoutTokens.length = 0;
    await op.endSession(tokens.cookies, tokens.id_token!);
    assert.equal(logoutTokens.length, 1);
    const logout = await trusted.verifyLogoutToken(logoutTokens[0]!);
    assert.equal(logout.issuer, op.issuer);
    assert.equal(logout.sid, identity.sid);
    assert.equal(logout.sub, 'bob');
    // A logout token is never an access token, even for an audience that would be accepted.
    await assert.rejects(trusted.verifyAccessToken(logoutTokens[0]!), { code: 'wrong_token_type' });
  });

  it('follows a key rotation: new tokens verify after one refetch, a withdrawn key stops', async () => {
    const before = trusted.statuses()[0]!.fetchedAt;
    const old = (await op.clientCredentials()).access_token;
    await trusted.verifyAccessToken(old);
    await op.rotateKeys();
    clock.advance(30_000);
    const rotated = (await op.clientCredentials()).access_token;
    await trusted.verifyAccessToken(rotated);
    assert.notEqual(trusted.statuses()[0]!.fetchedAt, before, 'refetched for the new kid');
    assert.equal(trusted.statuses()[0]!.keys, 2);
    await trusted.verifyAccessToken(old);
    await op.rotateKeys({ withdraw: true });
    clock.advance(10 * 60_000);
    await assert.rejects(trusted.verifyAccessToken(old), { code: 'invalid_token' });
    await assert.rejects(trusted.verifyAccessToken(rotated), { code: 'invalid_token' });
    await trusted.verifyAccessToken((await op.clientCredentials()).access_token);
  });
});
