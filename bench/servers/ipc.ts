import { writeHeapSnapshot } from 'node:v8';

/**
 * The bench servers' side of the IPC channel with the load generator: it reports readiness and
 * answers requests for the process's own CPU time and memory, measured inside the process.
 */

export interface ProcessStats {
  /** User plus system CPU time of the whole process, in microseconds. */
  readonly cpuUs: number;
  readonly rss: number;
  readonly heapUsed: number;
}

export type IpcHandler = (request: Record<string, unknown>) => unknown;

interface IpcRequest {
  readonly id: number;
  readonly cmd: string;
  readonly [key: string]: unknown;
}

const gc = (globalThis as { gc?: () => void }).gc;

/**
 * Process stats. With `collect` (and `--expose-gc`), after a full collection so that RSS reflects
 * live data; CPU readings skip it so that a measured window does not pay for the collection.
 */
export function processStats(request: { collect?: unknown } = {}): ProcessStats {
  if (gc && request.collect === true) {
    gc();
    gc();
  }
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return { cpuUs: cpu.user + cpu.system, rss: memory.rss, heapUsed: memory.heapUsed };
}

/**
 * Answers IPC requests (`stats` and any of `handlers`), tells the parent the port, and exits
 * cleanly on SIGTERM after `stop` (so that `--cpu-prof` writes its profile).
 */
export function serveIpc(
  port: number,
  handlers: Record<string, IpcHandler> = {},
  stop: () => Promise<void> = async () => undefined,
): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('a bench server runs as a child with an IPC channel');
  process.on('message', (message: IpcRequest) => {
    // A server of several processes brings its own `stats`.
    const handler: IpcHandler | undefined =
      handlers[message.cmd] ??
      (message.cmd === 'stats'
        ? processStats
        : message.cmd === 'snapshot'
          ? () => writeHeapSnapshot()
          : undefined);
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command ${message.cmd}`);
        return handler(message);
      })
      .then(
        (result) => send({ id: message.id, result }),
        (err: unknown) => send({ id: message.id, error: String(err) }),
      );
  });
  const exit = () => void stop().finally(() => process.exit(0));
  process.on('disconnect', exit);
  process.once('SIGTERM', exit);
  send({ ready: true, port });
}
