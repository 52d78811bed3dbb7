import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ProcessStats } from '../servers/ipc.js';

/** Where the bench runs its processes: servers on one core, the load generator on another. */
export interface Placement {
  /**
   * Core for servers (or a `taskset -c` list such as `0,1` for a server of several processes),
   * or undefined when pinning is not possible (one core, no taskset).
   */
  readonly serverCore: number | string | undefined;
  readonly loadCore: number | undefined;
  /** Extra Node.js flags for every server, e.g. `--cpu-prof` under `--profile`. */
  readonly nodeArgs: readonly string[];
}

const benchDir = fileURLToPath(new URL('../', import.meta.url));
/** Where the servers' JavaScript goes: beside `servers/` so that relative imports still hold. */
const buildDir = `${benchDir}.build/`;

/**
 * Turns `bench/servers/*.ts` into plain JavaScript once per run. Servers run as compiled code, as
 * in production: no loader thread, no on-the-fly transform, no helper calls a loader adds.
 */
export async function buildServers(): Promise<void> {
  const { build } = await import('esbuild');
  const entryPoints = readdirSync(`${benchDir}servers`)
    .filter((name) => name.endsWith('.ts'))
    .map((name) => `${benchDir}servers/${name}`);
  await build({ entryPoints, outdir: buildDir, format: 'esm', platform: 'node', target: 'node20' });
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** Longest wait for an IPC answer (minting 10,000 tokens takes a few seconds). */
const requestTimeoutMs = 120_000;

/** A server under test, running in its own process and answering the bench over IPC. */
export class ServerProcess {
  /** Every server not yet stopped, so that a failing scenario can stop them all. */
  static readonly #running = new Set<ServerProcess>();
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  readonly #afterStop: (() => void)[] = [];
  #nextId = 0;
  port = 0;

  private constructor(child: ChildProcess) {
    this.#child = child;
    ServerProcess.#running.add(this);
    // A server that dies fails whatever waits on it, rather than leaving the run hanging.
    child.once('exit', (code, signal) => {
      for (const pending of this.#pending.values())
        pending.reject(new Error(`server exited (${code ?? signal}) with a request pending`));
      this.#pending.clear();
    });
    child.on('message', (message: { id?: number; result?: unknown; error?: string }) => {
      if (message.id === undefined) return;
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.error !== undefined) pending?.reject(new Error(message.error));
      else pending?.resolve(message.result);
    });
  }

  /** Starts `bench/servers/<script>.ts` (built by {@link buildServers}) with `args`, pinned to the server core, and waits until it listens. */
  static async start(
    placement: Placement,
    script: string,
    args: readonly string[] = [],
    nodeArgs: readonly string[] = [],
  ): Promise<ServerProcess> {
    const node = [
      process.execPath,
      '--expose-gc',
      ...placement.nodeArgs,
      ...nodeArgs,
      `${buildDir}${script}.js`,
      ...args,
    ];
    const [command, ...rest] =
      placement.serverCore === undefined
        ? node
        : ['taskset', '-c', String(placement.serverCore), ...node];
    const child = spawn(command as string, rest, {
      // Servers' logs (audit lines) would drown the report; crashes still reach stderr.
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const server = new ServerProcess(child);
    const ready = new Promise<number>((resolve, reject) => {
      child.on('message', (message: { ready?: boolean; port?: number }) => {
        if (message.ready) resolve(message.port ?? 0);
      });
      child.once('exit', (code) =>
        reject(new Error(`${script} exited with ${code} before listening`)),
      );
    });
    server.port = await ready;
    return server;
  }

  request<T>(cmd: string, extra: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.#nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no answer to ${cmd} within ${requestTimeoutMs / 1000} s`));
      }, requestTimeoutMs);
      const settle =
        <A extends unknown[]>(then: (...args: A) => void) =>
        (...args: A) => {
          clearTimeout(timer);
          then(...args);
        };
      this.#pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
      if (this.#child.connected) this.#child.send({ id, cmd, ...extra });
      else this.#pending.get(id)?.reject(new Error(`server is gone; cannot ${cmd}`));
    });
  }

  /** Runs `cleanup` once the process has stopped (e.g. removing its data directory). */
  afterStop(cleanup: () => void): void {
    this.#afterStop.push(cleanup);
  }

  /** Stops every server still running; scenarios call it last, whatever happened before. */
  static async stopAll(): Promise<void> {
    await Promise.all([...ServerProcess.#running].map((server) => server.stop()));
  }

  /** CPU time and memory; with `collect`, after a full garbage collection inside the server. */
  stats(collect = false): Promise<ProcessStats> {
    return this.request<ProcessStats>('stats', { collect });
  }

  async stop(): Promise<void> {
    ServerProcess.#running.delete(this);
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = once(this.#child, 'exit');
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    for (const cleanup of this.#afterStop.splice(0)) cleanup();
  }
}
