import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { type RawData } from 'ws';
import { passwordGrant, startTestServer, type TestServer } from './support/server.js';
import { wsUrl } from './support/ws.js';
import { manualTimers } from './support/timers.js';

type Frame = { type: string; [key: string]: unknown };

/** A /chat client that keeps every frame and hands them out in order of arrival. */
interface Client {
  readonly welcome: Frame;
  send(frame: object): void;
  /** The next frame of `type` (others stay queued); fails after 2 s. */
  next(type: string, match?: (f: Frame) => boolean): Promise<Frame>;
  close(): void;
}

async function open(server: TestServer, token: string): Promise<Client> {
  const ws = new WebSocket(wsUrl(server, '/chat'), {
    headers: { authorization: `Bearer ${token}` },
  });
  const frames: Frame[] = [];
  let wake = () => undefined as void;
  ws.on('message', (data: RawData) => {
    frames.push(JSON.parse((data as Buffer).toString('utf8')) as Frame);
    wake();
  });
  const next = (type: string, match: (f: Frame) => boolean = () => true) =>
    new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${type} frame; have ${JSON.stringify(frames)}`)),
        2000,
      );
      const check = () => {
        const i = frames.findIndex((f) => f.type === type && match(f));
        if (i < 0) return;
        clearTimeout(timer);
        wake = () => undefined;
        resolve(frames.splice(i, 1)[0]!);
      };
      wake = check;
      check();
    });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const welcome = await next('welcome');
  return {
    welcome,
    send: (frame) => ws.send(JSON.stringify(frame)),
    next,
    close: () => ws.close(),
  };
}

describe('chat hardening', () => {
  let server: TestServer;
  let john: string;
  let jane: string;
  // Presence batches (which also drop rooms left empty) run when the test steps these.
  const timers = manualTimers();
  before(async () => {
    server = await startTestServer(
      {
        'max-rooms': '4',
        'room-creations-per-minute': '3',
        'welcome-rooms': '3',
      },
      { timers },
    );
    john = (await passwordGrant(server)).access_token;
    jane = (await passwordGrant(server, 'janedoe', 'secret2')).access_token;
  });
  after(() => server.stop());

  it('re-sends no history on a join of a room already joined', async () => {
    const c = await open(server, john);
    c.send({ type: 'join', room: 'general' });
    await c.next('joined');
    c.send({ type: 'send', room: 'general', text: 'hello', id: 'a' });
    await c.next('ack');
    c.send({ type: 'join', room: 'general' });
    const again = await c.next('joined');
    assert.deepEqual(again.history, []);
    assert.deepEqual(again.members, ['johndoe']);
    // A new connection still gets the history on its first join.
    const d = await open(server, john);
    d.send({ type: 'join', room: 'general' });
    assert.equal(((await d.next('joined')).history as unknown[]).length, 1);
    c.close();
    d.close();
  });

  it('refuses text with C0 controls or bidi overrides, and keeps newline and tab', async () => {
    const c = await open(server, john);
    c.send({ type: 'join', room: 'general' });
    await c.next('joined');
    for (const [i, text] of [
      'nul\u0000',
      'bell\u0007',
      'esc\u001b[2J',
      'cr\r',
      'del\u007f',
      'rtl\u202eevil',
      'iso\u2066x',
    ].entries()) {
      c.send({ type: 'send', room: 'general', text, id: `bad${i}` });
      const error = await c.next('error', (f) => f.id === `bad${i}`);
      assert.equal(error.code, 'invalid_text', JSON.stringify(text));
    }
    c.send({ type: 'send', room: 'general', text: 'line one\n\tline two', id: 'good' });
    await c.next('ack', (f) => f.id === 'good');
    c.close();
  });

  it('bounds room creation per user and overall; empty rooms leave the live list and welcome', async () => {
    const c = await open(server, john);
    for (const room of ['r1', 'r2', 'r3']) {
      c.send({ type: 'join', room });
      await c.next('joined', (f) => f.room === room);
    }
    // A fourth new room within the minute: too many for this user.
    c.send({ type: 'join', room: 'r4' });
    assert.equal((await c.next('error')).code, 'rate_limited');

    // Overall: general and r1–r3 are live, and another user may create one more (max 4), no more.
    const d = await open(server, jane);
    assert.deepEqual(d.welcome.rooms, ['general', 'r1', 'r2'], 'welcome is bounded to 3');
    d.send({ type: 'join', room: 'r5' });
    await d.next('joined', (f) => f.room === 'r5');
    d.send({ type: 'join', room: 'r6' });
    assert.equal((await d.next('error')).code, 'too_many_rooms');

    // Leaving empties r1–r3: they leave the live list (their history stays), room for new ones.
    for (const room of ['r1', 'r2', 'r3']) c.send({ type: 'leave', room });
    c.send({ type: 'ping' });
    await c.next('pong');
    // The next presence batch drops the rooms left empty.
    timers.advance(100);
    const e = await open(server, jane);
    const welcome = e.welcome.rooms;
    e.close();
    assert.deepEqual(welcome, ['general', 'r5']);
    server.clock.advance(60_000);
    d.send({ type: 'join', room: 'r6' });
    await d.next('joined', (f) => f.room === 'r6');
    c.close();
    d.close();
  });
});
