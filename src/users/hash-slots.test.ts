import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HashSlots, HashSlotsFull } from './hash-slots.js';

/** A promise the test settles by hand. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('HashSlots', () => {
  it('runs at most `concurrency` at once, queues `queue` more and refuses the next at once', async () => {
    const slots = new HashSlots({ concurrency: 2, queue: 1 });
    const gates = [deferred(), deferred(), deferred()];
    const started: number[] = [];
    const runs = gates.map((gate, i) =>
      slots.run(async () => {
        started.push(i);
        await gate.promise;
        return i;
      }),
    );
    await Promise.resolve();
    assert.deepEqual(started, [0, 1]);
    assert.equal(slots.running, 2);
    assert.equal(slots.waiting, 1);
    await assert.rejects(
      slots.run(async () => 'never'),
      HashSlotsFull,
    );

    gates[0]!.resolve();
    assert.equal(await runs[0], 0);
    await Promise.resolve();
    assert.deepEqual(started, [0, 1, 2], 'the queued caller got the freed slot');
    assert.equal(slots.running, 2);
    assert.equal(slots.waiting, 0);
    gates[1]!.resolve();
    gates[2]!.resolve();
    assert.deepEqual(await Promise.all(runs), [0, 1, 2]);
    assert.equal(slots.running, 0);
  });

  it('frees the slot of a failed hash', async () => {
    const slots = new HashSlots({ concurrency: 1, queue: 0 });
    await assert.rejects(
      slots.run(async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await slots.run(async () => 'ok'), 'ok');
  });

  it('with a queue of 0 refuses while the only slot is busy', async () => {
    const slots = new HashSlots({ concurrency: 1, queue: 0 });
    const gate = deferred();
    const first = slots.run(() => gate.promise);
    await assert.rejects(
      slots.run(async () => undefined),
      HashSlotsFull,
    );
    gate.resolve();
    await first;
  });

  it('frees a slot once however often it is given back', async () => {
    const slots = new HashSlots({ concurrency: 2, queue: 0 });
    const release = await slots.acquire();
    await slots.acquire();
    release();
    release();
    assert.equal(slots.running, 1);
    await slots.acquire();
    await assert.rejects(slots.acquire(), HashSlotsFull);
  });

  it('gives one key at most `perKey` places, running and waiting, and frees them as they end', async () => {
    const slots = new HashSlots({ concurrency: 1, queue: 4, perKey: 2 });
    const gates = [deferred(), deferred()];
    const runs = gates.map((gate) => slots.run(() => gate.promise, 'a'));
    await Promise.resolve();
    assert.equal(slots.running + slots.waiting, 2);
    await assert.rejects(
      slots.run(async () => 'never', 'a'),
      HashSlotsFull,
    );
    // Another key still finds a place in the queue; so does a caller without a key.
    const other = slots.run(async () => 'b', 'b');
    const keyless = slots.run(async () => 'none');
    gates[0]!.resolve();
    await runs[0];
    const again = slots.run(async () => 'a again', 'a');
    gates[1]!.resolve();
    assert.deepEqual(await Promise.all([runs[1], other, keyless, again]), [
      undefined,
      'b',
      'none',
      'a again',
    ]);
    assert.equal(slots.running, 0);
    // A refusal for a full queue takes no share either.
    const busy = new HashSlots({ concurrency: 1, queue: 0, perKey: 1 });
    const gate = deferred();
    const first = busy.run(() => gate.promise, 'x');
    await assert.rejects(
      busy.run(async () => 'never', 'y'),
      HashSlotsFull,
    );
    gate.resolve();
    await first;
    assert.equal(await busy.run(async () => 'y', 'y'), 'y');
  });
});
