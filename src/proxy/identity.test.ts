import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { generateSigningKey, keySetFromSecret, keySetFromStoredKeys } from '../tokens/keys.js';
import { verifyToken } from '../tokens/verify.js';
import { isWsgateError } from '../errors.js';
import { deriveIdentityKey, identityTokenType, signIdentity } from './identity.js';

const subject = {
  sub: 'johndoe',
  name: 'johndoe',
  idp: 'http://wsgate.test',
  sid: 'sid-1',
  scope: 'chat:read chat:write',
};
const now = Date.UTC(2026, 0, 1);

describe('identity token', () => {
  it('verifies with a standard JWT library against the published key, with every claim', async () => {
    const keys = keySetFromStoredKeys([await generateSigningKey()]);
    const identity = deriveIdentityKey(keys);
    const { token } = signIdentity(identity, subject, {
      issuer: 'http://wsgate.test',
      audience: 'ws://127.0.0.1:9000/ws',
      now,
    });
    const { payload, protectedHeader } = await jwtVerify(
      token,
      createLocalJWKSet({ keys: [identity.jwk] }),
      {
        issuer: 'http://wsgate.test',
        audience: 'ws://127.0.0.1:9000/ws',
        typ: identityTokenType,
        algorithms: ['EdDSA'],
        currentDate: new Date(now),
      },
    );
    assert.equal(protectedHeader.kid, identity.kid);
    assert.deepEqual(Object.keys(payload).sort(), [
      'aud',
      'exp',
      'iat',
      'idp',
      'iss',
      'jti',
      'name',
      'scope',
      'sid',
      'sub',
    ]);
    assert.equal(payload.sub, 'johndoe');
    assert.equal(payload.idp, 'http://wsgate.test');
    assert.equal(payload.sid, 'sid-1');
    assert.equal(payload.scope, 'chat:read chat:write');
    assert.equal(payload.exp, (payload.iat ?? 0) + 60);
    for (const absent of ['type', 'fresh', 'csrf']) assert.ok(!(absent in payload), absent);
  });

  it('never outlives the credential it speaks for', () => {
    const identity = deriveIdentityKey(keySetFromSecret('x'.repeat(32)));
    const iat = Math.floor(now / 1000);
    const { claims } = signIdentity(
      identity,
      { ...subject, exp: iat + 20 },
      { issuer: 'i', audience: 'a', now },
    );
    assert.equal(claims.exp, iat + 20);
  });

  it('is signed by a key of its own, derived the same way on every node, in HS256 mode too', async () => {
    const stored = await generateSigningKey();
    const a = keySetFromStoredKeys([stored]);
    const b = keySetFromStoredKeys([stored]);
    assert.equal(deriveIdentityKey(a).kid, deriveIdentityKey(b).kid);
    assert.notEqual(deriveIdentityKey(a).kid, a.kid);
    assert.ok(!a.verificationKeys.has(deriveIdentityKey(a).kid));
    const other = keySetFromStoredKeys([await generateSigningKey()]);
    assert.notEqual(deriveIdentityKey(other).kid, deriveIdentityKey(a).kid);
    const hs = deriveIdentityKey(keySetFromSecret('s'.repeat(32)));
    assert.equal(hs.jwk.kty, 'OKP');
    assert.equal(hs.jwk.crv, 'Ed25519');
    assert.equal(hs.jwk.d, undefined, 'the published JWK holds no private part');
    assert.equal(hs.kid, deriveIdentityKey(keySetFromSecret('s'.repeat(32))).kid);
  });

  it('is no credential for wsgate, even with wsgate audience', async () => {
    const keys = keySetFromStoredKeys([await generateSigningKey()]);
    const { token } = signIdentity(deriveIdentityKey(keys), subject, {
      issuer: 'http://wsgate.test',
      audience: 'wsgate',
      now,
    });
    assert.equal(decodeProtectedHeader(token).typ, identityTokenType);
    await assert.rejects(
      verifyToken(keys, token, {
        type: 'access',
        issuer: 'http://wsgate.test',
        audience: 'wsgate',
        now,
      }),
      (err: unknown) => isWsgateError(err) && err.status === 401,
    );
  });
});
