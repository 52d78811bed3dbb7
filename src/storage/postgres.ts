import pg from 'pg';
import {
  UserExistsError,
  type AuditEvent,
  type ChatMessage,
  type ExternalRevocation,
  type NewChatMessage,
  type NewSession,
  type NewUser,
  type RevocationReason,
  type RotationResult,
  type Session,
  type Storage,
  type StoredAuditEvent,
  type StoredKey,
  type Deployment,
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

/**
 * Versioned migrations; append only. Same versions as SQLite's. Keys and names compare and sort
 * bytewise (`COLLATE "C"`), as in SQLite, whatever the database's locale.
 */
const migrations: readonly string[] = [
  `CREATE TABLE users (
     id BIGSERIAL PRIMARY KEY,
     username TEXT COLLATE "C" NOT NULL UNIQUE,
     password_hash TEXT NOT NULL,
     scopes TEXT NOT NULL DEFAULT '',
     disabled BOOLEAN NOT NULL DEFAULT false,
     created_at BIGINT NOT NULL,
     password_changed_at BIGINT NOT NULL
   );
   CREATE TABLE sessions (
     id TEXT COLLATE "C" PRIMARY KEY,
     username TEXT COLLATE "C" NOT NULL REFERENCES users(username) ON DELETE CASCADE,
     scope TEXT NOT NULL DEFAULT '',
     created_at BIGINT NOT NULL,
     expires_at BIGINT NOT NULL,
     revoked_at BIGINT,
     revoked_reason TEXT
   );
   CREATE INDEX sessions_username ON sessions(username);
   CREATE INDEX sessions_revoked ON sessions(revoked_at) WHERE revoked_at IS NOT NULL;
   CREATE TABLE refresh_tokens (
     jti TEXT COLLATE "C" PRIMARY KEY,
     session_id TEXT COLLATE "C" NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
     issued_at BIGINT NOT NULL,
     replaced_by TEXT,
     replaced_at BIGINT
   );
   CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);
   CREATE TABLE audit (
     id BIGSERIAL PRIMARY KEY,
     ts BIGINT NOT NULL,
     event TEXT NOT NULL,
     username TEXT,
     session_id TEXT,
     ip TEXT,
     detail JSONB
   );
   CREATE INDEX audit_ts ON audit(ts);`,
  `CREATE TABLE messages (
     id BIGSERIAL PRIMARY KEY,
     room TEXT COLLATE "C" NOT NULL,
     username TEXT NOT NULL,
     text TEXT NOT NULL,
     ts BIGINT NOT NULL
   );
   CREATE INDEX messages_room_id ON messages(room, id);`,
  `CREATE TABLE signing_keys (
     kid TEXT COLLATE "C" PRIMARY KEY,
     jwk JSONB NOT NULL,
     created_at BIGINT NOT NULL
   );`,
  // Usernames are unique after case-folding (they are ASCII, so NFKC changes nothing and folding
  // is lower-casing): \`Alice\` and \`alice\` cannot both exist and pass for each other.
  `CREATE UNIQUE INDEX users_username_folded ON users (lower(username));`,
  `CREATE TABLE external_revocations (
     issuer TEXT COLLATE "C" NOT NULL,
     kind TEXT COLLATE "C" NOT NULL,
     value TEXT COLLATE "C" NOT NULL,
     revoked_at BIGINT NOT NULL,
     expires_at BIGINT NOT NULL,
     PRIMARY KEY (issuer, kind, value)
   );
   CREATE INDEX external_revocations_revoked ON external_revocations(revoked_at);
   CREATE TABLE logout_tokens (
     issuer TEXT COLLATE "C" NOT NULL,
     jti TEXT COLLATE "C" NOT NULL,
     expires_at BIGINT NOT NULL,
     PRIMARY KEY (issuer, jti)
   );
   CREATE INDEX logout_tokens_expires ON logout_tokens(expires_at);`,

  `CREATE TABLE deployment (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     issuer TEXT NOT NULL,
     audience TEXT NOT NULL,
     created_at BIGINT NOT NULL
   );`,
];

/** First key of the migration advisory lock ("wsgt"); the second is the schema's hash. */
const migrationLockKey = 0x77736774;
/** First key of a room's advisory lock while a message is stored ("wsgm"); the second is the room's hash. */
const roomLockKey = 0x7773676d;

interface AuditRow {
  id: number;
  ts: number;
  event: string;
  username: string | null;
  session_id: string | null;
  ip: string | null;
  detail: Record<string, unknown> | null;
}

/**
 * PostgreSQL text cannot hold U+0000. A key containing it names nothing stored, so lookups answer
 * "not found" (as SQLite would) instead of failing; free text (chat, audit) stores U+FFFD instead.
 */
const storable = (key: string): boolean => !key.includes('\0');
const scrub = (text: string): string => text.replaceAll('\0', '\uFFFD');
const scrubOrNull = (text: string | null | undefined): string | null =>
  text === undefined || text === null ? null : scrub(text);

/** JSONB refuses what JSON text allows: `\u0000` and unpaired surrogates. Both become U+FFFD. */
const jsonbUnsafe = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const jsonbString = (text: string): string => text.replace(jsonbUnsafe, '\uFFFD');

/** JSON text for the audit detail's JSONB column. */
function auditDetailJson(detail: Readonly<Record<string, unknown>>): string {
  const clean = (value: unknown): unknown => {
    if (typeof value === 'string') return jsonbString(value);
    if (Array.isArray(value)) return value.map(clean);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [jsonbString(k), clean(v)]));
    }
    return value;
  };
  // Round-trip first, so toJSON, undefined and the like behave exactly as JSON.stringify has them.
  return JSON.stringify(clean(JSON.parse(JSON.stringify(detail))));
}

