import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { CountedHistogram } from './metrics.js';

const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];

/** The same observations in prom-client's Histogram and in a CountedHistogram, each in its registry. */
function both(values: readonly number[]): { theirs: Registry; ours: Registry } {
  const theirs = new Registry();
  const ours = new Registry();
  const options = { name: 'h_seconds', help: 'A latency', buckets };
  const histogram = new Histogram({ ...options, registers: [theirs] });
  const counted = new CountedHistogram({ ...options, registers: [ours] });
  for (const value of values) {
    histogram.observe(value);
    counted.observe(value);
  }
  return { theirs, ours };
}

const observations = fc.array(
  fc.oneof(fc.constantFrom(0, ...buckets, 0.3, 7), fc.double({ min: 0, max: 1, noNaN: true })),
  { maxLength: 50 },
);

describe('CountedHistogram', () => {
  it('scrapes to the same text and JSON as a prom-client Histogram given the same observations (property)', async () => {
    await fc.assert(
      fc.asyncProperty(observations, async (values) => {
        const { theirs, ours } = both(values);
        assert.equal(await ours.metrics(), await theirs.metrics());
        // As JSON, the form in which a worker's metrics reach the primary.
        const json = async (registry: Registry) =>
          JSON.parse(JSON.stringify(await registry.getMetricsAsJSON())) as unknown;
        assert.deepEqual(await json(ours), await json(theirs));
      }),
      { numRuns: 200 },
    );
  });

  it('adds up across processes as a prom-client Histogram does (the primary under --workers)', async () => {
    const [a, b] = [both([0.0004, 0.003, 0.3]), both([0.001, 0.003])];
    const theirs = AggregatorRegistry.aggregate([
      await a.theirs.getMetricsAsJSON(),
      await b.theirs.getMetricsAsJSON(),
    ]);
    const ours = AggregatorRegistry.aggregate([
      await a.ours.getMetricsAsJSON(),
      await b.ours.getMetricsAsJSON(),
    ]);
    assert.equal(await ours.metrics(), await theirs.metrics());
    assert.match(await ours.metrics(), /^h_seconds_count 5$/m);
  });

  it('refuses a value that is not a finite number, as prom-client does', () => {
    const counted = new CountedHistogram({ name: 'x', help: 'x', buckets, registers: [] });
    assert.throws(() => counted.observe(Number.NaN), TypeError);
    assert.throws(() => counted.observe(Infinity), TypeError);
  });

  it('starts again from nothing when its registry is reset', async () => {
    const { theirs, ours } = both([0.002, 0.2]);
    theirs.resetMetrics();
    ours.resetMetrics();
    assert.equal(await ours.metrics(), await theirs.metrics());
  });
});
