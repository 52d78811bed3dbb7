import { createHash } from 'node:crypto';
import { WsgateError } from '../errors.js';
import { invalidToken } from '../tokens/jws.js';
import type { TokenClaims } from '../tokens/claims.js';
import { audienceMatches, normalisedTyp, type VerifiedExternalJwt } from './external-jwt.js';
import { issuerHost } from './issuer-url.js';

/** Seconds of clock skew allowed on `nbf` and `iat`; none on `exp`. */
export const clockSkewSeconds = 60;

/** The scope that lets an app call `POST /admin/revoke`; from an external issuer only by opt-in. */
export const adminScope = 'wsgate:admin';

/** Longest `sub` or displayed name accepted from an external issuer. */
const maxNameLength = 255;

export interface ClaimMapping {
  /** `aud` values accepted (`--trust-audience`). */
  readonly audiences: readonly string[];
  /** The claim whose value is the displayed name (`--username-claim`, default `sub`). */
  readonly usernameClaim: string;
  /** A claim name or dotted path whose value adds scopes (`--scope-claim`). */
  readonly scopeClaim: string | undefined;
  /** Issuers whose `wsgate:admin` scope is honoured (`--admin-issuer`). */
  readonly adminIssuers: ReadonlySet<string>;
}

/** A verified external access token, mapped onto wsgate's notions. */
export interface ExternalIdentity {
  readonly issuer: string;
  /** The issuer's `sub`; with `issuer`, the principal. */
  readonly subject: string;
  /** `<issuer host>:<name>`: what chat, presence and `X-Wsgate-User` show. */
  readonly displayName: string;
  /** The provider's `sid`, when the token has one; back-channel logouts name it. */
  readonly sid: string | undefined;
  /** With `issuer`, the session: `sid`, else `jti`, else a digest of the token itself. */
  readonly sessionId: string;
  /** Space-separated scopes. */
  readonly scope: string;
  readonly iat: number | undefined;
  readonly exp: number;
  /** The verified payload, frozen. */
  readonly claims: Readonly<Record<string, unknown>>;
}

function ownValue(object: unknown, name: string): unknown {
  if (typeof object !== 'object' || object === null || !Object.hasOwn(object, name))
    return undefined;
  return (object as Record<string, unknown>)[name];
}

/**
 * A claim by name, tried first as written (namespaced claims such as
 * `https://example.com/roles` contain dots), then as a dotted path such as `realm_access.roles`.
 */
export function claimValue(payload: Readonly<Record<string, unknown>>, name: string): unknown {
  const direct = ownValue(payload, name);
  if (direct !== undefined) return direct;
  let value: unknown = payload;
  for (const part of name.split('.')) value = ownValue(value, part);
  return value;
}

function scopeWords(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  if (Array.isArray(value))
    return value.filter((v): v is string => typeof v === 'string' && v !== '' && !v.includes(' '));
  return [];
}

/** Scopes from `scope` (a string), `scp` (an array or a string) and the `--scope-claim`. */
export function externalScopes(
  issuer: string,
  payload: Readonly<Record<string, unknown>>,
  mapping: Pick<ClaimMapping, 'scopeClaim' | 'adminIssuers'>,
): string[] {
  const scopes = new Set<string>([
    ...(typeof payload.scope === 'string' ? scopeWords(payload.scope) : []),
    ...scopeWords(payload.scp),
    ...(mapping.scopeClaim === undefined
      ? []
      : scopeWords(claimValue(payload, mapping.scopeClaim))),
  ]);
  if (!mapping.adminIssuers.has(issuer)) scopes.delete(adminScope);
  return [...scopes];
}

function optionalTime(
  payload: Readonly<Record<string, unknown>>,
  claim: string,
): number | undefined {
  const value = payload[claim];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidToken(`bad ${claim}`);
  return value;
}

function isName(value: unknown): value is string {
  if (typeof value !== 'string' || value === '' || value.length > maxNameLength) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}

