/* eslint-disable @typescript-eslint/no-floating-promises -- describe/it promises belong to node:test's runner */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { PubSub } from './types.js';

/** Two nodes' connections to one bus. */
export interface BusNodes {
  readonly a: PubSub;
  readonly b: PubSub;
  close(): Promise<void>;
}

/** Collects what a subscription hears; `next(n)` waits for the first n messages (at most 5 s). */
function collector() {
  const heard: string[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const handler = (message: string) => {
    heard.push(message);
    for (const waiter of waiters.filter((w) => heard.length >= w.count)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  const next = (count: number): Promise<string[]> =>
    heard.length >= count
      ? Promise.resolve(heard.slice(0, count))
      : new Promise((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`heard ${heard.length} of ${count} messages`)),
            5000,
          );
          waiters.push({
            count,
            resolve: () => {
              clearTimeout(timer);
              resolve(heard.slice(0, count));
            },
          });
        });
  return { heard, handler, next };
}

/**
 * The behaviour every {@link PubSub} must show, as `node:test` suites: what cluster mode relies
 * on. `open` returns two nodes' connections to one fresh bus each time it is called.
 */
export function pubSubContract(name: string, open: () => Promise<BusNodes>): void {
  describe(`pub/sub contract: ${name}`, () => {
    let nodes: BusNodes;
    beforeEach(async () => {
      nodes = await open();
    });
    afterEach(async () => {
      await nodes.close();
    });

    it('delivers a message to the subscribers of every node, the publisher included', async () => {
      const { a, b } = nodes;
      const channel = `c-${randomUUID()}`;
      const onA = collector();
      const onB = collector();
      await a.subscribe(channel, onA.handler);
      await b.subscribe(channel, onB.handler);
      await a.publish(channel, 'hello');
      assert.deepEqual(await onB.next(1), ['hello']);
      assert.deepEqual(await onA.next(1), ['hello']);
    });

    it("keeps one publisher's messages in order", async () => {
      const { a, b } = nodes;
      const channel = `c-${randomUUID()}`;
      const onB = collector();
      await b.subscribe(channel, onB.handler);
      const sent = Array.from({ length: 100 }, (_, i) => `m${i}`);
      await Promise.all(sent.map((m) => a.publish(channel, m)));
      assert.deepEqual(await onB.next(sent.length), sent);
    });

    it('keeps channels apart, and carries any text unchanged', async () => {
      const { a, b } = nodes;
      const [one, other] = [`c-${randomUUID()}`, `c-${randomUUID()}`];
      const onOne = collector();
      const onOther = collector();
      await b.subscribe(one, onOne.handler);
      await b.subscribe(other, onOther.handler);
      const text = JSON.stringify({ text: 'é\u2028"\\\n', n: 1 });
      await a.publish(one, text);
      await a.publish(other, 'second');
      assert.deepEqual(await onOther.next(1), ['second']);
      assert.deepEqual(onOne.heard, [text]);
    });

    it('stops delivering to a handler once it unsubscribed, and to no other', async () => {
      const { a, b } = nodes;
      const channel = `c-${randomUUID()}`;
      const gone = collector();
      const stays = collector();
      const unsubscribe = await b.subscribe(channel, gone.handler);
      await b.subscribe(channel, stays.handler);
      await unsubscribe();
      await a.publish(channel, 'after');
      // Both handlers are on one node, so `stays` hearing it means `gone` would have by now.
      assert.deepEqual(await stays.next(1), ['after']);
      assert.deepEqual(gone.heard, []);
    });

    it('answers a ping once subscribed', async () => {
      // A subscription resolves once the transport is up (Redis connects in the background).
      await nodes.a.subscribe(`c-${randomUUID()}`, () => undefined);
      await nodes.b.subscribe(`c-${randomUUID()}`, () => undefined);
      await nodes.a.ping();
      await nodes.b.ping();
    });
  });
}
