import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { checkFirstStart, createRuntime } from '../runtime.js';
import { checkPortFree } from '../server/serve.js';
import { MemoryTicketStore } from '../credentials/tickets.js';
import { MemoryLoginLimiter } from '../sessions/login-limiter.js';
import { MemoryRecentRotations } from '../sessions/recent-rotations.js';
import { TokenBuckets } from '../token-bucket.js';
import { MemorySocketCounts } from '../handshake/shared-limits.js';
import { HashSlots, hashSlotsPerAddress } from '../users/hash-slots.js';
import { defaultGateLimits } from '../handshake/gate.js';
import { workerChannel } from './channels.js';
import { Hub } from './hub.js';
import { PeerError } from './peer.js';

export interface PrimaryOptions {
  readonly log: Logger;
  /** Registers the handler of SIGINT and SIGTERM (the CLI's). */
  readonly onSignal: (handler: (signal: string) => void) => void;
  /** Told once every worker listens: the URL and what the start log line says. */
  readonly onListening: (started: {
    url: string;
    issuer: string;
    alg: string;
    users: number;
  }) => void;
  /** Told why the server stops on its own (a crash loop, a worker that could not start). */
  readonly onFatal: (message: string) => void;
  /** A crash loop: more than this many workers dying within `crashWindowMs` stops the server. */
  readonly maxDeaths?: number;
  readonly crashWindowMs?: number;
  /** How long the workers have to drain on SIGTERM before they are killed (ms). */
  readonly drainMs?: number;
}

/**
 * The primary of `wsgate serve --workers n`: prepares the deployment once (migrations, demo
 * users, keys, issuer), forks the workers onto the shared port, holds the tickets, limits and bus
 * for them all (unless `--redis` does), adds up their metrics, replaces a worker that dies, stops
 * on a crash loop, and drains them all on SIGTERM. Resolves to the process's exit code.
 */
export async function runPrimary(config: Config, options: PrimaryOptions): Promise<number> {
  const { log } = options;
  const n = config.workers;
  const maxDeaths = options.maxDeaths ?? Math.max(5, n);
  const crashWindowMs = options.crashWindowMs ?? 60_000;

  checkFirstStart(config);
  if (config.port !== 0) await checkPortFree(config.host, config.port);
  // Everything that writes once per deployment, before any worker exists to race for it.
  const runtime = await createRuntime(config, { log });
  let alg: string;
  let users: number;
  try {
    if (!(config.issuerDerived && config.port === 0)) await runtime.claimDeployment();
    alg = runtime.keys.alg;
    users = (await runtime.users.list()).length;
  } finally {
    await runtime.close();
  }

  const limits = { ...defaultGateLimits, ...config.limits };
  const hub = new Hub({
    tickets: new MemoryTicketStore(),
    loginLimiter: new MemoryLoginLimiter({
      limit: config.loginAttemptsPerMinute,
      windowMs: 60_000,
    }),
    addressLimiter: new MemoryLoginLimiter({
      limit: config.loginFailuresPerAddress,
      windowMs: 60_000,
    }),
    rotations: new MemoryRecentRotations(),
    handshakes: new TokenBuckets({ rate: limits.handshakeRate, burst: limits.handshakeBurst }),
    ticketRequests: new TokenBuckets({
      rate: config.ticketsPerMinute / 60,
      burst: config.ticketsPerMinute,
    }),
    sockets: new MemorySocketCounts(),
    // One bound for the machine: the workers share the cores that hash.
    hashSlots: new HashSlots({
      concurrency: config.hashConcurrency,
      queue: config.hashQueue,
      perKey: hashSlotsPerAddress,
    }),
  });
  hub.aggregateMetrics(async () => {
    const each = await Promise.all(
      [...hub.peers].map((peer) =>
        peer
          .request('metrics.json')
          .then((json) => json as MetricObjectWithValues<MetricValue<string>>[])
          .catch(() => []),
      ),
    );
    return AggregatorRegistry.aggregate(each).metrics();
  });

  cluster.setupPrimary({ serialization: 'json' });
  const live = new Set<Worker>();
  const ready = new Set<Worker>();
  const deaths: number[] = [];
  let everReady = false;
  let stopping = false;
  let exitCode = 0;
  let allExited: () => void = () => undefined;
  const exited = new Promise<void>((resolve) => (allExited = resolve));

  const stop = (code: number): void => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    if (live.size === 0) return allExited();
    const killer = setTimeout(() => {
      for (const worker of live) worker.process.kill('SIGKILL');
    }, options.drainMs ?? 30_000);
    void exited.then(() => clearTimeout(killer));
    for (const worker of live) worker.process.kill('SIGTERM');
  };

  const fork = (): void => {
    const worker = cluster.fork();
    live.add(worker);
    log.info({ worker: worker.id, pid: worker.process.pid }, 'worker started');
    hub.connect(workerChannel(worker), (op, args) => {
      if (op !== 'worker.ready') throw new PeerError(`unknown request ${op}`);
      ready.add(worker);
      log.info({ worker: worker.id, pid: worker.process.pid }, 'worker listening');
      if (!everReady && ready.size === n) {
        everReady = true;
        options.onListening({ url: String(args[0]), issuer: String(args[1]), alg, users });
      }
      return null;
    });
    worker.on('exit', (code, signal) => {
      live.delete(worker);
      const wasReady = ready.delete(worker);
      if (stopping) {
        if (live.size === 0) allExited();
        return;
      }
      const how = signal ?? `exit code ${code}`;
      if (!everReady && !wasReady) {
        // A worker that cannot start (an option only a node checks, a database it cannot open)
        // would fail the same way again: stop, with its exit code. It said why on stderr.
        options.onFatal(`a worker failed to start (${how})`);
        return stop(typeof code === 'number' && code !== 0 ? code : 1);
      }
      const now = performance.now();
      deaths.push(now);
      while (deaths.length > 0 && (deaths[0] as number) <= now - crashWindowMs) deaths.shift();
      if (deaths.length > maxDeaths) {
        options.onFatal(
          `workers keep dying (${deaths.length} in ${crashWindowMs / 1000} s, the last with ${how}); stopping`,
        );
        return stop(1);
      }
      log.warn(
        { worker: worker.id, pid: worker.process.pid, how },
        'worker died; starting another',
      );
      fork();
    });
  };

  options.onSignal((signal) => {
    log.info({ signal }, 'shutting down');
    stop(0);
  });
  for (let i = 0; i < n; i++) fork();
  await exited;
  return exitCode;
}
