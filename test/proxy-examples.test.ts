import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import {
  createGate,
  createIdentityKey,
  createVerifier,
  generateSigningKey,
  issueToken,
  keySetFromStoredKeys,
} from '../src/index.js';
import { ensureBuilt, repo, startServeProcess, type ServeProcess } from './support/cli.js';
import { passwordGrant } from './support/server.js';
import { connect } from './support/ws.js';

/** The Python with Debian's python3-fastapi, -uvicorn and -jwt (CI installs them). */
const python = process.env.WSGATE_TEST_PYTHON ?? '/usr/bin/python3';

function pythonReady(): boolean {
  const probe = spawnSync(python, ['-c', 'import fastapi, uvicorn, jwt, websockets'], {
    encoding: 'utf8',
  });
  return probe.status === 0;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once something accepts TCP connections on `port` (a started child process). */
async function listening(port: number, child: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Opens a socket and collects messages until `count` have arrived. */
async function exchange(
  url: string,
  headers: Record<string, string>,
  send: string[],
  count: number,
) {
  const ws = new WebSocket(url, { headers });
  const messages: string[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      messages.push(data.toString());
      if (messages.length === 1) for (const m of send) ws.send(m);
      if (messages.length >= count) resolve();
    });
    ws.once('close', (code) =>
      reject(new Error(`closed with ${code} after ${JSON.stringify(messages)}`)),
    );
  });
  return { ws, messages, closed };
}

describe('docs/proxy.md', () => {
  it('shows the example files exactly as they are in examples/proxy', () => {
    const doc = readFileSync(join(repo, 'docs', 'proxy.md'), 'utf8');
    const blocks = [...doc.matchAll(/<!-- example: (\S+) -->\s*```\w*\n([\s\S]*?)```/g)];
    assert.deepEqual(
      blocks.map(([, file]) => file),
      [
        'examples/proxy/app.py',
        'examples/proxy/wsgate_identity.py',
        'examples/proxy/node-backend.ts',
      ],
    );
    for (const [, file = '', code] of blocks) {
      assert.equal(
        code,
        readFileSync(join(repo, file), 'utf8'),
        `${file} differs from docs/proxy.md`,
      );
    }
  });
});

describe('docs/proxy.md walkthrough: the FastAPI app behind wsgate serve', () => {
  let skipped: string | false = false;
  let backend: ChildProcess | undefined;
  let gate: ServeProcess | undefined;
  let backendPort = 0;
  const dataDir = mkdtempSync(join(tmpdir(), 'wsgate-proxy-example-'));

  before(async () => {
    if (!pythonReady()) {
      if (process.env.CI === 'true')
        throw new Error(`${python} lacks fastapi, uvicorn or jwt in CI`);
      skipped = `skipped: ${python} lacks fastapi, uvicorn, jwt or websockets (apt-get install python3-fastapi python3-uvicorn python3-jwt)`;
      return;
    }
    ensureBuilt();
    backendPort = await freePort();
    const upstream = `ws://127.0.0.1:${backendPort}/secured-ws`;
    gate = await startServeProcess([
      '--demo',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--proxy',
      `/secured-ws=${upstream}`,
    ]);
    backend = spawn(
      python,
      ['-m', 'uvicorn', 'app:app', '--port', String(backendPort), '--log-level', 'warning'],
      {
        cwd: join(repo, 'examples', 'proxy'),
        env: { ...process.env, GATE_URL: gate.url, IDENTITY_AUDIENCE: upstream },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    await listening(backendPort, backend);
  });
  after(async () => {
    backend?.kill('SIGTERM');
    gate?.child.kill('SIGTERM');
    await gate?.exit;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('welcomes johndoe and echoes through wsgate, then closes with 4410 on logout', async (t) => {
    if (skipped || !gate) return t.skip(skipped || 'not started');
    const { access_token } = await passwordGrant(gate);
    const url = `${gate.url.replace(/^http/, 'ws')}/secured-ws`;
    const { ws, messages, closed } = await exchange(
      url,
      { authorization: `Bearer ${access_token}` },
      ['hi'],
      2,
    );
    assert.deepEqual(messages, ['Welcome johndoe!', 'You wrote: hi']);
    const res = await fetch(`${gate.url}/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access_token}` },
    });
    assert.equal(res.status, 204);
    assert.equal((await closed).code, 4410);
    ws.terminate();
  });

  it('refuses a bad token at wsgate, and a socket that bypasses wsgate at the app', async (t) => {
    if (skipped || !gate) return t.skip(skipped || 'not started');
    const refused = await connect(`${gate.url.replace(/^http/, 'ws')}/secured-ws`, {
      headers: { authorization: 'Bearer not-a-token' },
    });
    assert.equal(refused.kind === 'http' && refused.status, 401);
    const direct = await connect(`ws://127.0.0.1:${backendPort}/secured-ws`, {
      headers: { 'x-wsgate-user': 'johndoe', 'x-wsgate-identity': 'forged.token.here' },
    });
    assert.equal(direct.kind === 'http' && direct.status, 403);
  });
});

describe('docs/proxy.md: the Node backend verifying with jose', () => {
  it('accepts a socket through the gate and refuses one that bypasses it', async () => {
    // The gate here is the library, with its own keys: the backend reads them from its JWKS.
    const keys = keySetFromStoredKeys([await generateSigningKey()]);
    const identityKey = createIdentityKey();
    const issuer = 'http://gate.test';
    const http = createHttpServer((req, res) => {
      if (req.url === '/.well-known/jwks.json') {
        res.setHeader('content-type', 'application/json');
        return res.end(JSON.stringify({ keys: [...keys.jwks.keys, identityKey.jwk] }));
      }
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const gateUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/proxy/node-backend.ts'], {
      cwd: repo,
      env: { ...process.env, GATE_URL: gateUrl, GATE_ISSUER: issuer, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`backend exited with ${code}`)));
      });
      const { url: upstream } = JSON.parse(line) as { url: string };
      const gate = createGate({
        verify: createVerifier(keys, { issuer, audience: 'wsgate' }),
        proxy: { identityKey, issuer },
      });
      gate.proxy('/app', upstream);
      http.on('upgrade', gate.handleUpgrade);
      const { token } = await issueToken(keys, {
        type: 'access',
        subject: 'alice',
        sessionId: 's1',
        scope: '',
        ttl: 60,
        issuer,
        audience: 'wsgate',
        now: Date.now(),
      });
      const { ws, messages } = await exchange(
        `${gateUrl.replace('http', 'ws')}/app`,
        { authorization: `Bearer ${token}` },
        ['hi'],
        2,
      );
      assert.deepEqual(messages, ['Welcome alice!', 'You wrote: hi']);
      ws.close();
      const direct = await connect(upstream, {
        headers: { 'x-wsgate-identity': 'forged.token.here' },
      });
      assert.equal(direct.kind === 'http' && direct.status, 403);
      await gate.drain(1000);
    } finally {
      child.kill('SIGTERM');
      http.closeAllConnections();
      http.close();
    }
  });
});
