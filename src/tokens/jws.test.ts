import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, sign } from 'node:crypto';
import fc from 'fast-check';
import {
  SignJWT,
  UnsecuredJWT,
  jwtVerify,
  errors as joseErrors,
  type JWTHeaderParameters,
  type JWTPayload,
} from 'jose';
import { WsgateError, type ErrorCode } from '../errors.js';
import { generateSigningKey, keySetFromSecret, keySetFromStoredKeys, type KeySet } from './keys.js';
import { issueToken } from './issue.js';
import {
  decodedHeaderCount,
  isCanonicalBase64url,
  maxDecodedHeaders,
  verifyCompactJws,
} from './jws.js';
import { verifyToken, type VerifyOptions } from './verify.js';
import { headerTypes, maxTokenLength, type TokenClaims } from './claims.js';

const baseNow = Date.UTC(2026, 5, 1, 12, 0, 0);
/** `baseNow` in NumericDate seconds; every generated time claim is relative to it. */
const t = Math.floor(baseNow / 1000);
const issuer = 'http://wsgate.test';
const audience = 'wsgate';

type Outcome =
  | { readonly ok: true; readonly claims: TokenClaims }
  | { readonly ok: false; readonly code: ErrorCode };

const fail = (code: ErrorCode): Outcome => ({ ok: false, code });

/** What wsgate's verifier says about a token. */
async function ours(keys: KeySet, token: string, options: VerifyOptions): Promise<Outcome> {
  try {
    return { ok: true, claims: await verifyToken(keys, token, options) };
  } catch (err) {
    if (err instanceof WsgateError) return fail(err.code);
    throw err;
  }
}

const jwtShape = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * The oracle: what `verifyToken` said when it was built on jose's `jwtVerify` — the same
 * pre-checks, `jwtVerify` with a key resolver by `kid`, `JWTExpired` → `token_expired` and every
 * other jose error → `invalid_token`, then the same post-checks on type and claim types.
 */
