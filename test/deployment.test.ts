import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { createRuntime } from '../src/runtime.js';
import { startServer } from '../src/server/serve.js';
import { issueToken } from '../src/tokens/issue.js';
import { LogCapture } from './support/server.js';

/**
 * DESIGN §6: the issuer and audience belong to the deployment. Its first start stores them with
 * the keys; every later start, other node and CLI command uses the stored values.
 */

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-deployment-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function ticketStatus(url: string, token: string): Promise<number> {
  const res = await fetch(`${url}/ws-ticket`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  return res.status;
}

describe('the deployment issuer', () => {
  it('signs a CLI token without --port for the issuer of a server listening elsewhere', async () => {
    const dataDir = freshDir();
    const server = await startServer(
      loadConfig({ port: '0', 'data-dir': dataDir, 'log-level': 'silent' }),
    );
    try {
      // What `wsgate token issue alice --data-dir <dir>` does: default port 8000.
      const cli = await createRuntime(loadConfig({ 'data-dir': dataDir, 'log-level': 'silent' }));
      try {
        assert.equal((await cli.claimDeployment()).issuer, server.url);
        await cli.users.add('alice', 'correct horse battery');
        const pair = await cli.sessions.openSession('alice');
        assert.equal(await ticketStatus(server.url, pair.accessToken), 200);
      } finally {
        await cli.close();
      }
    } finally {
      await server.close();
    }
  });

  it('keeps the first start’s issuer for a second node on the same data dir, without --issuer', async () => {
    const dataDir = freshDir();
    const a = await startServer(
      loadConfig({ port: '0', 'data-dir': dataDir, 'log-level': 'silent' }),
    );
    const b = await startServer(
      loadConfig({ port: '0', 'data-dir': dataDir, 'log-level': 'silent' }),
    );
    try {
      assert.notEqual(a.url, b.url);
      assert.equal(b.runtime.deployment.issuer, a.url);
      await a.runtime.users.add('bob', 'correct horse battery');
      const pair = await a.runtime.sessions.openSession('bob');
      assert.equal(await ticketStatus(b.url, pair.accessToken), 200);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('stores --issuer and --audience on first start and refuses different ones later, naming both', async () => {
    const dataDir = freshDir();
    const first = await createRuntime(
      loadConfig({ 'data-dir': dataDir, issuer: 'https://chat.example', audience: 'chat' }),
      { log: createLogger('silent') },
    );
    await first.claimDeployment();
    await first.close();

    const later = await createRuntime(loadConfig({ 'data-dir': dataDir }), {
      log: createLogger('silent'),
    });
    assert.deepEqual(later.deployment, { issuer: 'https://chat.example', audience: 'chat' });
    assert.equal(later.sessions.issuer, 'https://chat.example');
    await later.close();

    await assert.rejects(
      createRuntime(loadConfig({ 'data-dir': dataDir, issuer: 'https://other.example' })),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.includes('https://other.example') &&
        err.message.includes('https://chat.example'),
    );
    await assert.rejects(
      createRuntime(loadConfig({ 'data-dir': dataDir, audience: 'wsgate' })),
      (err: unknown) =>
        err instanceof ConfigError && /--audience wsgate differs .* chat/.test(err.message),
    );
  });

  it('refuses a first start on a non-loopback address without --issuer, creating nothing', async () => {
    const dataDir = join(freshDir(), 'never');
    await assert.rejects(
      startServer(loadConfig({ host: '0.0.0.0', port: '0', 'data-dir': dataDir })),
      (err: unknown) => err instanceof ConfigError && /needs --issuer/.test(err.message),
    );
    assert.ok(!existsSync(dataDir), `${dataDir} was created`);
  });

  it('lets a later node listen on a non-loopback address without --issuer, using the stored one', async () => {
    const dataDir = freshDir();
    const first = await startServer(
      loadConfig({ port: '0', 'data-dir': dataDir, 'log-level': 'silent' }),
    );
    await first.close();
    const later = await startServer(
      loadConfig({ host: '0.0.0.0', port: '0', 'data-dir': dataDir, 'log-level': 'silent' }),
    );
    try {
      assert.equal(later.runtime.deployment.issuer, first.url);
    } finally {
      await later.close();
    }
  });
});

describe('refused tokens at debug level', () => {
  it('logs why a token was refused — iss expected X, got Y — without the token', async () => {
    const dataDir = freshDir();
    const logs = new LogCapture();
    const config = loadConfig({ port: '0', 'data-dir': dataDir, 'log-level': 'debug' });
    const server = await startServer(config, { log: createLogger('debug', logs) });
    try {
      const { token } = await issueToken(server.runtime.keys, {
        type: 'access',
        issuer: 'http://127.0.0.1:8000',
        audience: 'wsgate',
        subject: 'alice',
        sessionId: 'no-such-session',
        scope: 'chat:read',
        ttl: 60,
        now: Date.now(),
      });
      assert.equal(await ticketStatus(server.url, token), 401);
      const line = logs.lines.find((l) => l.includes('iss expected'));
      assert.ok(line, `no debug line names the issuer mismatch:\n${logs.text}`);
      assert.ok(
        line.includes(`iss expected \\"${server.url}\\", got \\"http://127.0.0.1:8000\\"`),
        line,
      );
      assert.ok(!logs.text.includes(token), 'the token is not logged');
      assert.ok(!logs.text.includes(token.split('.')[2] ?? '-'), 'nor its signature');
    } finally {
      await server.close();
    }
  });
});
