import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { WsgateError, type ErrorCode } from '../errors.js';
import { generateSigningKey, keySetFromSecret, keySetFromStoredKeys, type KeySet } from './keys.js';
import { issueToken } from './issue.js';
import { verifyToken, type VerifyOptions } from './verify.js';
import {
  isVerifiedCached,
  maxCachedTokenLength,
  verifiedCacheCapacity,
  verifiedCacheSize,
} from './verified-cache.js';
import type { TokenType } from './claims.js';

const now = Date.UTC(2026, 5, 1, 12, 0, 0);
const issuer = 'http://wsgate.test';
const audience = 'wsgate';

async function token(keys: KeySet, type: TokenType = 'access', sessionId = 'session-1') {
  const issued = await issueToken(keys, {
    type,
    subject: 'johndoe',
    sessionId,
    scope: 'chat:read',
    ttl: 900,
    issuer,
    audience,
    now,
  });
  return issued.token;
}

function at(ms: number, overrides: Partial<VerifyOptions> = {}): VerifyOptions {
  return { type: 'access', issuer, audience, now: ms, ...overrides };
}

async function rejects(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof WsgateError, `expected WsgateError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** Takes the key away, as an embedder retiring a compromised key would. */
function forgetKey(keys: KeySet): void {
  (keys.verificationKeys as Map<string, KeyObject>).delete(keys.kid);
}

describe('verified-token cache', () => {
  it('answers for a token verified before, with the same frozen claims, and only for that token', async () => {
    const keys = keySetFromStoredKeys([await generateSigningKey(now)]);
    const seen = await token(keys);
    const unseen = await token(keys, 'access', 'session-2');
    const claims = await verifyToken(keys, seen, at(now));
    assert.ok(Object.isFrozen(claims));
    assert.ok(isVerifiedCached(keys, seen));
    assert.ok(!isVerifiedCached(keys, unseen));
    // A fresh verification builds new claims: getting the very same object back is the cache.
    assert.equal(await verifyToken(keys, seen, at(now + 1000)), claims);
    assert.notEqual(await verifyToken(keys, unseen, at(now)), claims);
  });

  it('stops answering once the key that verified a token is removed from the key set', async () => {
    const keys = keySetFromStoredKeys([await generateSigningKey(now)]);
    const seen = await token(keys);
    await verifyToken(keys, seen, at(now));
    forgetKey(keys);
    await rejects(verifyToken(keys, seen, at(now)), 'invalid_token');
    assert.ok(!isVerifiedCached(keys, seen));
  });

  it('stops answering once its kid names another key', async () => {
    const keys = keySetFromStoredKeys([await generateSigningKey(now)]);
    const other = keySetFromStoredKeys([await generateSigningKey(now)]);
    const seen = await token(keys);
    await verifyToken(keys, seen, at(now));
    const replacement = other.verificationKeys.get(other.kid) as KeyObject;
    (keys.verificationKeys as Map<string, KeyObject>).set(keys.kid, replacement);
    await rejects(verifyToken(keys, seen, at(now)), 'invalid_token');
  });

  it('checks exp on every use, and forgets a token once it has expired', async () => {
    const keys = keySetFromStoredKeys([await generateSigningKey(now)]);
    const seen = await token(keys);
    const { exp } = await verifyToken(keys, seen, at(now));
    await verifyToken(keys, seen, at(exp * 1000 - 1000));
    await rejects(verifyToken(keys, seen, at(exp * 1000)), 'token_expired');
    assert.ok(!isVerifiedCached(keys, seen));
  });

  it('checks nbf on every use: a clock set back before nbf refuses the cached token', async () => {
    const keys = keySetFromStoredKeys([await generateSigningKey(now)]);
    const seen = await token(keys);
    await verifyToken(keys, seen, at(now));
    await rejects(verifyToken(keys, seen, at(now - 2000)), 'invalid_token');
  });

  it('still refuses a cached access token where a refresh token is required, and back', async () => {
    const keys = keySetFromStoredKeys([await generateSigningKey(now)]);
    const access = await token(keys, 'access');
    const refresh = await token(keys, 'refresh');
    await verifyToken(keys, access, at(now));
    await verifyToken(keys, refresh, at(now, { type: 'refresh' }));
    await rejects(verifyToken(keys, access, at(now, { type: 'refresh' })), 'wrong_token_type');
    await rejects(verifyToken(keys, refresh, at(now)), 'wrong_token_type');
  });

  it('does not answer for another issuer or audience than the one it checked', async () => {
    const keys = keySetFromStoredKeys([await generateSigningKey(now)]);
    const seen = await token(keys);
    await verifyToken(keys, seen, at(now));
    await rejects(
      verifyToken(keys, seen, at(now, { issuer: 'http://other.test' })),
      'invalid_token',
    );
    await rejects(verifyToken(keys, seen, at(now, { audience: 'other' })), 'invalid_token');
  });

  it('belongs to one key set: the same token under a new key set is verified afresh', async () => {
    const secret = 'a shared secret that is long enough for HS256';
    const first = keySetFromSecret(secret);
    const seen = await token(first);
    const claims = await verifyToken(first, seen, at(now));
    const second = keySetFromSecret(secret);
    assert.equal(verifiedCacheSize(second), 0);
    const again = await verifyToken(second, seen, at(now));
    assert.deepEqual(again, claims);
    assert.notEqual(again, claims);
  });

  it(`keeps no token longer than ${maxCachedTokenLength} characters`, async () => {
    const keys = keySetFromSecret('a secret for long tokens, long enough for HS256');
    const issued = await issueToken(keys, {
      type: 'access',
      subject: 'johndoe',
      sessionId: 'session-long',
      scope: Array.from({ length: 200 }, (_, i) => `scope:${i}`).join(' '),
      ttl: 900,
      issuer,
      audience,
      now,
    });
    assert.ok(issued.token.length > maxCachedTokenLength);
    const claims = await verifyToken(keys, issued.token, at(now));
    assert.ok(!isVerifiedCached(keys, issued.token));
    assert.notEqual(await verifyToken(keys, issued.token, at(now)), claims);
  });

  it(`holds at most ${verifiedCacheCapacity} tokens, forgetting the least recently used`, async () => {
    const keys = keySetFromSecret('another shared secret, long enough for HS256');
    const tokens: string[] = [];
    for (let i = 0; i <= verifiedCacheCapacity; i++)
      tokens.push(await token(keys, 'access', `s${i}`));
    const [oldest, second] = tokens as [string, string];
    for (const t of tokens.slice(0, verifiedCacheCapacity)) await verifyToken(keys, t, at(now));
    await verifyToken(keys, oldest, at(now)); // used again: now the most recent
    await verifyToken(keys, tokens[verifiedCacheCapacity] as string, at(now)); // evicts `second`
    assert.equal(verifiedCacheSize(keys), verifiedCacheCapacity);
    assert.ok(isVerifiedCached(keys, oldest));
    assert.ok(!isVerifiedCached(keys, second));
  });
});
