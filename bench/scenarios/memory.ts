import { lineup, type Connector, type Minted } from '../lib/connectors.js';
import { startBaseline, startWsgate, type BenchContext } from '../lib/context.js';
import type { RawWs } from '../lib/raw-ws.js';
import { sleep } from '../lib/stats.js';

/**
 * Memory per idle authenticated connection: the server's RSS (after a full collection) with
 * `count` open, greeted, silent sockets, minus its RSS before, divided by `count`. Each server
 * runs in a fresh process for this.
 */

/**
 * V8 grows its young generation (up to tens of MiB) with the allocation rate and commits its
 * pages lazily, which swamps a few KiB per socket. Every server here gets the same small fixed
 * size: a per-process constant that drops out of the difference (it changes how often V8
 * collects, not what a socket holds).
 */
export const fixedYoungGeneration = ['--min-semi-space-size=1', '--max-semi-space-size=1'];

export interface MemoryRow {
  readonly key: string;
  readonly label: string;
  readonly connections: number;
  readonly rssPerConnection: number;
  readonly heapPerConnection: number;
}

/** Opens one socket per credential, 50 at a time. */
export async function openAll(
  open: Connector['open'],
  port: number,
  credentials: readonly Minted[],
): Promise<RawWs[]> {
  const sockets: RawWs[] = [];
  const batch = 50;
  for (let i = 0; i < credentials.length; i += batch) {
    const slice = credentials.slice(i, i + batch);
    sockets.push(...(await Promise.all(slice.map((credential) => open(port, credential)))));
  }
  return sockets;
}

/** Sockets opened and closed first, to warm the server's code paths. */
const warmup = 200;

export async function memory(ctx: BenchContext): Promise<MemoryRow[]> {
  const count = ctx.count(2000, 5000);
  const cases = lineup.filter(([key]) => ctx.includes(key));
  const rows: MemoryRow[] = [];
  for (const [key, connector] of cases) {
    // A fresh wsgate node each time: it issues the tokens, and is the server under test for wsgate.
    const wsgate = await startWsgate(ctx, [], fixedYoungGeneration);
    // Every socket has its own session and token, as every user would: nothing is shared that
    // would not be shared in real life (claims, cache entries, registry sets).
    const credentials = await wsgate.mint(warmup + count);
    const kind = connector.server;
    const server =
      kind === 'wsgate' ||
      kind === 'wsgate-hs256' ||
      kind === 'wsgate-rs256' ||
      kind === 'ws-crypto-hs256'
        ? wsgate.server
        : await startBaseline(ctx, kind, wsgate.info, fixedYoungGeneration);
    try {
      // Warm the server's code paths, then measure from a settled heap.
      const warming = credentials.slice(0, warmup);
      for (const ws of await openAll(connector.open, server.port, warming)) ws.close();
      await sleep(500);
      const before = await server.stats(true);
      const sockets = await openAll(connector.open, server.port, credentials.slice(warmup));
      await sleep(500);
      const after = await server.stats(true);
      for (const ws of sockets) ws.close();
      const row = {
        key,
        label: connector.label,
        connections: count,
        rssPerConnection: (after.rss - before.rss) / count,
        heapPerConnection: (after.heapUsed - before.heapUsed) / count,
      };
      ctx.log(
        `  memory ${key}: ${(row.rssPerConnection / 1024).toFixed(1)} KiB RSS per connection`,
      );
      rows.push(row);
    } finally {
      await server.stop();
      await wsgate.server.stop();
    }
  }
  return rows;
}
