import {
  createHash,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  type KeyObject,
} from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, linkSync, unlinkSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair, exportJWK, calculateJwkThumbprint, type JWK } from 'jose';
import type { StoredKey } from '../storage/types.js';

export type { StoredKey } from '../storage/types.js';

export type SigningAlgorithm = 'EdDSA' | 'HS256';

/** The keys a node signs and verifies with. Only `alg` is accepted on verification. */
export interface KeySet {
  readonly alg: SigningAlgorithm;
  readonly kid: string;
  readonly signingKey: KeyObject;
  /** Verification keys by `kid`; holds retired keys so that tokens signed before a rotation verify. */
  readonly verificationKeys: ReadonlyMap<string, KeyObject>;
  /** Public keys as a JWK Set; empty for HS256, whose secret is never published. */
  readonly jwks: { keys: JWK[] };
}

export const keyFileName = 'signing-keys.json';

/** Creates a new Ed25519 key with a thumbprint `kid` (RFC 7638). */
export async function generateSigningKey(now: number = Date.now()): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: jwk.x ?? '' });
  return { kid, jwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig' }, createdAt: now };
}

/** Builds a key set from stored Ed25519 keys; the newest one signs. */
export function keySetFromStoredKeys(keys: readonly StoredKey[]): KeySet {
  if (keys.length === 0) throw new Error('no signing key');
  const sorted = [...keys].sort((a, b) => b.createdAt - a.createdAt);
  const verificationKeys = new Map<string, KeyObject>();
  const publicJwks: JWK[] = [];
  for (const key of sorted) {
    const privateKey = createPrivateKey({ key: key.jwk as never, format: 'jwk' });
    const publicKey = createPublicKey(privateKey);
    verificationKeys.set(key.kid, publicKey);
    const { kty, crv, x } = key.jwk;
    publicJwks.push({ kty, crv, x, kid: key.kid, alg: 'EdDSA', use: 'sig' } as JWK);
  }
  const newest = sorted[0] as StoredKey;
  return {
    alg: 'EdDSA',
    kid: newest.kid,
    signingKey: createPrivateKey({ key: newest.jwk as never, format: 'jwk' }),
    verificationKeys,
    jwks: { keys: publicJwks },
  };
}

/** An HS256 key set from a shared secret of at least 32 bytes. */
export function keySetFromSecret(secret: string): KeySet {
  if (Buffer.byteLength(secret, 'utf8') < 32) throw new Error('HS256 secret must be ≥32 bytes');
  const key = createSecretKey(Buffer.from(secret, 'utf8'));
  // The kid names the secret without revealing it: a truncated hash of a hash.
  const kid = createHash('sha256')
    .update(createHash('sha256').update(secret).digest())
    .digest('base64url')
    .slice(0, 16);
  return {
    alg: 'HS256',
    kid,
    signingKey: key,
    verificationKeys: new Map([[kid, key]]),
    jwks: { keys: [] },
  };
}

/**
 * Reads the Ed25519 keys from `<dataDir>/signing-keys.json`, creating the file (mode 0600) on
 * first start. Creation is atomic, so several nodes starting at once on one data dir agree.
 */
export async function loadOrCreateKeyFile(dataDir: string): Promise<StoredKey[]> {
  const path = join(dataDir, keyFileName);
  const existing = readKeyFile(path);
  if (existing) return existing;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = await generateSigningKey();
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, JSON.stringify({ keys: [key] }, null, 2), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  const stored = readKeyFile(path);
  if (!stored) throw new Error(`could not read ${path}`);
  return stored;
}

function readKeyFile(path: string): StoredKey[] | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: { keys?: StoredKey[] };
  try {
    parsed = JSON.parse(text) as { keys?: StoredKey[] };
  } catch (err) {
    throw new Error(
      `${path} is not valid JSON (${(err as Error).message}); restore it from a backup, or remove it to make new keys (every token then stops verifying)`,
      { cause: err },
    );
  }
  if (!Array.isArray(parsed.keys) || parsed.keys.length === 0) {
    throw new Error(`${path} holds no signing keys`);
  }
  return parsed.keys;
}
