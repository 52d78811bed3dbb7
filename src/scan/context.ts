import { decodeJwt, expiryOf, type DecodedJwt } from './jwt.js';
import {
  mergeAttempts,
  probe,
  type Attempt,
  type ProbeOptions,
  type ProbeResult,
} from './probe.js';
import type { CheckId, CheckResult, ScanOptions, ScanTransport, Verdict } from './types.js';

export const defaultTimeoutMs = 10_000;
export const defaultHalfOpenMs = 15_000;
export const defaultCookieName = 'access_token_cookie';

/** Everything a check needs to know about the target and the credential. */
export interface ScanContext {
  readonly target: URL;
  readonly timeoutMs: number;
  readonly halfOpenMs: number;
  readonly transport: ScanTransport;
  readonly cookieName: string;
  readonly token: string | undefined;
  readonly jwt: DecodedJwt | undefined;
  readonly now: () => number;
  /** The endpoint accepted an upgrade without any credential (learned before the checks run). */
  credentialFree: boolean;
  /** Headers every probe carries: the allowed Origin, when there is one. */
  base(): Attempt;
  /** The base attempt with `token` presented over the transport. */
  presenting(token: string): Attempt;
  /** How `presenting` sends a token, in words. */
  readonly how: string;
  /** The token's exp has passed: a refusal or close now proves nothing about the check. */
  expired(): boolean;
  /** Runs one probe against the target. */
  probe(attempt: Attempt, options?: ProbeOptions): Promise<ProbeResult>;
}

/**
 * What the subprotocol transport offers, as a browser page of wsgate does: wsgate selects
 * `wsgate.v1` on its own endpoints, and `wsgate.proxy` on a proxied route whose backend selects no
 * subprotocol — without it, that 101 would select none of those offered, which a browser fails.
 */
function subprotocols(token: string): string[] {
  return ['wsgate.v1', 'wsgate.proxy', `wsgate.bearer.${token}`];
}

/** The page origin a browser on the target's own site would send. */
export function ownOrigin(target: URL): string {
  return `${target.protocol === 'wss:' ? 'https' : 'http'}://${target.host}`;
}

export function createContext(options: ScanOptions, target: URL): ScanContext {
  const transport = options.transport ?? 'bearer';
  const cookieName = options.cookieName ?? defaultCookieName;
  const token = options.token;
  const jwt = token === undefined ? undefined : decodeJwt(token);
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  // A browser always sends Origin with a cookie; the target's own origin stands in for --origin.
  const origin = options.origin ?? (transport === 'cookie' ? ownOrigin(target) : undefined);
  const base: Attempt = origin === undefined ? {} : { headers: { origin } };
  const csrf = typeof jwt?.payload.csrf === 'string' ? jwt.payload.csrf : undefined;

  const present = (value: string): Attempt => {
    switch (transport) {
      case 'bearer':
        return { headers: { authorization: `Bearer ${value}` } };
      case 'query':
        return { query: { token: value } };
      case 'subprotocol':
        return { protocols: subprotocols(value) };
      case 'cookie':
        // fastapi-jwt-auth's double submit: the token's csrf claim in ?csrf_token=.
        return {
          headers: { cookie: `${cookieName}=${value}` },
          ...(csrf === undefined ? {} : { query: { csrf_token: csrf } }),
        };
    }
  };
  const how = {
    bearer: 'as Authorization: Bearer',
    query: 'in ?token=',
    subprotocol: `as subprotocols ${subprotocols('<token>').join(', ')}`,
    cookie: `as cookie ${cookieName}${csrf === undefined ? '' : ' with ?csrf_token='}`,
  }[transport];

  return {
    target,
    timeoutMs,
    halfOpenMs: options.halfOpenMs ?? defaultHalfOpenMs,
    transport,
    cookieName,
    token,
    jwt,
    now: options.now ?? Date.now,
    credentialFree: false,
    base: () => base,
    presenting: (value) => mergeAttempts(base, present(value)),
    how,
    expired: () => {
      const exp = expiryOf(jwt);
      return exp !== undefined && (options.now ?? Date.now)() >= exp * 1000;
    },
    probe: (attempt, probeOptions) => probe(target, attempt, timeoutMs, probeOptions),
  };
}

export function result(
  id: CheckId,
  verdict: Verdict,
  sent: string,
  got: string,
  note?: string,
): CheckResult {
  return note === undefined ? { id, verdict, sent, got } : { id, verdict, sent, got, note };
}

/** A check that cannot run here, and why. */
export function notApplicable(id: CheckId, why: string): CheckResult {
  return { id, verdict: 'n/a', sent: '', got: '', note: why };
}

/** A `held` verdict stands only while the token is valid; after exp the refusal proves nothing. */
export function heldUnlessExpired(
  ctx: ScanContext,
  id: CheckId,
  sent: string,
  got: string,
): CheckResult {
  return ctx.expired()
    ? result(
        id,
        'n/a',
        sent,
        got,
        'the token expired during the check; scan with a longer-lived token',
      )
    : result(id, 'held', sent, got);
}
