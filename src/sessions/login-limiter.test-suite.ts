/* eslint-disable @typescript-eslint/no-floating-promises -- describe/it promises belong to node:test's runner */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { LoginLimiter } from './login-limiter.js';

/** Two nodes' limiters over one shared backend (an in-process limiter is its own "cluster"). */
export interface LimiterNodes {
  readonly a: LoginLimiter;
  readonly b: LoginLimiter;
  close(): Promise<void>;
}

/** The settings every contract test runs with: 5 failures a minute, as wsgate's default. */
export const contractLimit = 5;
export const contractWindowMs = 60_000;

/** A limit key as the session service builds it (`username|address`), unique per call. */
export function limitKey(username = 'alice', ip = '203.0.113.7'): string {
  return `${username}-${randomUUID().slice(0, 8)}|${ip}`;
}

/**
 * The behaviour every {@link LoginLimiter} must show, as `node:test` suites. `open` returns two
 * nodes' views of one fresh limiter (5 failures per 60 s) each time it is called. Times are
 * passed explicitly, from a base near the real time, so nothing sleeps.
 */
export function loginLimiterContract(name: string, open: () => Promise<LimiterNodes>): void {
  describe(`login limiter contract: ${name}`, () => {
    let nodes: LimiterNodes;
    let a: LoginLimiter;
    let b: LoginLimiter;

    beforeEach(async () => {
      nodes = await open();
      ({ a, b } = nodes);
    });

    afterEach(async () => {
      await nodes.close();
    });

    /** Records failures at `t0`, `t0 + step`, … */
    const fail = async (
      limiter: LoginLimiter,
      key: string,
      t0: number,
      count: number,
      step = 0,
    ) => {
      for (let i = 0; i < count; i++) await limiter.recordFailure(key, t0 + i * step);
    };

    it('allows attempts until the limit of failures, then says how long to wait', async () => {
      const key = limitKey();
      const t0 = Date.now();
      assert.equal(await a.retryAfter(key, t0), 0);
      await fail(a, key, t0, contractLimit - 1, 1000);
      assert.equal(await a.retryAfter(key, t0 + 4000), 0);
      await a.recordFailure(key, t0 + 4000);
      // The oldest counted failure (t0) leaves the window at t0 + 60 s: 56 s from t0 + 4 s.
      const wait = await a.retryAfter(key, t0 + 4000);
      assert.equal(wait, 56);
      assert.ok(wait >= 1 && wait <= contractWindowMs / 1000);
      assert.equal(await a.retryAfter(key, t0 + 59_001), 1);
      assert.equal(await a.retryAfter(key, t0 + 59_999), 1);
    });

    it('slides: once the oldest failure leaves the window an attempt is allowed again', async () => {
      const key = limitKey();
      const t0 = Date.now();
      await fail(a, key, t0, contractLimit, 1000);
      assert.ok((await a.retryAfter(key, t0 + 59_999)) > 0);
      assert.equal(await a.retryAfter(key, t0 + contractWindowMs), 0);
      // One more failure fills the window again, until t0 + 1 s leaves it.
      await a.recordFailure(key, t0 + contractWindowMs);
      assert.equal(await a.retryAfter(key, t0 + contractWindowMs), 1);
      assert.equal(await a.retryAfter(key, t0 + contractWindowMs + 1000), 0);
      assert.equal(await a.retryAfter(key, t0 + 10 * contractWindowMs), 0);
    });

    it('forgets failures older than the window', async () => {
      const key = limitKey();
      const t0 = Date.now();
      await fail(a, key, t0, contractLimit - 1);
      // Long after, four old failures and one new one are still one failure.
      await a.recordFailure(key, t0 + contractWindowMs + 1);
      assert.equal(await a.retryAfter(key, t0 + contractWindowMs + 1), 0);
      await fail(a, key, t0 + contractWindowMs + 2, contractLimit - 2);
      assert.equal(await a.retryAfter(key, t0 + contractWindowMs + 2), 0);
      await a.recordFailure(key, t0 + contractWindowMs + 3);
      assert.equal(await a.retryAfter(key, t0 + contractWindowMs + 3), 60);
    });

    it('counts failures in the same millisecond separately', async () => {
      const key = limitKey();
      const t0 = Date.now();
      await Promise.all(Array.from({ length: contractLimit }, () => a.recordFailure(key, t0)));
      assert.equal(await a.retryAfter(key, t0), 60);
    });

    it('keeps keys apart: another user, or the same user from another address, is not affected', async () => {
      const key = limitKey('alice', '203.0.113.7');
      const t0 = Date.now();
      await fail(a, key, t0, contractLimit);
      assert.ok((await a.retryAfter(key, t0)) > 0);
      assert.equal(await a.retryAfter(limitKey('bob', '203.0.113.7'), t0), 0);
      assert.equal(await a.retryAfter(key.replace('203.0.113.7', '198.51.100.1'), t0), 0);
    });

    it('forgets every failure of a key on reset, and only of that key', async () => {
      const key = limitKey();
      const other = limitKey('bob');
      const t0 = Date.now();
      await fail(a, key, t0, contractLimit);
      await fail(a, other, t0, contractLimit);
      await a.reset(key);
      assert.equal(await a.retryAfter(key, t0), 0);
      assert.ok((await a.retryAfter(other, t0)) > 0);
      await fail(a, key, t0, contractLimit - 1);
      assert.equal(await a.retryAfter(key, t0), 0, 'the count starts over');
      await a.reset(limitKey('nobody')); // resetting an unknown key is harmless
    });

    it('shares the count between nodes, so a brute force spread over nodes gains nothing', async () => {
      const key = limitKey();
      const t0 = Date.now();
      for (let i = 0; i < contractLimit; i++) await (i % 2 ? b : a).recordFailure(key, t0 + i);
      assert.equal(await a.retryAfter(key, t0 + 10), 60);
      assert.equal(await b.retryAfter(key, t0 + 10), 60);
      await b.reset(key);
      assert.equal(await a.retryAfter(key, t0 + 10), 0);
    });

    it('counts failures recorded at once on two nodes', async () => {
      const key = limitKey();
      const t0 = Date.now();
      await Promise.all(
        Array.from({ length: contractLimit }, (_, i) => (i % 2 ? b : a).recordFailure(key, t0)),
      );
      assert.equal(await b.retryAfter(key, t0), 60);
      assert.equal(await a.retryAfter(key, t0), 60);
    });
  });
}
