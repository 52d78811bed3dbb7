import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServeProcess, type ServeProcess } from './cli.js';

/**
 * `wsgate serve --workers n` as an operator starts it, for the tests of DESIGN §11. The primary
 * hands each new connection to the workers in turn; what a worker did is read from its JSON log
 * lines, which carry its id.
 */

const dirs: string[] = [];
const servers = new Set<ServeProcess>();

/** `wsgate serve --demo --workers 2` (unless `extra` says otherwise) on port 0 in a temp dir. */
export async function startWorkers(
  extra: readonly string[] = [],
  name = 'workers',
): Promise<ServeProcess> {
  const dir = tempDir();
  const args = ['--demo', '--port', '0', '--data-dir', dir, '--log-format', 'json'];
  const workers = extra.includes('--workers') ? [] : ['--workers', '2'];
  const server = await startServeProcess([...args, ...workers, ...extra], name);
  servers.add(server);
  return server;
}

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-workers-'));
  dirs.push(dir);
  return dir;
}

/** SIGTERM (SIGKILL after 30 s); resolves to how it exited. */
export async function stopWorkers(
  server: ServeProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill('SIGTERM');
  }
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 30_000);
  const exit = await server.exit;
  clearTimeout(timer);
  servers.delete(server);
  return exit;
}

/** Forgets a server that the test stopped itself. */
export function forget(server: ServeProcess): void {
  servers.delete(server);
}

/** Stops every server still running and deletes every temp dir (for `after`). */
export async function stopAllWorkers(): Promise<void> {
  for (const server of servers) await stopWorkers(server);
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export interface LogLine {
  readonly msg?: string;
  readonly worker?: number;
  readonly pid?: number;
  readonly audit?: { event: string; detail?: Record<string, unknown> };
  readonly handshake?: { code: string; ip: string };
}

/** The JSON log lines the server wrote, from the `since`-th on. */
export function lines(server: ServeProcess, since = 0): LogLine[] {
  return server.logs.slice(since).flatMap((line) => {
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
}

/** The workers that logged an audit `event`, from the `since`-th log line on. */
export function workersOf(server: ServeProcess, event: string, since = 0): Set<number> {
  return new Set(
    lines(server, since)
      .filter((l) => l.audit?.event === event && l.worker !== undefined)
      .map((l) => l.worker as number),
  );
}

/** Polls `condition` every 20 ms; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  condition: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(20);
  }
}

export function wsOf(server: ServeProcess, path: string): string {
  return server.url.replace(/^http/, 'ws') + path;
}
