/**
 * The gate against hand-written bytes: malformed handshakes, hostile frames and oversized input
 * sent over raw `node:net` sockets, checking the HTTP status or close code the contract promises
 * (DESIGN.md §3, §4) and that the server stays up after each.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, passwordGrant, type TestServer } from './support/server.js';
import { connect as wsConnect, wsUrl } from './support/ws.js';
import {
  openRaw,
  parseHead,
  handshake,
  newKey,
  op,
  frame,
  parseFrames,
  closeCodeOf,
  waitMs,
  type RawClient,
  type HttpHead,
  type ServerFrame,
} from './support/raw-socket.js';

const maxPayload = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Raw exchanges

interface RawHttpResult {
  readonly head: HttpHead | undefined;
  readonly bytes: Buffer;
  readonly body: string;
  json(): unknown;
}

/** Sends raw request bytes and reads until the server ends the socket or the wait runs out. */
async function rawExchange(port: number, request: string | Buffer): Promise<RawHttpResult> {
  const client = await openRaw(port);
  try {
    client.write(request);
    await client.waitForEnd();
    const bytes = client.received();
    const head = parseHead(bytes);
    const body = head ? head.rest.toString('utf8') : '';
    return { head, bytes, body, json: () => JSON.parse(body) as unknown };
  } finally {
    client.destroy();
  }
}

function assertNoUpgrade(result: RawHttpResult): void {
  assert.ok(
    !result.bytes.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 101'),
    `expected no upgrade, got: ${result.bytes.subarray(0, 80).toString('latin1')}`,
  );
  assert.equal(result.head?.headers['upgrade'], undefined);
  assert.equal(result.head?.headers['sec-websocket-accept'], undefined);
}

/** An upgraded raw connection. */
interface RawWebSocket {
  readonly client: RawClient;
  readonly head: HttpHead;
  frames(): ServerFrame[];
  texts(): string[];
  send(bytes: Buffer): void;
  /** Waits for the server's close frame; returns its code, or undefined if none came. */
  closeCode(): Promise<number | undefined>;
  /** Waits until `n` text messages have arrived. */
  waitForTexts(n: number): Promise<string[]>;
  /** Answers a close (politely) and drops the socket. */
  dispose(): void;
}

async function upgradeRaw(
  port: number,
  target: string,
  headers: Record<string, string | null>,
): Promise<RawWebSocket> {
  const client = await openRaw(port);
  client.write(handshake(target, headers));
  await client.waitFor(() => parseHead(client.received()) !== undefined);
  const head = parseHead(client.received());
  assert.ok(
    head,
    `no HTTP response head; got ${JSON.stringify(client.received().toString('latin1'))}`,
  );
  if (head.status !== 101) {
    client.destroy();
    assert.fail(`expected 101, got ${head.statusLine}: ${head.rest.toString('utf8')}`);
  }
  const headLength = head.raw.length;
  const frames = () => parseFrames(client.received().subarray(headLength), true);
  const closeFrame = () => frames().find((f) => f.opcode === op.close);
  const ws: RawWebSocket = {
    client,
    head,
    frames,
    texts: () =>
      frames()
        .filter((f) => f.opcode === op.text && f.fin)
        .map((f) => f.payload.toString('utf8')),
    send: (bytes) => client.write(bytes),
    async closeCode() {
      await client.waitFor(() => closeFrame() !== undefined);
      const f = closeFrame();
      return f ? closeCodeOf(f) : undefined;
    },
    async waitForTexts(n) {
      await client.waitFor(() => ws.texts().length >= n);
      return ws.texts();
    },
    dispose() {
      const f = closeFrame();
      if (f && !client.ended) {
        const reply = Buffer.alloc(2);
        reply.writeUInt16BE(closeCodeOf(f) ?? 1000);
        client.write(frame(op.close, reply));
        client.socket.end();
      }
      client.destroy();
    },
  };
  return ws;
}

// ---------------------------------------------------------------------------------------------

