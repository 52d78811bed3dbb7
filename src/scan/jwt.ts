/**
 * The forged copies of a JWT that the token checks send. None of them, nor the token, is ever
 * printed: `secretsOf` lists every string the report must not contain.
 */
export interface DecodedJwt {
  readonly token: string;
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
  readonly segments: readonly [string, string, string];
}

function b64json(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Reads a compact JWS without verifying it; undefined for anything else (opaque tokens). */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) return undefined;
  const [h, p, s] = parts as [string, string, string];
  const header = b64json(h);
  const payload = b64json(p);
  if (!header || !payload || s === '') return undefined;
  return { token, header, payload, segments: [h, p, s] };
}

/** The token's claims and header with `alg: none` and no signature. */
export function withAlgNone(jwt: DecodedJwt): string {
  return `${encode({ ...jwt.header, alg: 'none' })}.${jwt.segments[1]}.`;
}

/** The token with every byte of its signature changed, so no lenient decoder reads it back. */
export function withAlteredSignature(jwt: DecodedJwt): string {
  const signature = Buffer.from(jwt.segments[2], 'base64url').map((b) => b ^ 0x5a);
  return `${jwt.segments[0]}.${jwt.segments[1]}.${Buffer.from(signature).toString('base64url')}`;
}

/** The token with its lifetime extended by a day (or a claim added), under the original signature. */
export function withAlteredPayload(jwt: DecodedJwt): string {
  const exp = jwt.payload.exp;
  const payload =
    typeof exp === 'number' ? { ...jwt.payload, exp: exp + 86_400 } : { ...jwt.payload, adm: true };
  return `${jwt.segments[0]}.${encode(payload)}.${jwt.segments[2]}`;
}

/** Seconds since the epoch at which the token expires, when it says so. */
export function expiryOf(jwt: DecodedJwt | undefined): number | undefined {
  const exp = jwt?.payload.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
}

/** Every string derived from the token that must not appear in a report. */
export function secretsOf(token: string): string[] {
  const jwt = decodeJwt(token);
  const secrets = [token];
  if (jwt) {
    for (const copy of [withAlgNone(jwt), withAlteredSignature(jwt), withAlteredPayload(jwt)]) {
      secrets.push(copy, ...copy.split('.'));
    }
    secrets.push(...jwt.segments);
    if (typeof jwt.payload.csrf === 'string') secrets.push(jwt.payload.csrf);
  }
  return secrets.filter((s) => s.length >= 8);
}
