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
import { HashSlotsFull, withSlot } from '../users/hash-slots.js';
import {
  WorkerHashSlots,
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
const limits = {
  login: contractLimit,
  windowMs: contractWindowMs,
  rate: contractRate,
  burst: contractBurst,
};
const twoWorkers = () => hubWithTwoWorkers(limits);

/** A promise the test settles by hand. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Waits for what crosses the ports (each message a macrotask away) to make `condition` true. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  assert.ok(condition(), 'the hub did not get there');
}

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

  it('bounds password hashing for the machine: one set of slots and one queue for all workers', async () => {
    const workers = hubWithTwoWorkers({ ...limits, hash: { concurrency: 1, queue: 1 } });
    try {
      const [onA, onB] = [new WorkerHashSlots(workers.a), new WorkerHashSlots(workers.b)];
      const gate = deferred();
      const order: string[] = [];
      // Worker a hashes in the only slot; b's check waits in the only queue place.
      const first = withSlot(onA, async () => {
        order.push('a');
        await gate.promise;
      });
      const second = withSlot(onB, () => {
        order.push('b');
        return Promise.resolve();
      });
      await until(() => workers.hashSlots.waiting === 1);
      assert.deepEqual(order, ['a']);
      // A third, on either worker, is refused at once: each worker alone would have a free slot.
      await assert.rejects(onB.acquire(), HashSlotsFull);
      await assert.rejects(onA.acquire(), HashSlotsFull);
      gate.resolve();
      await Promise.all([first, second]);
      assert.deepEqual(order, ['a', 'b']);
      await until(() => workers.hashSlots.running === 0);
    } finally {
      await workers.close();
    }
  });

  it('holds each client address to its share of the machine’s hashing slots across workers', async () => {
    const workers = hubWithTwoWorkers({ ...limits, hash: { concurrency: 2, queue: 0, perKey: 1 } });
    try {
      const [onA, onB] = [new WorkerHashSlots(workers.a), new WorkerHashSlots(workers.b)];
      const release = await onA.acquire('198.51.100.1');
      // The same address on the other worker is refused, though a slot is free; another gets it.
      await assert.rejects(onB.acquire('198.51.100.1'), HashSlotsFull);
      const other = await onB.acquire('198.51.100.2');
      release();
      other();
      await until(() => workers.hashSlots.running === 0);
      (await onB.acquire('198.51.100.1'))();
    } finally {
      await workers.close();
    }
  });

  it('gives back the hashing slots of a worker that goes away, also one granted after it died', async () => {
    const workers = hubWithTwoWorkers({ ...limits, hash: { concurrency: 1, queue: 1 } });
    try {
      const [onA, onB] = [new WorkerHashSlots(workers.a), new WorkerHashSlots(workers.b)];
      await onA.acquire(); // a holds the slot and never gives it back…
      const queued = onB.acquire(); // …b waits for it…
      await until(() => workers.hashSlots.waiting === 1);
      // …and dies while waiting: its end of the channel closes.
      (workers.ports[3] as MessagePort).close();
      await assert.rejects(queued, /gone/);
      // Then a dies too: its slot goes to b's place in the queue, and from there back at once.
      (workers.ports[1] as MessagePort).close();
      await until(() => workers.hashSlots.running === 0 && workers.hashSlots.waiting === 0);
      const release = await workers.hashSlots.acquire();
      release();
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
