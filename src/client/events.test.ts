import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Emitter } from './events.js';

interface Events {
  tick: number;
  name: string;
}

class Ticker extends Emitter<Events> {
  fire<K extends keyof Events>(event: K, payload: Events[K]): void {
    this.emit(event, payload);
  }
}

describe('typed emitter', () => {
  it('calls listeners of that event in order, until they are removed', () => {
    const t = new Ticker();
    const seen: string[] = [];
    const off = t.on('tick', (n) => seen.push(`a${n}`));
    t.on('tick', (n) => seen.push(`b${n}`));
    t.on('name', (s) => seen.push(s));
    t.fire('tick', 1);
    off();
    t.fire('tick', 2);
    assert.deepEqual(seen, ['a1', 'b1', 'b2']);
  });

  it('calls a once listener a single time', () => {
    const t = new Ticker();
    const seen: number[] = [];
    t.once('tick', (n) => seen.push(n));
    t.fire('tick', 1);
    t.fire('tick', 2);
    assert.deepEqual(seen, [1]);
  });

  it('lets a listener add and remove listeners while being called', () => {
    const t = new Ticker();
    const seen: string[] = [];
    const second = (n: number) => seen.push(`second${n}`);
    t.on('tick', (n) => {
      seen.push(`first${n}`);
      t.off('tick', second);
      t.on('tick', (m) => seen.push(`late${m}`));
    });
    t.on('tick', second);
    t.fire('tick', 1);
    assert.deepEqual(seen, ['first1', 'second1']);
  });
});