/**
 * Checks the claims of an external access token whose signature is good and maps it. Refused:
 * a `typ` other than absent, `JWT` or `at+jwt`; `events` (a logout token, or any security event
 * token); `cnf` (bound to a key wsgate cannot check); a missing or past `exp` (no leeway); `nbf`
 * or `iat` more than 60 s ahead; an `aud` not accepted; a missing `sub`.
 */
export function mapExternalAccessToken(
  token: string,
  verified: VerifiedExternalJwt,
  mapping: ClaimMapping,
  nowMs: number,
): ExternalIdentity {
  const { issuer, header, payload } = verified;
  const typ = normalisedTyp(header.typ);
  if (!(typ === undefined || typ === 'jwt' || typ === 'at+jwt'))
    throw new WsgateError('wrong_token_type', undefined, {
      cause: new Error(`typ ${String(header.typ)}`),
    });
  if ('events' in payload) throw invalidToken('a security event token is not an access token');
  if ('cnf' in payload) throw invalidToken('sender-constrained token');
  const now = Math.floor(nowMs / 1000);
  const exp = optionalTime(payload, 'exp');
  if (exp === undefined) throw invalidToken('exp missing');
  const nbf = optionalTime(payload, 'nbf');
  const iat = optionalTime(payload, 'iat');
  if (nbf !== undefined && nbf > now + clockSkewSeconds) throw invalidToken('not yet valid');
  if (iat !== undefined && iat > now + clockSkewSeconds) throw invalidToken('issued in the future');
  // Cognito's access tokens carry no aud: the app client they were issued to is `client_id`
  // (token_use "access"). Its ID tokens (token_use "id") are never access tokens.
  if (payload.token_use === 'id') throw invalidToken('an ID token is not an access token');
  const aud =
    payload.aud === undefined && payload.token_use === 'access' ? payload.client_id : payload.aud;
  if (!audienceMatches(aud, mapping.audiences)) throw invalidToken('audience not accepted');
  if (exp <= now) throw new WsgateError('token_expired');
  const sub = payload.sub;
  if (!isName(sub)) throw invalidToken('sub missing or malformed');
  const sid = typeof payload.sid === 'string' && payload.sid !== '' ? payload.sid : undefined;
  const jti = typeof payload.jti === 'string' && payload.jti !== '' ? payload.jti : undefined;
  const named = claimValue(payload, mapping.usernameClaim);
  const name = isName(named) ? named : sub;
  return Object.freeze({
    issuer,
    subject: sub,
    displayName: `${issuerHost(issuer)}:${name}`,
    sid,
    sessionId:
      sid ?? jti ?? `token:${createHash('sha256').update(token).digest('base64url').slice(0, 22)}`,
    scope: externalScopes(issuer, payload, mapping).join(' '),
    iat,
    exp,
    claims: Object.freeze({ ...payload }),
  });
}

/**
 * An external identity as the claims the gate, tickets and endpoints work with: `iss` and `sub`
 * are the issuer's, `sid` the session (`sid`, else `jti`), never fresh, always an access token.
 */
export function externalClaims(identity: ExternalIdentity): TokenClaims {
  const aud = identity.claims.aud;
  const iat = identity.iat ?? 0;
  return Object.freeze({
    iss: identity.issuer,
    aud: typeof aud === 'string' ? aud : Array.isArray(aud) ? aud.join(' ') : '',
    sub: identity.subject,
    iat,
    nbf: typeof identity.claims.nbf === 'number' ? identity.claims.nbf : iat,
    exp: identity.exp,
    jti: typeof identity.claims.jti === 'string' ? identity.claims.jti : identity.sessionId,
    sid: identity.sessionId,
    scope: identity.scope,
    fresh: false,
    type: 'access',
    external: Object.freeze({ displayName: identity.displayName, providerSid: identity.sid }),
  });
}
