import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { passwordGrant, startTestServer, type TestServer } from './support/server.js';
import { handshakeBytes, openRaw, parseHead, requestHead, waitMs } from './support/raw-socket.js';
import { connect, wsUrl } from './support/ws.js';

/** Sends raw request bytes and returns the parsed response head once it is in. */
async function exchange(server: TestServer, bytes: Buffer | string) {
  const client = await openRaw(server.port);
  try {
    client.write(bytes);
    assert.ok(
      await client.waitFor(() => parseHead(client.received()) !== undefined, waitMs),
      'no response head',
    );
    const head = parseHead(client.received())!;
    return { head, body: head.rest.toString('utf8') };
  } finally {
    client.destroy();
  }
}

describe('Authorization headers on handshakes and HTTP', () => {
  let server: TestServer;
  let token: string;
  before(async () => {
    server = await startTestServer();
    token = (await passwordGrant(server)).access_token;
  });
  after(() => server.stop());

  it('refuses a handshake with two Authorization headers with 400, whatever their order', async () => {
    for (const pair of [
      [`Bearer ${token}`, 'Bearer garbage'],
      ['Bearer garbage', `Bearer ${token}`],
      [`Bearer ${token}`, `Bearer ${token}`],
    ]) {
      const bytes = handshakeBytes('/secured-ws', `127.0.0.1:${server.port}`, [
        ['authorization', pair[0]!],
        ['Authorization', pair[1]!],
      ]);
      const { head, body } = await exchange(server, bytes);
      assert.equal(head.status, 400, body);
      assert.match(body, /More than one Authorization header/);
    }
  });

  it('refuses an HTTP request with two Authorization headers with 400', async () => {
    const { head, body } = await exchange(
      server,
      requestHead('POST', '/ws-ticket', [
        ['host', `127.0.0.1:${server.port}`],
        ['authorization', `Bearer ${token}`],
        ['authorization', 'Bearer garbage'],
        ['content-length', '0'],
      ]),
    );
    assert.equal(head.status, 400, body);
    assert.match(body, /More than one Authorization header/);
  });

  it('answers Authorization: Basic with 401 and a bare Bearer challenge, not 400', async () => {
    const basic = { authorization: `Basic ${Buffer.from('johndoe:secret').toString('base64')}` };
    for (const path of ['/secured-ws', '/ws']) {
      const outcome = await connect(wsUrl(server, path), { headers: basic });
      assert.equal(outcome.kind, 'http');
      if (outcome.kind !== 'http') continue;
      assert.equal(outcome.status, 401);
      assert.equal(outcome.headers['www-authenticate'], 'Bearer realm="wsgate"');
      assert.equal((outcome.body as { error: string }).error, 'credential_missing');
    }
    const http = await fetch(`${server.url}/ws-ticket`, { method: 'POST', headers: basic });
    assert.equal(http.status, 401);
    assert.equal(http.headers.get('www-authenticate'), 'Bearer realm="wsgate"');
  });

  it('makes a Basic client a guest on /ws/optional', async () => {
    const outcome = await connect(wsUrl(server, '/ws/optional'), {
      headers: { authorization: 'Basic Zm9vOmJhcg==' },
      messages: 1,
    });
    assert.equal(outcome.kind, 'open');
    if (outcome.kind !== 'open') return;
    assert.deepEqual(outcome.messages, ['Welcome guest!']);
    outcome.socket.close();
  });

  it('still answers a malformed Bearer header with 400 invalid_request', async () => {
    const outcome = await connect(wsUrl(server, '/secured-ws'), {
      headers: { authorization: 'Bearer a b c' },
    });
    assert.equal(outcome.kind === 'http' && outcome.status, 400);
  });
});

describe('half-open upgrades', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'upgrade-timeout': '1s' });
  });
  after(() => server.stop());

  it('drops an upgrade whose head is not complete within --upgrade-timeout', async () => {
    const client = await openRaw(server.port);
    try {
      // The head never ends: no blank line.
      client.write(
        `GET /secured-ws HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\nupgrade: websocket\r\n`,
      );
      assert.ok(await client.waitForEnd(4000), 'the half-open upgrade is still held');
    } finally {
      client.destroy();
    }
  });

  it('drops a request whose body is not complete within three times --upgrade-timeout', async () => {
    const client = await openRaw(server.port);
    // A byte every 200 ms of a 1000-byte body: Node's own request timeout held it 300 s.
    const trickle = setInterval(() => client.write('a'), 200);
    try {
      client.write(
        `POST /token HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\n` +
          'content-type: application/x-www-form-urlencoded\r\ncontent-length: 1000\r\n\r\n',
      );
      assert.ok(await client.waitForEnd(6000), 'the slow body is still held');
    } finally {
      clearInterval(trickle);
      client.destroy();
    }
  });

  it('keeps the 10 s default', async () => {
    const { loadConfig } = await import('../src/config.js');
    assert.equal(loadConfig({}).upgradeTimeout, 10);
    assert.equal(loadConfig({}, { WSGATE_UPGRADE_TIMEOUT: '3s' }).upgradeTimeout, 3);
  });
});
