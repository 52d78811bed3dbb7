/**
 * The samples in docs/scan.md, run as written against a real `wsgate serve --demo` process that
 * proxies `/app` to a `ws` backend selecting no subprotocol: the first `sh` block gets a token,
 * each later one scans, and the `text` block after it is what the scan must print (for the report:
 * each check's verdict; otherwise the output itself).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bin,
  cleanEnv,
  ensureBuilt,
  repo,
  startServeProcess,
  type ServeProcess,
} from './support/cli.js';
import { chatV2OrNone, startUpstream, type Upstream } from './support/upstream.js';

const page = readFileSync(join(repo, 'docs', 'scan.md'), 'utf8');
const blocks = [...page.matchAll(/```(sh|text)\n([\s\S]*?)```/g)].map((m) => ({
  lang: m[1] as 'sh' | 'text',
  body: m[2] ?? '',
}));

const tools = ['bash', 'curl', 'jq'].filter((t) => spawnSync('which', [t]).status !== 0);
const skip =
  tools.length > 0 && process.env.CI !== 'true'
    ? `skipped: ${tools.join(', ')} not installed (the samples use them)`
    : false;

/**
 * `npx wsgate` inside the sample runs this checkout's CLI, as it does after `npm install` here.
 * No `set -e`: a scan that finds something exits 1, and the lines after it still run, as typed.
 */
const prelude = `npx() { if [ "$1" = wsgate ]; then shift; node ${JSON.stringify(bin)} "$@"; else command npx "$@"; fi; }\n`;

function runScript(
  script: string,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', prelude + script], { cwd, env: cleanEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * `check verdict` pairs of a text report (the baseline as `baseline ok`). Whether a flood trips
 * wsgate's rate limits (50 a second) depends on how fast this machine sends it, so for the two
 * floods only the fact that they ran is compared: held or info.
 */
function verdicts(report: string): string[] {
  return [...report.matchAll(/^([a-z0-9-]+) +(ok|FAILED|held|WEAK|info|n\/a) /gm)].map((m) =>
    /^(message|handshake)-flood$/.test(m[1] ?? '') && /^(held|info)$/.test(m[2] ?? '')
      ? `${m[1]} ran`
      : `${m[1]} ${m[2]}`,
  );
}

describe('docs/scan.md', { skip }, () => {
  let server: ServeProcess;
  let backend: Upstream;
  const dataDir = mkdtempSync(join(tmpdir(), 'wsgate-scan-docs-'));
  before(async () => {
    ensureBuilt();
    backend = await startUpstream({ protocol: chatV2OrNone });
    // Seeding the demo users hashes three passwords: slow on a busy machine.
    server = await startServeProcess(
      ['--demo', '--port', '0', '--data-dir', dataDir, '--proxy', `/app=${backend.url}/ws`],
      'wsgate',
      60_000,
    );
  });
  after(async () => {
    server?.child.kill('SIGTERM');
    await backend?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const local = (script: string) => script.replaceAll('127.0.0.1:8000', `127.0.0.1:${server.port}`);

  it('has a token sample, then scan samples each followed by their output', () => {
    assert.equal(blocks[0]?.lang, 'sh');
    assert.match(blocks[0]?.body ?? '', /token\.txt/);
    const scans = blocks.slice(1);
    assert.ok(scans.length >= 2);
    for (let i = 0; i < scans.length; i += 2) {
      assert.equal(scans[i]?.lang, 'sh');
      assert.equal(scans[i + 1]?.lang, 'text');
    }
  });

  // One at a time: each scan ends with a handshake flood that wsgate throttles per client address,
  // and every sample scans from the same address.
  it('runs every scan sample and prints what the page shows', async (t) => {
    const getToken = blocks[0]!.body;
    const samples = [];
    for (let i = 1; i + 1 < blocks.length; i += 2)
      samples.push([blocks[i]!.body, blocks[i + 1]!.body] as const);
    for (const [n, [script, shown]] of samples.entries()) {
      await t.test(`sample ${n + 1}: ${script.split('\n')[0]}`, async () => {
        const cwd = mkdtempSync(join(tmpdir(), 'wsgate-scan-sample-'));
        try {
          const token = await runScript(local(getToken), cwd);
          assert.equal(token.code, 0, token.stderr);
          const run = await runScript(local(script), cwd);
          const report = verdicts(shown);
          if (report.length > 0) {
            // A report: the same checks with the same verdicts (times and counts vary).
            assert.deepEqual(verdicts(run.stdout), report, run.stdout + run.stderr);
          } else {
            assert.equal(run.code, 0, run.stderr);
            assert.equal(run.stdout, shown, run.stderr);
          }
        } finally {
          rmSync(cwd, { recursive: true, force: true });
        }
      });
    }
  });
});
