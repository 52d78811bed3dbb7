import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { ensureBuilt, repo } from './support/cli.js';
import { fencedSamples, type FencedSample } from './support/doc-samples.js';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Every TypeScript and JavaScript sample in README.md and docs/ compiles against the built
 * package, as a user's strict project would compile it (`import … from 'wsgate'` resolves to
 * this package). A sample that assumes something from its surroundings says so in an HTML
 * comment right before its fence: `<!-- sample: declare const accessToken: string; -->`.
 * The Node samples that talk to a server also run, against a real demo server.
 */

interface Sample extends FencedSample {
  readonly context: string;
}

function samples(): Sample[] {
  return fencedSamples(/^(ts|typescript|js|javascript)$/).map((s) => ({
    ...s,
    context: s.comment,
  }));
}

/** Inside the repository, so that `import 'wsgate'` resolves to this package by its name. */
const workDir = join(repo, 'test-results', 'doc-samples');

function sampleName(s: Sample): string {
  return `${s.file.replace(/[/.]/g, '_')}_${s.line}`;
}

before(() => {
  ensureBuilt();
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
});
after(() => rmSync(workDir, { recursive: true, force: true }));

describe('code samples in the docs', () => {
  it('finds the samples (README and docs hold some)', () => {
    assert.ok(samples().length >= 5, `found ${samples().length}`);
  });

  it('compiles every TypeScript and JavaScript sample against the built package, strictly', () => {
    const names: string[] = [];
    for (const s of samples()) {
      const name = `${sampleName(s)}.ts`;
      names.push(name);
      // Each sample is a module of its own; `export {}` keeps one sample's names out of another's.
      writeFileSync(join(workDir, name), `${s.context}\n${s.code}\nexport {};\n`);
    }
    writeFileSync(
      join(workDir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2023',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2023', 'DOM'],
          types: ['node'],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          typeRoots: [join(repo, 'node_modules', '@types')],
        },
        files: names,
      }),
    );
    const tsc = spawnSync(
      process.execPath,
      [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', workDir],
      { cwd: workDir, encoding: 'utf8', timeout: 180_000 },
    );
    const where = (out: string) =>
      out.replace(
        /^(\w+?)_md_(\d+)\.ts/gm,
        (_m, f: string, l: string) => `${f}.md sample at line ${l}`,
      );
    assert.equal(tsc.status, 0, where(`${tsc.stdout}${tsc.stderr}`));
  });

  describe('the Node chat client of docs/chat.md', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({}, { gateLimits: { handshakeBurst: 1000 } });
    });
    after(() => server.stop());

    it('runs against a demo server: logs in, joins general and hears its own message', async () => {
      const sample = samples().find(
        (s) =>
          s.file === 'docs/chat.md' && s.code.includes("from 'ws'") && s.code.includes('getToken'),
      );
      assert.ok(sample, 'docs/chat.md has the Node sample');
      const code = `${sample.code.replaceAll('127.0.0.1:8000', new URL(server.url).host)}
client.once('welcome', () => void client.send('general', 'hello from the docs'));
`;
      const file = join(workDir, 'chat-client.ts');
      writeFileSync(file, code);
      const child = spawn(process.execPath, ['--import', 'tsx', file], {
        cwd: workDir,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      try {
        const lines: string[] = [];
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no message within 60 s: ${lines.join('\n')}\n${stderr}`)),
            60_000,
          );
          child.once('exit', (code) => reject(new Error(`sample exited (${code}): ${stderr}`)));
          createInterface({ input: child.stdout }).on('line', (line) => {
            lines.push(line);
            if (line === 'general johndoe: hello from the docs') {
              clearTimeout(timer);
              resolve();
            }
          });
        });
        assert.match(lines[0] ?? '', /^general \d+ new$/);
      } finally {
        child.kill('SIGTERM');
      }
    });
  });
});
