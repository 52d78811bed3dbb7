import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backoffDelay, defaultBackoff, resolveBackoff } from './backoff.js';

describe('full-jitter backoff', () => {
  it('draws uniformly below base · 2^attempt', () => {
    const options = { baseMs: 100, maxMs: 10_000 };
    assert.equal(
      backoffDelay(0, options, () => 0.5),
      50,
    );
    assert.equal(
      backoffDelay(1, options, () => 0.5),
      100,
    );
    assert.equal(
      backoffDelay(3, options, () => 0.5),
      400,
    );
    assert.equal(
      backoffDelay(3, options, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(3, options, () => 0.999),
      799,
    );
  });

  it('never exceeds maxMs, however many attempts failed', () => {
    const options = { baseMs: 100, maxMs: 1_000 };
    assert.equal(
      backoffDelay(4, options, () => 0.999),
      999,
    );
    assert.equal(
      backoffDelay(50, options, () => 0.5),
      500,
    );
    assert.equal(
      backoffDelay(5_000, options, () => 0.5),
      500,
    );
    assert.equal(
      backoffDelay(Infinity, options, () => 0.5),
      500,
    );
  });

  it('defaults to a 500 ms base and a 30 s cap', () => {
    assert.deepEqual(defaultBackoff, { baseMs: 500, maxMs: 30_000 });
    assert.equal(
      backoffDelay(0, {}, () => 0.5),
      250,
    );
    assert.equal(
      backoffDelay(20, {}, () => 0.5),
      15_000,
    );
  });

  it('stays in [0, min(max, base · 2^attempt)) for any attempt and random draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, baseMs, maxMs, r) => {
          const delay = backoffDelay(attempt, { baseMs, maxMs }, () => r);
          const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 31));
          assert.ok(Number.isInteger(delay));
          assert.ok(delay >= 0);
          assert.ok(ceiling === 0 ? delay === 0 : delay < ceiling);
        },
      ),
    );
  });

  it('keeps a misbehaving random source inside the range', () => {
    const options = { baseMs: 100, maxMs: 1_000 };
    assert.equal(
      backoffDelay(2, options, () => -3),
      0,
    );
    assert.equal(
      backoffDelay(2, options, () => Number.NaN),
      0,
    );
    assert.equal(
      backoffDelay(2, options, () => 7),
      400,
    );
  });

  it('rejects negative or non-finite options', () => {
    assert.throws(() => resolveBackoff({ baseMs: -1 }), RangeError);
    assert.throws(() => resolveBackoff({ maxMs: Infinity }), RangeError);
    assert.throws(() => resolveBackoff({ baseMs: Number.NaN }), RangeError);
    assert.deepEqual(resolveBackoff({ baseMs: 20 }), { baseMs: 20, maxMs: 30_000 });
  });
});
