import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { WsgateClient } from '../src/client/index.js';
import { eventWaiter } from './support/client-events.js';
import { postForm, postJson, startTestServer, type TestServer } from './support/server.js';

/**
 * Short-lived tokens and the SDK's in-band re-authentication: the server warns at
 * min(60 s, half the lifetime) before `exp`, once per token, and the client answers each
 * warning with one token request — not the loop a fixed 60 s warning made with 20 s tokens.
 */

const next = eventWaiter(5_000);

describe('in-band re-authentication with tokens shorter than the warning', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(
      { 'access-ttl': '20' },
      { gateLimits: { handshakeBurst: 1000 } },
    );
  });
  after(() => server.stop());

  /** Sets the server's clock and runs the expiry deadlines that are due. */
  function at(ms: number): void {
    server.clock.set(ms);
    server.gate.checkExpiry();
  }

  it('warns each 20 s token 10 s before exp, once, and the SDK asks for one token per warning', async () => {
    const requests: string[] = [];
    let refreshToken: string | undefined;
    // The docs' getToken: log in once, then renew with the (rotated) refresh token.
    const getToken = async (): Promise<string> => {
      const res = refreshToken
        ? await postJson(`${server.url}/refresh`, { refresh_token: refreshToken })
        : await postForm(`${server.url}/token`, { username: 'johndoe', password: 'secret' });
      requests.push(refreshToken ? 'refresh' : 'login');
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as { access_token: string; refresh_token: string };
      refreshToken = body.refresh_token;
      return body.access_token;
    };
    const client = new WsgateClient({
      url: `${server.url.replace(/^http/, 'ws')}/chat`,
      WebSocket: WebSocket,
      getToken,
    });
    const warnings: number[] = [];
    client.on('expiring', ({ in: seconds }) => warnings.push(seconds));
    try {
      const welcome = next(client, 'welcome');
      client.connect();
      await welcome;
      let issuedAt = server.clock();

      for (let round = 1; round <= 4; round++) {
        // Before half the lifetime: no warning (a ping round trip flushes any frame sent before).
        at(issuedAt + 9_000);
        await client.ping();
        assert.equal(warnings.length, round - 1, `round ${round}: no early warning`);

        const reauthenticated = next(client, 'reauthenticated');
        at(issuedAt + 10_000);
        await reauthenticated;
        assert.deepEqual(warnings.at(-1), 10, 'warned half the 20 s lifetime before exp');
        issuedAt = server.clock();
        await client.ping();
        assert.equal(warnings.length, round, `round ${round}: one warning per token`);
        assert.equal(requests.length, round + 1, `round ${round}: one token request per warning`);
      }
      assert.deepEqual(requests, ['login', 'refresh', 'refresh', 'refresh', 'refresh']);
      assert.equal(client.state, 'connected');
    } finally {
      client.close();
    }
  });

  it('asks for a token at most once per warned token, even when getToken returns the same one', async () => {
    let calls = 0;
    const res = await postForm(`${server.url}/token`, { username: 'janedoe', password: 'secret2' });
    const { access_token: token } = (await res.json()) as { access_token: string };
    const client = new WsgateClient({
      url: `${server.url.replace(/^http/, 'ws')}/chat`,
      WebSocket: WebSocket,
      getToken: () => {
        calls++;
        return Promise.resolve(token);
      },
    });
    try {
      const welcome = next(client, 'welcome');
      client.connect();
      await welcome;
      const expiring = next(client, 'expiring');
      at(server.clock() + 10_000);
      await expiring;
      // Round trips during which a client that re-sent the same token would loop.
      for (let i = 0; i < 3; i++) await client.ping();
      assert.equal(calls, 2, 'one call to connect, one for the warning');
      const closed = next(client, 'closed');
      at(server.clock() + 10_001);
      assert.equal((await closed).code, 4419);
    } finally {
      client.close();
    }
  });
});
