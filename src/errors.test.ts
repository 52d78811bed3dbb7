import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  catalogue,
  closeFrame,
  httpAnswer,
  truncateReason,
  WsgateError,
  type ErrorCode,
} from './errors.js';
import { chatErrorCodes } from './chat/protocol.js';

const doc = (name: string) => readFileSync(new URL(`../docs/${name}`, import.meta.url), 'utf8');
const protocolDoc = doc('protocol.md');

/** The cells of the table rows of `text` whose first cell matches `first`. */
function rows(text: string, first: RegExp): string[][] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    )
    .filter((cells) => first.test(cells[0] ?? ''));
}

const code = (cell: string | undefined) => /^`([a-z_]+)`$/.exec(cell ?? '')?.[1];

describe('error catalogue', () => {
  it('is the table in docs/protocol.md, row for row', () => {
    const section =
      /<!-- catalogue:start -->([\s\S]*?)<!-- catalogue:end -->/.exec(protocolDoc)?.[1] ?? '';
    const table = rows(section, /^`/);
    const expected = Object.entries(catalogue).map(([code, e]) => [
      `\`${code}\``,
      String(e.status),
      String(e.close),
      e.message,
    ]);
    assert.deepEqual(table, expected);
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

  it('lists in docs/chat.md exactly the codes an error frame carries, all from the catalogue', () => {
    const documented = rows(doc('chat.md'), /^`[a-z_]+`$/).map(([cell]) => code(cell));
    assert.deepEqual(documented, [...chatErrorCodes]);
    for (const c of chatErrorCodes) assert.ok(c in catalogue, `${c} is not in the catalogue`);
  });

  it("answers over HTTP in docs/http-api.md with the catalogue's codes and statuses", () => {
    // OAuth's own codes (RFC 6749 §5.2) that no other endpoint uses.
    const oauthOnly = new Set(['unsupported_grant_type', 'temporarily_unavailable']);
    // Framework limits answered as `invalid_request` with their own status.
    const frameworkStatuses = new Set(['413', '415']);
    const table = rows(doc('http-api.md'), /^\d{3}$/).filter(([, cell]) => code(cell));
    assert.ok(table.length > 20, 'the error tables of docs/http-api.md were found');
    for (const [status, cell] of table) {
      const c = code(cell)!;
      if (oauthOnly.has(c)) continue;
      assert.ok(c in catalogue, `docs/http-api.md: ${c} is not in the catalogue`);
      const entry = catalogue[c as ErrorCode];
      if (String(entry.status) === status) continue;
      assert.ok(
        c === 'invalid_request' && frameworkStatuses.has(status!),
        `docs/http-api.md: ${c} answered ${status}, the catalogue says ${entry.status}`,
      );
    }
    assert.match(doc('http-api.md'), new RegExp(catalogue.invalid_grant.message));
  });

  it('renders one HTTP answer: challenge on 401 and insufficient_scope, Retry-After on a delay', () => {
    assert.deepEqual(httpAnswer(new WsgateError('credential_missing')), {
      status: 401,
      headers: { 'www-authenticate': 'Bearer realm="wsgate"' },
      body: { error: 'credential_missing', error_description: 'Not authenticated' },
    });
    assert.equal(
      httpAnswer(new WsgateError('token_expired')).headers['www-authenticate'],
      'Bearer realm="wsgate", error="invalid_token"',
    );
    assert.equal(
      httpAnswer(new WsgateError('insufficient_scope')).headers['www-authenticate'],
      'Bearer realm="wsgate", error="insufficient_scope"',
    );
    assert.deepEqual(
      httpAnswer(new WsgateError('rate_limited', undefined, { retryAfter: 3 })).headers,
      {
        'retry-after': '3',
      },
    );
    assert.deepEqual(httpAnswer(new WsgateError('not_found')).headers, {});
  });

  it('renders one close frame: the retry delay in the reason, cut to 123 bytes', () => {
    assert.deepEqual(closeFrame(new WsgateError('rate_limited', undefined, { retryAfter: 2 })), {
      code: 4429,
      reason: 'Too many requests; retry after 2s',
    });
    const long = closeFrame(new WsgateError('invalid_request', 'é'.repeat(100)));
    assert.equal(Buffer.byteLength(long.reason), 122);
    assert.equal(truncateReason('x'.repeat(200)).length, 123);
  });
});
