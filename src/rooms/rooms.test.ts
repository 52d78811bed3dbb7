import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Rooms, type RoomMember } from './rooms.js';
import type { MessageFrame, PresenceFrame } from '../protocol/frames.js';
import { manualTimers } from '../../test/support/timers.js';

interface Socket extends RoomMember {
  readonly got: unknown[];
}

function socket(user: string): Socket {
  return { user, rooms: new Set(), got: [] };
}

function setup(stored: MessageFrame[] = []) {
  const timers = manualTimers();
  const relayed: Array<MessageFrame | PresenceFrame> = [];
  const rooms = new Rooms<Socket>({
    write: (member, data) => member.got.push(JSON.parse(data.toString('utf8'))),
    replay: async (room, afterId) => stored.filter((m) => m.room === room && m.id > afterId),
    relay: (frame) => relayed.push(frame),
    timers,
  });
  return { rooms, timers, relayed };
}

const message = (room: string, id: number): MessageFrame => ({
  type: 'message',
  room,
  id,
  user: 'janedoe',
  text: `#${id}`,
  ts: id,
});

describe('Rooms', () => {
  it('counts users, not sockets, and announces presence in the next batch only', () => {
    const { rooms, timers, relayed } = setup();
    const [john, jane1, jane2] = [socket('johndoe'), socket('janedoe'), socket('janedoe')];
    rooms.join(john, 'general');
    rooms.join(jane1, 'general');
    rooms.join(jane2, 'general');
    assert.deepEqual(rooms.membersOf('general'), ['janedoe', 'johndoe']);
    assert.equal(rooms.userCount('general'), 2);
    assert.deepEqual(john.got, [], 'nothing before the batch');
    // Other nodes hear at once, once per user.
    assert.deepEqual(
      relayed.map((f) => f.type === 'presence' && `${f.user} ${f.state}`),
      ['johndoe join', 'janedoe join'],
    );
    timers.advance(100);
    assert.deepEqual(john.got, [
      { type: 'presence', room: 'general', user: 'johndoe', state: 'join' },
      { type: 'presence', room: 'general', user: 'janedoe', state: 'join' },
    ]);
    rooms.leave(jane1, 'general');
    timers.advance(100);
    assert.equal(john.got.length, 2, 'janedoe is still there through her other socket');
    rooms.leaveAll(jane2);
    timers.advance(100);
    assert.deepEqual(john.got.at(-1), {
      type: 'presence',
      room: 'general',
      user: 'janedoe',
      state: 'leave',
    });
    rooms.close();
  });

  it('shows a visit (join and leave in one window) as both, in order', () => {
    const { rooms, timers } = setup();
    const [john, jane] = [socket('johndoe'), socket('janedoe')];
    rooms.join(john, 'r');
    timers.advance(100);
    john.got.length = 0;
    rooms.join(jane, 'r');
    rooms.leave(jane, 'r');
    timers.advance(100);
    assert.deepEqual(
      john.got.map((f) => (f as PresenceFrame).state),
      ['join', 'leave'],
    );
    rooms.close();
  });

  it('keeps remote presence per node and forgets a dead node’s users', () => {
    const { rooms, timers } = setup();
    const john = socket('johndoe');
    rooms.join(john, 'r');
    rooms.applyRemote('node-b', { type: 'presence', room: 'r', user: 'janedoe', state: 'join' });
    rooms.applyRemote('node-c', { type: 'presence', room: 'r', user: 'janedoe', state: 'join' });
    assert.deepEqual(rooms.membersOf('r'), ['janedoe', 'johndoe']);
    rooms.forgetNode('node-b');
    assert.deepEqual(rooms.membersOf('r'), ['janedoe', 'johndoe'], 'still on node C');
    rooms.forgetNode('node-c');
    assert.deepEqual(rooms.membersOf('r'), ['johndoe']);
    timers.advance(100);
    const states = john.got.filter((f) => (f as PresenceFrame).user === 'janedoe');
    assert.deepEqual(
      states.map((f) => (f as PresenceFrame).state),
      ['join', 'leave'],
    );
    rooms.close();
  });

  it('sends each message id once, whether it comes off the bus or from a resync', async () => {
    const stored = [message('r', 1), message('r', 2), message('r', 3)];
    const { rooms } = setup(stored);
    const john = socket('johndoe');
    rooms.join(john, 'r');
    rooms.applyRemote('node-b', message('r', 1));
    rooms.markOutage();
    rooms.applyRemote('node-b', message('r', 2));
    rooms.applyRemote('node-b', message('r', 2));
    await rooms.resync();
    rooms.applyRemote('node-b', message('r', 3));
    assert.deepEqual(
      john.got.map((f) => (f as MessageFrame).id),
      [1, 2, 3],
    );
    assert.deepEqual([...rooms.sentMarks()], [['r', 3]]);
    rooms.close();
  });
});
