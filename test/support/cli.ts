import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Runs the real `bin/wsgate.js` as a separate process, as a user would. */

export const repo = fileURLToPath(new URL('../..', import.meta.url));
export const bin = join(repo, 'bin', 'wsgate.js');

/** Newest modification time of the sources that `npm run build` compiles. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/** Builds dist/ when it is missing or older than src/, so the real `bin/wsgate.js` runs current code. */
export function ensureBuilt(): void {
  const buildInfo = join(repo, 'dist', '.tsbuildinfo');
  const stale =
    !existsSync(join(repo, 'dist', 'cli', 'main.js')) ||
    !existsSync(buildInfo) ||
    statSync(buildInfo).mtimeMs < newestSource(join(repo, 'src'));
  if (!stale) return;
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  const build = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 120_000,
  });
  // Exit status 2 means type errors with output emitted: `npm run typecheck` reports those; the
  // behaviour of the emitted CLI is what this file checks.
  if (
    build.status !== 0 &&
    !(build.status === 2 && existsSync(join(repo, 'dist', 'cli', 'main.js')))
  ) {
    throw new Error(
      `building dist/ failed (tsc exit status ${String(build.status)}):\n${build.stdout}${build.stderr}`,
    );
  }
}

/** The caller's environment without anything that would configure wsgate behind the test's back. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (
      name === 'PORT' ||
      name === 'HOST' ||
      name.startsWith('WSGATE_') ||
      name.startsWith('NODE_TEST')
    )
      continue;
    env[name] = value;
  }
  return env;
}

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `wsgate <args>` as a real process; `input` is written to its standard input, which then
 * closes; `env` adds variables to the clean environment.
 */
export function wsgate(
  args: readonly string[],
  input = '',
  env: NodeJS.ProcessEnv = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: repo,
      env: { ...cleanEnv(), ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    // Generous: on a loaded machine a CLI process can take many seconds just to start.
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // the process may exit before reading its input
    child.stdin.end(input);
  });
}

/** A `wsgate serve` running as a real process, with what it has logged so far. */
export interface ServeProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** `http://127.0.0.1:<port>`, from its "wsgate listening on" log line. */
  readonly url: string;
  readonly port: number;
  readonly logs: string[];
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/**
 * Starts `wsgate serve <args>` (give it `--port 0`) as a child process and resolves once it logs
 * the address it listens on; fails with its stderr if it exits first or says nothing in `startMs`.
 */
export async function startServeProcess(
  args: readonly string[],
  name = 'wsgate',
  startMs = 60_000,
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [bin, 'serve', ...args], { cwd: repo, env: cleanEnv() });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const logs: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${name}: no "wsgate listening on" line in ${startMs / 1000} s; stderr: ${stderr}`,
        ),
      );
    }, startMs);
    void exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited early (${code ?? signal}); stderr: ${stderr}`));
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      logs.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg?.startsWith('wsgate listening on') && typeof entry.url === 'string') {
          clearTimeout(timer);
          resolve(entry.url);
        }
      } catch {
        // not a log line; kept in `logs`
      }
    });
  });
  return { child, url, port: Number(new URL(url).port), logs, exit, stderr: () => stderr };
}