async function oracle(keys: KeySet, token: string, options: VerifyOptions): Promise<Outcome> {
  if (token.length > maxTokenLength) return fail('token_too_large');
  if (!jwtShape.test(token)) return fail('invalid_token');
  let payload: JWTPayload;
  let header: JWTHeaderParameters;
  try {
    ({ payload, protectedHeader: header } = await jwtVerify(
      token,
      (protectedHeader) => {
        const key =
          protectedHeader.kid === undefined
            ? undefined
            : keys.verificationKeys.get(protectedHeader.kid);
        if (!key) throw new WsgateError('invalid_token');
        return key;
      },
      {
        algorithms: [keys.alg],
        issuer: options.issuer,
        audience: options.audience,
        currentDate: new Date(options.now),
        requiredClaims: ['exp', 'iat', 'sub', 'jti', 'sid'],
      },
    ));
  } catch (err) {
    return fail(err instanceof joseErrors.JWTExpired ? 'token_expired' : 'invalid_token');
  }
  const typ =
    typeof header.typ === 'string'
      ? header.typ.toLowerCase().replace(/^application\//, '')
      : undefined;
  if (typ !== headerTypes[options.type] || payload.type !== options.type) {
    return fail('wrong_token_type');
  }
  if (
    typeof payload.sub !== 'string' ||
    typeof payload.sid !== 'string' ||
    typeof payload.jti !== 'string' ||
    typeof payload.scope !== 'string' ||
    (payload.csrf !== undefined && typeof payload.csrf !== 'string')
  ) {
    return fail('invalid_token');
  }
  return {
    ok: true,
    claims: {
      ...(payload as unknown as TokenClaims),
      nbf: typeof payload.nbf === 'number' ? payload.nbf : (payload.iat as number),
      fresh: payload.fresh === true,
    },
  };
}

function accessOptions(now: number = baseNow): VerifyOptions {
  return { type: 'access', issuer, audience, now };
}

async function rejects(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof WsgateError, `expected WsgateError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

function throwsInvalid(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof WsgateError, `expected WsgateError, got ${String(err)}`);
    assert.equal(err.code, 'invalid_token');
    return true;
  });
}

const b64u = (data: string | Buffer): string => Buffer.from(data).toString('base64url');

/** Signs `header.payload` (already encoded) with the key set's signing key, bypassing jose. */
function signEncoded(keys: KeySet, encodedHeader: string, encodedPayload: string): string {
  const input = Buffer.from(`${encodedHeader}.${encodedPayload}`, 'latin1');
  const signature =
    keys.alg === 'HS256'
      ? createHmac('sha256', keys.signingKey).update(input).digest()
      : sign(null, input, keys.signingKey);
  return `${encodedHeader}.${encodedPayload}.${signature.toString('base64url')}`;
}

/** Signs raw header and payload bytes with the key set's signing key, bypassing jose. */
function signBytes(keys: KeySet, header: string | Buffer, payload: string | Buffer): string {
  return signEncoded(keys, b64u(header), b64u(payload));
}

const base64urlAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Another spelling of a base64url segment with the same bytes (spare bits in its last character). */
function respell(segment: string): string | undefined {
  const bytes = Buffer.from(segment, 'base64url');
  for (const char of base64urlAlphabet) {
    const candidate = segment.slice(0, -1) + char;
    if (candidate !== segment && Buffer.from(candidate, 'base64url').equals(bytes))
      return candidate;
  }
  return undefined;
}

function validClaims(): Record<string, unknown> {
  return {
    iss: issuer,
    aud: audience,
    sub: 'johndoe',
    iat: t - 10,
    nbf: t - 10,
    exp: t + 900,
    jti: 'jti-1',
    sid: 'session-1',
    scope: 'chat:read chat:write',
    fresh: true,
    type: 'access',
  };
}

/** Mostly `usual`, now and then one of `others` (`undefined` means the member is left out). */
function mostly<T>(usual: T, ...others: T[]): fc.Arbitrary<T> {
  return fc.oneof(
    { arbitrary: fc.constant(usual), weight: 20 },
    { arbitrary: fc.constantFrom(...others), weight: 1 },
  );
}

/** One of several groups of values, each group picked with its weight. */
function weighted<T>(...groups: [weight: number, values: T[]][]): fc.Arbitrary<T> {
  return fc.oneof(
    ...groups.map(([weight, values]) => ({ arbitrary: fc.constantFrom(...values), weight })),
  );
}

const claimSet = fc.record({
  iss: mostly<unknown>(issuer, 'http://other.test', [issuer], undefined, 42),
  aud: mostly<unknown>(
    audience,
    'other',
    [audience],
    ['other', audience],
    ['other'],
    [],
    undefined,
    7,
  ),
  sub: mostly<unknown>('johndoe', 42, null, undefined),
  sid: mostly<unknown>('session-1', 1, undefined),
  jti: mostly<unknown>('jti-1', 1, undefined),
  scope: mostly<unknown>('chat:read', '', 1, undefined),
  csrf: fc.constantFrom<unknown>(undefined, 'csrf-value', 1),
  type: mostly<unknown>('access', 'refresh', 'ACCESS', undefined),
  fresh: fc.constantFrom<unknown>(true, false, 'true', undefined),
  // Time claims: mostly good, often at or past a boundary, sometimes not a number or missing.
  iat: weighted<unknown>([6, [t - 60, t, t + 60, t + 0.5]], [1, [String(t), null, undefined]]),
  nbf: weighted<unknown>(
    [5, [undefined, t - 60, t - 1, t]],
    [1, [t + 0.5, t + 1, t + 60, String(t - 60), null]],
  ),
  exp: weighted<unknown>(
    [4, [t + 0.5, t + 1, t + 900]],
    [2, [t - 60, t - 1, t - 0.5, t]],
    [1, [String(t + 900), null, undefined]],
  ),
});

const headerSet = fc.record({
  typ: weighted<string | undefined>(
    [6, ['at+jwt', 'application/at+jwt', 'AT+JWT']],
    [1, ['refresh+jwt', undefined]],
  ),
  kid: mostly<'ours' | 'unknown' | 'absent'>('ours', 'unknown', 'absent'),
  extra: mostly<'none' | 'crit-exp' | 'b64-false' | 'b64-false-crit' | 'b64-true-crit'>(
    'none',
    'crit-exp',
    'b64-false',
    'b64-false-crit',
    'b64-true-crit',
  ),
  signer: mostly<'ours' | 'other-key' | 'other-alg'>('ours', 'other-key', 'other-alg'),
});

describe('verifyCompactJws and verifyToken against jose', () => {
  let ed: KeySet;
  let otherEd: KeySet;
  let hs: KeySet;
  let otherHs: KeySet;

  before(async () => {
    ed = keySetFromStoredKeys([await generateSigningKey(baseNow)]);
    otherEd = keySetFromStoredKeys([await generateSigningKey(baseNow)]);
    hs = keySetFromSecret('wsgate-jws-test-secret-0123456789');
    otherHs = keySetFromSecret('another-jws-test-secret-0123456789');
  });

  it('gives the same verdict, error code and claims as jose jwtVerify on generated tokens (property)', async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('EdDSA', 'HS256'),
        claimSet,
        headerSet,
        fc.integer({ min: 0, max: 999 }),
        async (alg, claims, headerCase, millis) => {
          const keys = alg === 'EdDSA' ? ed : hs;
          const signer =
            headerCase.signer === 'ours'
              ? keys
              : headerCase.signer === 'other-key'
                ? alg === 'EdDSA'
                  ? otherEd
                  : otherHs
                : alg === 'EdDSA'
                  ? hs
                  : ed;
          const header: JWTHeaderParameters = { alg: signer.alg };
          if (headerCase.typ !== undefined) header.typ = headerCase.typ;
          if (headerCase.kid === 'ours') header.kid = keys.kid;
          else if (headerCase.kid === 'unknown') header.kid = 'unknown-kid';
          const signOptions: { crit?: Record<string, boolean> } = {};
          switch (headerCase.extra) {
            case 'crit-exp':
              Object.assign(header, { exp: t + 900, crit: ['exp'] });
              signOptions.crit = { exp: true };
              break;
            case 'b64-false':
              header.b64 = false;
              break;
            case 'b64-false-crit':
              Object.assign(header, { b64: false, crit: ['b64'] });
              break;
            case 'b64-true-crit':
              Object.assign(header, { b64: true, crit: ['b64'] });
              break;
            case 'none':
              break;
          }
          const payload = Object.fromEntries(
            Object.entries(claims).filter(([, value]) => value !== undefined),
          );
          let token: string;
          try {
            token = await new SignJWT(payload)
              .setProtectedHeader(header)
              .sign(signer.signingKey, signOptions);
          } catch (err) {
            // jose refuses to sign some headers (an unencoded JWT payload): nothing to compare.
            if (err instanceof joseErrors.JWTInvalid) {
              fc.pre(false);
            }
            throw err;
          }
          const options = accessOptions(baseNow + millis);
          // wsgate never issues `crit` or `b64` and refuses both outright (jose ignores a `b64`
          // that `crit` does not name): the one place the verdicts differ on purpose.
          const expected =
            'crit' in header || 'b64' in header
              ? fail('invalid_token')
              : await oracle(keys, token, options);
          const actual = await ours(keys, token, options);
          assert.deepEqual(actual, expected, `token ${token}`);
          const key = expected.ok ? 'accepted' : expected.code;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        },
      ),
      { numRuns: 400, includeErrorInReport: true },
    );
    // The generators reach every verdict, so the agreement above is not vacuous.
    for (const verdict of ['accepted', 'invalid_token', 'token_expired', 'wrong_token_type']) {
      assert.ok((seen.get(verdict) ?? 0) > 0, `no generated token was ${verdict}`);
    }
  });

  it('accepts a token issued by issueToken, like jose, with the same claims', async () => {
    for (const keys of [ed, hs]) {
      const { token, claims } = await issueToken(keys, {
        type: 'access',
        subject: 'johndoe',
        sessionId: 'session-1',
        scope: 'chat:read',
        ttl: 900,
        issuer,
        audience,
        now: baseNow,
      });
      const actual = await ours(keys, token, accessOptions());
      assert.deepEqual(actual, { ok: true, claims });
      assert.deepEqual(actual, await oracle(keys, token, accessOptions()));
    }
  });

  it('rejects an unsigned alg none token as invalid_token, with or without a signature segment', async () => {
    const unsecured = new UnsecuredJWT(validClaims()).encode();
    assert.ok(unsecured.endsWith('.'));
    const [h, p] = unsecured.split('.') as [string, string];
    const withKid = `${b64u(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: ed.kid }))}.${p}`;
    for (const token of [unsecured, `${h}.${p}.AAAA`, `${withKid}.`, `${withKid}.AAAA`]) {
      await rejects(verifyToken(ed, token, accessOptions()), 'invalid_token');
      assert.deepEqual(await oracle(ed, token, accessOptions()), fail('invalid_token'));
      throwsInvalid(() => verifyCompactJws(ed, token));
    }
  });

  it('rejects a token signed with another Ed25519 key under our kid as invalid_token', async () => {
    const forged = await new SignJWT(validClaims())
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: ed.kid })
      .sign(otherEd.signingKey);
    await rejects(verifyToken(ed, forged, accessOptions()), 'invalid_token');
    throwsInvalid(() => verifyCompactJws(ed, forged));
    assert.deepEqual(await oracle(ed, forged, accessOptions()), fail('invalid_token'));
  });

  it('rejects a signature segment re-spelled with a non-canonical final character (same bytes) as invalid_token', async () => {
    for (const keys of [ed, hs]) {
      const token = await new SignJWT(validClaims())
        .setProtectedHeader({ alg: keys.alg, typ: 'at+jwt', kid: keys.kid })
        .sign(keys.signingKey);
      assert.equal((await ours(keys, token, accessOptions())).ok, true);
      const cut = token.lastIndexOf('.') + 1;
      const signature = token.slice(cut);
      const respelled = respell(signature);
      assert.ok(respelled, `${keys.alg} signatures have spare bits in their last character`);
      assert.ok(
        Buffer.from(respelled, 'base64url').equals(Buffer.from(signature, 'base64url')),
        'the re-spelled signature decodes to the same bytes',
      );
      // jose decodes either spelling to the same signature; wsgate takes only the one it signed.
      const token2 = token.slice(0, cut) + respelled;
      await rejects(verifyToken(keys, token2, accessOptions()), 'invalid_token');
      throwsInvalid(() => verifyCompactJws(keys, token2));
    }
  });

  it('rejects any header with crit or b64 as invalid_token, even one jose would accept', async () => {
    const claims = validClaims();
    const critExp = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: ed.kid, exp: t + 900, crit: ['exp'] })
      .sign(ed.signingKey, { crit: { exp: true } });
    assert.deepEqual(await oracle(ed, critExp, accessOptions()), fail('invalid_token'));
    const tokens = [
      critExp,
      signBytes(
        ed,
        JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: ed.kid, 'x-ext': 1, crit: ['x-ext'] }),
        JSON.stringify(claims),
      ),
      signBytes(
        ed,
        JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: ed.kid, b64: true, crit: ['b64'] }),
        JSON.stringify(claims),
      ),
      signBytes(
        ed,
        JSON.stringify({ alg: 'EdDSA', kid: ed.kid, crit: [] }),
        JSON.stringify(claims),
      ),
      signBytes(
        ed,
        JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: ed.kid, b64: false }),
        JSON.stringify(claims),
      ),
    ];
    for (const token of tokens) {
      await rejects(verifyToken(ed, token, accessOptions()), 'invalid_token');
      throwsInvalid(() => verifyCompactJws(ed, token));
    }
  });

  it('shares a decoded header only once it passed: a crit header is refused every time, beside a good one', async () => {
    const claims = JSON.stringify(validClaims());
    const good = signBytes(
      ed,
      JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: ed.kid }),
      claims,
    );
    const crit = signBytes(
      ed,
      JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: ed.kid, 'x-ext': 1, crit: ['x-ext'] }),
      claims,
    );
    for (let i = 0; i < 3; i++) {
      assert.equal(verifyCompactJws(ed, good).payload.sub, 'johndoe');
      throwsInvalid(() => verifyCompactJws(ed, crit));
      // The same header over another key's signature: the header is shared, the check is not.
      const forged = signBytes(
        otherEd,
        JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: ed.kid }),
        claims,
      );
      throwsInvalid(() => verifyCompactJws(ed, forged));
    }
    assert.ok(Object.isFrozen(verifyCompactJws(ed, good).header));
  });

  it(`keeps at most ${maxDecodedHeaders} decoded headers, however many a client makes up`, () => {
    const claims = JSON.stringify(validClaims());
    for (let i = 0; i < maxDecodedHeaders * 3; i++) {
      const header = JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: ed.kid, n: i });
      assert.equal(verifyCompactJws(ed, signBytes(ed, header, claims)).payload.sub, 'johndoe');
      assert.ok(decodedHeaderCount() <= maxDecodedHeaders);
    }
    assert.ok(decodedHeaderCount() > 0);
  });

  it('rejects four-segment and two-segment strings as invalid_token', async () => {
    for (const keys of [ed, hs]) {
      const token = await new SignJWT(validClaims())
        .setProtectedHeader({ alg: keys.alg, typ: 'at+jwt', kid: keys.kid })
        .sign(keys.signingKey);
      const [h, p, s] = token.split('.') as [string, string, string];
      const malformed = [
        `${token}.${s}`,
        `${token}.`,
        `${h}.${p}.${s}.AAAA`,
        `${h}.${p}`,
        `${h}.${s}`,
        `${p}.${s}`,
        `${h}${p}.${s}`,
      ];
      for (const candidate of malformed) {
        await rejects(verifyToken(keys, candidate, accessOptions()), 'invalid_token');
        throwsInvalid(() => verifyCompactJws(keys, candidate));
        assert.deepEqual(await oracle(keys, candidate, accessOptions()), fail('invalid_token'));
      }
    }
  });

  it('rejects a properly signed payload that is a JSON array or not JSON as invalid_token', async () => {
    const claims = JSON.stringify(validClaims());
    const payloads = [
      `[${claims}]`,
      '["a",1]',
      'not json',
      `${claims}x`,
      '"a string"',
      'null',
      '42',
    ];
    for (const keys of [ed, hs]) {
      const header = JSON.stringify({ alg: keys.alg, typ: 'at+jwt', kid: keys.kid });
      // The same signing path with an object payload is accepted: only the payload is at fault.
      const control = signBytes(keys, header, claims);
      assert.equal(verifyCompactJws(keys, control).payload.sub, 'johndoe');
      assert.equal((await ours(keys, control, accessOptions())).ok, true);
      for (const payload of payloads) {
        const token = signBytes(keys, header, payload);
        await rejects(verifyToken(keys, token, accessOptions()), 'invalid_token');
        throwsInvalid(() => verifyCompactJws(keys, token));
        assert.deepEqual(await oracle(keys, token, accessOptions()), fail('invalid_token'));
      }
    }
  });

  describe('encoding edge cases of tokens properly signed with our key', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const header = (keys: KeySet, extra: Record<string, unknown> = {}): string =>
      JSON.stringify({ alg: keys.alg, typ: 'at+jwt', kid: keys.kid, ...extra });

    async function agree(keys: KeySet, token: string): Promise<void> {
      const expected = await oracle(keys, token, accessOptions());
      const actual = await ours(keys, token, accessOptions());
      assert.deepEqual(actual, expected, `${keys.alg} token ${token}`);
    }

    it('agrees on a payload that starts with a UTF-8 byte order mark', async () => {
      for (const keys of [ed, hs]) {
        const payload = Buffer.concat([bom, Buffer.from(JSON.stringify(validClaims()))]);
        await agree(keys, signBytes(keys, header(keys), payload));
      }
    });

    it('agrees on a header that starts with a UTF-8 byte order mark', async () => {
      for (const keys of [ed, hs]) {
        const encodedHeader = Buffer.concat([bom, Buffer.from(header(keys))]);
        await agree(keys, signBytes(keys, encodedHeader, JSON.stringify(validClaims())));
      }
    });

    it('agrees on a payload that is not valid UTF-8', async () => {
      for (const keys of [ed, hs]) {
        const claims = { ...validClaims(), scope: 'chat:read \u00ff' };
        await agree(
          keys,
          signBytes(keys, header(keys), Buffer.from(JSON.stringify(claims), 'latin1')),
        );
      }
    });

    it('agrees on a header that is not valid UTF-8', async () => {
      for (const keys of [ed, hs]) {
        const encodedHeader = Buffer.from(header(keys, { note: '\u00ff' }), 'latin1');
        await agree(keys, signBytes(keys, encodedHeader, JSON.stringify(validClaims())));
      }
    });

    it('agrees on a payload segment with a dangling base64url character (length 1 mod 4)', async () => {
      for (const keys of [ed, hs]) {
        // Pad the JSON with spaces to a whole number of base64 quanta, then add one character.
        let json = JSON.stringify(validClaims());
        while (json.length % 3 !== 0) json += ' ';
        const payload = `${b64u(json)}A`;
        assert.equal(payload.length % 4, 1);
        const token = signEncoded(keys, b64u(header(keys)), payload);
        await agree(keys, token);
      }
    });

    it('agrees on a header or payload segment re-spelled with a non-canonical final character, re-signed', async () => {
      let payloads = 0;
      let headers = 0;
      for (const keys of [ed, hs]) {
        // Three lengths of sub: one of them leaves spare bits at the end of the payload.
        for (const sub of ['johndoe', 'johndoe1', 'johndoe12']) {
          const encodedHeader = b64u(header(keys, { sub }));
          const encodedPayload = b64u(JSON.stringify({ ...validClaims(), sub }));
          const payload2 = respell(encodedPayload);
          if (payload2) {
            await agree(keys, signEncoded(keys, encodedHeader, payload2));
            payloads++;
          }
          const header2 = respell(encodedHeader);
          if (header2) {
            await agree(keys, signEncoded(keys, header2, encodedPayload));
            headers++;
          }
        }
      }
      assert.ok(payloads > 0 && headers > 0, 'some segments were re-spelled');
    });

    it('agrees on payloads with an escaped lone surrogate, a __proto__ member, a duplicate member or exp 1e400', async () => {
      for (const keys of [ed, hs]) {
        const claims = JSON.stringify(validClaims());
        for (const payload of [
          claims.replace('"chat:read chat:write"', '"\\ud800"'),
          claims.replace('{', '{"__proto__":{"polluted":true},'),
          claims.replace('"aud":"wsgate"', '"aud":"other","aud":"wsgate"'),
          claims.replace('"exp":', '"exp":1e400,"ignored":'),
        ]) {
          await agree(keys, signBytes(keys, header(keys), payload));
        }
      }
    });
  });
});

describe('isCanonicalBase64url', () => {
  /** What the check used to be: decode, encode again, compare. */
  const reencodes = (text: string) => Buffer.from(text, 'base64url').toString('base64url') === text;

  it('accepts exactly the strings that decode and encode back to themselves (property)', () => {
    const characters = [
      ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
      ...'+/=. \n\u00e9',
    ];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 70 }).map((bytes) => Buffer.from(bytes).toString('base64url')),
          fc
            .tuple(fc.uint8Array({ minLength: 1, maxLength: 70 }), fc.constantFrom(...characters))
            .map(([bytes, last]) => Buffer.from(bytes).toString('base64url').slice(0, -1) + last),
          fc.array(fc.constantFrom(...characters), { maxLength: 90 }).map((c) => c.join('')),
        ),
        (text) => isCanonicalBase64url(text) === reencodes(text),
      ),
      { numRuns: 5000 },
    );
  });

  it('refuses every other final character of a signature with spare bits', () => {
    for (const length of [1, 2, 32, 64]) {
      const canonical = Buffer.alloc(length, 0xa5).toString('base64url');
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const accepted = [...alphabet].filter((c) =>
        isCanonicalBase64url(canonical.slice(0, -1) + c),
      );
      // 4 spare bits leave 16 spellings, 2 leave 4, of which one is canonical.
      assert.deepEqual(
        accepted,
        [...alphabet].filter((c) => reencodes(canonical.slice(0, -1) + c)),
      );
      assert.equal(accepted.length, length % 3 === 0 ? 64 : length % 3 === 1 ? 4 : 16);
    }
  });
});
