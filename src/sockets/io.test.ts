import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { framePayload, frameWriter, textFrame } from './io.js';

/** A real server and client; `deflate` offers and accepts permessage-deflate on both sides. */
async function pair(deflate: boolean) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: deflate });
  await once(wss, 'listening');
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, {
    perMessageDeflate: deflate,
  });
  await once(client, 'open');
  const [server] = await accepted;
  return {
    server,
    client,
    close: async () => {
      client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

describe('frames written once for many sockets', () => {
  // 7-bit, 16-bit and 64-bit payload lengths: each header form of RFC 6455 §5.2.
  for (const size of [5, 125, 126, 65_535, 65_536]) {
    it(`a ${size}-byte text frame reaches a ws client whole and as text`, async () => {
      const { server, client, close } = await pair(false);
      try {
        const payload = Buffer.from('é'.repeat(Math.floor(size / 2)) + 'x'.repeat(size % 2));
        assert.equal(payload.length, size);
        const frame = textFrame(payload);
        assert.deepEqual(framePayload(frame), payload);
        const socket = frameWriter(server);
        assert.ok(socket, 'no extension negotiated: frames go to the socket');
        const got = once(client, 'message') as Promise<[RawData, boolean]>;
        socket.write(frame);
        const [data, isBinary] = await got;
        assert.equal(isBinary, false);
        assert.equal((data as Buffer).toString('utf8'), payload.toString('utf8'));
      } finally {
        await close();
      }
    });
  }

  it('keeps the order of frames written beside ws.send', async () => {
    const { server, client, close } = await pair(false);
    try {
      const socket = frameWriter(server);
      assert.ok(socket);
      const got: string[] = [];
      const all = new Promise<void>((resolve) =>
        client.on('message', (data: RawData) => {
          got.push((data as Buffer).toString('utf8'));
          if (got.length === 4) resolve();
        }),
      );
      server.send('one');
      socket.write(textFrame(Buffer.from('two')));
      server.send('three');
      socket.write(textFrame(Buffer.from('four')));
      await all;
      assert.deepEqual(got, ['one', 'two', 'three', 'four']);
    } finally {
      await close();
    }
  });

  it('gives no socket to write to once an extension is negotiated (ws may hold frames back)', async () => {
    const { server, close } = await pair(true);
    try {
      assert.notEqual(server.extensions, '');
      assert.equal(frameWriter(server), undefined);
    } finally {
      await close();
    }
  });
});
