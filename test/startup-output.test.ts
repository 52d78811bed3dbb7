import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bin, cleanEnv, ensureBuilt, repo } from './support/cli.js';

// What `wsgate serve` prints: a banner and pretty lines for a person at a terminal, JSON lines
// for a collector. The terminal is a real pseudo-terminal from util-linux `script`.

const script = '/usr/bin/script';
const noScript =
  !existsSync(script) && process.env.CI !== 'true'
    ? `skipped: ${script} (util-linux) is absent`
    : false;

const dirs: string[] = [];
function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-startup-'));
  dirs.push(dir);
  return dir;
}

before(ensureBuilt);
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Output {
  /** Everything written to the terminal (or to stdout), CR LF turned into LF. */
  readonly text: string;
  readonly code: number | null;
}

/**
 * Runs `wsgate serve <args>` with a pseudo-terminal (`tty`) or a pipe as stdout; once `ready`
 * matches the output, `whileUp` runs, then Ctrl+C (on the terminal) or SIGINT stops the server.
 */
function serve(
  args: readonly string[],
  options: { tty: boolean; ready: RegExp; whileUp?: (text: string) => Promise<void> },
): Promise<Output> {
  const argv = [bin, 'serve', ...args];
  const child = options.tty
    ? spawn(
        script,
        ['-qefc', `exec ${[process.execPath, ...argv].map(shellQuote).join(' ')}`, '/dev/null'],
        {
          cwd: repo,
          env: { ...cleanEnv(), TERM: 'dumb' },
        },
      )
    : spawn(process.execPath, argv, { cwd: repo, env: cleanEnv() });
  let text = '';
  let stopping = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk.replaceAll('\r\n', '\n');
      if (stopping || !options.ready.test(text)) return;
      stopping = true;
      void (options.whileUp?.(text) ?? Promise.resolve()).then(
        () => (options.tty ? child.stdin.write('\x03') : child.kill('SIGINT')),
        (err: unknown) => {
          child.kill('SIGKILL');
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ text, code });
    });
  });
}

function shellQuote(word: string): string {
  return /^[\w./:=-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

const jsonLine = /^\{"level":/m;

describe('wsgate serve on a terminal', { skip: noScript }, () => {
  it('prints a banner with the URL, the demo users and pages and the data dir, then pretty log lines', async () => {
    const dataDir = freshDataDir();
    const out = await serve(['--demo', '--port', '0', '--data-dir', dataDir], {
      tty: true,
      ready: /Log lines follow/,
      whileUp: async (text) => {
        // The URL in the banner is the one the server answers on.
        const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(text)?.[1];
        assert.ok(url, text);
        assert.equal((await fetch(`${url}/healthz`)).status, 200);
      },
    });
    assert.equal(out.code, 0, out.text);
    assert.match(
      out.text,
      /^wsgate \d+\.\d+\.\d+ listening on http:\/\/127\.0\.0\.1:\d+ \(demo mode\)$/m,
    );
    assert.match(
      out.text,
      /^ {2}users +johndoe \/ secret, janedoe \/ secret2, test \/ test \(demo\)$/m,
    );
    assert.match(
      out.text,
      /^ {2}pages +http:\/\/127\.0\.0\.1:\d+\/ \(chat\), \/login, \/demo\/token, \/demo\/cookie, \/docs$/m,
    );
    assert.match(out.text, new RegExp(`^ {2}data +${dataDir} \\(SQLite wsgate\\.db`, 'm'));
    assert.match(out.text, /^ {2}issuer +http:\/\/127\.0\.0\.1:\d+$/m);
    // Pretty lines, the last one of the shutdown; no JSON and no second "listening" line.
    assert.match(out.text, /^(\^C)?\d\d:\d\d:\d\d INFO {2}shutting down {2}signal=SIGINT$/m);
    assert.doesNotMatch(out.text, jsonLine);
    assert.equal(out.text.match(/listening/gi)?.length, 1, out.text);
  });

  it('off loopback, shows the pages at the issuer and the Host names answered (others get 421)', async () => {
    const dataDir = freshDataDir();
    const out = await serve(
      [
        ...['--host', '0.0.0.0', '--port', '0', '--data-dir', dataDir],
        ...['--issuer', 'https://chat.example', '--allowed-host', 'chat.internal'],
      ],
      { tty: true, ready: /Log lines follow/ },
    );
    assert.equal(out.code, 0, out.text);
    assert.match(out.text, /^wsgate \d+\.\d+\.\d+ listening on http:\/\/0\.0\.0\.0:\d+$/m);
    assert.match(out.text, /^ {2}pages +https:\/\/chat\.example\/ \(chat\), \/login, \/docs$/m);
    assert.match(
      out.text,
      /^ {2}hosts +chat\.example \(the issuer's host\), --allowed-host chat\.internal; any other Host gets 421 \(add names with --allowed-host\)$/m,
    );
  });

  it('says how to add the first user when there is none, with the --data-dir to give', async () => {
    const dataDir = freshDataDir();
    const out = await serve(['--port', '0', '--data-dir', dataDir], {
      tty: true,
      ready: /Log lines follow/,
    });
    assert.equal(out.code, 0, out.text);
    assert.match(
      out.text,
      new RegExp(
        `^ {2}users +no users yet: wsgate user add <name> --data-dir ${dataDir}, then sign in at /login$`,
        'm',
      ),
    );
    assert.doesNotMatch(out.text, /demo/);
  });

  it('prints JSON lines and no banner with --log-format json', async () => {
    const out = await serve(['--port', '0', '--log-format', 'json', '--data-dir', freshDataDir()], {
      tty: true,
      ready: /"msg":"wsgate listening on/,
    });
    assert.equal(out.code, 0, out.text);
    assert.doesNotMatch(out.text, /Log lines follow|users /);
    for (const line of out.text.replace(/^\^C/m, '').trim().split('\n')) JSON.parse(line);
  });
});

describe('wsgate serve without a terminal', () => {
  it('off loopback, names the Host names answered in its "listening" line', async () => {
    const out = await serve(
      [
        ...['--host', '0.0.0.0', '--port', '0', '--data-dir', freshDataDir()],
        ...['--issuer', 'https://chat.example', '--secure-cookies'],
      ],
      { tty: false, ready: /"msg":"wsgate listening on/ },
    );
    assert.equal(out.code, 0, out.text);
    const listening = out.text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { msg: string; hosts?: string })
      .find((e) => e.msg.startsWith('wsgate listening on'));
    assert.equal(listening?.hosts, "chat.example (the issuer's host)");
    assert.match(
      listening?.msg ?? '',
      /^wsgate listening on http:\/\/0\.0\.0\.0:\d+; answers Host chat\.example \(the issuer's host\), others get 421$/,
    );
  });

  it('prints only JSON lines, one of them "listening", none of them Fastify\'s', async () => {
    const out = await serve(['--demo', '--port', '0', '--data-dir', freshDataDir()], {
      tty: false,
      ready: /"msg":"wsgate listening on/,
    });
    assert.equal(out.code, 0, out.text);
    const entries = out.text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { msg?: string });
    assert.equal(entries.filter((e) => /listening/i.test(e.msg ?? '')).length, 1, out.text);
    assert.ok(entries.some((e) => e.msg === 'shutting down'));
    assert.doesNotMatch(out.text, /Log lines follow/);
  });
});
