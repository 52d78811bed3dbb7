import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { Metrics } from '../metrics.js';
import { InMachinePubSub } from '../pubsub/in-machine.js';
import { startServer } from '../server/serve.js';
import { primaryChannel } from './channels.js';
import { Peer, PeerError } from './peer.js';
import {
  WorkerLoginLimiter,
  WorkerRateBuckets,
  WorkerRecentRotations,
  WorkerSocketCounts,
  WorkerHashSlots,
  WorkerTicketStore,
  machineRelay,
} from './stores.js';

/**
 * One worker of `wsgate serve --workers n`: a whole node on the shared port, whose tickets,
 * limits and bus are the primary's (with `--redis`, Redis's: each worker is then a cluster node).
 * Drains on SIGTERM, which the primary sends; ignores SIGINT, which a terminal sends to the
 * whole process group while the primary stops the workers in order. Resolves to its exit code.
 */
export async function runWorker(config: Config, log: Logger): Promise<number> {
  const peer = new Peer(primaryChannel());
  const metrics = new Metrics();
  peer.serve((op) => {
    if (op === 'metrics.json') return metrics.json();
    throw new PeerError(`unknown request ${op}`);
  });
  metrics.aggregateWith(async () => (await peer.request('metrics.aggregate')) as string);

  let stop: (reason: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => stop('SIGTERM'));
  // A primary that is gone takes the port with it: nothing is left to serve.
  process.once('disconnect', () => stop('primary gone'));

  const shared =
    config.redis === undefined
      ? {
          tickets: new WorkerTicketStore(peer),
          limiter: new WorkerLoginLimiter(peer, 'user'),
          addressLimiter: new WorkerLoginLimiter(peer, 'address'),
          recentRotations: new WorkerRecentRotations(peer),
          bus: new InMachinePubSub(machineRelay(peer)),
          sharedLimits: {
            handshakes: new WorkerRateBuckets(peer, 'handshakes'),
            ticketRequests: new WorkerRateBuckets(peer, 'ticketRequests'),
            sockets: new WorkerSocketCounts(peer),
          },
        }
      : {};
  try {
    // Hashing is bounded per machine, with or without Redis: the primary holds the slots.
    const hashSlots = new WorkerHashSlots(peer);
    const server = await startServer(config, {
      log,
      metrics,
      checkPort: false,
      hashSlots,
      ...shared,
    });
    await peer.request('worker.ready', server.url, server.runtime.sessions.issuer);
    const reason = await stopped;
    log.debug({ reason }, 'worker draining');
    await server.close();
    return 0;
  } finally {
    // The IPC channel keeps the process alive, and a worker whose channel closes exits with 0
    // at once: exit once the CLI has set the exit code (and said why on stderr, synchronously).
    setImmediate(() => process.exit());
  }
}
