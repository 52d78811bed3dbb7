import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { catalogue, WsgateError, type ErrorCode } from './errors.js';

const protocolDoc = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');

describe('error catalogue', () => {
  it('is the table in docs/protocol.md, row for row', () => {
    const section =
      /<!-- catalogue:start -->([\s\S]*?)<!-- catalogue:end -->/.exec(protocolDoc)?.[1] ?? '';
    const rows = section
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .map((line) =>
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      );
    const expected = Object.entries(catalogue).map(([code, e]) => [
      `\`${code}\``,
      String(e.status),
      String(e.close),
      e.message,
    ]);
    assert.deepEqual(rows, expected);
  });

  it('uses only close codes the contract defines, and reasons that fit a close frame', () => {
    const allowed = new Set([
      1001, 1008, 1009, 1011, 1013, 1014, 4400, 4401, 4403, 4408, 4410, 4419, 4429,
    ]);
    for (const [code, entry] of Object.entries(catalogue)) {
      assert.ok(allowed.has(entry.close), `${code}: close ${entry.close}`);
      assert.ok(Buffer.byteLength(entry.message) <= 123, `${code}: reason too long`);
    }
    for (const code of [4400, 4401, 4403, 4408, 4410, 4419, 4429]) {
      assert.match(
        protocolDoc,
        new RegExp(`^\\| ${code} +\\|`, 'm'),
        `close code ${code} is not documented`,
      );
    }
  });

  it('gives each error its status, close code and retry delay', () => {
    const err = new WsgateError('rate_limited', undefined, { retryAfter: 7 });
    assert.equal(err.status, 429);
    assert.equal(err.closeCode, 4429);
    assert.equal(err.retryAfter, 7);
    assert.equal(err.message, 'Too many requests');
    const codes: ErrorCode[] = ['token_expired', 'session_revoked', 'not_fresh'];
    assert.deepEqual(
      codes.map((c) => new WsgateError(c).closeCode),
      [4419, 4410, 4403],
    );
  });
});
