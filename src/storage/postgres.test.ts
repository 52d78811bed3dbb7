import { randomBytes, randomUUID } from 'node:crypto';
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
import {
  postgresReachable,
  postgresUrl as url,
  skipUnlessReachable,
} from '../../test/support/services.js';

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
