import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { storageContract } from './contract.test-suite.js';
import { SqliteStorage } from './sqlite.js';

const root = mkdtempSync(join(tmpdir(), 'wsgate-sqlite-'));
after(() => rmSync(root, { recursive: true, force: true }));

let databases = 0;
/** A fresh database file in its own, not yet existing, directory. */
const freshPath = (): string => join(root, `db-${++databases}`, 'wsgate.db');

storageContract('SQLite file', () => Promise.resolve(new SqliteStorage(freshPath())));

describe('SQLite storage', () => {
  it('creates the missing data directory, readable by its owner only', async () => {
    const path = freshPath();
    const storage = new SqliteStorage(path);
    try {
      await storage.migrate();
      const dir = statSync(join(path, '..'));
      assert.ok(dir.isDirectory());
      assert.equal(dir.mode & 0o777, 0o700);
      assert.ok(statSync(path).isFile());
    } finally {
      await storage.close();
    }
  });

  it('keeps users, sessions and audit across closing and reopening the file', async () => {
    const path = freshPath();
    const first = new SqliteStorage(path);
    await first.migrate();
    await first.createUser({ username: 'alice', passwordHash: 'h', scopes: 'chat:read', now: 1 });
    const session = await first.createSession({
      id: randomUUID(),
      username: 'alice',
      scope: 'chat:read',
      now: 1,
      expiresAt: 1000,
      refreshJti: 'jti-1',
    });
    await first.appendAudit({ ts: 1, event: 'user.add', username: 'alice' });
    await first.close();

    const second = new SqliteStorage(path);
    try {
      await second.migrate();
      assert.equal((await second.getUser('alice'))?.scopes, 'chat:read');
      assert.deepEqual(await second.getSession(session.id), session);
      assert.deepEqual(
        (await second.listAudit()).map((e) => e.event),
        ['user.add'],
      );
      assert.equal((await second.rotateRefreshToken('jti-1', 'jti-2', 2, 2000)).outcome, 'rotated');
    } finally {
      await second.close();
    }
  });

  it('lets one of two connections to the same file win a rotation race, the other seeing reuse', async () => {
    const path = freshPath();
    const a = new SqliteStorage(path);
    const b = new SqliteStorage(path);
    try {
      await Promise.all([a.migrate(), b.migrate()]);
      await a.createUser({ username: 'alice', passwordHash: 'h', scopes: '', now: 1 });
      const session = await a.createSession({
        id: randomUUID(),
        username: 'alice',
        scope: '',
        now: 1,
        expiresAt: 1000,
        refreshJti: 'jti-1',
      });
      const results = await Promise.all([
        a.rotateRefreshToken('jti-1', 'jti-a', 2, 2000),
        b.rotateRefreshToken('jti-1', 'jti-b', 2, 2000),
      ]);
      assert.deepEqual(results.map((r) => r.outcome).sort(), ['reused', 'rotated']);
      assert.equal((await a.getSession(session.id))?.revokedReason, 'refresh_reuse');
      assert.equal((await b.getSession(session.id))?.revokedReason, 'refresh_reuse');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('can be closed twice', async () => {
    const storage = new SqliteStorage(freshPath());
    await storage.close();
    await storage.close();
  });
});
