import type { ExternalRevocation, RevocationReason, Session, User } from './types.js';

/** Table rows as both SQL backends return them (SQLite has no boolean: `disabled` is 0 or 1). */
export interface UserRow {
  id: number;
  username: string;
  password_hash: string;
  scopes: string;
  disabled: boolean | number;
  created_at: number;
  password_changed_at: number;
}

export interface SessionRow {
  id: string;
  username: string;
  scope: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
}

export const toUser = (row: UserRow): User => ({
  id: row.id,
  username: row.username,
  passwordHash: row.password_hash,
  scopes: row.scopes,
  disabled: row.disabled === true || row.disabled === 1,
  createdAt: row.created_at,
  passwordChangedAt: row.password_changed_at,
});

export const toSession = (row: SessionRow): Session => ({
  id: row.id,
  username: row.username,
  scope: row.scope,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  revokedAt: row.revoked_at,
  revokedReason: row.revoked_reason as RevocationReason | null,
});

export interface ExternalRevocationRow {
  issuer: string;
  kind: string;
  value: string;
  revoked_at: number;
  expires_at: number;
}

export const externalRevocation = (row: ExternalRevocationRow): ExternalRevocation => ({
  issuer: row.issuer,
  kind: row.kind as ExternalRevocation['kind'],
  value: row.value,
  revokedAt: row.revoked_at,
  expiresAt: row.expires_at,
});
