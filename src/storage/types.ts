import type { JWK } from 'jose';
/**
 * The storage contract. SQLite and PostgreSQL both implement it and both pass
 * `storage/contract.test-suite.ts`. Times are milliseconds since the epoch.
 */

export interface User {
  readonly id: number;
  readonly username: string;
  readonly passwordHash: string;
  /** Space-separated scopes the user may be granted. */
  readonly scopes: string;
  readonly disabled: boolean;
  readonly createdAt: number;
  readonly passwordChangedAt: number;
}

export interface NewUser {
  readonly username: string;
  readonly passwordHash: string;
  readonly scopes: string;
  readonly now: number;
}

/** Why a session was revoked (a column in storage, and a field of the cluster's revoke message). */
export const revocationReasons = [
  'logout',
  'refresh_reuse',
  'password_change',
  'user_disabled',
  'admin',
  'backchannel_logout',
] as const;

export type RevocationReason = (typeof revocationReasons)[number];

/** A login session. It owns one refresh-token family and every socket opened with its tokens. */
export interface Session {
  readonly id: string;
  readonly username: string;
  /** Scopes granted at login; refreshed tokens carry no more than these. */
  readonly scope: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly revokedAt: number | null;
  readonly revokedReason: RevocationReason | null;
}

export interface NewSession {
  readonly id: string;
  readonly username: string;
  readonly scope: string;
  readonly now: number;
  /** The session ends when its last refresh token would. */
  readonly expiresAt: number;
  /** The first refresh token of the family. */
  readonly refreshJti: string;
}

export type RotationResult =
  | { readonly outcome: 'rotated'; readonly session: Session }
  /** The token had already been rotated: the family is now revoked. */
  | { readonly outcome: 'reused'; readonly sessionId: string; readonly username: string }
  /**
   * The token was rotated less than the grace period ago (two tabs refreshing at once): nothing
   * changed, and the caller may hand back the pair that rotation issued.
   */
  | { readonly outcome: 'grace'; readonly sessionId: string; readonly replacedBy: string }
  | { readonly outcome: 'revoked' | 'expired' | 'unknown' };

export interface AuditEvent {
  readonly ts: number;
  /** e.g. `login.success`, `login.failure`, `token.issue`, `token.refresh`, `session.revoke`. */
  readonly event: string;
  readonly username?: string | null;
  readonly sessionId?: string | null;
  readonly ip?: string | null;
  /** Structured detail without secrets. */
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface StoredAuditEvent extends AuditEvent {
  readonly id: number;
}

/** A stored Ed25519 private key in JWK form, as kept in the data dir or the database. */
export interface StoredKey {
  readonly kid: string;
  readonly jwk: JWK;
  readonly createdAt: number;
}

/** A chat message as stored; ids grow with time across all rooms. */
export interface ChatMessage {
  readonly id: number;
  readonly room: string;
  readonly username: string;
  readonly text: string;
  readonly ts: number;
}

export type NewChatMessage = Omit<ChatMessage, 'id'>;

/**
 * A revocation of an external identity (a back-channel logout), remembered until `expiresAt`: a session (`sid`: the
 * provider's `sid`, or the `jti` of a token without one), a subject (`sub`: every token of it
 * issued before `revokedAt`), or a subject's tokens without a `sid` (`sub_without_sid`), which a
 * `sid` logout also ends.
 */
export interface ExternalRevocation {
  readonly issuer: string;
  readonly kind: 'sid' | 'sub' | 'sub_without_sid';
  readonly value: string;
  readonly revokedAt: number;
  readonly expiresAt: number;
}

export class UserExistsError extends Error {
  constructor(username: string) {
    super(`user "${username}" already exists`);
    this.name = 'UserExistsError';
  }
}

export interface Storage {
  /** Applies pending migrations; safe to call from several processes at once. */
  migrate(): Promise<void>;
  /** Resolves when the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;

  createUser(user: NewUser): Promise<User>;
  getUser(username: string): Promise<User | undefined>;
  listUsers(): Promise<User[]>;
  /** Returns false when there is no such user. */
  setPassword(username: string, passwordHash: string, now: number): Promise<boolean>;
  setDisabled(username: string, disabled: boolean): Promise<boolean>;

