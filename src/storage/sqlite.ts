import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  UserExistsError,
  type AuditEvent,
  type ChatMessage,
  type ExternalRevocation,
  type NewChatMessage,
  type StoredKey,
  type Deployment,
  type NewSession,
  type NewUser,
  type RevocationReason,
  type RotationResult,
  type Session,
  type Storage,
  type StoredAuditEvent,
  type User,
} from './types.js';
import {
  externalRevocation,
  toSession,
  toUser,
  type ExternalRevocationRow,
  type SessionRow,
  type UserRow,
} from './rows.js';

/** Versioned migrations; append only. */
const migrations: readonly string[] = [
  `CREATE TABLE users (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     username TEXT NOT NULL UNIQUE,
     password_hash TEXT NOT NULL,
     scopes TEXT NOT NULL DEFAULT '',
     disabled INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL,
     password_changed_at INTEGER NOT NULL
   );
   CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     scope TEXT NOT NULL DEFAULT '',
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     revoked_at INTEGER,
     revoked_reason TEXT
   );
   CREATE INDEX sessions_username ON sessions(username);
   CREATE INDEX sessions_revoked ON sessions(revoked_at) WHERE revoked_at IS NOT NULL;
   CREATE TABLE refresh_tokens (
     jti TEXT PRIMARY KEY,
     session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
     issued_at INTEGER NOT NULL,
     replaced_by TEXT,
     replaced_at INTEGER
   );
   CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     ts INTEGER NOT NULL,
     event TEXT NOT NULL,
     username TEXT,
     session_id TEXT,
     ip TEXT,
     detail TEXT
   );
   CREATE INDEX audit_ts ON audit(ts);`,
  `CREATE TABLE messages (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     room TEXT NOT NULL,
     username TEXT NOT NULL,
     text TEXT NOT NULL,
     ts INTEGER NOT NULL
   );
   CREATE INDEX messages_room_id ON messages(room, id);`,
  `CREATE TABLE signing_keys (
     kid TEXT PRIMARY KEY,
     jwk TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );`,
  // Usernames are unique after case-folding (they are ASCII, so NFKC changes nothing and folding
  // is lower-casing): \`Alice\` and \`alice\` cannot both exist and pass for each other.
  `CREATE UNIQUE INDEX users_username_folded ON users (lower(username));`,
  `CREATE TABLE external_revocations (
     issuer TEXT NOT NULL,
     kind TEXT NOT NULL,
     value TEXT NOT NULL,
     revoked_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     PRIMARY KEY (issuer, kind, value)
   );
   CREATE INDEX external_revocations_revoked ON external_revocations(revoked_at);
   CREATE TABLE logout_tokens (
     issuer TEXT NOT NULL,
     jti TEXT NOT NULL,
     expires_at INTEGER NOT NULL,
     PRIMARY KEY (issuer, jti)
   );
   CREATE INDEX logout_tokens_expires ON logout_tokens(expires_at);`,

  `CREATE TABLE deployment (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     issuer TEXT NOT NULL,
     audience TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );`,
];

interface AuditRow {
  id: number;
  ts: number;
  event: string;
  username: string | null;
  session_id: string | null;
  ip: string | null;
  detail: string | null;
}

