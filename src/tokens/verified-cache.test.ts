import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { WsgateError, type ErrorCode } from '../errors.js';
import { generateSigningKey, keySetFromSecret, keySetFromStoredKeys, type KeySet } from './keys.js';
import { issueToken } from './issue.js';
import { verifyToken, type VerifyOptions } from './verify.js';
import { verifiedCacheCapacity, verifiedCacheSize } from './verified-cache.js';
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

/** Takes the key away, so that only a cached verdict can still accept a token. */
function forgetKey(keys: KeySet): void {
  (keys.verificationKeys as Map<string, KeyObject>).delete(keys.kid);
}

describe('verified-token cache', () => {
  it('answers for a token verified before, and only for that exact token', async () => {
    const keys = keySetFromStoredKeys([await generateSigningKey(now)]);
    const seen = await token(keys);
    const unseen = await token(keys, 'access', 'session-2');
    const claims = await verifyToken(keys, seen, at(now));
    forgetKey(keys);
    assert.deepEqual(await verifyToken(keys, seen, at(now + 1000)), claims);
    await rejects(verifyToken(keys, unseen, at(now)), 'invalid_token');
  });

  it('checks exp on every use: a cached token expires like any other', async () => {
    const keys = keySetFromStoredKeys([await generateSigningKey(now)]);
    const seen = await token(keys);
    const { exp } = await verifyToken(keys, seen, at(now));
    await verifyToken(keys, seen, at(exp * 1000 - 1000));
    await rejects(verifyToken(keys, seen, at(exp * 1000)), 'token_expired');
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
    await verifyToken(first, seen, at(now));
    const second = keySetFromSecret(secret);
    forgetKey(second);
    await rejects(verifyToken(second, seen, at(now)), 'invalid_token');
    assert.equal(verifiedCacheSize(second), 0);
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
    forgetKey(keys);
    await verifyToken(keys, oldest, at(now));
    await rejects(verifyToken(keys, second, at(now)), 'invalid_token');
  });
});
