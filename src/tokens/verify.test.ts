import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SignJWT, UnsecuredJWT, base64url } from 'jose';
import { WsgateError, type ErrorCode } from '../errors.js';
import { generateSigningKey, keySetFromSecret, keySetFromStoredKeys, type KeySet } from './keys.js';
import { issueToken, type IssueOptions } from './issue.js';
import { verifyToken, type VerifyOptions } from './verify.js';
import { maxTokenLength, type TokenType } from './claims.js';

const now = Date.UTC(2026, 5, 1, 12, 0, 0);
const issuer = 'http://wsgate.test';
const audience = 'wsgate';

function options(type: TokenType, overrides: Partial<IssueOptions> = {}): IssueOptions {
  return {
    type,
    subject: 'johndoe',
    sessionId: 'session-1',
    scope: 'chat:read chat:write',
    fresh: true,
    ttl: 900,
    issuer,
    audience,
    now,
    ...overrides,
  };
}

function verifyOptions(type: TokenType, overrides: Partial<VerifyOptions> = {}): VerifyOptions {
  return { type, issuer, audience, now, ...overrides };
}

async function rejects(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof WsgateError, `expected WsgateError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

describe('tokens', () => {
  let keys: KeySet;
  let otherKeys: KeySet;

  before(async () => {
    keys = keySetFromStoredKeys([await generateSigningKey(now)]);
    otherKeys = keySetFromStoredKeys([await generateSigningKey(now)]);
  });

  it('verifies an access token and returns its claims', async () => {
    const { token, claims } = await issueToken(keys, options('access'));
    const verified = await verifyToken(keys, token, verifyOptions('access'));
    assert.deepEqual(verified, claims);
    assert.equal(verified.sub, 'johndoe');
    assert.equal(verified.type, 'access');
    assert.equal(verified.fresh, true);
    assert.equal(verified.exp, Math.floor(now / 1000) + 900);
    const header = JSON.parse(
      new TextDecoder().decode(base64url.decode(token.split('.')[0] ?? '')),
    ) as Record<string, unknown>;
    assert.deepEqual(header, { alg: 'EdDSA', typ: 'at+jwt', kid: keys.kid });
  });

  it('never marks a refresh token fresh', async () => {
    const { token } = await issueToken(keys, options('refresh', { fresh: true }));
    const verified = await verifyToken(keys, token, verifyOptions('refresh'));
    assert.equal(verified.fresh, false);
    assert.equal(verified.type, 'refresh');
  });

  it('rejects a refresh token where an access token is required, and the reverse', async () => {
    const access = await issueToken(keys, options('access'));
    const refresh = await issueToken(keys, options('refresh'));
    await rejects(verifyToken(keys, refresh.token, verifyOptions('access')), 'wrong_token_type');
    await rejects(verifyToken(keys, access.token, verifyOptions('refresh')), 'wrong_token_type');
  });

  it('rejects an expired token at exp, and accepts it one second before', async () => {
    const { token } = await issueToken(keys, options('access', { ttl: 60 }));
    await verifyToken(keys, token, verifyOptions('access', { now: now + 59_000 }));
    await rejects(
      verifyToken(keys, token, verifyOptions('access', { now: now + 60_000 })),
      'token_expired',
    );
  });

  it('rejects a token whose nbf is in the future', async () => {
    const { token } = await issueToken(keys, options('access', { now: now + 3_600_000 }));
    await rejects(verifyToken(keys, token, verifyOptions('access')), 'invalid_token');
  });

  it('rejects alg none', async () => {
    const unsecured = new UnsecuredJWT({
      sub: 'johndoe',
      sid: 's',
      jti: 'j',
      scope: '',
      type: 'access',
    })
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + 60)
      .encode();
    // An unsecured JWT ends in an empty signature; give it one too, to reach the algorithm check.
    await rejects(verifyToken(keys, unsecured, verifyOptions('access')), 'invalid_token');
    await rejects(verifyToken(keys, `${unsecured}AAAA`, verifyOptions('access')), 'invalid_token');
  });

  it('rejects a token signed with another key that claims our kid', async () => {
    const forged = await issueToken({ ...otherKeys, kid: keys.kid }, options('access'));
    await rejects(verifyToken(keys, forged.token, verifyOptions('access')), 'invalid_token');
  });

  it('rejects a token with an unknown kid or none', async () => {
    const { token } = await issueToken(otherKeys, options('access'));
    await rejects(verifyToken(keys, token, verifyOptions('access')), 'invalid_token');
    const noKid = await new SignJWT({ sub: 'x', sid: 's', jti: 'j', scope: '', type: 'access' })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + 60)
      .sign(keys.signingKey);
    await rejects(verifyToken(keys, noKid, verifyOptions('access')), 'invalid_token');
  });

  it('rejects an HS256 token made with the public key as secret (algorithm confusion)', async () => {
    const publicJwk = keys.jwks.keys[0];
    assert.ok(publicJwk?.x);
    const secret = new TextEncoder().encode(publicJwk.x);
    const confused = await new SignJWT({ sub: 'x', sid: 's', jti: 'j', scope: '', type: 'access' })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: keys.kid })
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(now / 1000) + 60)
      .sign(secret);
    await rejects(verifyToken(keys, confused, verifyOptions('access')), 'invalid_token');
  });

  it('rejects the wrong issuer and the wrong audience', async () => {
    const { token } = await issueToken(keys, options('access'));
    await rejects(
      verifyToken(keys, token, verifyOptions('access', { issuer: 'http://other' })),
      'invalid_token',
    );
    await rejects(
      verifyToken(keys, token, verifyOptions('access', { audience: 'other' })),
      'invalid_token',
    );
  });

  it('rejects an oversized token before parsing it', async () => {
    const huge = `${'a'.repeat(maxTokenLength)}.b.c`;
    await rejects(verifyToken(keys, huge, verifyOptions('access')), 'token_too_large');
  });

  it('rejects garbage that is not a JWT', async () => {
    for (const junk of ['', 'abc', 'a.b', 'a.b.c.d', '....', 'ä.ö.ü', 'eyJ.eyJ.sig']) {
      await rejects(verifyToken(keys, junk, verifyOptions('access')), 'invalid_token');
    }
  });

  it('rejects a token whose payload was re-encoded with a changed claim', async () => {
    const { token } = await issueToken(keys, options('access', { scope: 'chat:read' }));
    const [h, p, s] = token.split('.') as [string, string, string];
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p))) as Record<
      string,
      unknown
    >;
    payload.scope = 'chat:read chat:write admin';
    const tampered = `${h}.${base64url.encode(JSON.stringify(payload))}.${s}`;
    await rejects(verifyToken(keys, tampered, verifyOptions('access')), 'invalid_token');
  });

  it('verifies tokens signed by a retired key after rotation', async () => {
    const oldKey = await generateSigningKey(now - 1000);
    const newKey = await generateSigningKey(now);
    const before = keySetFromStoredKeys([oldKey]);
    const after = keySetFromStoredKeys([oldKey, newKey]);
    assert.equal(after.kid, newKey.kid);
    const { token } = await issueToken(before, options('access'));
    await verifyToken(after, token, verifyOptions('access'));
    assert.equal(after.jwks.keys.length, 2);
    for (const jwk of after.jwks.keys)
      assert.equal(jwk.d, undefined, 'JWKS must not publish private keys');
  });

  it('HS256: verifies with the same secret, rejects another secret and EdDSA tokens', async () => {
    const hs = keySetFromSecret('a'.repeat(32));
    const hsOther = keySetFromSecret('b'.repeat(32));
    assert.deepEqual(hs.jwks, { keys: [] });
    const { token } = await issueToken(hs, options('access'));
    await verifyToken(hs, token, verifyOptions('access'));
    await rejects(verifyToken(hsOther, token, verifyOptions('access')), 'invalid_token');
    const ed = await issueToken({ ...keys, kid: hs.kid }, options('access'));
    await rejects(verifyToken(hs, ed.token, verifyOptions('access')), 'invalid_token');
    assert.throws(() => keySetFromSecret('short'), /32 bytes/);
    assert.ok(!hs.kid.includes('a'.repeat(8)));
  });

  it('rejects any change to the bytes of a valid token (property)', async () => {
    const { token } = await issueToken(keys, options('access'));
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: token.length - 1 }),
        fc.constantFrom(...alphabet.split('')),
        fc.constantFrom('replace', 'insert', 'delete'),
        async (index, char, op) => {
          let mutated: string;
          if (op === 'replace') mutated = token.slice(0, index) + char + token.slice(index + 1);
          else if (op === 'insert') mutated = token.slice(0, index) + char + token.slice(index);
          else mutated = token.slice(0, index) + token.slice(index + 1);
          fc.pre(mutated !== token);
          try {
            await verifyToken(keys, mutated, verifyOptions('access'));
          } catch (err) {
            return err instanceof WsgateError;
          }
          // Base64url has spare bits in the last character of each part: a change that decodes
          // to the very same bytes is the same token, not a change to its bytes.
          const decode = (t: string) =>
            t
              .split('.')
              .map((part) => Buffer.from(base64url.decode(part)).toString('hex'))
              .join('.');
          try {
            return decode(mutated) === decode(token);
          } catch {
            return false;
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
