import { cpus } from 'node:os';
import { usableCores } from '../../dist/config.js';
import { wsgateConnectors, type Connector } from '../lib/connectors.js';
import { startWsgateWorkers, type BenchContext } from '../lib/context.js';
import { median, medianSummary, inTurn, type WindowSummary } from '../lib/stats.js';
import { clients, measureEcho } from './echo.js';
import { coldPool, measureHandshakes } from './handshakes.js';

/**
 * `wsgate serve --workers n` against `--workers 1`: handshakes (every token new, Authorization
 * header) and echo round trips, on the CLI as an operator runs it. Server CPU is the primary's and
 * every worker's together. Where the bench pins, one worker gets the server core and n workers the
 * first n cores, so on a two-core machine the second worker shares its core with the load
 * generator: the report says so.
 */

export interface WorkersRow {
  readonly key: string;
  readonly label: string;
  readonly workers: number;
  /** Where the server's processes ran, and what they shared. */
  readonly cores: string;
  readonly handshakesPerSecond: number;
  readonly handshakeCpuUs: number;
  readonly echo: WindowSummary;
}

/** The cores `n` server processes get: the server core for one, else the first n (0-based). */
function placementFor(
  ctx: BenchContext,
  n: number,
): { core: number | string | undefined; text: string } {
  const { serverCore, loadCore } = ctx.placement;
  if (serverCore === undefined)
    return { core: undefined, text: 'not pinned: server and load generator share every core' };
  if (n === 1)
    return { core: serverCore, text: `core ${serverCore}; load generator on core ${loadCore}` };
  const cores = Array.from({ length: Math.min(n, cpus().length) }, (_, i) => i);
  const shared = loadCore !== undefined && cores.includes(loadCore);
  return {
    core: cores.join(','),
    text: `cores ${cores.join(', ')}${shared ? `; core ${loadCore} shared with the load generator` : ''}`,
  };
}

export async function workers(ctx: BenchContext): Promise<WorkersRow[]> {
  // What `--workers auto` gives the server, which is not pinned to this process's one core.
  const auto = usableCores(undefined, cpus().length);
  const counts = [...new Set([1, 2, auto])];
  const cases = counts
    .map((n) => [n === auto && n > 2 ? 'workers-auto' : `workers-${n}`, n] as const)
    .filter(([key]) => ctx.includes(key));
  const header = wsgateConnectors.header as Connector;
  const handshakes = new Map<string, { perSecond: number; cpuUs: number }[]>();
  const echoes = new Map<string, WindowSummary[]>();
  for (let round = 0; round < ctx.count(1, 3); round++) {
    for (const [key, n] of inTurn(cases, round)) {
      const node = await startWsgateWorkers(ctx, n, placementFor(ctx, n).core);
      try {
        const server = node.server;
        const cold = await node.tokens(ctx.count(coldPool / 2, coldPool));
        await measureHandshakes(header, server, cold, ctx.seconds(1, 2)); // warm-up
        const h = await measureHandshakes(header, server, cold, ctx.seconds(2, 5));
        if (h.failed > 0) ctx.log(`  ${key}: ${h.failed} handshakes failed: ${String(h.error)}`);
        handshakes.set(key, [...(handshakes.get(key) ?? []), h]);
        const [credential] = await node.mint(1);
        if (!credential) throw new Error('no credential minted');
        const sockets = await Promise.all(
          Array.from({ length: clients }, () => header.open(server.port, credential)),
        );
        await measureEcho(sockets, header, server, ctx.seconds(0.5, 1)); // warm-up
        const e = await measureEcho(sockets, header, server, ctx.seconds(2, 5));
        for (const ws of sockets) ws.close();
        echoes.set(key, [...(echoes.get(key) ?? []), e]);
        ctx.log(
          `  ${key}: ${Math.round(h.perSecond)} handshakes/s, ${Math.round(e.perSecond)} echoes/s`,
        );
      } finally {
        await node.server.stop();
      }
    }
  }
  return cases.map(([key, n]) => {
    const h = handshakes.get(key) ?? [];
    return {
      key,
      label: `--workers ${key === 'workers-auto' ? `auto (${n})` : n}${n === auto ? ' (= auto here)' : ''}`,
      workers: n,
      cores: placementFor(ctx, n).text,
      handshakesPerSecond: median(h.map((r) => r.perSecond)),
      handshakeCpuUs: median(h.map((r) => r.cpuUs)),
      echo: medianSummary(echoes.get(key) ?? []),
    };
  });
}
