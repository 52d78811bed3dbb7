import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  manualClock,
  passwordGrant,
  postForm,
  startTestServer,
  type TestServer,
} from './support/server.js';
import { connect, wsUrl, type Outcome } from './support/ws.js';
import {
  closeRedis,
  redisConnection,
  redisReachable,
  redisUrl,
  requireReachable,
  skipUnlessReachable,
} from './support/services.js';

// Outside CI a missing server skips the Redis tests; in CI they must run, and fail at once.
const reachable = await redisReachable();
const skip = await skipUnlessReachable('Redis', redisUrl, reachable);

/** Closes an opened socket; refusals need nothing. */
function done(outcome: Outcome): void {
  if (outcome.kind === 'open') outcome.socket.close();
}

describe('cluster stores: tickets and login limits shared through Redis', { skip }, () => {
  /** This run's keys and channels; every key is deleted in `after`. */
  const prefix = `wsgate-test-${randomBytes(6).toString('hex')}:`;
  let admin: Redis;
  let a: TestServer;
  let b: TestServer;
  let dataDir: string;
  // One clock for both nodes, as synchronised hosts would have.
  const clock = manualClock(Date.now());

  before(async () => {
    requireReachable('Redis', redisUrl, reachable);
    admin = redisConnection();
    dataDir = mkdtempSync(join(tmpdir(), 'wsgate-cluster-stores-'));
    // Nothing but --redis: both nodes then use Redis for the bus, the tickets and the limiter.
    const options = {
      redis: redisUrl,
      'redis-prefix': prefix,
      'login-failures-per-address': '8',
    };
    [a, b] = await Promise.all([
      startTestServer(options, { dataDir, clock }),
      startTestServer(options, { dataDir, clock }),
    ]);
  });

  after(async () => {
    if (!reachable) return;
    await a?.stop();
    await b?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await closeRedis(admin);
  });

  async function ticketFrom(server: TestServer, accessToken: string): Promise<string> {
    const res = await fetch(`${server.url}/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}` },
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { ticket: string }).ticket;
  }

  const withTicket = (server: TestServer, ticket: string) =>
    connect(`${wsUrl(server, '/secured-ws')}?token=${ticket}`, { messages: 1, timeoutMs: 2000 });

  it('opens a socket on node B with a ticket minted on node A, once, and never again on either', async () => {
    const token = (await passwordGrant(a)).access_token;
    const ticket = await ticketFrom(a, token);
    const keys = await admin.keys(`${prefix}*`);
    assert.ok(keys.length > 0, 'the ticket is in Redis');
    assert.ok(keys.every((k) => !k.includes(ticket)));

    const first = await withTicket(b, ticket);
    assert.equal(first.kind, 'open', JSON.stringify(first.kind === 'http' ? first.body : ''));
    assert.deepEqual(first.kind === 'open' && first.messages, ['Welcome johndoe!']);
    done(first);
    for (const server of [b, a]) {
      const again = await withTicket(server, ticket);
      assert.equal(again.kind === 'http' && again.status, 401);
      done(again);
    }
  });

  it('lets exactly one of two nodes racing for a ticket open a socket', async () => {
    const token = (await passwordGrant(b)).access_token;
    for (let round = 0; round < 5; round++) {
      const ticket = await ticketFrom(round % 2 ? a : b, token);
      const outcomes = await Promise.all([withTicket(a, ticket), withTicket(b, ticket)]);
      assert.deepEqual(outcomes.map((o) => (o.kind === 'open' ? 'open' : o.status)).sort(), [
        401,
        'open',
      ]);
      outcomes.forEach(done);
    }
  });

  it('refuses on node B a ticket from node A that is 30 s old', async () => {
    const token = (await passwordGrant(a)).access_token;
    const ticket = await ticketFrom(a, token);
    clock.advance(30_000);
    const late = await withTicket(b, ticket);
    assert.equal(late.kind === 'http' && late.status, 401);
    done(late);
  });

  it('answers 429 on node B after 5 failed logins on node A, even for the right password', async () => {
    const attempt = (server: TestServer, password: string) =>
      postForm(`${server.url}/token`, { username: 'janedoe', password });
    for (let i = 0; i < 5; i++) assert.equal((await attempt(a, 'wrong')).status, 400);
    const blocked = await attempt(b, 'secret2');
    assert.equal(blocked.status, 429);
    const retryAfter = Number(blocked.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal((await attempt(a, 'secret2')).status, 429);

    // Redis holds the count under a hash: no username or address in any key name.
    const keys = await admin.keys(`${prefix}*`);
    assert.ok(keys.some((k) => k.startsWith(`${prefix}login:`)));
    for (const key of keys) {
      assert.ok(!key.includes('janedoe') && !key.includes('127.0.0.1'), key);
    }

    // Once the window has passed, either node lets the right password in.
    clock.advance(60_000);
    assert.equal((await attempt(b, 'secret2')).status, 200);
  });

  it('answers 429 on either node once an address failed 8 times across both, whatever the usernames', async () => {
    clock.advance(60_000); // forget the failures of earlier tests
    for (let i = 0; i < 8; i++) {
      const node = i % 2 ? a : b;
      const res = await postForm(`${node.url}/token`, { username: `spray${i}`, password: 'x' });
      assert.equal(res.status, 400);
    }
    for (const node of [a, b]) {
      const res = await postForm(`${node.url}/token`, { username: 'johndoe', password: 'secret' });
      assert.equal(res.status, 429);
    }
    const keys = await admin.keys(`${prefix}login-address:*`);
    assert.equal(keys.length, 1);
    assert.ok(!keys[0]!.includes('127.0.0.1'));
    clock.advance(60_000);
    assert.equal((await passwordGrant(b)).token_type, 'bearer');
  });

  it('gives a refresh repeated on node B within the grace period the pair node A issued', async () => {
    const login = await passwordGrant(a);
    const refresh = (node: TestServer) =>
      postForm(`${node.url}/token`, {
        grant_type: 'refresh_token',
        refresh_token: login.refresh_token,
      });
    const first = (await (await refresh(a)).json()) as { refresh_token: string };
    const again = await refresh(b);
    assert.equal(again.status, 200);
    assert.equal(
      ((await again.json()) as { refresh_token: string }).refresh_token,
      first.refresh_token,
    );
  });
});