/** BIGINT (ms timestamps, ids) as numbers, for this pool's clients only. */
function typeParsers(): pg.TypeOverrides {
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));
  return types;
}

export interface PostgresOptions {
  /** Pool size; default 10. */
  readonly max?: number;
  /**
   * Schema to work in (it must exist): sets `search_path` for every connection. The URL may do
   * the same with `?options=-c%20search_path%3D<schema>`.
   */
  readonly schema?: string;
  /** Errors of idle pooled connections (the pool drops the connection and opens a new one). */
  readonly onError?: (err: Error) => void;
  /** Longest wait for a pooled connection (default 5 s). */
  readonly connectionTimeoutMs?: number;
  /** Longest a query may take before it fails (default 10 s). */
  readonly queryTimeoutMs?: number;
}

/** Connection string with `search_path` added to the startup `options`. */
function withSchema(url: string, schema: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_$]*$/.test(schema)) {
    throw new Error(`schema must be a plain identifier, got ${JSON.stringify(schema)}`);
  }
  const parsed = new URL(url);
  const options = parsed.searchParams.get('options');
  const searchPath = `-c search_path=${schema}`;
  parsed.searchParams.set('options', options ? `${options} ${searchPath}` : searchPath);
  return parsed.toString();
}

/** PostgreSQL storage over a `pg.Pool`: plain SQL, one transaction where a step must be atomic. */
export class PostgresStorage implements Storage {
  readonly #pool: pg.Pool;
  #ending: Promise<void> | undefined;

