import { constants, verify, type KeyObject } from 'node:crypto';

/**
 * The signature algorithms accepted from external issuers. Never `none`, never HS*: a shared
 * secret cannot be published in a JWKS, and HS256 "signed" with a public key is the classic
 * algorithm-confusion forgery.
 */
export const externalAlgorithms = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'EdDSA',
] as const;

export type ExternalAlgorithm = (typeof externalAlgorithms)[number];

export function isExternalAlgorithm(alg: unknown): alg is ExternalAlgorithm {
  return typeof alg === 'string' && (externalAlgorithms as readonly string[]).includes(alg);
}

const digests = { '256': 'sha256', '384': 'sha384', '512': 'sha512' } as const;

/** Signature sizes of the ECDSA algorithms in their JWS (IEEE P1363) form. */
const ecdsaSignatureBytes = { ES256: 64, ES384: 96 } as const;

/** Checks a JWS signature with node:crypto; the caller has matched `alg` to the key already. */
export function signatureMatches(
  alg: ExternalAlgorithm,
  key: KeyObject,
  signingInput: Buffer,
  signature: Buffer,
): boolean {
  try {
    if (alg === 'EdDSA') return verify(null, signingInput, key, signature);
    const digest = digests[alg.slice(2) as keyof typeof digests];
    if (alg.startsWith('RS')) return verify(digest, signingInput, key, signature);
    if (alg.startsWith('PS'))
      return verify(
        digest,
        signingInput,
        {
          key,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
        },
        signature,
      );
    if (signature.length !== ecdsaSignatureBytes[alg as keyof typeof ecdsaSignatureBytes])
      return false;
    return verify(digest, signingInput, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}
