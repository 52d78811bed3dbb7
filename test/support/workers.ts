import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { MemoryTicketStore } from '../../src/credentials/tickets.js';
import { MemoryLoginLimiter } from '../../src/sessions/login-limiter.js';
import { MemoryRecentRotations } from '../../src/sessions/recent-rotations.js';
import { TokenBuckets } from '../../src/token-bucket.js';
import { MemorySocketCounts } from '../../src/handshake/shared-limits.js';
import { HashSlots, type HashSlotsOptions } from '../../src/users/hash-slots.js';
import { InMachinePubSub } from '../../src/pubsub/in-machine.js';
import { Hub } from '../../src/workers/hub.js';
import { Peer } from '../../src/workers/peer.js';
import { portChannel } from '../../src/workers/channels.js';
import { machineRelay } from '../../src/workers/stores.js';

/** The limits of the primary's stores: login failures per window, and token buckets. */
export interface HubLimits {
  readonly login: number;
  readonly windowMs: number;
  readonly rate: number;
  readonly burst: number;
  /** The machine's password-hashing slots and queue. */
  readonly hash?: HashSlotsOptions;
}

/**
 * A primary's hub and two workers' ends, each on its own real MessagePort (JSON both ways, as
 * node:cluster sends it), in one process. The ports do not keep the process alive.
 */
export function hubWithTwoWorkers(
  limits: HubLimits = { login: 5, windowMs: 60_000, rate: 50, burst: 200 },
) {
  const sockets = new MemorySocketCounts();
  const hashSlots = new HashSlots(limits.hash ?? { concurrency: 1, queue: 1 });
  const login = { limit: limits.login, windowMs: limits.windowMs };
  const buckets = { rate: limits.rate, burst: limits.burst };
  const hub = new Hub({
    tickets: new MemoryTicketStore(),
    loginLimiter: new MemoryLoginLimiter(login),
    addressLimiter: new MemoryLoginLimiter(login),
    rotations: new MemoryRecentRotations(),
    handshakes: new TokenBuckets(buckets),
    ticketRequests: new TokenBuckets(buckets),
    sockets,
    hashSlots,
  });
  const ports: MessagePort[] = [];
  const worker = (): Peer => {
    const { port1, port2 } = new MessageChannel();
    port1.unref();
    port2.unref();
    ports.push(port1, port2);
    hub.connect(portChannel(port1));
    return new Peer(portChannel(port2));
  };
  const [a, b] = [worker(), worker()];
  return {
    hub,
    sockets,
    hashSlots,
    a,
    b,
    /** [primary's end for a, a's end, primary's end for b, b's end] */
    ports,
    close: () => {
      for (const port of ports) port.close();
      return Promise.resolve();
    },
  };
}

/** Two workers' buses through one primary. */
export function inMachineBuses() {
  const workers = hubWithTwoWorkers();
  return {
    a: new InMachinePubSub(machineRelay(workers.a)),
    b: new InMachinePubSub(machineRelay(workers.b)),
    close: workers.close,
  };
}
