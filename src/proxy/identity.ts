import {
  randomBytes,
  createHash,
  createPrivateKey,
  createPublicKey,
  hkdfSync,
  randomUUID,
  sign,
  type KeyObject,
} from 'node:crypto';
import type { JWK } from 'jose';
import type { KeySet } from '../tokens/keys.js';

/** JOSE `typ` of the identity token wsgate sends upstream; never accepted as a credential. */
export const identityTokenType = 'wsgate-identity+jwt';

/** Longest life of an identity token: it is read once, when the upstream accepts the socket. */
export const identityTtlSeconds = 60;

/** The Ed25519 key that signs `X-Wsgate-Identity`, apart from the keys that sign credentials. */
export interface IdentityKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  /** The public key as a JWK, for `/.well-known/jwks.json`. */
  readonly jwk: JWK;
}

/** Who the identity token speaks for. */
export interface IdentitySubject {
  /** The principal's subject at its issuer. */
  readonly sub: string;
  /** The displayed name (`X-Wsgate-User`). */
  readonly name: string;
  /** The issuer that authenticated the principal: wsgate itself or a trusted provider. */
  readonly idp: string;
  readonly sid: string;
  readonly scope: string;
  /** The credential's own expiry (seconds): the identity token never outlives it. */
  readonly exp?: number;
}

export interface IdentityClaims {
  readonly iss: string;
  readonly aud: string;
  readonly sub: string;
  readonly name: string;
  readonly idp: string;
  readonly sid: string;
  readonly scope: string;
  readonly iat: number;
  readonly jti: string;
  readonly exp: number;
}

// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410).
const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An identity key from a 32-byte seed. */
export function identityKeyFromSeed(seed: Buffer): IdentityKey {
  if (seed.length !== 32) throw new Error('an Ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({
    key: Buffer.concat([pkcs8Prefix, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const { x } = createPublicKey(privateKey).export({ format: 'jwk' });
  // RFC 7638 thumbprint: the required members, in lexicographic order, without spaces.
  const kid = createHash('sha256')
    .update(JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x }))
    .digest('base64url');
  return {
    kid,
    privateKey,
    jwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' } as JWK,
  };
}

/** A fresh random identity key, for a gate used as a library without a stored signing key. */
export function createIdentityKey(): IdentityKey {
  return identityKeyFromSeed(randomBytes(32));
}

/**
 * The identity key of a deployment, derived one way (HKDF-SHA256) from its current signing key
 * or HS256 secret: every node that shares the signing keys publishes and signs with the same
 * identity key without storing another secret, and the identity key reveals nothing of the
 * signing key. It is never among the keys that verify credentials.
 */
export function deriveIdentityKey(keys: KeySet): IdentityKey {
  const material =
    keys.alg === 'HS256'
      ? keys.signingKey.export()
      : Buffer.from(keys.signingKey.export({ format: 'jwk' }).d ?? '', 'base64url');
  if (material.length === 0) throw new Error('the signing key cannot be exported');
  const seed = Buffer.from(hkdfSync('sha256', material, 'wsgate identity key', 'v1', 32));
  return identityKeyFromSeed(seed);
}

/** Signs an identity token for the upstream `audience`, valid at most 60 s. */
export function signIdentity(
  key: IdentityKey,
  subject: IdentitySubject,
  options: { issuer: string; audience: string; now: number },
): { token: string; claims: IdentityClaims } {
  const iat = Math.floor(options.now / 1000);
  const claims: IdentityClaims = {
    iss: options.issuer,
    aud: options.audience,
    sub: subject.sub,
    name: subject.name,
    idp: subject.idp,
    sid: subject.sid,
    scope: subject.scope,
    iat,
    jti: randomUUID(),
    exp: Math.max(iat + 1, Math.min(iat + identityTtlSeconds, subject.exp ?? Infinity)),
  };
  const header = { alg: 'EdDSA', typ: identityTokenType, kid: key.kid };
  const input = `${base64url(header)}.${base64url(claims)}`;
  const signature = sign(null, Buffer.from(input), key.privateKey).toString('base64url');
  return { token: `${input}.${signature}`, claims };
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