  /** Creates a session together with the first refresh token of its family. */
  createSession(session: NewSession): Promise<Session>;
  getSession(id: string): Promise<Session | undefined>;
  listSessions(filter?: { username?: string; activeAt?: number }): Promise<Session[]>;
  /** Returns false when the session does not exist or was already revoked. */
  revokeSession(id: string, reason: RevocationReason, now: number): Promise<boolean>;
  /** Revokes every live session of a user and returns their ids. */
  revokeUserSessions(username: string, reason: RevocationReason, now: number): Promise<string[]>;
  /** Ids of sessions revoked and not yet expired at `now`; warms the in-memory revocation set. */
  listRevokedSessionIds(now: number): Promise<string[]>;
  /**
   * Sessions revoked at or after `since`, oldest first: how a node learns of revocations made by
   * another process (the CLI, or a node without a shared bus).
   */
  listRevokedSince(
    since: number,
  ): Promise<{ id: string; revokedAt: number; reason: RevocationReason }[]>;

  /**
   * Atomically replaces refresh token `jti` with `nextJti`. Presenting a token that was already
   * replaced is reuse: the whole family is revoked in the same transaction, unless it was replaced
   * less than `graceMs` ago (outcome `grace`, nothing changed). The session's expiry slides to
   * `expiresAt`, the new token's.
   */
  rotateRefreshToken(
    jti: string,
    nextJti: string,
    now: number,
    expiresAt: number,
    graceMs?: number,
  ): Promise<RotationResult>;

  appendMessage(message: NewChatMessage): Promise<ChatMessage>;
  /**
   * Messages of a room in ascending id order: the last `limit` ones, or with `afterId` the first
   * `limit` ones after it (what a reconnecting client missed). A room's ids become visible in
   * order: once a message is returned, every one of its room with a smaller id is readable too,
   * so `afterId` = the last id read never skips one still being stored.
   */
  listMessages(room: string, options: { afterId?: number; limit: number }): Promise<ChatMessage[]>;
  /** Rooms that have messages, by name. */
  listRooms(): Promise<string[]>;

  /**
   * The signing keys every node shares (cluster mode on a shared database). Stores `candidate`
   * only when there is no key yet, atomically, so nodes starting at once agree on one key.
   */
  ensureSigningKeys(candidate: StoredKey): Promise<StoredKey[]>;

  /**
   * Records a revocation of an external session or subject. Recording the same one again keeps
   * the later `revokedAt` and `expiresAt`.
   */
  revokeExternal(revocation: ExternalRevocation): Promise<void>;
  /** External revocations recorded at or after `since` and not expired at `now`, oldest first. */
  listExternalRevocations(since: number, now: number): Promise<ExternalRevocation[]>;
  /**
   * Records the (`issuer`, `jti`) of a back-channel logout token, kept until `expiresAt`. False
   * when it is already there: a replay. Expired records are dropped on the way.
   */
  recordLogoutToken(issuer: string, jti: string, expiresAt: number, now: number): Promise<boolean>;

  /** The deployment's issuer and audience, once its first start has stored them. */
  getDeployment(): Promise<Deployment | undefined>;
  /**
   * Stores `candidate` as the deployment's issuer and audience unless some are stored already,
   * atomically, and answers what is stored: nodes starting at once agree on one.
   */
  ensureDeployment(candidate: Deployment): Promise<Deployment>;

  appendAudit(event: AuditEvent): Promise<void>;
  listAudit(filter?: { since?: number; limit?: number }): Promise<StoredAuditEvent[]>;
}

/** What every node and the CLI of one deployment share: the `iss` and `aud` of its tokens. */
export interface Deployment {
  readonly issuer: string;
  readonly audience: string;
}