describe('WebSocket gate against raw bytes', () => {
  let server: TestServer;
  let accessToken: string;
  const processErrors: { kind: string; error: unknown }[] = [];
  const onRejection = (error: unknown) => processErrors.push({ kind: 'unhandledRejection', error });
  const onException = (error: unknown) => processErrors.push({ kind: 'uncaughtException', error });

  /** A well-formed, authenticated upgrade on /secured-ws, with the welcome line already read. */
  async function securedSocket(): Promise<RawWebSocket> {
    const ws = await upgradeRaw(server.port, '/secured-ws', {
      authorization: `Bearer ${accessToken}`,
    });
    assert.deepEqual(await ws.waitForTexts(1), ['Welcome johndoe!']);
    return ws;
  }

  /** The server answers /healthz and a fresh, well-behaved WebSocket client is welcomed. */
  async function assertServerHealthy(): Promise<void> {
    const res = await fetch(`${server.url}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
    const outcome = await wsConnect(wsUrl(server, '/secured-ws'), {
      headers: { authorization: `Bearer ${accessToken}` },
      messages: 1,
      timeoutMs: waitMs,
    });
    assert.equal(outcome.kind, 'open');
    if (outcome.kind !== 'open') return;
    assert.deepEqual(outcome.messages, ['Welcome johndoe!']);
    outcome.socket.close();
  }

  before(async () => {
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    server = await startTestServer();
    accessToken = (await passwordGrant(server)).access_token;
  });

  after(async () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    await server.stop();
  });

  describe('refused handshakes', () => {
    it('answers a handshake without Sec-WebSocket-Key with 400 invalid_request JSON and no upgrade', async () => {
      const result = await rawExchange(
        server.port,
        handshake('/secured-ws', { 'sec-websocket-key': null }),
      );
      assertNoUpgrade(result);
      assert.equal(result.head?.status, 400);
      assert.match(result.head?.headers['content-type'] ?? '', /^application\/json/);
      const body = result.json() as { error?: unknown; error_description?: unknown };
      assert.equal(body.error, 'invalid_request');
      assert.equal(typeof body.error_description, 'string');
    });

    it('answers a handshake with a malformed Sec-WebSocket-Key with 400 and no upgrade', async () => {
      for (const key of [
        'not-a-key',
        'AAAA',
        `${newKey()}x`,
        Buffer.alloc(15).toString('base64'),
      ]) {
        const result = await rawExchange(
          server.port,
          handshake('/secured-ws', { 'sec-websocket-key': key }),
        );
        assertNoUpgrade(result);
        assert.equal(result.head?.status, 400, `key ${key}`);
        assert.equal((result.json() as { error?: unknown }).error, 'invalid_request');
      }
    });

    it('answers Sec-WebSocket-Version 8 with 426 and sec-websocket-version: 13', async () => {
      const result = await rawExchange(
        server.port,
        handshake('/secured-ws', { 'sec-websocket-version': '8' }),
      );
      assertNoUpgrade(result);
      assert.equal(result.head?.status, 426);
      assert.equal(result.head?.headers['sec-websocket-version'], '13');
    });

    it('answers a handshake without Sec-WebSocket-Version with 426 and sec-websocket-version: 13', async () => {
      const result = await rawExchange(
        server.port,
        handshake('/secured-ws', { 'sec-websocket-version': null }),
      );
      assertNoUpgrade(result);
      assert.equal(result.head?.status, 426);
      assert.equal(result.head?.headers['sec-websocket-version'], '13');
    });

    it('answers a POST carrying upgrade headers with 405 and never upgrades', async () => {
      const result = await rawExchange(
        server.port,
        handshake(
          '/secured-ws',
          { authorization: `Bearer ${accessToken}`, 'content-length': '0' },
          'POST',
        ),
      );
      assertNoUpgrade(result);
      assert.equal(result.head?.status, 405);
      assert.equal(result.head?.headers['allow'], 'GET');
    });

    it('answers a 100 KB header with 431 from Node, and the server stays up', async () => {
      const request = handshake('/secured-ws', {
        authorization: `Bearer ${accessToken}`,
        'x-padding': 'a'.repeat(100 * 1024),
      });
      const result = await rawExchange(server.port, request);
      assertNoUpgrade(result);
      assert.equal(result.head?.status, 431);
      await assertServerHealthy();
    });

    it('answers a request target longer than 4096 characters with 400 (or 414) and no upgrade', async () => {
      const target = `/secured-ws?pad=${'b'.repeat(5000)}`;
      const result = await rawExchange(
        server.port,
        handshake(target, { authorization: `Bearer ${accessToken}` }),
      );
      assertNoUpgrade(result);
      assert.ok(
        result.head?.status === 400 || result.head?.status === 414,
        `expected 400 or 414, got ${result.head?.statusLine}`,
      );
    });

    it('answers an unknown path with 404 JSON and no upgrade', async () => {
      const result = await rawExchange(
        server.port,
        handshake('/no-such-socket', { authorization: `Bearer ${accessToken}` }),
      );
      assertNoUpgrade(result);
      assert.equal(result.head?.status, 404);
      assert.equal((result.json() as { error?: unknown }).error, 'not_found');
    });
  });

  describe('after a good authenticated upgrade on /secured-ws', () => {
    it('sends a 101 without Sec-WebSocket-Protocol when no subprotocol was offered', async () => {
      const ws = await securedSocket();
      try {
        assert.match(ws.head.statusLine, /^HTTP\/1\.1 101 /);
        assert.equal(ws.head.headers['upgrade']?.toLowerCase(), 'websocket');
        assert.equal(ws.head.headers['sec-websocket-protocol'], undefined);
        assert.equal(
          ws.head.headers['sec-websocket-extensions'],
          undefined,
          'no permessage-deflate',
        );
      } finally {
        ws.dispose();
      }
    });

    it('closes with 1007 on a text frame with invalid UTF-8', async () => {
      const ws = await securedSocket();
      try {
        ws.send(frame(op.text, Buffer.from([0x48, 0x69, 0xc3, 0x28, 0xff])));
        assert.equal(await ws.closeCode(), 1007);
        assert.equal(ws.texts().length, 1, 'no echo of the invalid frame');
      } finally {
        ws.dispose();
      }
    });

    it('just closes on a truncated frame followed by end of stream, and stays up', async () => {
      const ws = await securedSocket();
      try {
        // The header promises 10 payload bytes; 3 arrive, then the client half-closes.
        const whole = frame(op.text, '0123456789');
        ws.send(whole.subarray(0, 2 + 4 + 3));
        ws.client.socket.end();
        assert.equal(await ws.client.waitForEnd(), true, 'server ends the connection');
        assert.equal(ws.texts().length, 1, 'no echo of the truncated frame');
      } finally {
        ws.dispose();
      }
      await assertServerHealthy();
    });

    it('closes with 1009 on a 70,000-byte text message', async () => {
      const ws = await securedSocket();
      try {
        ws.send(frame(op.text, Buffer.alloc(70_000, 0x61)));
        assert.equal(await ws.closeCode(), 1009);
        assert.equal(ws.texts().length, 1, 'no echo of the oversized message');
      } finally {
        ws.dispose();
      }
      await assertServerHealthy();
    });

    it('echoes a message fragmented into three frames once, as a whole', async () => {
      const ws = await securedSocket();
      try {
        ws.send(frame(op.text, 'Hello, ', { fin: false }));
        ws.send(frame(op.continuation, 'fragmented ', { fin: false }));
        ws.send(frame(op.continuation, 'world', { fin: true }));
        assert.deepEqual(await ws.waitForTexts(2), [
          'Welcome johndoe!',
          'You wrote: Hello, fragmented world',
        ]);
        // And nothing more: one message, one echo. The next message's echo comes right after it.
        ws.send(frame(op.text, 'after'));
        assert.deepEqual(await ws.waitForTexts(3), [
          'Welcome johndoe!',
          'You wrote: Hello, fragmented world',
          'You wrote: after',
        ]);
        assert.equal(
          ws.frames().some((f) => f.opcode === op.close),
          false,
        );
      } finally {
        ws.dispose();
      }
    });

    it('closes with 1009 when fragments add up to more than 64 KiB', async () => {
      const ws = await securedSocket();
      try {
        const part = Buffer.alloc(Math.ceil(maxPayload / 3) + 100, 0x62); // each fits, the sum does not
        ws.send(frame(op.text, part, { fin: false }));
        ws.send(frame(op.continuation, part, { fin: false }));
        ws.send(frame(op.continuation, part, { fin: true }));
        assert.equal(await ws.closeCode(), 1009);
        assert.equal(ws.texts().length, 1, 'no echo of the oversized message');
      } finally {
        ws.dispose();
      }
      await assertServerHealthy();
    });

    it('closes with 1002 on an unmasked client frame', async () => {
      const ws = await securedSocket();
      try {
        ws.send(frame(op.text, 'naked', { mask: false }));
        assert.equal(await ws.closeCode(), 1002);
        assert.equal(ws.texts().length, 1, 'no echo of the unmasked frame');
      } finally {
        ws.dispose();
      }
      await assertServerHealthy();
    });

    it('closes with 4400 on a binary frame', async () => {
      const ws = await securedSocket();
      try {
        ws.send(frame(op.binary, Buffer.from([1, 2, 3, 4])));
        assert.equal(await ws.closeCode(), 4400);
      } finally {
        ws.dispose();
      }
    });
  });

  describe('subprotocol credential', () => {
    it('selects exactly wsgate.v1 for "wsgate.v1, wsgate.bearer.<jwt>" and never echoes the token', async () => {
      const ws = await upgradeRaw(server.port, '/secured-ws', {
        'sec-websocket-protocol': `wsgate.v1, wsgate.bearer.${accessToken}`,
      });
      try {
        assert.equal(ws.head.headers['sec-websocket-protocol'], 'wsgate.v1');
        assert.deepEqual(await ws.waitForTexts(1), ['Welcome johndoe!']);
        const bytes = ws.client.received().toString('latin1');
        assert.equal(bytes.includes(accessToken), false, 'token echoed in the response');
        // Not even its signature or payload segment.
        for (const segment of accessToken.split('.').slice(1)) {
          assert.equal(bytes.includes(segment), false, 'token segment echoed in the response');
        }
        assert.equal(bytes.includes('wsgate.bearer'), false);
      } finally {
        ws.dispose();
      }
    });
  });

  describe('afterwards', () => {
    it('still answers /healthz with 200 and welcomes a fresh WebSocket client', async () => {
      await assertServerHealthy();
    });

    it('saw no unhandledRejection or uncaughtException in the process', () => {
      assert.deepEqual(
        processErrors.map((e) => `${e.kind}: ${String(e.error)}`),
        [],
      );
    });
  });
});