  constructor(url: string, options: PostgresOptions = {}) {
    this.#pool = new pg.Pool({
      connectionString: options.schema === undefined ? url : withSchema(url, options.schema),
      max: options.max ?? 10,
      application_name: 'wsgate',
      types: typeParsers(),
      // A database that stops answering must fail requests and /readyz, not hang them.
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
      query_timeout: options.queryTimeoutMs ?? 10_000,
    });
    // Without a listener, an idle connection dropped by the server would crash the process.
    this.#pool.on('error', options.onError ?? (() => undefined));
  }

  async #query<R extends pg.QueryResultRow>(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    return this.#pool.query<R>(sql, params as unknown[]);
  }

  /** Runs `work` in one transaction on one connection; rolls back if it throws. */
  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async migrate(): Promise<void> {
    await this.#transaction(async (client) => {
      // Nodes starting together queue here, one schema at a time; the lock ends with the transaction.
      await client.query(
        "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))",
        [migrationLockKey],
      );
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)',
      );
      const { rows } = await client.query<{ v: number | null }>(
        'SELECT MAX(version) AS v FROM schema_migrations',
      );
      for (let version = (rows[0]?.v ?? 0) + 1; version <= migrations.length; version++) {
        await client.query(migrations[version - 1] as string);
        await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [
          version,
          Date.now(),
        ]);
      }
    });
  }

  async ping(): Promise<void> {
    await this.#query('SELECT 1');
  }

  close(): Promise<void> {
    this.#ending ??= this.#pool.end();
    return this.#ending;
  }

  async createUser(user: NewUser): Promise<User> {
    try {
      const { rows } = await this.#query<UserRow>(
        `INSERT INTO users (username, password_hash, scopes, disabled, created_at, password_changed_at)
         VALUES ($1, $2, $3, false, $4, $4) RETURNING *`,
        [user.username, user.passwordHash, user.scopes, user.now],
      );
      return toUser(rows[0] as UserRow);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new UserExistsError(user.username);
      throw err;
    }
  }

  async getUser(username: string): Promise<User | undefined> {
    if (!storable(username)) return undefined;
    const { rows } = await this.#query<UserRow>('SELECT * FROM users WHERE username = $1', [
      username,
    ]);
    return rows[0] && toUser(rows[0]);
  }

  async listUsers(): Promise<User[]> {
    const { rows } = await this.#query<UserRow>('SELECT * FROM users ORDER BY username');
    return rows.map(toUser);
  }

  async setPassword(username: string, passwordHash: string, now: number): Promise<boolean> {
    if (!storable(username)) return false;
    const { rowCount } = await this.#query(
      'UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE username = $3',
      [passwordHash, now, username],
    );
    return rowCount === 1;
  }

  async setDisabled(username: string, disabled: boolean): Promise<boolean> {
    if (!storable(username)) return false;
    const { rowCount } = await this.#query('UPDATE users SET disabled = $1 WHERE username = $2', [
      disabled,
      username,
    ]);
    return rowCount === 1;
  }

  async createSession(session: NewSession): Promise<Session> {
    // One statement, so one transaction: the session and the first token of its family.
    const { rows } = await this.#query<SessionRow>(
      `WITH s AS (
         INSERT INTO sessions (id, username, scope, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING *
       ), t AS (
         INSERT INTO refresh_tokens (jti, session_id, issued_at) SELECT $6, id, $4 FROM s
       )
       SELECT * FROM s`,
      [
        session.id,
        session.username,
        session.scope,
        session.now,
        session.expiresAt,
        session.refreshJti,
      ],
    );
    return toSession(rows[0] as SessionRow);
  }

  async getSession(id: string): Promise<Session | undefined> {
    if (!storable(id)) return undefined;
    const { rows } = await this.#query<SessionRow>('SELECT * FROM sessions WHERE id = $1', [id]);
    return rows[0] && toSession(rows[0]);
  }

  async listSessions(filter: { username?: string; activeAt?: number } = {}): Promise<Session[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.username !== undefined) {
      if (!storable(filter.username)) return [];
      params.push(filter.username);
      where.push(`username = $${params.length}`);
    }
    if (filter.activeAt !== undefined) {
      params.push(filter.activeAt);
      where.push(`revoked_at IS NULL AND expires_at > $${params.length}`);
    }
    const sql = `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`;
    const { rows } = await this.#query<SessionRow>(sql, params);
    return rows.map(toSession);
  }

  async revokeSession(id: string, reason: RevocationReason, now: number): Promise<boolean> {
    if (!storable(id)) return false;
    const { rowCount } = await this.#query(
      'UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL',
      [now, reason, id],
    );
    return rowCount === 1;
  }

  async revokeUserSessions(
    username: string,
    reason: RevocationReason,
    now: number,
  ): Promise<string[]> {
    if (!storable(username)) return [];
    const { rows } = await this.#query<{ id: string }>(
      `UPDATE sessions SET revoked_at = $1, revoked_reason = $2
       WHERE username = $3 AND revoked_at IS NULL AND expires_at > $1 RETURNING id`,
      [now, reason, username],
    );
    return rows.map((r) => r.id);
  }

  async listRevokedSessionIds(now: number): Promise<string[]> {
    const { rows } = await this.#query<{ id: string }>(
      'SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND expires_at > $1',
      [now],
    );
    return rows.map((r) => r.id);
  }

  async listRevokedSince(
    since: number,
  ): Promise<{ id: string; revokedAt: number; reason: RevocationReason }[]> {
    const { rows } = await this.#query<{
      id: string;
      revoked_at: number;
      revoked_reason: string;
    }>(
      'SELECT id, revoked_at, revoked_reason FROM sessions WHERE revoked_at >= $1 ORDER BY revoked_at, id',
      [since],
    );
    return rows.map((r) => ({
      id: r.id,
      revokedAt: r.revoked_at,
      reason: r.revoked_reason as RevocationReason,
    }));
  }

  async rotateRefreshToken(
    jti: string,
    nextJti: string,
    now: number,
    expiresAt: number,
    graceMs = 0,
  ): Promise<RotationResult> {
    if (!storable(jti)) return { outcome: 'unknown' };
    return this.#transaction(async (client): Promise<RotationResult> => {
      // The row lock makes a concurrent rotation of the same token wait, then see it replaced.
      const token = (
        await client.query<{
          session_id: string;
          replaced_by: string | null;
          replaced_at: string | null;
        }>(
          'SELECT session_id, replaced_by, replaced_at FROM refresh_tokens WHERE jti = $1 FOR UPDATE',
          [jti],
        )
      ).rows[0];
      if (!token) return { outcome: 'unknown' };
      // A fresh statement (READ COMMITTED) sees revocations committed while we waited.
      const session = (
        await client.query<SessionRow>('SELECT * FROM sessions WHERE id = $1 FOR NO KEY UPDATE', [
          token.session_id,
        ])
      ).rows[0] as SessionRow;
      if (token.replaced_by !== null) {
        if (
          session.revoked_at === null &&
          token.replaced_at !== null &&
          now - Number(token.replaced_at) < graceMs
        )
          return { outcome: 'grace', sessionId: session.id, replacedBy: token.replaced_by };
        await client.query(
          `UPDATE sessions SET revoked_at = $1, revoked_reason = 'refresh_reuse' WHERE id = $2 AND revoked_at IS NULL`,
          [now, session.id],
        );
        return { outcome: 'reused', sessionId: session.id, username: session.username };
      }
      if (session.revoked_at !== null) return { outcome: 'revoked' };
      if (session.expires_at <= now) return { outcome: 'expired' };
      await client.query(
        'UPDATE refresh_tokens SET replaced_by = $1, replaced_at = $2 WHERE jti = $3',
        [nextJti, now, jti],
      );
      await client.query(
        'INSERT INTO refresh_tokens (jti, session_id, issued_at) VALUES ($1, $2, $3)',
        [nextJti, session.id, now],
      );
      const updated = (
        await client.query<SessionRow>(
          'UPDATE sessions SET expires_at = $1 WHERE id = $2 RETURNING *',
          [expiresAt, session.id],
        )
      ).rows[0] as SessionRow;
      return { outcome: 'rotated', session: toSession(updated) };
    });
  }

  async appendMessage(message: NewChatMessage): Promise<ChatMessage> {
    // Ids come from a sequence when the row is inserted but show at commit, and commits from
    // several connections land in any order: a reader could see id n+1 while n is still being
    // committed and, resuming after n+1, never get n. Inserts into one room therefore wait for
    // the room's turn before they take an id, and the turn ends with the commit (after the row is
    // visible), so a room's ids become visible in order. One statement: the lock is never held
    // across a round trip; other rooms do not wait (unless their names hash alike).
    const { rows } = await this.#query<ChatMessage>(
      `WITH turn AS (SELECT pg_advisory_xact_lock(${roomLockKey}, hashtext($1)))
       INSERT INTO messages (room, username, text, ts) SELECT $1, $2, $3, $4 FROM turn
       RETURNING id, room, username, text, ts`,
      [message.room, message.username, scrub(message.text), message.ts],
    );
    return { ...(rows[0] as ChatMessage) };
  }

  async listMessages(
    room: string,
    options: { afterId?: number; limit: number },
  ): Promise<ChatMessage[]> {
    if (!storable(room)) return [];
    const { rows } =
      options.afterId === undefined
        ? await this.#query<ChatMessage>(
            `SELECT * FROM (
               SELECT id, room, username, text, ts FROM messages WHERE room = $1 ORDER BY id DESC LIMIT $2
             ) last ORDER BY id`,
            [room, options.limit],
          )
        : await this.#query<ChatMessage>(
            'SELECT id, room, username, text, ts FROM messages WHERE room = $1 AND id > $2 ORDER BY id LIMIT $3',
            [room, options.afterId, options.limit],
          );
    return rows.map((r) => ({ ...r }));
  }

  async listRooms(): Promise<string[]> {
    const { rows } = await this.#query<{ room: string }>(
      'SELECT DISTINCT room FROM messages ORDER BY room',
    );
    return rows.map((r) => r.room);
  }

  async revokeExternal(r: ExternalRevocation): Promise<void> {
    await this.#query(
      `INSERT INTO external_revocations (issuer, kind, value, revoked_at, expires_at)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (issuer, kind, value) DO UPDATE SET
         revoked_at = GREATEST(external_revocations.revoked_at, EXCLUDED.revoked_at),
         expires_at = GREATEST(external_revocations.expires_at, EXCLUDED.expires_at)`,
      [r.issuer, r.kind, r.value, r.revokedAt, r.expiresAt],
    );
  }

  async listExternalRevocations(since: number, now: number): Promise<ExternalRevocation[]> {
    const { rows } = await this.#query<ExternalRevocationRow>(
      `SELECT issuer, kind, value, revoked_at, expires_at FROM external_revocations
       WHERE revoked_at >= $1 AND expires_at > $2 ORDER BY revoked_at`,
      [since, now],
    );
    return rows.map(externalRevocation);
  }

  async recordLogoutToken(
    issuer: string,
    jti: string,
    expiresAt: number,
    now: number,
  ): Promise<boolean> {
    await this.#query('DELETE FROM logout_tokens WHERE expires_at <= $1', [now]);
    const { rowCount } = await this.#query(
      'INSERT INTO logout_tokens (issuer, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
      [issuer, jti, expiresAt],
    );
    return rowCount === 1;
  }

  async getDeployment(): Promise<Deployment | undefined> {
    const { rows } = await this.#query<Deployment>(
      'SELECT issuer, audience FROM deployment WHERE id = 1',
    );
    const row = rows[0];
    return row === undefined ? undefined : { issuer: row.issuer, audience: row.audience };
  }

  async ensureDeployment(candidate: Deployment): Promise<Deployment> {
    await this.#query(
      'INSERT INTO deployment (id, issuer, audience, created_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING',
      [scrub(candidate.issuer), scrub(candidate.audience), Date.now()],
    );
    const stored = await this.getDeployment();
    if (stored === undefined) throw new Error('the deployment row vanished');
    return stored;
  }

  async ensureSigningKeys(candidate: StoredKey): Promise<StoredKey[]> {
    return this.#transaction(async (client) => {
      // Nodes starting at once queue here, so exactly one of their candidates is stored.
      await client.query('LOCK TABLE signing_keys IN EXCLUSIVE MODE');
      await client.query(
        'INSERT INTO signing_keys (kid, jwk, created_at) SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM signing_keys)',
        [candidate.kid, JSON.stringify(candidate.jwk), candidate.createdAt],
      );
      const { rows } = await client.query<{
        kid: string;
        jwk: StoredKey['jwk'];
        created_at: number;
      }>('SELECT kid, jwk, created_at FROM signing_keys ORDER BY created_at');
      return rows.map((r) => ({ kid: r.kid, jwk: r.jwk, createdAt: Number(r.created_at) }));
    });
  }

  async appendAudit(event: AuditEvent): Promise<void> {
    await this.#query(
      'INSERT INTO audit (ts, event, username, session_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)',
      [
        event.ts,
        scrub(event.event),
        scrubOrNull(event.username),
        scrubOrNull(event.sessionId),
        scrubOrNull(event.ip),
        event.detail === undefined ? null : auditDetailJson(event.detail),
      ],
    );
  }

  async listAudit(filter: { since?: number; limit?: number } = {}): Promise<StoredAuditEvent[]> {
    const { rows } = await this.#query<AuditRow>(
      'SELECT * FROM audit WHERE ts >= $1 ORDER BY id LIMIT $2',
      [filter.since ?? 0, filter.limit ?? 1000],
    );
    return rows.map((r) => ({
      id: r.id,
      ts: r.ts,
      event: r.event,
      username: r.username,
      sessionId: r.session_id,
      ip: r.ip,
      ...(r.detail === null ? {} : { detail: r.detail }),
    }));
  }
}
