import assert from 'node:assert/strict';
import type { MessagePort } from 'node:worker_threads';
import { describe, it } from 'node:test';
import { ticketStoreContract, sampleClaims } from '../credentials/tickets.test-suite.js';
import {
  contractLimit,
  contractWindowMs,
  loginLimiterContract,
} from '../sessions/login-limiter.test-suite.js';
import {
  contractBurst,
  contractRate,
  rateBucketsContract,
  socketCountsContract,
} from '../handshake/shared-limits.test-suite.js';
import { pubSubContract } from '../pubsub/pubsub.test-suite.js';
import type { Peer } from './peer.js';
import {
  WorkerLoginLimiter,
  WorkerRateBuckets,
  WorkerRecentRotations,
  WorkerSocketCounts,
  WorkerTicketStore,
} from './stores.js';
import { hubWithTwoWorkers, inMachineBuses } from '../../test/support/workers.js';

/**
 * The primary's stores seen from two workers, each on its own channel to one hub: the contract
 * suites of the one-node stores pass on them, every message crossing a real MessagePort as JSON.
 */
const twoWorkers = () =>
  hubWithTwoWorkers({
    login: contractLimit,
    windowMs: contractWindowMs,
    rate: contractRate,
    burst: contractBurst,
  });

function pairOf<T>(make: (peer: Peer) => T) {
  return () => {
    const workers = twoWorkers();
    return Promise.resolve({ a: make(workers.a), b: make(workers.b), close: workers.close });
  };
}

describe('workers: the primary’s stores over IPC', () => {
  ticketStoreContract(
    'workers',
    pairOf((peer) => new WorkerTicketStore(peer)),
  );
  loginLimiterContract(
    'workers',
    pairOf((peer) => new WorkerLoginLimiter(peer, 'user')),
  );
  rateBucketsContract(
    'workers',
    pairOf((peer) => new WorkerRateBuckets(peer, 'handshakes')),
  );
  socketCountsContract(
    'workers',
    pairOf((peer) => new WorkerSocketCounts(peer)),
  );
  pubSubContract('workers', () => Promise.resolve(inMachineBuses()));

  it('gives back the sockets a worker counted when it goes away', async () => {
    const workers = twoWorkers();
    try {
      const [onA, onB] = [new WorkerSocketCounts(workers.a), new WorkerSocketCounts(workers.b)];
      assert.ok(await onA.acquire('alice', 2));
      assert.ok(await onA.acquire('alice', 2));
      assert.equal(await onB.acquire('alice', 2), undefined);
      // Worker a dies: its end of the channel closes.
      (workers.ports[1] as MessagePort).close();
      for (let i = 0; i < 100 && workers.sockets.count('alice') > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(workers.sockets.count('alice'), 0);
      assert.ok(await onB.acquire('alice', 2));
    } finally {
      await workers.close();
    }
  });

  it('keeps the two login limiters apart, and rotations shared', async () => {
    const workers = twoWorkers();
    try {
      const user = new WorkerLoginLimiter(workers.a, 'user');
      const address = new WorkerLoginLimiter(workers.b, 'address');
      const now = Date.now();
      for (let i = 0; i < contractLimit; i++) await user.recordFailure('k', now);
      assert.ok((await new WorkerLoginLimiter(workers.b, 'user').retryAfter('k', now)) > 0);
      assert.equal(await address.retryAfter('k', now), 0);
      const pair = { accessToken: 'a', refreshToken: 'r' };
      await new WorkerRecentRotations(workers.a).remember('jti', pair, 5000, now);
      assert.deepEqual(await new WorkerRecentRotations(workers.b).recall('jti', now + 1), pair);
      assert.equal(await new WorkerRecentRotations(workers.b).recall('other', now), undefined);
    } finally {
      await workers.close();
    }
  });

  it('fails what is pending, and what comes later, once the primary is gone', async () => {
    const workers = twoWorkers();
    const tickets = new WorkerTicketStore(workers.a);
    (workers.ports[0] as MessagePort).close();
    await assert.rejects(tickets.issue(sampleClaims(Date.now()), Date.now()), /gone/);
    await workers.close();
  });

  it('refuses a request it does not know, and a malformed one, with an error', async () => {
    const workers = twoWorkers();
    try {
      await assert.rejects(workers.a.request('storage.dropAll'), /unknown request/);
      await assert.rejects(workers.a.request('tickets.consume', 42, 'now'), /expected a string/);
    } finally {
      await workers.close();
    }
  });
});
