/* eslint-disable @typescript-eslint/no-floating-promises -- describe/it promises belong to node:test's runner */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { RateBuckets, SocketCounts } from './shared-limits.js';

/** Two processes' views of one set of shared limits. */
export interface SharedLimitNodes<T> {
  readonly a: T;
  readonly b: T;
  close(): Promise<void>;
}

/** The bucket settings every rate contract test runs with: 2 a second, bursts of 4. */
export const contractRate = 2;
export const contractBurst = 4;

/**
 * The behaviour every {@link RateBuckets} must show. `open` returns two nodes' views of fresh
 * buckets (rate 2/s, burst 4); times are passed explicitly, so nothing sleeps.
 */
export function rateBucketsContract(
  name: string,
  open: () => Promise<SharedLimitNodes<RateBuckets>>,
): void {
  describe(`rate buckets contract: ${name}`, () => {
    let nodes: SharedLimitNodes<RateBuckets>;
    beforeEach(async () => {
      nodes = await open();
    });
    afterEach(async () => {
      await nodes.close();
    });

    it('allows the burst across both nodes, then says how long to wait', async () => {
      const { a, b } = nodes;
      const key = randomUUID();
      const t0 = Date.now();
      for (let i = 0; i < contractBurst; i++) {
        assert.equal(await (i % 2 === 0 ? a : b).take(key, t0), 0, `take ${i}`);
      }
      assert.equal(await a.take(key, t0), 1);
      assert.equal(await b.take(key, t0), 1);
    });

    it('refills at the rate, by the clock it is given', async () => {
      const { a, b } = nodes;
      const key = randomUUID();
      const t0 = Date.now();
      for (let i = 0; i < contractBurst; i++) await a.take(key, t0);
      assert.ok((await b.take(key, t0 + 100)) > 0);
      assert.equal(await b.take(key, t0 + 1000 / contractRate + 100), 0);
      assert.ok((await a.take(key, t0 + 1000 / contractRate + 100)) > 0);
    });

    it('keeps keys apart', async () => {
      const { a, b } = nodes;
      const [one, other] = [randomUUID(), randomUUID()];
      const t0 = Date.now();
      for (let i = 0; i <= contractBurst; i++) await a.take(one, t0);
      assert.equal(await b.take(other, t0), 0);
    });

    it('never lets racing nodes take more than the burst', async () => {
      const { a, b } = nodes;
      const key = randomUUID();
      const t0 = Date.now();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => Promise.resolve((i % 2 === 0 ? a : b).take(key, t0))),
      );
      assert.equal(results.filter((r) => r === 0).length, contractBurst);
    });
  });
}

/** The behaviour every {@link SocketCounts} must show. */
export function socketCountsContract(
  name: string,
  open: () => Promise<SharedLimitNodes<SocketCounts>>,
): void {
  describe(`socket counts contract: ${name}`, () => {
    let nodes: SharedLimitNodes<SocketCounts>;
    beforeEach(async () => {
      nodes = await open();
    });
    afterEach(async () => {
      await nodes.close();
    });

    it('counts the sockets of one key on both nodes up to the limit', async () => {
      const { a, b } = nodes;
      const key = randomUUID();
      assert.ok(await a.acquire(key, 3));
      assert.ok(await b.acquire(key, 3));
      assert.ok(await a.acquire(key, 3));
      assert.equal(await b.acquire(key, 3), undefined);
      assert.equal(await a.acquire(key, 3), undefined);
      assert.ok(await b.acquire(randomUUID(), 3), 'another key has its own count');
    });

    it('frees a slot when a socket is given back, once however often it is given back', async () => {
      const { a, b } = nodes;
      const key = randomUUID();
      const first = await a.acquire(key, 2);
      assert.ok(first && (await b.acquire(key, 2)));
      first();
      first();
      assert.ok(await b.acquire(key, 2), 'the slot given back is free');
      // Releases travel asynchronously between processes: the count must not go below the truth.
      await settle();
      assert.equal(await a.acquire(key, 2), undefined, 'a second release freed nothing');
    });

    it('never lets racing nodes count more than the limit', async () => {
      const { a, b } = nodes;
      const key = randomUUID();
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          Promise.resolve((i % 2 === 0 ? a : b).acquire(key, 5)),
        ),
      );
      assert.equal(results.filter((r) => r !== undefined).length, 5);
    });
  });
}

/** Lets messages in flight between processes arrive (a few turns of the event loop). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}
