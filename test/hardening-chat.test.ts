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

describe('chat joined-frame budget', () => {
  let server: TestServer;
  let john: string;
  let jane: string;
  before(async () => {
    server = await startTestServer({ 'joined-bytes-per-minute': '20000' });
    john = (await passwordGrant(server)).access_token;
    jane = (await passwordGrant(server, 'janedoe', 'secret2')).access_token;
  });
  after(() => server.stop());

  it('charges every joined frame to the user: past the budget a rejoin, a new connection and a replay are refused until it refills', async () => {
    const c = await open(server, john);
    c.send({ type: 'join', room: 'big' });
    await c.next('joined');
    for (let i = 0; i < 5; i++) {
      c.send({ type: 'send', room: 'big', text: 'x'.repeat(4000), id: `m${i}` });
      await c.next('ack', (f) => f.id === `m${i}`);
    }
    // The budget holds one such history (20 KB of text), so the first rejoin still gets it.
    c.send({ type: 'leave', room: 'big' });
    c.send({ type: 'join', room: 'big' });
    assert.equal(((await c.next('joined')).history as unknown[]).length, 5);
    // Leaving and joining again, as the attack did hundreds of times a second: refused.
    c.send({ type: 'leave', room: 'big' });
    c.send({ type: 'join', room: 'big' });
    const refused = await c.next('error');
    assert.equal(refused.code, 'rate_limited');
    assert.match(refused.message as string, /retry after \d+s/);
    // So is the same user on a new connection, replaying everything with since: 0.
    const d = await open(server, john);
    d.send({ type: 'join', room: 'big', since: 0 });
    assert.equal((await d.next('error')).code, 'rate_limited');
    // Another user has a budget of their own.
    const e = await open(server, jane);
    e.send({ type: 'join', room: 'big' });
    assert.equal(((await e.next('joined')).history as unknown[]).length, 5);
    // A minute later the budget is full again.
    server.clock.advance(60_000);
    d.send({ type: 'join', room: 'big', since: 0 });
    assert.equal(((await d.next('joined')).history as unknown[]).length, 5);
    c.close();
    d.close();
    e.close();
  });

  it('pages forward with since on a room already joined, and re-sends nothing without it', async () => {
    server.clock.advance(60_000);
    const c = await open(server, jane);
    c.send({ type: 'join', room: 'paging' });
    await c.next('joined');
    const ids: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      c.send({ type: 'send', room: 'paging', text: `p${i}`, id: `p${i}` });
      ids.push((await c.next('ack', (f) => f.id === `p${i}`)).msgId);
    }
    c.send({ type: 'join', room: 'paging' });
    assert.deepEqual((await c.next('joined')).history, []);
    c.send({ type: 'join', room: 'paging', since: ids[0] });
    const page = (await c.next('joined')).history as { id: unknown }[];
    assert.deepEqual(
      page.map((m) => m.id),
      ids.slice(1),
    );
    c.close();
  });
});
