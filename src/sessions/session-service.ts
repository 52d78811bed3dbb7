import { randomBytes, randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import { WsgateError } from '../errors.js';
import type { Clock } from '../clock.js';
import type { KeySet } from '../tokens/keys.js';
import { issueToken } from '../tokens/issue.js';
import { verifyToken } from '../tokens/verify.js';
import { parseScope, type TokenClaims, type TokenType } from '../tokens/claims.js';
import type { AuditEvent, RevocationReason, Storage, User } from '../storage/types.js';
import { verifyDummyPassword, verifyPassword, maxPasswordLength } from '../users/passwords.js';
import type { LoginLimiter } from './login-limiter.js';
import { RevocationList } from './revocations.js';

export interface SessionServiceOptions {
  readonly storage: Storage;
  readonly keys: KeySet;
  readonly clock: Clock;
  readonly limiter: LoginLimiter;
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

export type LoginFailure = 'invalid_grant' | 'invalid_scope' | 'rate_limited';

export class LoginError extends Error {
  constructor(
    readonly reason: LoginFailure,
    readonly retryAfter = 0,
  ) {
    super(
      reason === 'invalid_scope' ? 'Requested scope is not allowed' : 'Bad username or password',
    );
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

  constructor(options: SessionServiceOptions) {
    this.#o = options;
    this.revocations = options.revocations ?? new RevocationList();
  }

  get issuer(): string {
    return this.#o.issuer;
  }

  /** Fixes the issuer once the listening address is known (a server started on port 0). */
  setIssuer(issuer: string): void {
    this.#o = { ...this.#o, issuer };
  }

  /** Revocations up to here are known; later ones are picked up by {@link pollRevocations}. */
  #watermark = 0;

  /** Loads the ids of revoked, unexpired sessions into memory. */
  async warm(): Promise<void> {
    this.#watermark = this.#o.clock();
    this.revocations.load(await this.#o.storage.listRevokedSessionIds(this.#watermark));
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
    return count;
  }

  async audit(event: Omit<AuditEvent, 'ts'>): Promise<void> {
    const full: AuditEvent = { ts: this.#o.clock(), ...event };
    await this.#o.storage.appendAudit(full);
    this.#o.onAudit?.(full);
  }

  /**
   * Checks a username and password and opens a session. Unknown users, wrong passwords and
   * disabled users get the same answer, after the same work.
   */
  async login(request: LoginRequest): Promise<TokenPair> {
    const { storage, limiter } = this.#o;
    const now = this.#o.clock();
    const limitKey = `${request.username.toLowerCase()}|${request.ip}`;
    const retryAfter = await limiter.retryAfter(limitKey, now);
    if (retryAfter > 0) {
      await this.audit({ event: 'login.throttled', username: request.username, ip: request.ip });
      throw new LoginError('rate_limited', retryAfter);
    }
    const user =
      request.username.length <= 64 && request.password.length <= maxPasswordLength
        ? await storage.getUser(request.username)
        : undefined;
    const ok =
      user === undefined || request.password.length > maxPasswordLength
        ? await verifyDummyPassword(request.password.slice(0, maxPasswordLength))
        : await verifyPassword(user.passwordHash, request.password);
    if (!ok || !user || user.disabled) {
      await limiter.recordFailure(limitKey, now);
      await this.audit({
        event: 'login.failure',
        username: request.username,
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
    const refresh = await this.#issue(
      'refresh',
      user.username,
      sessionId,
      scope,
      now,
      false,
      cookies,
    );
    await this.#o.storage.createSession({
      id: sessionId,
      username: user.username,
      scope,
      now,
      expiresAt: refresh.claims.exp * 1000,
      refreshJti: refresh.claims.jti,
    });
    const access = await this.#issue(
      'access',
      user.username,
      sessionId,
      scope,
      now,
      fresh,
      cookies,
    );
    return this.#pair(access, refresh);
  }

  #issue(
    type: TokenType,
    subject: string,
    sessionId: string,
    scope: string,
    now: number,
    fresh: boolean,
    cookies: boolean,
  ) {
    const o = this.#o;
    // Tokens kept in cookies carry a random value that page script must echo (double submit).
    const csrf = cookies ? randomBytes(24).toString('base64url') : undefined;
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
    const o = this.#o;
    let claims: TokenClaims;
    try {
      claims = await this.verify(refreshToken, 'refresh');
    } catch (err) {
      await this.audit({
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
    const cookies = options.cookies === true;
    const next = await this.#issue(
      'refresh',
      claims.sub,
      claims.sid,
      claims.scope,
      now,
      false,
      cookies,
    );
    const result = await o.storage.rotateRefreshToken(
      claims.jti,
      next.claims.jti,
      now,
      next.claims.exp * 1000,
    );
    switch (result.outcome) {
      case 'rotated': {
        // Scopes taken away from the user since login are not granted again.
        const allowed = parseScope(user.scopes);
        const scope = [...parseScope(result.session.scope)].filter((s) => allowed.has(s)).join(' ');
        const access = await this.#issue(
          'access',
          claims.sub,
          claims.sid,
          scope,
          now,
          false,
          cookies,
        );
        await this.audit({
          event: 'token.refresh',
          username: claims.sub,
          sessionId: claims.sid,
          ip: options.ip ?? null,
        });
        return this.#pair(access, next);
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
