import { randomBytes, randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { WsgateError } from '../errors.js';
import type { Clock } from '../clock.js';
import type { KeySet } from '../tokens/keys.js';
import { issueToken } from '../tokens/issue.js';
import { verifyToken } from '../tokens/verify.js';
import { parseScope, type TokenClaims, type TokenType } from '../tokens/claims.js';
import type {
  AuditEvent,
  ExternalRevocation,
  RevocationReason,
  Storage,
  User,
} from '../storage/types.js';
import { verifyDummyPassword, verifyPassword, maxPasswordLength } from '../users/passwords.js';
import { HashSlots, HashSlotsFull, withSlot, type PasswordSlots } from '../users/hash-slots.js';
import { addressKey } from '../client-address.js';
import { TokenBucket } from '../token-bucket.js';
import type { LoginLimiter } from './login-limiter.js';
import { RevocationList } from './revocations.js';
import { MemoryRecentRotations, type RecentRotations } from './recent-rotations.js';

export interface SessionServiceOptions {
  readonly storage: Storage;
  readonly keys: KeySet;
  readonly clock: Clock;
  /** Failures per username and client address. */
  readonly limiter: LoginLimiter;
  /** Failures per client address, whatever the username (password spraying). */
  readonly addressLimiter?: LoginLimiter;
  /** Bounds the password checks running and waiting (default: 4 at once, 16 waiting). */
  readonly hashSlots?: PasswordSlots;
  /** Audit rows a second for failures (failed logins and refreshes, refused handshakes). */
  readonly failureAuditRate?: number;
  /** Milliseconds in which a just-rotated refresh token returns the same new pair (0: none). */
  readonly refreshGraceMs?: number;
  /** Where the pairs of recent rotations are kept for the grace period. */
  readonly recentRotations?: RecentRotations;
  readonly issuer: string;
  readonly audience: string;
  /** Seconds. */
  readonly accessTtl: number;
  /** Seconds. */
  readonly refreshTtl: number;
  readonly revocations?: RevocationList;
  /** Receives each audit event after it is stored; the server logs them. */
  readonly onAudit?: (event: AuditEvent) => void;
}

/** What a successful login or refresh hands back. */
export interface TokenPair {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly access: TokenClaims;
  readonly refresh: TokenClaims;
  /** Access token lifetime in seconds. */
  readonly expiresIn: number;
}

export interface LoginRequest {
  readonly username: string;
  readonly password: string;
  /** Client address, for throttling and audit. */
  readonly ip: string;
  /** Requested scopes; all the user's scopes when absent. */
  readonly scope?: string | undefined;
  /** Tokens for cookies: each gets a `csrf` claim for the double-submit check. */
  readonly cookies?: boolean | undefined;
}

export type LoginFailure = 'invalid_grant' | 'invalid_scope' | 'rate_limited' | 'overloaded';

/** The texts of the login failures the catalogue's generic ones do not fit. */
const loginMessages: Partial<Record<LoginFailure, string>> = {
  rate_limited: 'Too many failed logins; try again later',
  overloaded: 'Too many logins at once; try again shortly',
};

/** A refused login: a catalogue error, which each login endpoint answers in its own format. */
export class LoginError extends WsgateError {
  constructor(
    readonly failure: LoginFailure,
    retryAfter?: number,
  ) {
    super(failure, loginMessages[failure], retryAfter === undefined ? undefined : { retryAfter });
    this.name = 'LoginError';
  }
}

/**
 * Logins, refresh-token rotation, logout and revocation: the one place that creates, extends and
 * ends sessions. Revocations go to {@link RevocationList}, which kicks sockets and refuses tokens.
 */
export class SessionService {
  readonly revocations: RevocationList;
  #o: SessionServiceOptions;
  readonly #hashSlots: PasswordSlots;
  readonly #failureAudit: TokenBucket;
  readonly #recent: RecentRotations;

  constructor(options: SessionServiceOptions) {
    this.#o = options;
    this.revocations = options.revocations ?? new RevocationList();
    this.#hashSlots = options.hashSlots ?? new HashSlots({ concurrency: 4, queue: 16 });
    const rate = options.failureAuditRate ?? 100;
    this.#failureAudit = new TokenBucket(rate, rate, options.clock());
    this.#recent = options.recentRotations ?? new MemoryRecentRotations();
  }

  get issuer(): string {
    return this.#o.issuer;
  }

  get audience(): string {
    return this.#o.audience;
  }

  /** Adopts the deployment's stored issuer and audience (on its first start they become known late). */
  setIssuer(issuer: string, audience: string = this.#o.audience): void {
    this.#o = { ...this.#o, issuer, audience };
  }

  /** Revocations up to here are known; later ones are picked up by {@link pollRevocations}. */
  #watermark = 0;

  /** Loads the ids of revoked, unexpired sessions (and external revocations) into memory. */
  async warm(): Promise<void> {
    const now = this.#o.clock();
    this.#watermark = now;
    this.revocations.load(
      await this.#o.storage.listRevokedSessionIds(now),
      await this.#o.storage.listExternalRevocations(0, now),
    );
  }

  /**
   * Picks up revocations another process wrote to the database (`wsgate sessions revoke`, a
   * password change from the CLI) and applies them here: refused tokens, 4410 on open sockets.
   */
  async pollRevocations(): Promise<number> {
    // A little overlap: rows committed late with an earlier timestamp are still seen.
    const rows = await this.#o.storage.listRevokedSince(this.#watermark - 2000);
    const fresh = new Map<RevocationReason, string[]>();
    for (const row of rows) {
      this.#watermark = Math.max(this.#watermark, row.revokedAt);
      if (this.revocations.has(row.id)) continue;
      fresh.set(row.reason, [...(fresh.get(row.reason) ?? []), row.id]);
    }
    let count = 0;
    for (const [reason, sessionIds] of fresh) {
      this.revocations.add({ sessionIds, reason });
      count += sessionIds.length;
    }
    // External ones (back-channel logouts, admin revokes) stored by a node without a shared bus.
    // A logout's revokedAt is its token's iat, up to 5 min back: the look-back covers that.
    const now = this.#o.clock();
    const external = (
      await this.#o.storage.listExternalRevocations(now - externalLookBackMs, now)
    ).filter((r) => !this.revocations.knows(r));
    if (external.length > 0) this.revocations.add({ sessionIds: [], reason: 'admin', external });
    return count + external.length;
  }

  /**
   * Revokes sessions or subjects of external issuers (docs/identity-providers.md): stored for
   * `ttlMs`, so that every node refuses their tokens and tickets, and their sockets closed with
   * 4410 everywhere.
   */
  async revokeExternal(
    targets: readonly Pick<ExternalRevocation, 'issuer' | 'kind' | 'value'>[],
    reason: RevocationReason,
    options: { revokedAt?: number; ttlMs: number; ip?: string | null },
  ): Promise<void> {
    const now = this.#o.clock();
    const revokedAt = options.revokedAt ?? now;
    const records = targets.map((t) => ({ ...t, revokedAt, expiresAt: now + options.ttlMs }));
    for (const record of records) await this.#o.storage.revokeExternal(record);
    this.revocations.add({ sessionIds: [], reason, external: records });
    for (const r of records) {
      await this.audit({
        event: 'session.revoke',
        sessionId: r.kind === 'sid' ? r.value : null,
        ip: options.ip ?? null,
        detail: {
          reason,
          issuer: r.issuer,
          [r.kind === 'sid' ? 'sid' : 'sub']: r.value,
          kind: r.kind,
        },
      });
    }
  }

  async audit(event: Omit<AuditEvent, 'ts'>): Promise<void> {
    const full: AuditEvent = { ts: this.#o.clock(), ...event };
    await this.#o.storage.appendAudit(full);
    this.#o.onAudit?.(full);
  }

  /**
   * Records a failure (a failed login or refresh, a refused handshake) within the failure audit
   * budget, so that a flood of bad requests never becomes a flood of database writes. Returns
   * false when the row was dropped.
   */
  async auditFailure(event: Omit<AuditEvent, 'ts'>): Promise<boolean> {
    if (!this.#failureAudit.take(this.#o.clock())) return false;
    await this.audit(event);
    return true;
  }

  /**
   * Checks a username and password and opens a session. Unknown users, wrong passwords and
   * disabled users get the same answer, after the same work.
   */
  async login(request: LoginRequest): Promise<TokenPair> {
    const { storage, limiter, addressLimiter } = this.#o;
    const now = this.#o.clock();
    // Limits count an IPv6 client by its /64; audit rows keep the whole address.
    const address = addressKey(request.ip);
    const limitKey = `${request.username.toLowerCase()}|${address}`;
    const retryAfter = Math.max(
      await limiter.retryAfter(limitKey, now),
      (await addressLimiter?.retryAfter(address, now)) ?? 0,
    );
    const shownName = loggedUsername(request.username);
    if (retryAfter > 0) {
      await this.auditFailure({ event: 'login.throttled', username: shownName, ip: request.ip });
      throw new LoginError('rate_limited', retryAfter);
    }
    const user =
      request.username.length <= 64 && request.password.length <= maxPasswordLength
        ? await storage.getUser(request.username)
        : undefined;
    let ok: boolean;
    try {
      ok = await withSlot(
        this.#hashSlots,
        () =>
          user === undefined || request.password.length > maxPasswordLength
            ? verifyDummyPassword(request.password.slice(0, maxPasswordLength))
            : verifyPassword(user.passwordHash, request.password),
        address,
      );
    } catch (err) {
      if (err instanceof HashSlotsFull) throw new LoginError('overloaded', 1);
      throw err;
    }
    if (!ok || !user || user.disabled) {
      await limiter.recordFailure(limitKey, now);
      await addressLimiter?.recordFailure(address, now);
      await this.auditFailure({
        event: 'login.failure',
        username: shownName,
        ip: request.ip,
        detail: { reason: !user ? 'unknown_user' : user.disabled ? 'disabled' : 'bad_password' },
      });
      throw new LoginError('invalid_grant');
    }
    const scope = this.#grantScope(user, request.scope);
    await limiter.reset(limitKey);
    const pair = await this.#openSession(user, scope, request.cookies === true);
    await this.audit({
      event: 'login.success',
      username: user.username,
      sessionId: pair.access.sid,
      ip: request.ip,
      detail: { scope },
    });
    return pair;
  }

  #grantScope(user: User, requested: string | undefined): string {
    const allowed = parseScope(user.scopes);
    if (requested === undefined || requested.trim() === '') return [...allowed].join(' ');
    const wanted = parseScope(requested);
    for (const s of wanted) if (!allowed.has(s)) throw new LoginError('invalid_scope');
    return [...wanted].join(' ');
  }

  /** Opens a session for a user without a password, e.g. `wsgate token issue` or demo cookies. */
  async openSession(
    username: string,
    options: { cookies?: boolean; fresh?: boolean } = {},
  ): Promise<TokenPair> {
    const user = await this.#o.storage.getUser(username);
    if (!user || user.disabled) throw new WsgateError('invalid_token', 'Unknown or disabled user');
    const pair = await this.#openSession(
      user,
      user.scopes,
      options.cookies === true,
      options.fresh ?? true,
    );
    await this.audit({ event: 'token.issue', username, sessionId: pair.access.sid });
    return pair;
  }

  async #openSession(
    user: User,
    scope: string,
    cookies: boolean,
    fresh = true,
  ): Promise<TokenPair> {
    const now = this.#o.clock();
    const sessionId = randomUUID();
    const csrf = cookies ? newCsrf() : undefined;
    const refresh = await this.#issue('refresh', user.username, sessionId, scope, now, false, csrf);
    await this.#o.storage.createSession({
      id: sessionId,
      username: user.username,
      scope,
      now,
      expiresAt: refresh.claims.exp * 1000,
      refreshJti: refresh.claims.jti,
    });
    const access = await this.#issue('access', user.username, sessionId, scope, now, fresh, csrf);
    return this.#pair(access, refresh);
  }

  #issue(
    type: TokenType,
    subject: string,
    sessionId: string,
    scope: string,
    now: number,
    fresh: boolean,
    csrf: string | undefined,
  ) {
    const o = this.#o;
    return issueToken(o.keys, {
      type,
      subject,
      sessionId,
      scope,
      fresh,
      ttl: type === 'access' ? o.accessTtl : o.refreshTtl,
      issuer: o.issuer,
      audience: o.audience,
      now,
      ...(csrf === undefined ? {} : { csrf }),
    });
  }

  #pair(
    access: { token: string; claims: TokenClaims },
    refresh: { token: string; claims: TokenClaims },
  ): TokenPair {
    return {
      accessToken: access.token,
      refreshToken: refresh.token,
      access: access.claims,
      refresh: refresh.claims,
      expiresIn: this.#o.accessTtl,
    };
  }

  /**
   * The claims of a well-signed token of either type even when it has expired (so that sign-out
   * works with a stale cookie); undefined for anything not signed by us.
   */
  async claimsIgnoringExpiry(token: string): Promise<TokenClaims | undefined> {
    const o = this.#o;
    for (const type of ['access', 'refresh'] as const) {
      const options = { type, issuer: o.issuer, audience: o.audience, now: o.clock() };
      try {
        return await verifyToken(o.keys, token, options);
      } catch (err) {
        if (!(err instanceof WsgateError)) throw err;
        if (err.code === 'wrong_token_type') continue;
        if (err.code !== 'token_expired') return undefined;
        const exp = decodeJwt(token).exp ?? 0;
        return verifyToken(o.keys, token, { ...options, now: exp * 1000 - 1000 });
      }
    }
    return undefined;
  }

  /** Verifies a token and refuses it when its session was revoked. No database round trip. */
  async verify(token: string, type: TokenType): Promise<TokenClaims> {
    const o = this.#o;
    const claims = await verifyToken(o.keys, token, {
      type,
      issuer: o.issuer,
      audience: o.audience,
      now: o.clock(),
    });
    if (this.revocations.has(claims.sid)) throw new WsgateError('session_revoked');
    return claims;
  }

  /**
   * Exchanges a refresh token for a new, not fresh access token and a rotated refresh token.
   * A refresh token that was already rotated is reuse: the family is revoked and 4410 follows.
   */
  async refresh(
    refreshToken: string,
    options: { ip?: string; cookies?: boolean } = {},
  ): Promise<TokenPair> {
    // Two refreshes with one token on this node at once: the second waits for the first's pair.
    const jti = jtiOf(refreshToken);
    const inFlight = jti === undefined ? undefined : this.#rotating.get(jti);
    if (inFlight !== undefined && (this.#o.refreshGraceMs ?? 0) > 0) {
      const pair = await inFlight.catch(() => undefined);
      if (pair) return pair;
    }
    const rotation = this.#refresh(refreshToken, options);
    if (jti === undefined || this.#rotating.has(jti)) return rotation;
    this.#rotating.set(jti, rotation);
    try {
      return await rotation;
    } finally {
      this.#rotating.delete(jti);
    }
  }

  /** Rotations in progress on this node, by the `jti` of the refresh token being spent. */
  readonly #rotating = new Map<string, Promise<TokenPair>>();

  async #refresh(
    refreshToken: string,
    options: { ip?: string; cookies?: boolean },
  ): Promise<TokenPair> {
    const o = this.#o;
    let claims: TokenClaims;
    try {
      claims = await this.verify(refreshToken, 'refresh');
    } catch (err) {
      await this.auditFailure({
        event: 'token.refresh_failure',
        ip: options.ip ?? null,
        detail: { reason: err instanceof WsgateError ? err.code : 'error' },
      });
      throw err;
    }
    const now = o.clock();
    const user = await o.storage.getUser(claims.sub);
    if (!user || user.disabled) {
      await this.revoke(claims.sid, 'user_disabled');
      throw new WsgateError('session_revoked');
    }
    const csrf = options.cookies === true ? newCsrf() : undefined;
    const next = await this.#issue(
      'refresh',
      claims.sub,
      claims.sid,
      claims.scope,
      now,
      false,
      csrf,
    );
    const graceMs = o.refreshGraceMs ?? 0;
    const result = await o.storage.rotateRefreshToken(
      claims.jti,
      next.claims.jti,
      now,
      next.claims.exp * 1000,
      graceMs,
    );
    switch (result.outcome) {
      case 'rotated': {
        // Scopes taken away from the user since login are not granted again.
        const allowed = parseScope(user.scopes);
        const scope = [...parseScope(result.session.scope)].filter((s) => allowed.has(s)).join(' ');
        const access = await this.#issue('access', claims.sub, claims.sid, scope, now, false, csrf);
        await this.audit({
          event: 'token.refresh',
          username: claims.sub,
          sessionId: claims.sid,
          ip: options.ip ?? null,
        });
        const pair = this.#pair(access, next);
        await this.#recent.remember(
          claims.jti,
          { accessToken: pair.accessToken, refreshToken: pair.refreshToken },
          graceMs,
          now,
        );
        return pair;
      }
      case 'grace': {
        // A second refresh with the same token just after the first (two tabs): the same pair
        // again. Without it (another node, no shared store) the caller is refused, not revoked.
        const recent = await this.#recallRotation(claims.jti);
        const pair = recent && (await this.#pairOf(recent));
        if (!pair || pair.refresh.jti !== result.replacedBy) throw new WsgateError('invalid_token');
        return pair;
      }
      case 'reused':
        this.revocations.add({ sessionIds: [result.sessionId], reason: 'refresh_reuse' });
        await this.audit({
          event: 'session.revoke',
          username: result.username,
          sessionId: result.sessionId,
          ip: options.ip ?? null,
          detail: { reason: 'refresh_reuse' },
        });
        throw new WsgateError('session_revoked', 'Refresh token reuse detected; session revoked');
      case 'revoked':
        throw new WsgateError('session_revoked');
      case 'expired':
        throw new WsgateError('token_expired');
      case 'unknown':
        throw new WsgateError('invalid_token');
    }
  }

  /**
   * The pair a recent rotation issued. Another node may have rotated the token a moment ago and
   * not yet stored the pair: it is asked for a few times over about half a second.
   */
  async #recallRotation(jti: string) {
    for (let attempt = 0; ; attempt++) {
      const recent = await this.#recent.recall(jti, this.#o.clock());
      if (recent || attempt === 10) return recent;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The claims of a remembered pair, checked again; undefined when either no longer verifies. */
  async #pairOf(recent: {
    accessToken: string;
    refreshToken: string;
  }): Promise<TokenPair | undefined> {
    try {
      const access = await this.verify(recent.accessToken, 'access');
      const refresh = await this.verify(recent.refreshToken, 'refresh');
      return this.#pair(
        { token: recent.accessToken, claims: access },
        { token: recent.refreshToken, claims: refresh },
      );
    } catch (err) {
      if (err instanceof WsgateError) return undefined;
      throw err;
    }
  }

  /** Revokes one session: its refresh family stops working and its sockets close with 4410. */
  async revoke(
    sessionId: string,
    reason: RevocationReason,
    actor?: { username?: string; ip?: string },
  ): Promise<boolean> {
    const changed = await this.#o.storage.revokeSession(sessionId, reason, this.#o.clock());
    this.revocations.add({ sessionIds: [sessionId], reason });
    if (changed) {
      await this.audit({
        event: 'session.revoke',
        username: actor?.username ?? null,
        sessionId,
        ip: actor?.ip ?? null,
        detail: { reason },
      });
    }
    return changed;
  }

  /** Revokes every live session of a user (password change, user disabled). */
  async revokeUser(username: string, reason: RevocationReason): Promise<string[]> {
    const ids = await this.#o.storage.revokeUserSessions(username, reason, this.#o.clock());
    if (ids.length > 0) {
      this.revocations.add({ sessionIds: ids, reason });
      await this.audit({
        event: 'session.revoke',
        username,
        detail: { reason, sessions: ids.length },
      });
    }
    return ids;
  }
}

/** How far back the revocation poll looks for external revocations (their `revokedAt` may lag). */
const externalLookBackMs = 6 * 60_000;

/** Usernames from failed logins are whatever a client sent: audit and logs keep at most 64. */
export function loggedUsername(username: string): string {
  if (username.length <= 64) return username;
  return `${Array.from(username).slice(0, 64).join('')}…`;
}

/**
 * Tokens kept in cookies carry a random value that page script must echo (double submit). Both
 * tokens of a pair carry the same one, so the check works from either cookie: the access cookie
 * is gone once it expires, while the refresh cookie still names the value the page holds.
 */
function newCsrf(): string {
  return randomBytes(24).toString('base64url');
}

/** The `jti` of a token, unverified (only to find a rotation in progress), or undefined. */
function jtiOf(token: string): string | undefined {
  try {
    const jti = decodeJwt(token).jti;
    return typeof jti === 'string' ? jti : undefined;
  } catch {
    return undefined;
  }
}
