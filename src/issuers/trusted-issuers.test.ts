import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { constants, createHmac, createPublicKey, KeyObject, randomUUID, sign } from 'node:crypto';
import { WsgateError } from '../errors.js';
import { manualClock, type ManualClock } from '../../test/support/server.js';
import { FixtureIssuer } from '../../test/support/issuer.js';
import type { IssuerError } from './issuer-error.js';
import {
  parseTrustSpec,
  TrustedIssuers,
  type TrustOptions,
  type TrustSpec,
} from './trusted-issuers.js';

const minute = 60_000;

interface Refusal {
  readonly code: string;
  readonly reason: string | undefined;
}

/** The catalogue code and the precise reason of a refused token. */
async function refusal(promise: Promise<unknown>): Promise<Refusal> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof WsgateError, `expected a WsgateError, got ${String(err)}`);
    return { code: err.code, reason: (err.cause as Error | undefined)?.message };
  }
  assert.fail('the token was accepted');
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('trusted issuers: discovery and key sets', () => {
  let clock: ManualClock;
  let idp: FixtureIssuer;
  const open: Array<TrustedIssuers | FixtureIssuer> = [];

  function trust(specs: TrustSpec[], options: Partial<TrustOptions> = {}): TrustedIssuers {
    const trusted = new TrustedIssuers(specs, {
      audiences: ['wsgate'],
      backchannelAudiences: ['app'],
      usernameClaim: 'sub',
      scopeClaim: undefined,
      adminIssuers: new Set(),
      clock,
      keySets: { timeoutMs: 5000 },
      ...options,
    });
    open.push(trusted);
    return trusted;
  }

  function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
    const now = Math.floor(clock() / 1000);
    return { sub: 'alice', aud: 'wsgate', iat: now, exp: now + 300, jti: randomUUID(), ...extra };
  }

  beforeEach(async () => {
    clock = manualClock(Date.now());
    idp = await FixtureIssuer.start();
    open.push(idp);
    await idp.addKey('RS256', 'rsa-1');
  });

  afterEach(async () => {
    for (const item of open.splice(0)) await item.close();
  });

  it('verifies tokens signed with each accepted algorithm by keys from the discovered jwks_uri', async () => {
    for (const alg of ['PS256', 'RS384', 'ES256', 'ES384', 'EdDSA']) await idp.addKey(alg, alg);
    const trusted = trust([{ issuer: idp.issuer }]);
    await trusted.start();
    for (const key of idp.keys) {
      const identity = await trusted.verifyAccessToken(await idp.sign(claims(), { key }));
      assert.equal(identity.subject, 'alice', key.alg);
      assert.equal(identity.issuer, idp.issuer);
    }
    assert.equal(idp.discoveryFetches, 1);
    assert.equal(idp.jwksFetches, 1);
    assert.deepEqual(
      trusted.statuses().map((s) => [s.state, s.keys]),
      [['ready', 6]],
    );
  });

  it('verifies with a JWKS URL given with --trust, without discovery', async () => {
    const trusted = trust([parseTrustSpec(`${idp.issuer}=${idp.jwksUri}`)]);
    await trusted.start();
    await trusted.verifyAccessToken(await idp.sign(claims()));
    assert.equal(idp.discoveryFetches, 0);
  });

  it('refuses a token from an issuer that is not trusted', async () => {
    const other = await FixtureIssuer.start();
    open.push(other);
    await other.addKey('RS256', 'rsa-1');
    const trusted = trust([{ issuer: idp.issuer }]);
    await trusted.start();
    assert.deepEqual(await refusal(trusted.verifyAccessToken(await other.sign(claims()))), {
      code: 'invalid_token',
      reason: 'untrusted issuer',
    });
    assert.equal(other.jwksFetches, 0);
  });

  it("never verifies one issuer's token with another issuer's key of the same kid", async () => {
    const other = await FixtureIssuer.start();
    open.push(other);
    const otherKey = await other.addKey('RS256', 'rsa-1');
    const trusted = trust([{ issuer: idp.issuer }, { issuer: other.issuer }]);
    await trusted.start();
    // Signed by the other issuer's key, claiming to be from idp, under the kid both use.
    const forged = await other.sign(claims({ iss: idp.issuer }), { key: otherKey });
    assert.deepEqual(await refusal(trusted.verifyAccessToken(forged)), {
      code: 'invalid_token',
      reason: 'signature verification failed',
    });
    // Each verifies its own.
    await trusted.verifyAccessToken(await other.sign(claims()));
    await trusted.verifyAccessToken(await idp.sign(claims()));
  });

  it('refuses HS256 signed with the public key, and alg none', async () => {
    const trusted = trust([{ issuer: idp.issuer }]);
    await trusted.start();
    const rsa = idp.keys[0]!;
    const pem = createPublicKey({ key: rsa.publicJwk as never, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    for (const secret of [pem, JSON.stringify(rsa.publicJwk)]) {
      const input = `${b64({ alg: 'HS256', kid: 'rsa-1', typ: 'JWT' })}.${b64({ iss: idp.issuer, ...claims() })}`;
      const signature = createHmac('sha256', secret).update(input).digest('base64url');
      assert.deepEqual(await refusal(trusted.verifyAccessToken(`${input}.${signature}`)), {
        code: 'invalid_token',
        reason: 'algorithm not allowed',
      });
    }
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: idp.issuer, ...claims() })}.`;
    assert.equal((await refusal(trusted.verifyAccessToken(none))).code, 'invalid_token');
    const noneSigned = `${b64({ alg: 'none' })}.${b64({ iss: idp.issuer, ...claims() })}.AA`;
    assert.deepEqual(await refusal(trusted.verifyAccessToken(noneSigned)), {
      code: 'invalid_token',
      reason: 'algorithm not allowed',
    });
  });

  it('refuses an algorithm the key does not allow: wrong key type, or another alg than the JWK names', async () => {
    const ec = await idp.addKey('ES256', 'ec-1');
    const trusted = trust([{ issuer: idp.issuer }]);
    await trusted.start();
    // An ES256 signature presented under the RSA key's kid.
    const wrongType = await idp.sign(claims(), { key: ec, header: { kid: 'rsa-1' } });
    assert.deepEqual(await refusal(trusted.verifyAccessToken(wrongType)), {
      code: 'invalid_token',
      reason: 'algorithm not allowed for this key',
    });
    // The RSA JWK says alg RS256; a PS256 signature with the same private key is refused.
    const input = `${b64({ alg: 'PS256', kid: 'rsa-1' })}.${b64({ iss: idp.issuer, ...claims() })}`;
    const signature = sign('sha256', Buffer.from(input), {
      key: KeyObject.from(idp.keys[0]!.privateKey),
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    }).toString('base64url');
    assert.deepEqual(await refusal(trusted.verifyAccessToken(`${input}.${signature}`)), {
      code: 'invalid_token',
      reason: 'algorithm not allowed for this key',
    });
    assert.equal(idp.jwksFetches, 1, 'a known kid with a wrong alg is no reason to refetch');
  });

  it('ignores jku, x5u and jwk headers: keys come only from the issuer', async () => {
    const attacker = await FixtureIssuer.start();
    open.push(attacker);
    const key = await attacker.addKey('RS256', 'evil');
    const trusted = trust([{ issuer: idp.issuer }]);
    await trusted.start();
    const token = await attacker.sign(claims({ iss: idp.issuer }), {
      key,
      header: { jku: attacker.jwksUri, x5u: attacker.jwksUri, jwk: key.publicJwk },
    });
    assert.deepEqual(await refusal(trusted.verifyAccessToken(token)), {
      code: 'invalid_token',
      reason: 'unknown key',
    });
    assert.equal(attacker.jwksFetches, 0);
  });

  it('refuses to start when the discovery document names another issuer, naming both', async () => {
    idp.metadataIssuer = 'https://evil.example';
    const trusted = trust([{ issuer: idp.issuer }]);
    await assert.rejects(trusted.start(), (err: IssuerError) => {
      assert.equal(err.code, 'issuer_mismatch');
      assert.match(err.message, new RegExp(`${idp.issuer}.*https://evil\\.example`));
      return true;
    });
    assert.equal(idp.jwksFetches, 0, 'no key is taken from a document for another issuer');
  });

  it('requires the discovered issuer to equal --trust exactly, trailing slash included', async () => {
    const trusted = trust([{ issuer: `${idp.issuer}/` }]);
    await assert.rejects(trusted.start(), { code: 'issuer_mismatch' });
  });

  it('falls back to RFC 8414 metadata when there is no OpenID configuration', async () => {
    const tenant = await FixtureIssuer.start('/tenant');
    open.push(tenant);
    await tenant.addKey('ES256', 'ec');
    let asked = '';
    tenant.override = (req, res) => {
      if (req.url === '/.well-known/oauth-authorization-server/tenant') {
        asked = req.url;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ issuer: tenant.issuer, jwks_uri: tenant.jwksUri }));
        return true;
      }
      if (req.url?.endsWith('openid-configuration')) {
        res.writeHead(404).end();
        return true;
      }
      return false;
    };
    const trusted = trust([{ issuer: tenant.issuer }]);
    await trusted.start();
    assert.equal(asked, '/.well-known/oauth-authorization-server/tenant');
    await trusted.verifyAccessToken(await tenant.sign(claims()));
  });

  it('accepts https and loopback http only, for the issuer and for jwks_uri', async () => {
    assert.throws(() => parseTrustSpec('http://idp.example'), { code: 'insecure_url' });
    assert.throws(() => parseTrustSpec('https://idp.example=http://keys.example/jwks'), {
      code: 'insecure_url',
    });
    assert.throws(() => parseTrustSpec('https://user:pw@idp.example'), { code: 'insecure_url' });
    assert.deepEqual(parseTrustSpec('https://idp.example/realms/a'), {
      issuer: 'https://idp.example/realms/a',
    });
    assert.deepEqual(parseTrustSpec('http://[::1]:8080=http://localhost:8080/jwks'), {
      issuer: 'http://[::1]:8080',
      jwksUri: 'http://localhost:8080/jwks',
    });
    idp.override = (req, res) => {
      if (!req.url?.endsWith('openid-configuration')) return false;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: idp.issuer, jwks_uri: 'http://keys.example/jwks' }));
      return true;
    };
    await assert.rejects(trust([{ issuer: idp.issuer }]).start(), { code: 'insecure_url' });
  });

  /** A JWKS endpoint that misbehaves: every case leaves the issuer without keys and its tokens 401. */
  const badJwks: Array<[string, string, (res: ServerResponse) => void]> = [
    [
      'redirects',
      'redirect',
      (res) => res.writeHead(302, { location: 'http://127.0.0.1:1/jwks' }).end(),
    ],
    ['is not JSON', 'not_json', (res) => res.writeHead(200).end('<html>keys</html>')],
    [
      'is 5 MiB',
      'too_large',
      (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        // No Content-Length: the cap holds while reading, not by trusting a header.
        const chunk = ' '.repeat(64 * 1024);
        let sent = 0;
        const write = () => {
          while (sent < 80 && res.write(chunk)) sent++;
          if (sent < 80) res.once('drain', write);
          else res.end('{"keys":[]}');
        };
        write();
      },
    ],
    [
      'holds 101 keys',
      'too_many_keys',
      (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ keys: Array.from({ length: 101 }, () => ({ kty: 'oct', k: 'AA' })) }),
        );
      },
    ],
    ['times out', 'timeout', () => undefined],
    ['answers 500', 'http_status', (res) => res.writeHead(500).end()],
  ];
  for (const [what, code, answer] of badJwks) {
    it(`leaves the issuer unavailable, its tokens 401, when the JWKS ${what}`, async () => {
      idp.override = (req, res) => {
        if (req.url !== '/jwks') return false;
        answer(res);
        return true;
      };
      // The timeout itself is shortened, so that the test does not wait 5 s.
      const trusted = trust(
        [{ issuer: idp.issuer }],
        code === 'timeout' ? { keySets: { timeoutMs: 300 } } : {},
      );
      await trusted.start(); // does not throw: the server would start
      const [status] = trusted.statuses();
      assert.equal(status?.state, 'unavailable');
      assert.equal(status?.error?.code, code);
      assert.deepEqual(await refusal(trusted.verifyAccessToken(await idp.sign(claims()))), {
        code: 'invalid_token',
        reason: 'issuer keys unavailable',
      });
    });
  }

  it('caps a JWKS by its declared Content-Length too', async () => {
    idp.override = (req, res) => {
      if (req.url !== '/jwks') return false;
      res.writeHead(200, { 'content-length': String(5 * 1024 * 1024) });
      res.write('{"keys":[');
      return true;
    };
    const trusted = trust([{ issuer: idp.issuer }]);
    await trusted.start();
    assert.equal(trusted.statuses()[0]?.error?.code, 'too_large');
  });

  it('does not follow a redirect from the discovery document', async () => {
    idp.override = (req, res) => {
      if (!req.url?.endsWith('openid-configuration')) return false;
      res.writeHead(301, { location: `${idp.issuer}/elsewhere` }).end();
      return true;
    };
    const trusted = trust([{ issuer: idp.issuer }]);
    await trusted.start();
    assert.equal(trusted.statuses()[0]?.error?.code, 'redirect');
  });

  it('refreshes the key set every 10 minutes, and a withdrawn key stops verifying at once', async () => {
    const trusted = trust([{ issuer: idp.issuer }]);
    await trusted.start();
    const old = await idp.sign(claims({ exp: Math.floor(clock() / 1000) + 3600 }));
    clock.advance(9 * minute);
    await trusted.verifyAccessToken(old);
    assert.equal(idp.jwksFetches, 1, 'no fetch within the refresh interval');
    await idp.addKey('RS256', 'rsa-2');
    idp.removeKey('rsa-1');
    clock.advance(minute);
    assert.deepEqual(await refusal(trusted.verifyAccessToken(old)), {
      code: 'invalid_token',
      reason: 'unknown key',
    });
    assert.equal(idp.jwksFetches, 2);
    await trusted.verifyAccessToken(await idp.sign(claims()));
  });

  it('verifies a rotated-in key after one refetch, and throttles an unknown-kid flood to one fetch per 30 s', async () => {
    const trusted = trust([{ issuer: idp.issuer }]);
    await trusted.start();
    clock.advance(31_000);
    const fresh = await idp.addKey('ES256', 'rotated');
    await trusted.verifyAccessToken(await idp.sign(claims(), { key: fresh }));
    assert.equal(idp.jwksFetches, 2, 'one refetch for the new kid');
    const flood = await Promise.all(
      Array.from({ length: 50 }, async (_, i) =>
        refusal(
          trusted.verifyAccessToken(await idp.sign(claims(), { header: { kid: `made-up-${i}` } })),
        ),
      ),
    );
    assert.ok(flood.every((r) => r.reason === 'unknown key'));
    assert.equal(idp.jwksFetches, 2, 'no refetch within 30 s of the last');
    clock.advance(30_000);
    await refusal(
      trusted.verifyAccessToken(await idp.sign(claims(), { header: { kid: 'made-up' } })),
    );
    assert.equal(idp.jwksFetches, 3);
  });

  it('serves the last good keys at most --trust-stale while fetches fail, then refuses', async () => {
    const trusted = trust([{ issuer: idp.issuer }], {
      keySets: { staleMs: 60 * minute },
    });
    await trusted.start();
    const token = await idp.sign(claims({ exp: Math.floor(clock() / 1000) + 7200 }));
    idp.override = (req, res) => {
      res.writeHead(503).end();
      return true;
    };
    clock.advance(30 * minute);
    await trusted.verifyAccessToken(token);
    assert.equal(trusted.statuses()[0]?.state, 'stale');
    assert.equal(trusted.statuses()[0]?.error?.code, 'http_status');
    const fetchesWhileFailing = idp.jwksFetches;
    clock.advance(10_000);
    await trusted.verifyAccessToken(token);
    assert.equal(
      idp.jwksFetches,
      fetchesWhileFailing,
      'a failed fetch is retried at most once per 30 s',
    );
    clock.advance(30 * minute);
    assert.deepEqual(await refusal(trusted.verifyAccessToken(token)), {
      code: 'invalid_token',
      reason: 'issuer keys unavailable',
    });
    assert.equal(trusted.statuses()[0]?.state, 'unavailable');
  });

  it('refuses a --trust-stale over 24 h', () => {
    assert.throws(
      () => trust([{ issuer: idp.issuer }], { keySets: { staleMs: 25 * 60 * minute } }),
      RangeError,
    );
  });

  it('starts with an unreachable issuer and verifies its tokens once its keys arrive', async () => {
    let down = true;
    idp.override = (req, res) => {
      if (!down) return false;
      res.destroy();
      return true;
    };
    const trusted = trust([{ issuer: idp.issuer }]);
    await trusted.start();
    assert.equal(trusted.statuses()[0]?.state, 'unavailable');
    assert.equal(trusted.statuses()[0]?.error?.code, 'unreachable');
    const token = await idp.sign(claims({ exp: Math.floor(clock() / 1000) + 3600 }));
    assert.equal(
      (await refusal(trusted.verifyAccessToken(token))).reason,
      'issuer keys unavailable',
    );
    down = false;
    assert.equal(
      (await refusal(trusted.verifyAccessToken(token))).reason,
      'issuer keys unavailable',
    );
    clock.advance(30_000);
    await trusted.verifyAccessToken(token);
    assert.equal(trusted.statuses()[0]?.state, 'ready');
  });

  it('picks the only key for its alg when the token has no kid, and refuses when that is ambiguous', async () => {
    const trusted = trust([{ issuer: idp.issuer }]);
    await trusted.start();
    await trusted.verifyAccessToken(await idp.sign(claims(), { header: { kid: undefined } }));
    await idp.addKey('RS256', 'rsa-2');
    clock.advance(10 * minute);
    assert.equal(
      (
        await refusal(
          trusted.verifyAccessToken(await idp.sign(claims(), { header: { kid: undefined } })),
        )
      ).reason,
      'unknown key',
    );
  });
});
