/**
 * External issuers at the server, where they fail or are many: the `POST /ws-ticket` limit is kept
 * per (issuer, `sub`), and an issuer whose JWKS endpoint fails keeps its cached keys working,
 * refuses unknown keys with the catalogued 401, and recovers once its keys are back — all on the
 * server's manual clock, so the 10-minute refresh and the 30-second cool-down are stepped, never
 * waited for (DESIGN.md §8).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startTestServer, passwordGrant, type TestServer } from './support/server.js';
import { connect, wsUrl } from './support/ws.js';
import { FixtureIssuer, type FixtureKey } from './support/issuer.js';
import { bearer, ticketFor } from './support/external.js';

/** An access token of `idp` for `sub`, valid for an hour of the server's clock. */
function accessToken(
  server: TestServer,
  idp: FixtureIssuer,
  sub: string,
  key?: FixtureKey,
): Promise<string> {
  const now = Math.floor(server.clock() / 1000);
  return idp.sign(
    { sub, aud: 'wsgate', iat: now, exp: now + 3600, scope: 'chat:read' },
    key === undefined ? {} : { key },
  );
}

describe('POST /ws-ticket limits external bearers per (issuer, sub)', () => {
  it('gives the same sub at two issuers, and a local user of that name, a bucket each', async () => {
    const [one, two] = await Promise.all([
      FixtureIssuer.start('/one'),
      FixtureIssuer.start('/two'),
    ]);
    await one.addKey('RS256', 'one-1');
    await two.addKey('ES256', 'two-1');
    const perMinute = 3;
    const server = await startTestServer({
      trust: [one.issuer, two.issuer],
      'tickets-per-minute': String(perMinute),
    });
    try {
      // `test` is also a local (demo) user: four principals share one name.
      const atOne = await accessToken(server, one, 'test');
      const atTwo = await accessToken(server, two, 'test');
      const otherAtOne = await accessToken(server, one, 'someone-else');
      const local = (await passwordGrant(server, 'test', 'test')).access_token;

      for (let i = 0; i < perMinute; i++)
        assert.equal((await ticketFor(server, atOne)).status, 200);
      const limited = await ticketFor(server, atOne);
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get('retry-after')) >= 1, 'Retry-After says when');
      assert.equal(((await limited.json()) as { error: string }).error, 'rate_limited');

      // The others still have their whole minute's worth.
      for (const [who, token] of [
        ['the same sub at the other issuer', atTwo],
        ['another sub at the same issuer', otherAtOne],
        ['the local user of that name', local],
      ] as const) {
        for (let i = 0; i < perMinute; i++) {
          assert.equal((await ticketFor(server, token)).status, 200, `${who}, ticket ${i + 1}`);
        }
      }
      assert.equal((await ticketFor(server, atOne)).status, 429, 'still limited');

      server.clock.advance(60_000);
      assert.equal((await ticketFor(server, atOne)).status, 200, 'a minute later');
    } finally {
      await server.stop();
      await Promise.all([one.close(), two.close()]);
    }
  });
});

/** Ways a JWKS endpoint fails; each answers the request itself. */
const failures: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
  'answers 503': (_req, res) => res.writeHead(503).end(),
  'answers garbage': (_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end('<html>maintenance</html>'),
  'answers a JSON document without keys': (_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":"none"}'),
  'drops the connection': (req) => req.socket.destroy(),
};

describe('an issuer whose JWKS endpoint fails, at the server', () => {
  for (const [failure, answer] of Object.entries(failures)) {
    it(`JWKS ${failure}: a cached key still verifies, an unknown kid gets 401 invalid_token within the cool-down, nothing leaks, and the keys come back`, async () => {
      const idp = await FixtureIssuer.start('/realm');
      const cachedKey = await idp.addKey('RS256', 'cached');
      const server = await startTestServer({ trust: [idp.issuer] });
      try {
        const cached = await accessToken(server, idp, 'alice', cachedKey);
        const first = await bearer(server, '/ws', cached);
        await first.next((m) => m.startsWith('Here your decoded token: '));

        // The provider rotates a key in while its JWKS endpoint fails.
        const newKey = await idp.addKey('RS256', 'rotated-in');
        let failedFetches = 0;
        idp.override = (req, res) => {
          if (!req.url?.endsWith('/jwks')) return false;
          failedFetches += 1;
          answer(req, res);
          return true;
        };
        const goodFetches = idp.jwksFetches;

        // The refresh falls due and fails: the last good keys keep serving (stale, < 1 h).
        server.clock.advance(10 * 60_000);
        const again = await bearer(server, '/ws', await accessToken(server, idp, 'bob', cachedKey));
        await again.next((m) => m.startsWith('Here your decoded token: '));
        assert.equal(failedFetches, 1, 'one fetch for the refresh');
        const ready = await fetch(`${server.url}/readyz`);
        assert.equal(ready.status, 200, 'an issuer failing never makes the node unready');
        const body = (await ready.json()) as { issuers: { state: string; error?: string }[] };
        assert.equal(body.issuers[0]?.state, 'stale');
        assert.equal(typeof body.issuers[0]?.error, 'string');

        // A token under the new key: unknown kid, and the cool-down allows no fetch yet.
        const rotated = await accessToken(server, idp, 'carol', newKey);
        for (let i = 0; i < 5; i++) {
          const refused = await connect(wsUrl(server, '/ws'), {
            headers: { authorization: `Bearer ${rotated}` },
          });
          assert.equal(refused.kind, 'http');
          if (refused.kind !== 'http') return;
          assert.equal(refused.status, 401);
          assert.deepEqual(refused.body, {
            error: 'invalid_token',
            error_description: 'Invalid authentication credentials',
          });
          assert.equal(
            refused.headers['www-authenticate'],
            'Bearer realm="wsgate", error="invalid_token"',
          );
        }
        assert.equal(failedFetches, 1, 'an unknown-kid flood fetches nothing within the cool-down');

        // The endpoint is back, but the cool-down still runs: no fetch, still refused.
        idp.override = undefined;
        server.clock.advance(29_000);
        const early = await connect(wsUrl(server, '/ws'), {
          headers: { authorization: `Bearer ${rotated}` },
        });
        assert.equal(early.kind === 'http' && early.status, 401);
        assert.equal(idp.jwksFetches, goodFetches, 'no fetch before the cool-down ends');

        // Once it ends, the unknown kid triggers one refetch, which brings the new key.
        server.clock.advance(1_000);
        const recovered = await bearer(server, '/ws', rotated);
        await recovered.next((m) => m.startsWith('Here your decoded token: '));
        assert.equal(idp.jwksFetches, goodFetches + 1, 'one refetch');
        const readyAgain = (await (await fetch(`${server.url}/readyz`)).json()) as {
          issuers: { state: string; error?: string }[];
        };
        assert.equal(readyAgain.issuers[0]?.state, 'ready');

        // Through all of it: the first socket stayed up, and no token reached the log.
        first.ws.send('still here');
        await first.next((m) => m === 'You wrote: still here');
        for (const token of [cached, rotated]) {
          assert.ok(!server.logs.text.includes(token), 'no token in the log');
          assert.ok(!server.logs.text.includes(token.split('.')[2] ?? '-'), 'no signature either');
        }
        for (const c of [first, again, recovered]) c.ws.close();
      } finally {
        await server.stop();
        await idp.close();
      }
    });
  }
});
