import { createPublicKey, type KeyObject } from 'node:crypto';
import { IssuerError } from './issuer-error.js';
import { externalAlgorithms, isExternalAlgorithm, type ExternalAlgorithm } from './algorithms.js';

/** One verification key of an issuer, with the algorithms it may verify. */
export interface IssuerKey {
  readonly kid: string | undefined;
  readonly algorithms: ReadonlySet<ExternalAlgorithm>;
  readonly key: KeyObject;
}

/** A JWK Set reduced to what can verify signatures, and what was left out. */
export interface ImportedJwks {
  readonly keys: readonly IssuerKey[];
  /** How many members were skipped (encryption keys, secrets, unsupported or weak keys). */
  readonly skipped: number;
}

const rsaAlgorithms: readonly ExternalAlgorithm[] = externalAlgorithms.filter((a) =>
  /^(RS|PS)/.test(a),
);
const curveAlgorithm: Readonly<Record<string, ExternalAlgorithm>> = {
  'P-256': 'ES256',
  'P-384': 'ES384',
  Ed25519: 'EdDSA',
};

/** RSA moduli shorter than this are refused (RFC 7518 §3.3 requires 2048 bits). */
const minRsaBits = 2048;

/**
 * The algorithms a JWK may verify: decided by its `kty` and `crv`, narrowed to its `alg` when
 * it names one. Empty for anything that is not a public signature key: `oct` secrets, `use`
 * other than `sig`, `key_ops` without `verify`, private members, unknown curves.
 */
export function keyAlgorithms(jwk: Record<string, unknown>): ExternalAlgorithm[] {
  if (jwk.use !== undefined && jwk.use !== 'sig') return [];
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify')))
    return [];
  // A published private key is a leaked key, not one to trust.
  if ('d' in jwk || 'p' in jwk || 'k' in jwk) return [];
  let possible: readonly ExternalAlgorithm[];
  if (jwk.kty === 'RSA') possible = rsaAlgorithms;
  else if ((jwk.kty === 'EC' || jwk.kty === 'OKP') && typeof jwk.crv === 'string') {
    const alg = curveAlgorithm[jwk.crv];
    const expectedKty = jwk.crv === 'Ed25519' ? 'OKP' : 'EC';
    possible = alg !== undefined && jwk.kty === expectedKty ? [alg] : [];
  } else possible = [];
  if (jwk.alg === undefined) return [...possible];
  return isExternalAlgorithm(jwk.alg) && possible.includes(jwk.alg) ? [jwk.alg] : [];
}

function importKey(jwk: Record<string, unknown>): IssuerKey | undefined {
  const algorithms = keyAlgorithms(jwk);
  if (algorithms.length === 0) return undefined;
  if (jwk.kid !== undefined && typeof jwk.kid !== 'string') return undefined;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as never, format: 'jwk' });
  } catch {
    return undefined;
  }
  if (
    key.asymmetricKeyType === 'rsa' &&
    (key.asymmetricKeyDetails?.modulusLength ?? 0) < minRsaBits
  )
    return undefined;
  return { kid: jwk.kid, algorithms: new Set(algorithms), key };
}

/**
 * Turns a fetched JWK Set into verification keys. A document that is not a JWK Set, or holds more
 * than `maxKeys` members, is refused whole; a member that cannot verify signatures is skipped.
 */
export function importJwks(
  document: Record<string, unknown>,
  where: string,
  maxKeys: number,
): ImportedJwks {
  const members = document.keys;
  if (!Array.isArray(members)) throw new IssuerError('bad_jwks', `${where} is not a JWK Set`);
  if (members.length > maxKeys)
    throw new IssuerError('too_many_keys', `${where} holds more than ${maxKeys} keys`);
  const keys: IssuerKey[] = [];
  for (const member of members) {
    const key =
      typeof member === 'object' && member !== null && !Array.isArray(member)
        ? importKey(member as Record<string, unknown>)
        : undefined;
    if (key) keys.push(key);
  }
  return { keys, skipped: members.length - keys.length };
}
