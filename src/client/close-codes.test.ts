import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CloseCode, decideClose, maxConsecutiveUnauthorized, retryAfterMs } from './close-codes.js';

const fresh = { unauthorized: 0, expired: 0 };

describe('close-code policy', () => {
  for (const code of [4410, 4403, 4400, 1008, 1009]) {
    it(`stops on ${code}`, () => {
      assert.deepEqual(decideClose(code, '', fresh), { reconnect: false });
    });
  }

  for (const code of [1000, 1001, 1005, 1006, 1011, 1013, 4408, 4000, 4999, 3000]) {
    it(`reconnects with backoff and the same credential on ${code}`, () => {
      assert.deepEqual(decideClose(code, 'whatever', fresh), {
        reconnect: true,
        refresh: false,
        delay: 'backoff',
      });
    });
  }

  it('refreshes the token and reconnects at once on 4419', () => {
    assert.deepEqual(decideClose(4419, 'Token has expired', fresh), {
      reconnect: true,
      refresh: true,
      delay: 'now',
    });
  });

  it('backs off on a second 4419 in a row, so an expired getToken cannot spin', () => {
    assert.deepEqual(decideClose(4419, '', { unauthorized: 0, expired: 1 }), {
      reconnect: true,
      refresh: true,
      delay: 'backoff',
    });
  });

  it('refreshes and backs off on 4401, and stops at the third 4401 in a row', () => {
    assert.equal(maxConsecutiveUnauthorized, 3);
    const retry = { reconnect: true, refresh: true, delay: 'backoff' };
    assert.deepEqual(decideClose(4401, '', { unauthorized: 0, expired: 0 }), retry);
    assert.deepEqual(decideClose(4401, '', { unauthorized: 1, expired: 3 }), retry);
    assert.deepEqual(decideClose(4401, '', { unauthorized: 2, expired: 0 }), { reconnect: false });
  });

  it('waits the delay a 4429 reason gives, and backs off when it gives none', () => {
    assert.deepEqual(decideClose(4429, 'Too many requests; retry after 3s', fresh), {
      reconnect: true,
      refresh: false,
      delay: 3_000,
    });
    assert.deepEqual(decideClose(4429, 'Too many requests', fresh), {
      reconnect: true,
      refresh: false,
      delay: 'backoff',
    });
  });

  it('reads "retry after Ns" from a close reason', () => {
    assert.equal(retryAfterMs('Too many requests; retry after 12s'), 12_000);
    assert.equal(retryAfterMs('retry after 1.5 s'), 1_500);
    assert.equal(retryAfterMs('Retry After 0s'), 0);
    assert.equal(retryAfterMs('retry after soon'), undefined);
    assert.equal(retryAfterMs('retry after 3sec'), undefined);
    assert.equal(retryAfterMs(''), undefined);
  });

  it('agrees with the "what a client should do" table in docs/protocol.md', () => {
    const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('## What a client should do'));
    const rows = [...section.matchAll(/^\|\s*(\d{4})\s*\|[^|]*\|\s*([^|]+?)\s*\|$/gm)];
    assert.equal(rows.length, 13);
    for (const [, code, should = ''] of rows) {
      const decision = decideClose(Number(code), 'retry after 1s', fresh);
      const stops = /not retry|stop/.test(should);
      assert.equal(decision.reconnect, !stops, `${code}: ${should}`);
      if (decision.reconnect) {
        assert.equal(decision.refresh, /token/.test(should), `${code}: ${should}`);
      }
      assert.ok(Object.values(CloseCode).includes(Number(code) as never), `${code} is named`);
    }
  });
});
