/* eslint-disable @typescript-eslint/no-floating-promises -- describe/it promises belong to node:test's runner */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { TokenClaims } from '../tokens/claims.js';
import { ticketTtlMs, type TicketStore } from './tickets.js';

/** Two nodes' ticket stores over one shared backend (an in-process store is its own "cluster"). */
export interface TicketStoreNodes {
  readonly a: TicketStore;
  readonly b: TicketStore;
  close(): Promise<void>;
}

/** Claims as a verified access token would carry them; unique per call. */
export function sampleClaims(now: number, extra: Partial<TokenClaims> = {}): TokenClaims {
  const iat = Math.floor(now / 1000);
  return {
    iss: 'http://wsgate.test',
    aud: 'wsgate',
    sub: 'alice',
    iat,
    nbf: iat,
    exp: iat + 900,
    jti: randomUUID(),
    sid: randomUUID(),
    scope: 'chat:read chat:write',
    fresh: true,
    type: 'access',
    ...extra,
  };
}

/**
 * The behaviour every {@link TicketStore} must show, as `node:test` suites. `open` returns two
 * nodes' views of one fresh store each time it is called; the suite closes them.
 */
export function ticketStoreContract(name: string, open: () => Promise<TicketStoreNodes>): void {
  describe(`ticket store contract: ${name}`, () => {
    let nodes: TicketStoreNodes;
    let a: TicketStore;
    let b: TicketStore;

    beforeEach(async () => {
      nodes = await open();
      ({ a, b } = nodes);
    });

    afterEach(async () => {
      await nodes.close();
    });

    it('gives back the bound claims once, and never again on any node', async () => {
      const now = Date.now();
      const claims = sampleClaims(now, { csrf: 'csrf-value' });
      const ticket = await a.issue(claims, now);
      assert.deepEqual(await a.consume(ticket, now + 1), claims);
      assert.equal(await a.consume(ticket, now + 2), undefined);
      assert.equal(await b.consume(ticket, now + 2), undefined);
    });

    it('mints opaque, unguessable, distinct tickets', async () => {
      const now = Date.now();
      const claims = sampleClaims(now);
      const tickets = await Promise.all(Array.from({ length: 20 }, () => a.issue(claims, now)));
      assert.equal(new Set(tickets).size, tickets.length);
      for (const ticket of tickets) {
        assert.match(ticket, /^[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
        assert.ok(!ticket.includes(claims.sub) && !ticket.includes(claims.sid));
      }
    });

    it('refuses unknown tickets', async () => {
      const now = Date.now();
      await a.issue(sampleClaims(now), now);
      for (const ticket of ['', 'nope', 'x'.repeat(43), '*', '\0', 'é'.repeat(100)]) {
        assert.equal(await a.consume(ticket, now), undefined, JSON.stringify(ticket));
      }
    });

    it('lets a ticket minted on one node be used on another', async () => {
      const now = Date.now();
      const claims = sampleClaims(now);
      const ticket = await a.issue(claims, now);
      assert.deepEqual(await b.consume(ticket, now + 1000), claims);
      assert.equal(await a.consume(ticket, now + 1000), undefined);
    });

    it('refuses a ticket from its 30th second on, by the clock it is given', async () => {
      const now = Date.now();
      const live = await a.issue(sampleClaims(now), now);
      const expired = await a.issue(sampleClaims(now), now);
      assert.ok((await b.consume(live, now + ticketTtlMs - 1)) !== undefined);
      assert.equal(await b.consume(expired, now + ticketTtlMs), undefined);
      // Refusing it also used it up: it stays refused even for a clock set back.
      assert.equal(await a.consume(expired, now), undefined);
    });

    it('lets exactly one of two nodes racing for a ticket have it', async () => {
      const now = Date.now();
      for (let round = 0; round < 25; round++) {
        const claims = sampleClaims(now);
        const ticket = await (round % 2 === 0 ? a : b).issue(claims, now);
        const results = await Promise.all([a.consume(ticket, now), b.consume(ticket, now)]);
        const winners = results.filter((r) => r !== undefined);
        assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
        assert.deepEqual(winners[0], claims);
      }
    });
  });
}
