/* eslint-disable @typescript-eslint/no-floating-promises -- describe/it promises belong to node:test's runner */
import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { generateSigningKey } from '../tokens/keys.js';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  UserExistsError,
  type RotationResult,
  type Session,
  type Storage,
  type User,
} from './types.js';

/** A fixed point in time; every test counts from here, so nothing sleeps. */
const t0 = Date.UTC(2026, 0, 1);
const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;

type Outcome = RotationResult['outcome'];

function expectOutcome<O extends Outcome>(
  result: RotationResult,
  expected: O,
): Extract<RotationResult, { outcome: O }> {
  assert.equal(
    result.outcome,
    expected,
    `expected rotation outcome ${expected}, got ${JSON.stringify(result)}`,
  );
  return result as Extract<RotationResult, { outcome: O }>;
}

const sorted = (ids: readonly string[]): string[] => [...ids].sort();

/**
 * The behaviour every {@link Storage} must show, as `node:test` suites. `open` returns a fresh,
 * empty store (not yet migrated) each time it is called; the suite migrates and closes it.
 */
export function storageContract(name: string, open: () => Promise<Storage>): void {
  describe(`storage contract: ${name}`, () => {
    let storage: Storage;

    beforeEach(async () => {
      storage = await open();
      await storage.migrate();
    });

    afterEach(async () => {
      await storage.close();
    });

    const addUser = (username: string, now = t0, scopes = 'chat:read chat:write'): Promise<User> =>
      storage.createUser({ username, passwordHash: `hash-of-${username}`, scopes, now });

    /** Creates a session with a fresh id and first refresh token; returns both. */
    const addSession = async (
      username: string,
      options: { now?: number; expiresAt?: number; scope?: string } = {},
    ): Promise<{ session: Session; jti: string }> => {
      const now = options.now ?? t0;
      const jti = randomUUID();
      const session = await storage.createSession({
        id: randomUUID(),
        username,
        scope: options.scope ?? 'chat:read',
        now,
        expiresAt: options.expiresAt ?? now + 14 * day,
        refreshJti: jti,
      });
      return { session, jti };
    };

    describe('migrations', () => {
      it('answers ping once migrated', async () => {
        await storage.ping();
      });

      it('migrating again is harmless and keeps the data', async () => {
        await addUser('alice');
        const { session } = await addSession('alice');
        await storage.migrate();
        await storage.migrate();
        assert.equal((await storage.getUser('alice'))?.username, 'alice');
        assert.deepEqual(await storage.getSession(session.id), session);
      });
    });

    describe('users', () => {
      it('creates a user and reads it back', async () => {
        const created = await addUser('alice', t0 + 5);
        assert.equal(typeof created.id, 'number');
        assert.equal(created.username, 'alice');
        assert.equal(created.passwordHash, 'hash-of-alice');
        assert.equal(created.scopes, 'chat:read chat:write');
        assert.equal(created.disabled, false);
        assert.equal(created.createdAt, t0 + 5);
        assert.equal(created.passwordChangedAt, t0 + 5);
        assert.deepEqual(await storage.getUser('alice'), created);
      });

      it('returns undefined for an unknown user', async () => {
        await addUser('alice');
        assert.equal(await storage.getUser('bob'), undefined);
        assert.equal(await storage.getUser('Alice'), undefined);
      });

      it('gives every user its own id', async () => {
        const a = await addUser('alice');
        const b = await addUser('bob');
        assert.notEqual(a.id, b.id);
      });

      it('lists users ordered by username', async () => {
        assert.deepEqual(await storage.listUsers(), []);
        for (const name of ['carol', 'alice', 'dave', 'bob']) await addUser(name);
        const users = await storage.listUsers();
        assert.deepEqual(
          users.map((u) => u.username),
          ['alice', 'bob', 'carol', 'dave'],
        );
        assert.deepEqual(users[0], await storage.getUser('alice'));
      });

      it('refuses a duplicate username with UserExistsError and keeps the first user', async () => {
        const first = await addUser('alice');
        await assert.rejects(
          storage.createUser({ username: 'alice', passwordHash: 'other', scopes: '', now: t0 + 1 }),
          (err: unknown) => err instanceof UserExistsError && err.message.includes('alice'),
        );
        assert.deepEqual(await storage.getUser('alice'), first);
        assert.equal((await storage.listUsers()).length, 1);
      });

      it('refuses a username that differs from an existing one only in case', async () => {
        const first = await addUser('alice');
        for (const username of ['Alice', 'ALICE']) {
          await assert.rejects(
            storage.createUser({ username, passwordHash: 'other', scopes: '', now: t0 + 1 }),
            UserExistsError,
          );
        }
        assert.deepEqual(await storage.listUsers(), [first]);
      });

      it('sets a password and moves passwordChangedAt, leaving createdAt alone', async () => {
        await addUser('alice', t0);
        assert.equal(await storage.setPassword('alice', 'new-hash', t0 + hour), true);
        const user = await storage.getUser('alice');
        assert.equal(user?.passwordHash, 'new-hash');
        assert.equal(user?.passwordChangedAt, t0 + hour);
        assert.equal(user?.createdAt, t0);
      });

      it('returns false when setting the password of an unknown user', async () => {
        await addUser('alice');
        assert.equal(await storage.setPassword('bob', 'new-hash', t0 + hour), false);
        assert.equal(await storage.getUser('bob'), undefined);
        assert.equal((await storage.getUser('alice'))?.passwordHash, 'hash-of-alice');
      });

      it('disables and enables a user without touching the password', async () => {
        await addUser('alice', t0);
        assert.equal(await storage.setDisabled('alice', true), true);
        let user = await storage.getUser('alice');
        assert.equal(user?.disabled, true);
        assert.equal(user?.passwordHash, 'hash-of-alice');
        assert.equal(user?.passwordChangedAt, t0);
        assert.equal((await storage.listUsers())[0]?.disabled, true);
        assert.equal(await storage.setDisabled('alice', false), true);
        user = await storage.getUser('alice');
        assert.equal(user?.disabled, false);
      });

      it('returns false when disabling an unknown user', async () => {
        assert.equal(await storage.setDisabled('nobody', true), false);
        assert.equal(await storage.setDisabled('nobody', false), false);
      });
    });

    describe('sessions', () => {
      beforeEach(async () => {
        await addUser('alice');
        await addUser('bob');
      });

      it('creates a session and reads it back', async () => {
        const id = randomUUID();
        const session = await storage.createSession({
          id,
          username: 'alice',
          scope: 'chat:read chat:write',
          now: t0,
          expiresAt: t0 + day,
          refreshJti: randomUUID(),
        });
        assert.deepEqual(session, {
          id,
          username: 'alice',
          scope: 'chat:read chat:write',
          createdAt: t0,
          expiresAt: t0 + day,
          revokedAt: null,
          revokedReason: null,
        });
        assert.deepEqual(await storage.getSession(id), session);
      });

      it('returns undefined for an unknown session', async () => {
        await addSession('alice');
        assert.equal(await storage.getSession(randomUUID()), undefined);
      });

      it('lists every session, or one user’s', async () => {
        const a1 = await addSession('alice', { now: t0 });
        const a2 = await addSession('alice', { now: t0 + 1 });
        const b1 = await addSession('bob', { now: t0 + 2 });
        assert.deepEqual(
          sorted((await storage.listSessions()).map((s) => s.id)),
          sorted([a1.session.id, a2.session.id, b1.session.id]),
        );
        assert.deepEqual(
          sorted((await storage.listSessions({ username: 'alice' })).map((s) => s.id)),
          sorted([a1.session.id, a2.session.id]),
        );
        assert.deepEqual(await storage.listSessions({ username: 'bob' }), [b1.session]);
        assert.deepEqual(await storage.listSessions({ username: 'carol' }), []);
      });

      it('leaves revoked and expired sessions out when filtering by activeAt', async () => {
        const live = await addSession('alice', { now: t0, expiresAt: t0 + day });
        const revoked = await addSession('alice', { now: t0, expiresAt: t0 + day });
        const expired = await addSession('alice', { now: t0, expiresAt: t0 + hour });
        const endsNow = await addSession('alice', { now: t0, expiresAt: t0 + 2 * hour });
        const bobs = await addSession('bob', { now: t0, expiresAt: t0 + day });
        assert.equal((await storage.listSessions({ activeAt: t0 })).length, 5);
        assert.equal(await storage.revokeSession(revoked.session.id, 'logout', t0 + minute), true);

        const now = t0 + 2 * hour;
        assert.deepEqual(
          sorted((await storage.listSessions({ activeAt: now })).map((s) => s.id)),
          sorted([live.session.id, bobs.session.id]),
        );
        assert.deepEqual(
          (await storage.listSessions({ username: 'alice', activeAt: now })).map((s) => s.id),
          [live.session.id],
        );
        // Without activeAt, nothing is filtered out.
        assert.deepEqual(
          sorted((await storage.listSessions({ username: 'alice' })).map((s) => s.id)),
          sorted([live.session.id, revoked.session.id, expired.session.id, endsNow.session.id]),
        );
      });

      it('revokes a session once: true, then false', async () => {
        const { session } = await addSession('alice');
        assert.equal(await storage.revokeSession(session.id, 'logout', t0 + hour), true);
        assert.equal(await storage.revokeSession(session.id, 'admin', t0 + 2 * hour), false);
        const stored = await storage.getSession(session.id);
        assert.equal(stored?.revokedAt, t0 + hour);
        assert.equal(stored?.revokedReason, 'logout');
      });

      it('returns false when revoking an unknown session', async () => {
        assert.equal(await storage.revokeSession(randomUUID(), 'admin', t0), false);
      });

      it('stores every revocation reason', async () => {
        for (const reason of [
          'logout',
          'refresh_reuse',
          'password_change',
          'user_disabled',
          'admin',
        ] as const) {
          const { session } = await addSession('alice');
          assert.equal(await storage.revokeSession(session.id, reason, t0 + 1), true);
          assert.equal((await storage.getSession(session.id))?.revokedReason, reason);
        }
      });

      it('revokes a user’s live sessions and returns only their ids', async () => {
        const live1 = await addSession('alice', { expiresAt: t0 + day });
        const live2 = await addSession('alice', { expiresAt: t0 + 2 * day });
        const loggedOut = await addSession('alice', { expiresAt: t0 + day });
        await addSession('alice', { expiresAt: t0 + hour }); // expired by `now`, so left alone
        const bobs = await addSession('bob', { expiresAt: t0 + day });
        await storage.revokeSession(loggedOut.session.id, 'logout', t0 + minute);

        const now = t0 + 2 * hour;
        const ids = await storage.revokeUserSessions('alice', 'password_change', now);
        assert.deepEqual(sorted(ids), sorted([live1.session.id, live2.session.id]));

        for (const { session } of [live1, live2]) {
          const stored = await storage.getSession(session.id);
          assert.equal(stored?.revokedAt, now);
          assert.equal(stored?.revokedReason, 'password_change');
        }
        const first = await storage.getSession(loggedOut.session.id);
        assert.equal(first?.revokedAt, t0 + minute, 'an earlier revocation is kept');
        assert.equal(first?.revokedReason, 'logout');
        assert.equal((await storage.getSession(bobs.session.id))?.revokedAt, null);

        assert.deepEqual(await storage.revokeUserSessions('alice', 'user_disabled', now + 1), []);
        assert.deepEqual(await storage.revokeUserSessions('nobody', 'admin', now), []);
      });

      it('lists the ids of revoked sessions that have not expired', async () => {
        const revokedLive = await addSession('alice', { expiresAt: t0 + day });
        const revokedExpired = await addSession('alice', { expiresAt: t0 + hour });
        const notRevoked = await addSession('bob', { expiresAt: t0 + day });
        assert.deepEqual(await storage.listRevokedSessionIds(t0), []);
        await storage.revokeSession(revokedLive.session.id, 'logout', t0 + 1);
        await storage.revokeSession(revokedExpired.session.id, 'admin', t0 + 1);

        assert.deepEqual(
          sorted(await storage.listRevokedSessionIds(t0 + minute)),
          sorted([revokedLive.session.id, revokedExpired.session.id]),
        );
        const later = await storage.listRevokedSessionIds(t0 + 2 * hour);
        assert.deepEqual(later, [revokedLive.session.id]);
        assert.ok(!later.includes(notRevoked.session.id));
        assert.deepEqual(await storage.listRevokedSessionIds(t0 + 2 * day), []);
      });
    });

    describe('refresh token rotation', () => {
      beforeEach(async () => {
        await addUser('alice');
      });

      it('rotates a refresh token and slides the session expiry to the new token’s', async () => {
        const { session, jti } = await addSession('alice', { now: t0, expiresAt: t0 + day });
        const next = randomUUID();
        const result = expectOutcome(
          await storage.rotateRefreshToken(jti, next, t0 + hour, t0 + hour + day),
          'rotated',
        );
        assert.equal(result.session.id, session.id);
        assert.equal(result.session.username, 'alice');
        assert.equal(result.session.scope, session.scope);
        assert.equal(result.session.createdAt, t0);
        assert.equal(result.session.expiresAt, t0 + hour + day);
        assert.equal(result.session.revokedAt, null);
        assert.deepEqual(await storage.getSession(session.id), result.session);

        // The new token rotates in turn.
        const third = expectOutcome(
          await storage.rotateRefreshToken(next, randomUUID(), t0 + 2 * hour, t0 + 2 * hour + day),
          'rotated',
        );
        assert.equal(third.session.expiresAt, t0 + 2 * hour + day);
      });

      it('treats a second use of a rotated token as reuse and revokes the whole family', async () => {
        const { session, jti } = await addSession('alice', { now: t0, expiresAt: t0 + day });
        const next = randomUUID();
        expectOutcome(
          await storage.rotateRefreshToken(jti, next, t0 + minute, t0 + day + minute),
          'rotated',
        );

        const attempt = randomUUID();
        const reused = expectOutcome(
          await storage.rotateRefreshToken(jti, attempt, t0 + 2 * minute, t0 + day + 2 * minute),
          'reused',
        );
        assert.equal(reused.sessionId, session.id);
        assert.equal(reused.username, 'alice');

        const stored = await storage.getSession(session.id);
        assert.equal(stored?.revokedAt, t0 + 2 * minute);
        assert.equal(stored?.revokedReason, 'refresh_reuse');
        assert.deepEqual(await storage.listSessions({ activeAt: t0 + 3 * minute }), []);
        assert.deepEqual(await storage.listRevokedSessionIds(t0 + 3 * minute), [session.id]);

        // The legitimate holder's newer token is dead too, and the attacker's attempt minted nothing.
        assert.equal(
          (await storage.rotateRefreshToken(next, randomUUID(), t0 + 3 * minute, t0 + day)).outcome,
          'revoked',
        );
        assert.equal(
          (await storage.rotateRefreshToken(attempt, randomUUID(), t0 + 3 * minute, t0 + day))
            .outcome,
          'unknown',
        );
      });

      it('within the grace period answers grace with the replacing token, and reuse after it', async () => {
        const { session, jti } = await addSession('alice', { now: t0, expiresAt: t0 + day });
        const next = randomUUID();
        const grace = 5000;
        expectOutcome(await storage.rotateRefreshToken(jti, next, t0, t0 + day, grace), 'rotated');

        const again = expectOutcome(
          await storage.rotateRefreshToken(jti, randomUUID(), t0 + grace - 1, t0 + day, grace),
          'grace',
        );
        assert.equal(again.sessionId, session.id);
        assert.equal(again.replacedBy, next);
        assert.equal((await storage.getSession(session.id))?.revokedAt, null);

        expectOutcome(
          await storage.rotateRefreshToken(jti, randomUUID(), t0 + grace, t0 + day, grace),
          'reused',
        );
        assert.equal((await storage.getSession(session.id))?.revokedReason, 'refresh_reuse');
      });

      it('answers revoked for the current token of a revoked session', async () => {
        const { session, jti } = await addSession('alice');
        await storage.revokeSession(session.id, 'logout', t0 + minute);
        assert.equal(
          (await storage.rotateRefreshToken(jti, randomUUID(), t0 + 2 * minute, t0 + day)).outcome,
          'revoked',
        );
        const stored = await storage.getSession(session.id);
        assert.equal(stored?.revokedReason, 'logout');
        assert.equal(stored?.expiresAt, session.expiresAt);
      });

      it('answers unknown for a token it never issued', async () => {
        await addSession('alice');
        assert.equal(
          (await storage.rotateRefreshToken(randomUUID(), randomUUID(), t0, t0 + day)).outcome,
          'unknown',
        );
      });

      it('answers expired once the session has expired, and does not extend it', async () => {
        const { session, jti } = await addSession('alice', { now: t0, expiresAt: t0 + hour });
        assert.equal(
          (await storage.rotateRefreshToken(jti, randomUUID(), t0 + 2 * hour, t0 + 2 * hour + day))
            .outcome,
          'expired',
        );
        // At the very moment of expiry the session is already over.
        assert.equal(
          (await storage.rotateRefreshToken(jti, randomUUID(), t0 + hour, t0 + hour + day)).outcome,
          'expired',
        );
        const stored = await storage.getSession(session.id);
        assert.equal(stored?.expiresAt, t0 + hour);
        assert.equal(stored?.revokedAt, null);
      });

      it('lets exactly one of two concurrent rotations of the same token win', async () => {
        const { session, jti } = await addSession('alice');
        const results = await Promise.all([
          storage.rotateRefreshToken(jti, randomUUID(), t0 + minute, t0 + day),
          storage.rotateRefreshToken(jti, randomUUID(), t0 + minute, t0 + day),
        ]);
        assert.deepEqual(results.map((r) => r.outcome).sort(), ['reused', 'rotated']);
        const stored = await storage.getSession(session.id);
        assert.equal(stored?.revokedReason, 'refresh_reuse');
      });

      it('keeps token families apart', async () => {
        const a = await addSession('alice');
        const b = await addSession('alice');
        expectOutcome(
          await storage.rotateRefreshToken(a.jti, randomUUID(), t0 + 1, t0 + day),
          'rotated',
        );
        expectOutcome(
          await storage.rotateRefreshToken(a.jti, randomUUID(), t0 + 2, t0 + day),
          'reused',
        );
        assert.equal((await storage.getSession(b.session.id))?.revokedAt, null);
        const other = expectOutcome(
          await storage.rotateRefreshToken(b.jti, randomUUID(), t0 + 3, t0 + 2 * day),
          'rotated',
        );
        assert.equal(other.session.id, b.session.id);
      });
    });

    describe('audit', () => {
      it('appends events and lists them oldest first, detail round-tripping as an object', async () => {
        const detail = {
          reason: 'bad_password',
          attempts: 3,
          nested: { ok: false, list: ['a', 1, null] },
        };
        await storage.appendAudit({
          ts: t0,
          event: 'login.failure',
          username: 'alice',
          ip: '192.0.2.7',
          detail,
        });
        await storage.appendAudit({
          ts: t0 + 1,
          event: 'token.issue',
          username: 'alice',
          sessionId: 'session-1',
        });
        await storage.appendAudit({ ts: t0 + 2, event: 'server.start' });

        const events = await storage.listAudit();
        assert.equal(events.length, 3);
        const [first, second, third] = events;
        assert.ok(first && second && third);
        assert.ok(first.id < second.id && second.id < third.id, 'ids increase');
        assert.equal(first.ts, t0);
        assert.equal(first.event, 'login.failure');
        assert.equal(first.username, 'alice');
        assert.equal(first.ip, '192.0.2.7');
        assert.equal(first.sessionId ?? null, null);
        assert.deepEqual(first.detail, detail);
        assert.equal(second.sessionId, 'session-1');
        assert.equal(second.detail, undefined);
        assert.equal(third.event, 'server.start');
        assert.equal(third.username ?? null, null);
        assert.equal(third.ip ?? null, null);
      });

      it('filters by since (inclusive) and caps by limit', async () => {
        for (let i = 0; i < 5; i++) {
          await storage.appendAudit({ ts: t0 + i * minute, event: `event.${i}`, detail: { i } });
        }
        assert.deepEqual(await storage.listAudit({ since: t0 + 5 * minute }), []);
        assert.deepEqual(
          (await storage.listAudit({ since: t0 + 2 * minute })).map((e) => e.event),
          ['event.2', 'event.3', 'event.4'],
        );
        assert.deepEqual(
          (await storage.listAudit({ limit: 2 })).map((e) => e.event),
          ['event.0', 'event.1'],
        );
        const page = await storage.listAudit({ since: t0 + minute, limit: 2 });
        assert.deepEqual(
          page.map((e) => e.event),
          ['event.1', 'event.2'],
        );
        assert.deepEqual(
          page.map((e) => e.detail),
          [{ i: 1 }, { i: 2 }],
        );
      });

      it('starts empty', async () => {
        assert.deepEqual(await storage.listAudit(), []);
      });
    });

    describe('signing keys', () => {
      it('stores the first candidate only, so nodes starting at once agree on one key', async () => {
        const first = await generateSigningKey(1_000);
        const second = await generateSigningKey(2_000);
        assert.deepEqual(await storage.ensureSigningKeys(first), [first]);
        assert.deepEqual(await storage.ensureSigningKeys(second), [first]);
      });

      it('agrees on one key when candidates race', async () => {
        const candidates = await Promise.all([1, 2, 3, 4].map((n) => generateSigningKey(n)));
        const answers = await Promise.all(candidates.map((c) => storage.ensureSigningKeys(c)));
        const kids = new Set(answers.map((keys) => keys.map((k) => k.kid).join()));
        assert.equal(kids.size, 1);
        assert.equal(answers[0]?.length, 1);
      });
    });

    describe('external revocations', () => {
      const issuer = 'https://idp.example/realms/a';

      it('remembers a revoked external session or subject until it expires', async () => {
        await storage.revokeExternal({
          issuer,
          kind: 'sid',
          value: 's1',
          revokedAt: t0,
          expiresAt: t0 + day,
        });
        await storage.revokeExternal({
          issuer,
          kind: 'sub',
          value: 'alice',
          revokedAt: t0 + minute,
          expiresAt: t0 + hour,
        });
        assert.deepEqual(
          (await storage.listExternalRevocations(0, t0 + minute)).map((r) => [
            r.kind,
            r.value,
            r.revokedAt,
          ]),
          [
            ['sid', 's1', t0],
            ['sub', 'alice', t0 + minute],
          ],
        );
        assert.deepEqual(
          (await storage.listExternalRevocations(t0 + 1, t0 + minute)).map((r) => r.value),
          ['alice'],
          'only those at or after since',
        );
        assert.deepEqual(
          (await storage.listExternalRevocations(0, t0 + hour)).map((r) => r.value),
          ['s1'],
          'an expired revocation is gone',
        );
      });

      it('keeps the later time when the same revocation is recorded again', async () => {
        const r = {
          issuer,
          kind: 'sub' as const,
          value: 'bob',
          revokedAt: t0 + hour,
          expiresAt: t0 + day,
        };
        await storage.revokeExternal(r);
        await storage.revokeExternal({ ...r, revokedAt: t0, expiresAt: t0 + hour });
        assert.deepEqual(await storage.listExternalRevocations(0, t0), [r]);
        await storage.revokeExternal({ ...r, revokedAt: t0 + 2 * hour, expiresAt: t0 + 2 * day });
        assert.deepEqual(await storage.listExternalRevocations(0, t0), [
          { ...r, revokedAt: t0 + 2 * hour, expiresAt: t0 + 2 * day },
        ]);
      });

      it('keeps issuers apart', async () => {
        await storage.revokeExternal({
          issuer,
          kind: 'sid',
          value: 'same',
          revokedAt: t0,
          expiresAt: t0 + day,
        });
        await storage.revokeExternal({
          issuer: 'https://other.example',
          kind: 'sid',
          value: 'same',
          revokedAt: t0,
          expiresAt: t0 + day,
        });
        assert.equal((await storage.listExternalRevocations(0, t0)).length, 2);
      });

      it('records a logout token once: a second (issuer, jti) is a replay until it expires', async () => {
        assert.equal(await storage.recordLogoutToken(issuer, 'j1', t0 + minute, t0), true);
        assert.equal(await storage.recordLogoutToken(issuer, 'j1', t0 + minute, t0 + 1), false);
        assert.equal(
          await storage.recordLogoutToken('https://other.example', 'j1', t0 + minute, t0),
          true,
        );
        assert.equal(
          await storage.recordLogoutToken(issuer, 'j1', t0 + 2 * minute, t0 + minute),
          true,
          'expired records are dropped',
        );
      });

      it('lets exactly one of several concurrent identical logout tokens through', async () => {
        const answers = await Promise.all(
          [1, 2, 3, 4, 5].map(() => storage.recordLogoutToken(issuer, 'race', t0 + minute, t0)),
        );
        assert.equal(answers.filter(Boolean).length, 1);
      });
    });

    describe('deployment', () => {
      it('has none until the first start stores one, then keeps the first', async () => {
        assert.equal(await storage.getDeployment(), undefined);
        const first = { issuer: 'https://chat.example', audience: 'wsgate' };
        assert.deepEqual(await storage.ensureDeployment(first), first);
        assert.deepEqual(
          await storage.ensureDeployment({ issuer: 'http://127.0.0.1:8000', audience: 'other' }),
          first,
        );
        assert.deepEqual(await storage.getDeployment(), first);
      });

      it('agrees on one issuer when first starts race', async () => {
        const answers = await Promise.all(
          [1, 2, 3, 4].map((n) =>
            storage.ensureDeployment({
              issuer: `http://127.0.0.1:${8000 + n}`,
              audience: 'wsgate',
            }),
          ),
        );
        assert.equal(new Set(answers.map((d) => d.issuer)).size, 1);
      });
    });
  });
}
