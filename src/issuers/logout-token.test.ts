import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WsgateError } from '../errors.js';
import { backchannelLogoutEvent, checkLogoutToken } from './logout-token.js';

const issuer = 'https://idp.example';
const now = Date.UTC(2026, 5, 1, 12, 0, 0);
const t = Math.floor(now / 1000);

function check(
  payload: Record<string, unknown>,
  header: Record<string, unknown> = { alg: 'RS256', typ: 'logout+jwt' },
) {
  return checkLogoutToken(
    {
      issuer,
      header,
      payload: {
        iss: issuer,
        aud: 'app',
        iat: t,
        exp: t + 120,
        jti: 'j-1',
        sid: 's-1',
        events: { [backchannelLogoutEvent]: {} },
        ...payload,
      },
    },
    ['app', 'other-app'],
    now,
  );
}

function reason(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WsgateError);
    assert.equal(err.code, 'invalid_token');
    return (err.cause as Error).message;
  }
  assert.fail('accepted');
}

describe('logout tokens (Back-Channel Logout 1.0 §2.6)', () => {
  it('accepts a sid, a sub, or both, with typ logout+jwt or none', () => {
    assert.deepEqual(check({}), {
      issuer,
      sid: 's-1',
      sub: undefined,
      jti: 'j-1',
      exp: t + 120,
      iat: t,
    });
    assert.deepEqual(check({ sid: undefined, sub: 'alice' }, { alg: 'RS256' }), {
      issuer,
      sid: undefined,
      sub: 'alice',
      jti: 'j-1',
      exp: t + 120,
      iat: t,
    });
    assert.equal(
      check(
        { sub: 'alice', aud: ['x', 'other-app'] },
        { alg: 'ES256', typ: 'application/logout+jwt' },
      ).sub,
      'alice',
    );
  });

  it('refuses a logout token with a nonce (an ID token passing for one)', () => {
    assert.equal(
      reason(() => check({ nonce: 'n' })),
      'a logout token has no nonce',
    );
  });

  it('refuses one without the back-channel logout event, or with it not an object', () => {
    for (const events of [
      undefined,
      {},
      { [backchannelLogoutEvent]: 'yes' },
      { [backchannelLogoutEvent]: [] },
      { [backchannelLogoutEvent]: null },
      [backchannelLogoutEvent],
    ])
      assert.equal(
        reason(() => check({ events })),
        'events lacks the back-channel logout event',
        JSON.stringify(events),
      );
  });

  it('refuses a stale one (iat over 5 min old) and one from the future (iat over 60 s ahead)', () => {
    check({ iat: t - 300 });
    check({ iat: t + 60 });
    assert.equal(
      reason(() => check({ iat: t - 301 })),
      'issued too long ago',
    );
    assert.equal(
      reason(() => check({ iat: t + 61 })),
      'issued in the future',
    );
    assert.equal(
      reason(() => check({ iat: undefined })),
      'iat missing',
    );
  });

  it('refuses an expired one, or one without exp', () => {
    assert.equal(
      reason(() => check({ exp: t })),
      'exp missing or past',
    );
    assert.equal(
      reason(() => check({ exp: undefined })),
      'exp missing or past',
    );
  });

  it('refuses one for another audience', () => {
    assert.equal(
      reason(() => check({ aud: 'wsgate' })),
      'audience not accepted',
    );
    assert.equal(
      reason(() => check({ aud: ['wsgate'] })),
      'audience not accepted',
    );
  });

  it('refuses another typ, no sid nor sub, and no jti', () => {
    assert.equal(
      reason(() => check({}, { alg: 'RS256', typ: 'at+jwt' })),
      'typ is not logout+jwt',
    );
    assert.equal(
      reason(() => check({}, { alg: 'RS256', typ: 'JWT' })),
      'typ is not logout+jwt',
    );
    assert.equal(
      reason(() => check({ sid: undefined })),
      'neither sid nor sub',
    );
    assert.equal(
      reason(() => check({ jti: undefined })),
      'jti missing',
    );
  });
});
