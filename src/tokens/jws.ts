import { isUtf8 } from 'node:buffer';
import { createHmac, timingSafeEqual, verify as verifySignature } from 'node:crypto';
import { WsgateError } from '../errors.js';
import type { KeyObject } from 'node:crypto';
import type { KeySet, SigningAlgorithm } from './keys.js';

/** The protected header of a verified token, with the members wsgate reads. */
export interface JwsHeader {
  readonly alg: string;
  readonly kid: string;
  readonly typ?: unknown;
}

/** A compact JWS whose signature checked out: its header and its JSON object payload. */
export interface VerifiedJws {
  readonly header: JwsHeader;
  readonly payload: Record<string, unknown>;
  /** The key that verified the signature (the key set's key for `header.kid`). */
  readonly key: KeyObject;
}

/** `invalid_token`, with the precise reason kept as the cause (logged, never sent). */
export function invalidToken(reason: string): WsgateError {
  return new WsgateError('invalid_token', undefined, { cause: new Error(reason), reason });
}

/** Whether `bytes` start with the UTF-8 byte order mark, which a decoder drops (as jose's does). */
function startsWithBom(bytes: Buffer): boolean {
  return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

/**
 * Decodes a base64url segment holding a JSON object, strictly: malformed UTF-8 is refused, where
 * Buffer would put U+FFFD in its place. `isUtf8` is the check a fatal `TextDecoder` makes, without
 * its per-call set-up; the text is then Buffer's, less a leading byte order mark as the decoder
 * (and jose) would drop it.
 */
export function jsonObject(segment: string, what: string): Record<string, unknown> {
  if (segment.length % 4 === 1) throw invalidToken(`${what} is not base64url`);
  const bytes = Buffer.from(segment, 'base64url');
  if (!isUtf8(bytes)) throw invalidToken(`${what} is not JSON`);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8', startsWithBom(bytes) ? 3 : 0));
  } catch {
    throw invalidToken(`${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidToken(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

const base64urlAlphabet = /^[A-Za-z0-9_-]*$/;

/** The value (0–63) of a base64url character already known to be one. */
function sextet(code: number): number {
  if (code >= 97) return code - 71; // a–z: 26–51
  if (code >= 65) return code === 95 ? 63 : code - 65; // A–Z: 0–25; _ (95): 63
  if (code >= 48) return code + 4; // 0–9: 52–61
  return 62; // -
}

/**
 * Whether `text` is the one canonical base64url spelling (RFC 4648 §5, no padding) of the bytes
 * it decodes to: only the alphabet, no dangling character (length 1 mod 4), and the bits the
 * last character holds beyond the last byte all zero (Buffer ignores them, so each byte string
 * has 4 or 16 spellings otherwise). Decoding and encoding again gives the same verdict.
 */
export function isCanonicalBase64url(text: string): boolean {
  const spare = text.length % 4;
  if (spare === 1 || !base64urlAlphabet.test(text)) return false;
  if (spare === 0) return true;
  // Two characters for the last byte leave 4 spare bits, three for the last two leave 2.
  return (sextet(text.charCodeAt(text.length - 1)) & (spare === 2 ? 0x0f : 0x03)) === 0;
}

function signatureMatches(
  alg: SigningAlgorithm,
  key: KeyObject,
  signingInput: Buffer,
  signature: Buffer,
): boolean {
  if (alg === 'HS256') {
    const expected = createHmac('sha256', key).update(signingInput).digest();
    return expected.length === signature.length && timingSafeEqual(expected, signature);
  }
  try {
    return verifySignature(null, signingInput, key, signature);
  } catch {
    return false;
  }
}

/**
 * Decoded protected headers by their segment, shared and frozen: a deployment's tokens carry a
 * handful of distinct headers, so each is decoded once rather than on every handshake. Only a
 * header that passed the checks of {@link splitCompactJws} is kept, and at most `maxDecodedHeaders`,
 * since the segment is the client's to choose.
 */
const decodedHeaders = new Map<string, Readonly<Record<string, unknown>>>();
export const maxDecodedHeaders = 64;

/** How many decoded headers are kept (for tests). */
export function decodedHeaderCount(): number {
  return decodedHeaders.size;
}

/** The protected header of a segment, checked: a JSON object with no `crit` or `b64`. */
function protectedHeader(segment: string): Readonly<Record<string, unknown>> {
  const known = decodedHeaders.get(segment);
  if (known) return known;
  const header = jsonObject(segment, 'header');
  if ('crit' in header || 'b64' in header) throw invalidToken('unsupported header parameter');
  if (decodedHeaders.size >= maxDecodedHeaders) decodedHeaders.clear();
  decodedHeaders.set(segment, Object.freeze(header));
  return header;
}

/** A compact JWS split into its parts, its signature not yet checked. */
export interface CompactJws {
  /** Shared by every token with the same header segment: never changed. */
  readonly header: Readonly<Record<string, unknown>>;
  /** The payload segment, still base64url; decode it with {@link jsonObject} once trusted. */
  readonly encodedPayload: string;
  readonly signingInput: Buffer;
  readonly signature: Buffer;
}

/**
 * Splits a compact JWS (RFC 7515 §7.1) and decodes its protected header. Refuses a token that is
 * not three segments, a header that is not a JSON object, any `crit` or `b64` header (neither
 * wsgate nor an access token needs them), and a signature in a non-canonical base64url spelling.
 */
export function splitCompactJws(token: string): CompactJws {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first < 0 || second < 0 || token.indexOf('.', second + 1) >= 0)
    throw invalidToken('not a compact JWS');
  const header = protectedHeader(token.slice(0, first));
  const encodedSignature = token.slice(second + 1);
  // Base64url has several spellings of the same bytes; only the canonical one is the token.
  if (!isCanonicalBase64url(encodedSignature)) throw invalidToken('non-canonical signature');
  return {
    header,
    encodedPayload: token.slice(first + 1, second),
    signingInput: Buffer.from(token.slice(0, second), 'latin1'),
    signature: Buffer.from(encodedSignature, 'base64url'),
  };
}

/**
 * Checks the signature of a compact JWS (RFC 7515) with the key set's keys, synchronously and on a
 * `KeyObject` built once at start. This is the one costly operation of a handshake. WebCrypto
 * (jose's way) adds a key conversion and a thread-pool round trip to each check: in a loop on one
 * core, 280 µs against 150 µs here. The trade-off is that the check holds the event loop instead
 * of a pool thread, so one process does not spread checks over several cores; run one node per
 * core instead (docs/performance.md). Only the key set's algorithm is accepted, the key is chosen
 * by `kid`, and any `crit` or `b64` header is refused (wsgate never issues them). Every failure is
 * `invalid_token`; the claims are not looked at here.
 */
export function verifyCompactJws(keys: KeySet, token: string): VerifiedJws {
  const { header, encodedPayload, signingInput, signature } = splitCompactJws(token);
  if (header.alg !== keys.alg) throw invalidToken('algorithm not allowed');
  const key = typeof header.kid === 'string' ? keys.verificationKeys.get(header.kid) : undefined;
  if (!key) throw invalidToken('unknown key');
  if (!signatureMatches(keys.alg, key, signingInput, signature))
    throw invalidToken('signature verification failed');
  return {
    header: header as unknown as JwsHeader,
    payload: jsonObject(encodedPayload, 'payload'),
    key,
  };
}
