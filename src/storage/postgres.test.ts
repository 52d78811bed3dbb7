import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  passwordGrant,
  postForm,
  startTestServer,
  type TokenResponse,
} from '../../test/support/server.js';
import { storageContract } from './contract.test-suite.js';
import { openStorage } from './open.js';
import { PostgresStorage } from './postgres.js';
import type { ChatMessage } from './types.js';
import {
  postgresReachable,
  postgresUrl as url,
  skipUnlessReachable,
} from '../../test/support/services.js';
import { waitFor } from '../../test/support/worker-processes.js';

// Outside CI a missing server skips this file; in CI it must run, and fail.
const skip = await skipUnlessReachable('PostgreSQL', url, postgresReachable);

/** This run's schemas all start with this, so runs never collide; every one is dropped in `after`. */
const runPrefix = `wsgate_test_${randomBytes(6).toString('hex')}`;

describe('PostgreSQL storage', { skip }, () => {
  let admin: pg.Pool;
  const schemas: string[] = [];

  /** Creates a fresh, empty schema of this run and returns its name. */
  const freshSchema = async (): Promise<string> => {
    const schema = `${runPrefix}_${schemas.length + 1}`;
    schemas.push(schema);
    await admin.query(`CREATE SCHEMA ${schema}`);
    return schema;
  };

  before(() => {
    admin = new pg.Pool({ connectionString: url, max: 2 });
    admin.on('error', () => undefined);
  });

  after(async () => {
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  storageContract(
    'PostgreSQL',
    async () => new PostgresStorage(url, { schema: await freshSchema(), max: 4 }),
  );

  /**
   * A fresh schema whose inserts of the text `stalled` wait, after taking their id, until
   * `release`: a writer slow to commit (another node, a slow disk). The trigger waits for an
   * advisory lock this test holds.
   */
  const withStalledInserts = async (
    test: (s: {
      storage: PostgresStorage;
      schema: string;
      /** Starts storing `stalled` in `room`; answers once it has its id and waits. */
      stall: (room: string) => Promise<{ stored: Promise<ChatMessage>; pid: number }>;
      /** Starts `write`; answers once it is stored, or waits for backend `pid`. */
      storedOrQueued: <T>(
        pid: number,
        write: Promise<T>,
      ) => Promise<{ done: Promise<T>; stored: boolean }>;
      release: () => Promise<void>;
    }) => Promise<void>,
  ): Promise<void> => {
    const schema = await freshSchema();
    const storage = new PostgresStorage(url, { schema });
    await storage.migrate();
    const key = randomInt(1, 2 ** 31);
    await admin.query(`
      CREATE FUNCTION ${schema}.stall() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.text = 'stalled' THEN PERFORM pg_advisory_xact_lock_shared(${key}); END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER stall BEFORE INSERT ON ${schema}.messages
        FOR EACH ROW EXECUTE FUNCTION ${schema}.stall();`);
    const holder = await admin.connect();
    await holder.query('SELECT pg_advisory_lock($1)', [key]);
    let held = true;
    const release = async () => {
      if (!held) return;
      held = false;
      await holder.query('SELECT pg_advisory_unlock($1)', [key]);
      holder.release();
    };
    const waiting = async () =>
      (
        await admin.query<{ pid: number }>(
          `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
             AND classid = 0 AND objid = $1 AND objsubid = 1`,
          [key],
        )
      ).rows[0]?.pid;
    /** Whether some backend waits for `pid`: a writer queued behind it. */
    const blockedBy = async (pid: number) =>
      (
        await admin.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [
          pid,
        ])
      ).rowCount !== 0;
    try {
      await test({
        storage,
        schema,
        stall: async (room) => {
          const stored = storage.appendMessage({ room, username: 'alice', text: 'stalled', ts: 1 });
          return { stored, pid: await waitFor(waiting, 'the stalled insert waits') };
        },
        storedOrQueued: async (pid, write) => {
          let stored = false;
          const done = write.finally(() => (stored = true));
          await waitFor(
            async () => stored || (await blockedBy(pid)),
            'stored, or queued behind the stalled insert',
          );
          return { done, stored };
        },
        release,
      });
    } finally {
      await release();
      await storage.close();
    }
  };

  describe('PostgreSQL only', () => {
    it('lets several nodes migrate the same schema at once', async () => {
      const schema = await freshSchema();
      const nodes = Array.from({ length: 4 }, () => new PostgresStorage(url, { schema, max: 2 }));
      try {
        await Promise.all(nodes.map((n) => n.migrate()));
        await Promise.all(nodes.map((n) => n.migrate()));
        const { rows } = await admin.query<{ version: number }>(
          `SELECT version FROM ${schema}.schema_migrations ORDER BY version`,
        );
        assert.deepEqual(
          rows.map((r) => r.version),
          [1, 2, 3, 4, 5, 6],
        );
        await nodes[0]?.createUser({ username: 'alice', passwordHash: 'h', scopes: '', now: 1 });
        assert.equal((await nodes[3]?.getUser('alice'))?.username, 'alice');
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
    });

    it('lets one of two nodes win a rotation race, the other seeing reuse', async () => {
      const schema = await freshSchema();
      const a = new PostgresStorage(url, { schema });
      const b = new PostgresStorage(url, { schema });
      try {
        await Promise.all([a.migrate(), b.migrate()]);
        await a.createUser({ username: 'alice', passwordHash: 'h', scopes: '', now: 1 });
        for (let round = 0; round < 10; round++) {
          const jti = randomUUID();
          const session = await a.createSession({
            id: randomUUID(),
            username: 'alice',
            scope: '',
            now: 1,
            expiresAt: 1000,
            refreshJti: jti,
          });
          const results = await Promise.all([
            a.rotateRefreshToken(jti, randomUUID(), 2, 2000),
            b.rotateRefreshToken(jti, randomUUID(), 2, 2000),
          ]);
          assert.deepEqual(results.map((r) => r.outcome).sort(), ['reused', 'rotated']);
          assert.equal((await b.getSession(session.id))?.revokedReason, 'refresh_reuse');
        }
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('stores free text with U+0000 and looks keys with it up as missing', async () => {
      const storage = new PostgresStorage(url, { schema: await freshSchema() });
      try {
        await storage.migrate();
        assert.equal(await storage.getUser('al\0ice'), undefined);
        assert.equal(await storage.getSession('s\0'), undefined);
        assert.equal((await storage.rotateRefreshToken('j\0', 'next', 1, 2)).outcome, 'unknown');
        const message = await storage.appendMessage({
          room: 'lobby',
          username: 'alice',
          text: 'a\0b',
          ts: 1,
        });
        assert.equal(message.text, 'a\uFFFDb');
        await storage.appendAudit({
          ts: 1,
          event: 'login.failure',
          username: 'x\0y',
          detail: { 'k\0': ['\0', '\uD800'] },
        });
        const [event] = await storage.listAudit();
        assert.equal(event?.username, 'x\uFFFDy');
        assert.deepEqual(event?.detail, { 'k\uFFFD': ['\uFFFD', '\uFFFD'] });
      } finally {
        await storage.close();
      }
    });

    it('orders names bytewise, as SQLite does', async () => {
      const storage = new PostgresStorage(url, { schema: await freshSchema() });
      try {
        await storage.migrate();
        for (const username of ['bob', 'Carol', 'alice', 'Dave']) {
          await storage.createUser({ username, passwordHash: 'h', scopes: '', now: 1 });
        }
        assert.deepEqual(
          (await storage.listUsers()).map((u) => u.username),
          ['Carol', 'Dave', 'alice', 'bob'],
        );
        for (const room of ['b', 'B', 'a']) {
          await storage.appendMessage({ room, username: 'alice', text: 'hi', ts: 1 });
        }
        assert.deepEqual(await storage.listRooms(), ['B', 'a', 'b']);
      } finally {
        await storage.close();
      }
    });

    it('never shows a message before an earlier one still being stored: a reader resuming after what it read misses nothing', async () => {
      await withStalledInserts(async ({ storage, stall, storedOrQueued, release }) => {
        const message = (text: string) => ({ room: 'lobby', username: 'alice', text, ts: 1 });
        await storage.appendMessage(message('first'));
        // One node takes the next id and is slow to commit; another stores a message after it.
        const stalled = await stall('lobby');
        const later = await storedOrQueued(stalled.pid, storage.appendMessage(message('later')));

        // What a join reads now, and where a client that read it resumes from.
        const history = await storage.listMessages('lobby', { limit: 50 });
        const replay = await storage.listMessages('lobby', { afterId: 0, limit: 500 });
        assert.deepEqual(replay, history);
        const cursor = history.at(-1)?.id ?? 0;

        await release();
        await Promise.all([stalled.stored, later.done]);
        const resumed = await storage.listMessages('lobby', { afterId: cursor, limit: 500 });
        assert.deepEqual(
          [...history, ...resumed].map((m) => m.text),
          ['first', 'stalled', 'later'],
        );
        assert.deepEqual(
          (await storage.listMessages('lobby', { limit: 50 })).map((m) => m.text),
          ['first', 'stalled', 'later'],
          'ids in the order of the commits',
        );
      });
    });

    it('lets a message take its id only once the room is its: later writers to the room queue without one, other rooms do not wait', async () => {
      await withStalledInserts(async ({ storage, schema, stall, storedOrQueued, release }) => {
        const lastId = async () =>
          Number(
            (
              await admin.query<{ v: string }>(
                `SELECT last_value AS v FROM ${schema}.messages_id_seq`,
              )
            ).rows[0]?.v,
          );
        const message = (room: string, text: string) => ({ room, username: 'alice', text, ts: 1 });
        const stalled = await stall('lobby');
        const taken = await lastId();

        const queued = await storedOrQueued(
          stalled.pid,
          storage.appendMessage(message('lobby', 'queued')),
        );
        assert.equal(queued.stored, false, 'stored before the earlier id committed');
        assert.equal(await lastId(), taken, 'a queued writer holds no id');

        const elsewhere = await storage.appendMessage(message('other', 'not held up'));
        assert.ok(elsewhere.id > taken);

        await release();
        const [first, second] = await Promise.all([stalled.stored, queued.done]);
        assert.ok(first.id < second.id);
      });
    });

    it('can be closed twice', async () => {
      const storage = new PostgresStorage(url, { schema: await freshSchema() });
      await storage.ping();
      await storage.close();
      await storage.close();
    });

    it('is what openStorage gives for postgres:// and postgresql:// URLs', async () => {
      for (const scheme of ['postgres:', 'postgresql:']) {
        const address = new URL(url);
        address.protocol = scheme;
        const storage = openStorage(address.toString());
        try {
          assert.ok(storage instanceof PostgresStorage);
          await storage.ping();
        } finally {
          await storage.close();
        }
      }
    });

    it('serves a wsgate node: password login and refresh rotation, configured by --database alone', async () => {
      const schema = await freshSchema();
      const database = new URL(url);
      database.searchParams.set('options', `-c search_path=${schema}`);
      const server = await startTestServer({ database: database.toString() });
      try {
        const first = await passwordGrant(server);
        const refreshed = await postForm(`${server.url}/token`, {
          grant_type: 'refresh_token',
          refresh_token: first.refresh_token,
        });
        assert.equal(refreshed.status, 200);
        const second = (await refreshed.json()) as TokenResponse;
        assert.notEqual(second.refresh_token, first.refresh_token);

        server.clock.advance(5_000); // past the refresh grace period
        const reuse = await postForm(`${server.url}/token`, {
          grant_type: 'refresh_token',
          refresh_token: first.refresh_token,
        });
        assert.equal(reuse.status, 400);
        assert.equal(((await reuse.json()) as { error: string }).error, 'invalid_grant');
      } finally {
        await server.stop();
      }
      // Everything went to the test's schema: demo users, the session and its rotated token.
      const { rows } = await admin.query<{ users: string; tokens: string; reason: string }>(
        `SELECT (SELECT count(*) FROM ${schema}.users) AS users,
                (SELECT count(*) FROM ${schema}.refresh_tokens) AS tokens,
                (SELECT revoked_reason FROM ${schema}.sessions) AS reason`,
      );
      assert.deepEqual(rows[0], { users: '3', tokens: '2', reason: 'refresh_reuse' });
    });

    it('lets nodes started at once on one database share the signing keys kept in it', async () => {
      const schema = await freshSchema();
      const database = new URL(url);
      database.searchParams.set('options', `-c search_path=${schema}`);
      // Separate data dirs: nothing but the database is shared.
      const [a, b] = await Promise.all([
        startTestServer({ database: database.toString() }),
        startTestServer({ database: database.toString() }),
      ]);
      try {
        assert.deepEqual(a.runtime.keys.jwks, b.runtime.keys.jwks);
        assert.equal(a.runtime.keys.jwks.keys.length, 1);
        const token = (await passwordGrant(a)).access_token;
        const ticket = await fetch(`${b.url}/ws-ticket`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal(ticket.status, 200, 'node B accepts a token signed by node A');
      } finally {
        await a.stop();
        await b.stop();
      }
    });
  });
});