/** SQLite storage on better-sqlite3, in WAL mode. `path` may be `:memory:` for tests. */
export class SqliteStorage implements Storage {
  readonly #db: Database.Database;
  /** Prepared statements by SQL text: preparing compiles the SQL, so each is done once. */
  readonly #statements = new Map<string, Database.Statement>();

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.#db = new Database(path);
    // Password hashes and sessions live here: owner only (SQLite gives -wal and -shm the same mode).
    if (path !== ':memory:') chmodSync(path, 0o600);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('foreign_keys = ON');
    this.#db.pragma('busy_timeout = 5000');
  }

  migrate(): Promise<void> {
    const db = this.#db;
    db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)',
    );
    // IMMEDIATE takes the write lock first, so two processes migrating at once run one after the other.
    db.transaction(() => {
      const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as {
        v: number | null;
      };
      for (let version = (row.v ?? 0) + 1; version <= migrations.length; version++) {
        db.exec(migrations[version - 1] as string);
        db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(
          version,
          Date.now(),
        );
      }
    }).immediate();
    return Promise.resolve();
  }

  #sql(source: string): Database.Statement {
    let statement = this.#statements.get(source);
    if (!statement) this.#statements.set(source, (statement = this.#db.prepare(source)));
    return statement;
  }

  ping(): Promise<void> {
    this.#sql('SELECT 1').get();
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.#db.open) this.#db.close();
    return Promise.resolve();
  }

  async createUser(user: NewUser): Promise<User> {
    try {
      const row = this.#sql(
        `INSERT INTO users (username, password_hash, scopes, disabled, created_at, password_changed_at)
           VALUES (?, ?, ?, 0, ?, ?) RETURNING *`,
      ).get(user.username, user.passwordHash, user.scopes, user.now, user.now) as UserRow;
      return toUser(row);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new UserExistsError(user.username);
      }
      throw err;
    }
  }

  getUser(username: string): Promise<User | undefined> {
    const row = this.#sql('SELECT * FROM users WHERE username = ?').get(username) as
      UserRow | undefined;
    return Promise.resolve(row && toUser(row));
  }

  listUsers(): Promise<User[]> {
    const rows = this.#sql('SELECT * FROM users ORDER BY username').all() as UserRow[];
    return Promise.resolve(rows.map(toUser));
  }

  setPassword(username: string, passwordHash: string, now: number): Promise<boolean> {
    const info = this.#sql(
      'UPDATE users SET password_hash = ?, password_changed_at = ? WHERE username = ?',
    ).run(passwordHash, now, username);
    return Promise.resolve(info.changes === 1);
  }

  setDisabled(username: string, disabled: boolean): Promise<boolean> {
    const info = this.#sql('UPDATE users SET disabled = ? WHERE username = ?').run(
      disabled ? 1 : 0,
      username,
    );
    return Promise.resolve(info.changes === 1);
  }

  createSession(session: NewSession): Promise<Session> {
    const db = this.#db;
    const row = db.transaction(() => {
      const created = this.#sql(
        'INSERT INTO sessions (id, username, scope, created_at, expires_at) VALUES (?, ?, ?, ?, ?) RETURNING *',
      ).get(
        session.id,
        session.username,
        session.scope,
        session.now,
        session.expiresAt,
      ) as SessionRow;
      this.#sql('INSERT INTO refresh_tokens (jti, session_id, issued_at) VALUES (?, ?, ?)').run(
        session.refreshJti,
        session.id,
        session.now,
      );
      return created;
    })();
    return Promise.resolve(toSession(row));
  }

  getSession(id: string): Promise<Session | undefined> {
    const row = this.#sql('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
    return Promise.resolve(row && toSession(row));
  }

  listSessions(filter: { username?: string; activeAt?: number } = {}): Promise<Session[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.username !== undefined) {
      where.push('username = ?');
      params.push(filter.username);
    }
    if (filter.activeAt !== undefined) {
      where.push('revoked_at IS NULL AND expires_at > ?');
      params.push(filter.activeAt);
    }
    const sql = `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`;
    const rows = this.#sql(sql).all(...params) as SessionRow[];
    return Promise.resolve(rows.map(toSession));
  }

  revokeSession(id: string, reason: RevocationReason, now: number): Promise<boolean> {
    const info = this.#sql(
      'UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL',
    ).run(now, reason, id);
    return Promise.resolve(info.changes === 1);
  }

  revokeUserSessions(username: string, reason: RevocationReason, now: number): Promise<string[]> {
    const rows = this.#sql(
      `UPDATE sessions SET revoked_at = ?, revoked_reason = ?
         WHERE username = ? AND revoked_at IS NULL AND expires_at > ? RETURNING id`,
    ).all(now, reason, username, now) as { id: string }[];
    return Promise.resolve(rows.map((r) => r.id));
  }

  listRevokedSessionIds(now: number): Promise<string[]> {
    const rows = this.#sql(
      'SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND expires_at > ?',
    ).all(now) as { id: string }[];
    return Promise.resolve(rows.map((r) => r.id));
  }

  listRevokedSince(
    since: number,
  ): Promise<{ id: string; revokedAt: number; reason: RevocationReason }[]> {
    const rows = this.#sql(
      'SELECT id, revoked_at, revoked_reason FROM sessions WHERE revoked_at >= ? ORDER BY revoked_at, id',
    ).all(since) as { id: string; revoked_at: number; revoked_reason: string }[];
    return Promise.resolve(
      rows.map((r) => ({
        id: r.id,
        revokedAt: r.revoked_at,
        reason: r.revoked_reason as RevocationReason,
      })),
    );
  }

  rotateRefreshToken(
    jti: string,
    nextJti: string,
    now: number,
    expiresAt: number,
    graceMs = 0,
  ): Promise<RotationResult> {
    const db = this.#db;
    const result = db
      .transaction((): RotationResult => {
        const token = this.#sql(
          `SELECT t.replaced_by, t.replaced_at, s.id, s.username, s.expires_at, s.revoked_at
           FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.jti = ?`,
        ).get(jti) as
          | {
              replaced_by: string | null;
              replaced_at: number | null;
              id: string;
              username: string;
              expires_at: number;
              revoked_at: number | null;
            }
          | undefined;
        if (!token) return { outcome: 'unknown' };
        if (token.replaced_by !== null) {
          if (
            token.revoked_at === null &&
            token.replaced_at !== null &&
            now - token.replaced_at < graceMs
          )
            return { outcome: 'grace', sessionId: token.id, replacedBy: token.replaced_by };
          this.#sql(
            `UPDATE sessions SET revoked_at = ?, revoked_reason = 'refresh_reuse' WHERE id = ? AND revoked_at IS NULL`,
          ).run(now, token.id);
          return { outcome: 'reused', sessionId: token.id, username: token.username };
        }
        if (token.revoked_at !== null) return { outcome: 'revoked' };
        if (token.expires_at <= now) return { outcome: 'expired' };
        this.#sql('UPDATE refresh_tokens SET replaced_by = ?, replaced_at = ? WHERE jti = ?').run(
          nextJti,
          now,
          jti,
        );
        this.#sql('INSERT INTO refresh_tokens (jti, session_id, issued_at) VALUES (?, ?, ?)').run(
          nextJti,
          token.id,
          now,
        );
        const session = this.#sql(
          'UPDATE sessions SET expires_at = ? WHERE id = ? RETURNING *',
        ).get(expiresAt, token.id) as SessionRow;
        return { outcome: 'rotated', session: toSession(session) };
      })
      .immediate();
    return Promise.resolve(result);
  }

  appendMessage(message: NewChatMessage): Promise<ChatMessage> {
    const row = this.#sql(
      'INSERT INTO messages (room, username, text, ts) VALUES (?, ?, ?, ?) RETURNING *',
    ).get(message.room, message.username, message.text, message.ts) as ChatMessage;
    return Promise.resolve({ ...row });
  }

  listMessages(room: string, options: { afterId?: number; limit: number }): Promise<ChatMessage[]> {
    const rows =
      options.afterId === undefined
        ? (this.#sql(
            'SELECT * FROM (SELECT * FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?) ORDER BY id',
          ).all(room, options.limit) as ChatMessage[])
        : (this.#sql('SELECT * FROM messages WHERE room = ? AND id > ? ORDER BY id LIMIT ?').all(
            room,
            options.afterId,
            options.limit,
          ) as ChatMessage[]);
    return Promise.resolve(rows.map((r) => ({ ...r })));
  }

  listRooms(): Promise<string[]> {
    const rows = this.#sql('SELECT DISTINCT room FROM messages ORDER BY room').all() as {
      room: string;
    }[];
    return Promise.resolve(rows.map((r) => r.room));
  }

  revokeExternal(r: ExternalRevocation): Promise<void> {
    this.#sql(
      `INSERT INTO external_revocations (issuer, kind, value, revoked_at, expires_at)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (issuer, kind, value) DO UPDATE SET
         revoked_at = MAX(revoked_at, excluded.revoked_at),
         expires_at = MAX(expires_at, excluded.expires_at)`,
    ).run(r.issuer, r.kind, r.value, r.revokedAt, r.expiresAt);
    return Promise.resolve();
  }

  listExternalRevocations(since: number, now: number): Promise<ExternalRevocation[]> {
    const rows = this.#sql(
      `SELECT issuer, kind, value, revoked_at, expires_at FROM external_revocations
       WHERE revoked_at >= ? AND expires_at > ? ORDER BY revoked_at`,
    ).all(since, now) as ExternalRevocationRow[];
    return Promise.resolve(rows.map(externalRevocation));
  }

  recordLogoutToken(issuer: string, jti: string, expiresAt: number, now: number): Promise<boolean> {
    const recorded = this.#db
      .transaction(() => {
        this.#sql('DELETE FROM logout_tokens WHERE expires_at <= ?').run(now);
        return this.#sql(
          'INSERT INTO logout_tokens (issuer, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
        ).run(issuer, jti, expiresAt).changes;
      })
      .immediate();
    return Promise.resolve(recorded === 1);
  }

  getDeployment(): Promise<Deployment | undefined> {
    const row = this.#sql('SELECT issuer, audience FROM deployment WHERE id = 1').get() as
      Deployment | undefined;
    return Promise.resolve(row === undefined ? undefined : { ...row });
  }

  ensureDeployment(candidate: Deployment): Promise<Deployment> {
    this.#sql(
      'INSERT INTO deployment (id, issuer, audience, created_at) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
    ).run(candidate.issuer, candidate.audience, Date.now());
    const row = this.#sql(
      'SELECT issuer, audience FROM deployment WHERE id = 1',
    ).get() as Deployment;
    return Promise.resolve({ ...row });
  }

  ensureSigningKeys(candidate: StoredKey): Promise<StoredKey[]> {
    const db = this.#db;
    const rows = db
      .transaction(() => {
        const count = (this.#sql('SELECT COUNT(*) AS n FROM signing_keys').get() as { n: number })
          .n;
        if (count === 0) {
          this.#sql('INSERT INTO signing_keys (kid, jwk, created_at) VALUES (?, ?, ?)').run(
            candidate.kid,
            JSON.stringify(candidate.jwk),
            candidate.createdAt,
          );
        }
        return this.#sql('SELECT * FROM signing_keys ORDER BY created_at').all() as {
          kid: string;
          jwk: string;
          created_at: number;
        }[];
      })
      .immediate();
    return Promise.resolve(
      rows.map((r) => ({
        kid: r.kid,
        jwk: JSON.parse(r.jwk) as StoredKey['jwk'],
        createdAt: r.created_at,
      })),
    );
  }

  appendAudit(event: AuditEvent): Promise<void> {
    this.#sql(
      'INSERT INTO audit (ts, event, username, session_id, ip, detail) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(
      event.ts,
      event.event,
      event.username ?? null,
      event.sessionId ?? null,
      event.ip ?? null,
      event.detail === undefined ? null : JSON.stringify(event.detail),
    );
    return Promise.resolve();
  }

  listAudit(filter: { since?: number; limit?: number } = {}): Promise<StoredAuditEvent[]> {
    const rows = this.#sql('SELECT * FROM audit WHERE ts >= ? ORDER BY id LIMIT ?').all(
      filter.since ?? 0,
      filter.limit ?? 1000,
    ) as AuditRow[];
    return Promise.resolve(
      rows.map((r) => ({
        id: r.id,
        ts: r.ts,
        event: r.event,
        username: r.username,
        sessionId: r.session_id,
        ip: r.ip,
        ...(r.detail === null ? {} : { detail: JSON.parse(r.detail) as Record<string, unknown> }),
      })),
    );
  }
}
