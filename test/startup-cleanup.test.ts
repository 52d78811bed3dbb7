/**
 * A start that fails half-way leaves nothing running: the node's timers (heartbeat, presence
 * batches, revocation poll, first-message waits), its subscriptions and its database are stopped
 * before the error reaches the caller, so an embedding process that catches it is not left polling
 * a closed database, and `wsgate serve` exits at once with a message naming the setting.
 *
 * The failure is real: a Redis user whose ACL allows every command but no channel, so the start
 * gets past the Redis check (PING) and the database, and fails when the cluster subscribes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { RedisPubSub } from '../src/pubsub/redis.js';
import { startServer } from '../src/server/serve.js';
import { LogCapture } from './support/server.js';
import { manualTimers } from './support/timers.js';
import { ensureBuilt, wsgate } from './support/cli.js';
import { redisReachable, redisUrl, skipUnlessReachable } from './support/services.js';

const skip = await skipUnlessReachable('Redis', redisUrl, redisReachable);

describe('a start that fails after the node started its work', { skip }, () => {
  const user = `wsgate-test-no-channels-${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const url = new URL(redisUrl);
  url.username = user;
  url.password = password;
  const noChannels = url.toString();
  const dirs: string[] = [];
  const dataDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'wsgate-startup-'));
    dirs.push(dir);
    return dir;
  };

  before(async () => {
    const admin = new Redis(redisUrl);
    try {
      await admin.call(
        'ACL',
        'SETUSER',
        user,
        'on',
        `>${password}`,
        '~*',
        '+@all',
        'resetchannels',
      );
    } finally {
      admin.disconnect();
    }
  });

  after(async () => {
    const admin = new Redis(redisUrl);
    try {
      await admin.call('ACL', 'DELUSER', user);
    } finally {
      admin.disconnect();
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('rejects startServer and stops every timer the node had armed', async () => {
    const timers = manualTimers();
    const logs = new LogCapture();
    const config = loadConfig({
      port: '0',
      host: '127.0.0.1',
      'data-dir': dataDir(),
      demo: true,
      issuer: 'http://wsgate.test',
      'log-level': 'info',
    });
    const bus = new RedisPubSub(noChannels);
    await assert.rejects(
      startServer(config, { bus, timers, log: createLogger(config.logLevel, logs) }),
      /cannot subscribe to the cluster channels: NOPERM/,
    );
    assert.equal(timers.pending, 0, 'no heartbeat, presence batch or revocation poll left armed');
    // Were a poll left behind, stepping time would run it against the closed database.
    timers.advance(60_000);
    assert.doesNotMatch(logs.text, /revocation poll failed/);
    assert.ok(!logs.text.includes(password), 'the Redis password is in no log line');
  });

  it('makes `wsgate serve` exit with 1 and a message naming --redis, password hidden', async () => {
    ensureBuilt();
    const run = await wsgate([
      'serve',
      '--demo',
      '--port',
      '0',
      '--data-dir',
      dataDir(),
      '--redis',
      noChannels,
    ]);
    // Not killed: it exits on its own once the start failed.
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      /--redis "redis:\/\/[^"]*": cannot subscribe to the cluster channels: NOPERM/,
    );
    assert.ok(!(run.stdout + run.stderr).includes(password), 'the password is hidden');
  });
});
