import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bin, cleanEnv, ensureBuilt, repo, startServeProcess } from './support/cli.js';
import { fencedSamples, type FencedSample } from './support/doc-samples.js';

/**
 * Every shell sample (```sh / ```bash) in README.md and docs/ runs, in bash with `set -e` and
 * `pipefail`, against a real demo server started by the CLI, one server and one shell per file
 * (so a variable set in one block serves the next, as a reader's shell would keep it):
 *
 * - `127.0.0.1:8000` becomes the server's address; `npx wsgate` and `wsgate` run this checkout's
 *   CLI on the server's data dir (`data/` in the file's sandbox); standard input holds a password
 *   on every line, for the commands that read one.
 * - `wsgate serve …` (and `npm start -- …`) starts a node on a fresh data dir and port 0, waits for
 *   it to listen, and stops it: the flags of the sample parse, and the node starts.
 * - Unset variables are errors (a block using one a later block sets), and every OAuth-style
 *   `"error"` code in the output must be one the file's samples show (a documented refusal).
 * - A command that should fail says so: `# exit 1` after it (in a `$ ` transcript, in its output).
 * - `<!-- sample: <shell> -->` before the fence runs `<shell>` first (a file the sample reads).
 * - `<!-- sample: not run: <reason> -->` exempts a block; the reasons are listed below and few.
 */

interface ShellSample extends FencedSample {
  /** The shell to run first. */
  readonly setup: string;
  /** Why the block is not run, when it is not. */
  readonly notRun: string | undefined;
}

function shellSamples(): ShellSample[] {
  return fencedSamples(/^(sh|bash|shell)$/).map((s) => {
    const notRun = /^not run: (.+)$/.exec(s.comment)?.[1];
    return { ...s, setup: notRun === undefined ? s.comment : '', notRun };
  });
}

/** `if cmd; …` that passes only when `cmd` exits with `code`. */
function expectExit(command: string, code: string): string {
  return `if ${command}; then echo "expected exit ${code}: ${command.replaceAll('"', '\\"')}" >&2; false; else rc=$?; [ "$rc" -eq ${code} ] || { echo "exit $rc, expected ${code}" >&2; false; }; fi`;
}

/** The sample as a script: transcripts (`$ ` lines) keep their commands, `# exit N` is checked. */
function script(sample: ShellSample, address: string): string {
  const lines = sample.code.replaceAll('127.0.0.1:8000', address).split('\n');
  const out: string[] = [];
  if (lines.some((l) => l.startsWith('$ '))) {
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] ?? '';
      if (!line.startsWith('$ ')) continue;
      let j = i + 1;
      let exit: string | undefined;
      for (; j < lines.length && !(lines[j] ?? '').startsWith('$ '); j++)
        exit ??= /#\s*exit (\d+)/.exec(lines[j] ?? '')?.[1];
      const command = line.slice(2);
      out.push(exit === undefined ? command : expectExit(command, exit));
    }
  } else {
    for (const line of lines) {
      const exit = /^(.*?)\s+#\s*exit (\d+)\b.*$/.exec(line);
      out.push(exit?.[1] && exit[2] ? expectExit(exit[1], exit[2]) : line);
    }
  }
  return out.join('\n').replace(/\bnpx wsgate\b/g, 'wsgate');
}

/** Shell functions standing in for the commands a reader has: this checkout's CLI, npm start. */
const preamble = `set -euo pipefail
wsgate() {
  if [ "\${1-}" = serve ]; then shift; serve_briefly "$@"; else node "$WSGATE_BIN" "$@"; fi
}
# Starts a node on a fresh data dir and port 0, waits for it to listen, stops it.
serve_briefly() {
  local args=() dir log pid rc=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --port) args+=(--port 0); shift 2 ;;
      --port=*) args+=(--port 0); shift ;;
      *) args+=("$1"); shift ;;
    esac
  done
  case " \${args[*]} " in *" --port 0 "*) ;; *) args+=(--port 0) ;; esac
  dir=$(mktemp -d) log="$dir/serve.log"
  WSGATE_DATA_DIR="$dir" node "$WSGATE_BIN" serve "\${args[@]}" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    if grep -q '"msg":"wsgate listening on' "$log"; then
      kill -INT "$pid"; wait "$pid" || rc=$?
      [ "$rc" -eq 0 ] || cat "$log" >&2
      rm -rf "$dir"; return "$rc"
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" || rc=$?; cat "$log" >&2; rm -rf "$dir"; return $(( rc == 0 ? 1 : rc ))
    fi
    sleep 0.1
  done
  kill "$pid"; echo "wsgate serve did not start in 60 s" >&2; return 1
}
npm() {
  if [ "\${1-}" = start ]; then shift; [ "\${1-}" = -- ] && shift; wsgate serve --demo "$@"; return; fi
  # The test runs in this checkout, installed.
  if [ "\${1-}" = install ]; then return 0; fi
  echo "npm $* is not run by the docs samples" >&2; return 1
}
trap 'echo "failed at $SAMPLE (line $LINENO of the script)" >&2' ERR
`;

/** Inside the repository, so that `import 'wsgate'` in a sample resolves to this package. */
const workDir = join(repo, 'test-results', 'doc-shell-samples');

before(() => {
  ensureBuilt();
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
});
after(() => rmSync(workDir, { recursive: true, force: true }));

function run(
  file: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [file], { cwd, env: { ...cleanEnv(), ...env } });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    // Standard input: a password on every line, for each command that reads one.
    child.stdin.on('error', () => {});
    child.stdin.end('correct-horse-battery\n'.repeat(64));
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('shell samples in the docs', () => {
  const all = shellSamples();
  const byFile = new Map<string, ShellSample[]>();
  for (const s of all) byFile.set(s.file, [...(byFile.get(s.file) ?? []), s]);

  it('finds them, and exempts few, each with its reason', () => {
    assert.ok(all.length >= 30, `found ${all.length}`);
    const exempt = all.filter((s) => s.notRun !== undefined);
    assert.ok(
      exempt.length <= 10,
      `${exempt.length} exempt: ${exempt.map((s) => `${s.file}:${s.line}`).join(', ')}`,
    );
  });

  for (const [file, samples] of byFile) {
    const runnable = samples.filter((s) => s.notRun === undefined);
    if (runnable.length === 0) continue;
    it(
      `runs the ${runnable.length} of ${file} against a demo server`,
      { timeout: 240_000 },
      async () => {
        const sandbox = join(workDir, file.replace(/[/.]/g, '_'));
        mkdirSync(sandbox, { recursive: true });
        const dataDir = join(sandbox, 'data');
        const server = await startServeProcess(['--demo', '--port', '0', '--data-dir', dataDir]);
        try {
          const address = new URL(server.url).host;
          const body = runnable
            .map((s) => `SAMPLE='${s.file}:${s.line}'\n${s.setup}\n${script(s, address)}`)
            .join('\n');
          const path = join(sandbox, 'samples.sh');
          writeFileSync(path, `${preamble}\n${body}\n`);
          const result = await run(path, sandbox, { WSGATE_BIN: bin, WSGATE_DATA_DIR: dataDir });
          assert.equal(result.code, 0, result.output);
          // curl exits 0 on any status: a path the docs got wrong shows up as the 404 body.
          assert.doesNotMatch(result.output, /"error":"not_found"/, result.output);
        } finally {
          server.child.kill('SIGTERM');
          await server.exit;
        }
      },
    );
  }
});
