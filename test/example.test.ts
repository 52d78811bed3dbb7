import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { connect } from './support/ws.js';

describe('examples/plain-http.ts', () => {
  it('guards a plain http.Server: the printed token opens /live, no token is refused with 401', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/plain-http.ts'], {
      env: { ...process.env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`example exited with ${code}`)));
      });
      const { url, token } = JSON.parse(line) as { url: string; token: string };
      const ok = await connect(url, {
        headers: { authorization: `Bearer ${token}` },
        send: ['hi'],
        messages: 2,
      });
      assert.equal(ok.kind, 'open');
      if (ok.kind === 'open') {
        assert.deepEqual(ok.messages, ['hello alice', 'echo hi']);
        ok.socket.terminate();
      }
      const refused = await connect(url);
      assert.equal(refused.kind, 'http');
      if (refused.kind === 'http') assert.equal(refused.status, 401);
      const foreign = await connect(url, {
        headers: { authorization: `Bearer ${token}`, origin: 'https://evil.example' },
      });
      assert.equal(foreign.kind, 'http');
      if (foreign.kind === 'http') assert.equal(foreign.status, 403);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
