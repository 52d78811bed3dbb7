import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, createPublicKey, randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { WsgateError } from '../errors.js';
import type * as errors from '../errors.js';

type ErrorsModule = typeof errors;
import { createGate, type Gate } from '../handshake/gate.js';
import { generateSigningKey, keySetFromStoredKeys } from '../tokens/keys.js';
import { issueToken } from '../tokens/issue.js';
import type { VerifyJwt } from '../tokens/verify.js';
import { FixtureIssuer } from '../../test/support/issuer.js';
import { createVerifier } from './verifier.js';

const issuer = 'https://chat.example';
const audience = 'wsgate';

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

async function refused(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof WsgateError, String(err));
    return err.code;
  }
  assert.fail('accepted');
}

describe('createVerifier from public keys (a service that only verifies)', () => {
  let idp: FixtureIssuer;

  before(async () => {
    idp = await FixtureIssuer.start();
    await idp.addKey('RS256', 'rsa-1');
  });

  after(() => idp.close());

  function idpToken(claims: Record<string, unknown> = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return idp.sign({ sub: 'alice', aud: audience, iat: now, exp: now + 60, ...claims });
  }

  it("verifies wsgate's own tokens with the public JWK Set the server publishes", async () => {
    const keys = keySetFromStoredKeys([await generateSigningKey()]);
    const verify = createVerifier(keys.jwks, { issuer, audience });
    const now = Date.now();
    const base = { subject: 'johndoe', sessionId: 's-1', scope: 'chat:read', ttl: 60, now };
    const access = await issueToken(keys, { ...base, type: 'access', issuer, audience });
    const claims = await verify(access.token, 'access');
    assert.equal(claims.sub, 'johndoe');
    assert.equal(claims.sid, 's-1');
    assert.equal(claims.external, undefined);
    const refresh = await issueToken(keys, { ...base, type: 'refresh', issuer, audience });
    assert.equal((await verify(refresh.token, 'refresh')).type, 'refresh');
    assert.equal(await refused(verify(refresh.token, 'access')), 'wrong_token_type');
    const other = await issueToken(keys, { ...base, type: 'access', issuer, audience: 'other' });
    assert.equal(await refused(verify(other.token, 'access')), 'invalid_token');
  });

  it("verifies an identity provider's RS256 token from a PEM public key, as an external principal", async () => {
    const pem = createPublicKey({ key: idp.keys[0]!.publicJwk as never, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    const verify = createVerifier(pem, { issuer: idp.issuer, audience });
    const claims = await verify(await idpToken({ scp: ['chat:read'] }), 'access');
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.scope, 'chat:read');
    assert.equal(claims.fresh, false);
    assert.equal(claims.external?.displayName, `${new URL(idp.issuer).host}:alice`);
    assert.equal(await refused(verify(await idpToken(), 'refresh')), 'wrong_token_type');
    // HS256 "signed" with the public key, and alg none: both refused.
    const now = Math.floor(Date.now() / 1000);
    const payload = b64({ iss: idp.issuer, sub: 'mallory', aud: audience, exp: now + 60 });
    const hsHead = b64({ alg: 'HS256', typ: 'JWT' });
    const mac = createHmac('sha256', pem).update(`${hsHead}.${payload}`).digest('base64url');
    assert.equal(await refused(verify(`${hsHead}.${payload}.${mac}`, 'access')), 'invalid_token');
    const none = `${b64({ alg: 'none' })}.${payload}.`;
    assert.equal(await refused(verify(none, 'access')), 'invalid_token');
    // Another issuer's token, whatever its key: refused.
    const stranger = await idpToken({ iss: 'https://elsewhere.example' });
    assert.equal(await refused(verify(stranger, 'access')), 'invalid_token');
  });

  it('fetches the keys from a JWKS URL and follows a rotation', async () => {
    let now = Date.now();
    const verify = createVerifier(new URL(idp.jwksUri), {
      issuer: idp.issuer,
      audience,
      clock: () => now,
    });
    await verify(await idpToken(), 'access');
    const rotated = await idp.addKey('ES256', 'ec-2');
    now += 30_000;
    const token = await idp.sign(
      { sub: 'bob', aud: audience, exp: Math.floor(now / 1000) + 60 },
      { key: rotated },
    );
    assert.equal((await verify(token, 'access')).sub, 'bob');
  });

  it('refuses private keys: a JWK with d, a secret, a private PEM', async () => {
    const stored = await generateSigningKey();
    assert.throws(() => createVerifier(stored.jwk, { issuer, audience }), TypeError);
    assert.throws(
      () => createVerifier({ kty: 'oct', k: 'c2VjcmV0' }, { issuer, audience }),
      TypeError,
    );
    const pem =
      '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n';
    assert.throws(() => createVerifier(pem, { issuer, audience }), /private key/);
  });
});

describe('a custom verify throwing a WsgateError (the VerifyJwt contract)', () => {
  let server: Server;
  let gate: Gate;
  let thrown: Error = new Error();

  before(async () => {
    const verify: VerifyJwt = () => Promise.reject(thrown);
    gate = createGate({ verify, limits: { handshakeBurst: 1000 } });
    gate.route('/ws', { requirement: 'required' }, (ws) => ws.close());
    server = createServer();
    server.on('upgrade', gate.handleUpgrade);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  after(async () => {
    await gate.drain(100);
    server.close();
  });

  /** The HTTP status of a plain client's refusal, and the close code a v1 client gets. */
  async function outcome(): Promise<[number, number]> {
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(url, { headers: { authorization: 'Bearer a.b.c' } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => undefined);
    });
    const close = await new Promise<number>((resolve) => {
      const ws = new WebSocket(url, ['wsgate.v1', 'wsgate.bearer.a.b.c']);
      ws.on('close', (code) => resolve(code));
      ws.on('error', () => undefined);
    });
    return [status, close];
  }

  it('keeps its status and close code', async () => {
    thrown = new WsgateError('user_disabled');
    assert.deepEqual(await outcome(), [403, 4403]);
    thrown = new WsgateError('session_revoked');
    assert.deepEqual(await outcome(), [401, 4410]);
  });

  it('keeps them for a WsgateError of another copy of the package', async () => {
    const copy = (await import(`../errors.js?copy=${randomUUID()}`)) as ErrorsModule;
    assert.notEqual(copy.WsgateError, WsgateError);
    thrown = new copy.WsgateError('token_expired');
    assert.deepEqual(await outcome(), [401, 4419]);
  });

  it('turns a plain Error into 500 / 1011', async () => {
    thrown = new Error('database down');
    assert.deepEqual(await outcome(), [500, 1011]);
  });
});
