import { wsgateConnectors, wsPlain, type Connector, type Minted } from '../lib/connectors.js';
import { startWsgate, type BenchContext, type WsgateNode } from '../lib/context.js';
import type { RawWs } from '../lib/raw-ws.js';
import { ServerProcess } from '../lib/server-process.js';
import { inTurn, median, medianSummary, sleep, type WindowSummary } from '../lib/stats.js';
import { clients, measureEcho } from './echo.js';
import { fixedYoungGeneration, openAll } from './memory.js';

/**
 * Proxy mode (`wsgate serve --proxy /app=ws://…`) against a direct connection to the same
 * upstream: a plain `ws` echo server (the bench's `ws-baseline` without authentication), which
 * greets and echoes like every other bench server. Proxied, a client sends `Authorization:
 * Bearer` to wsgate's `/app`; wsgate checks it, dials the upstream and pipes the frames both ways.
 * wsgate and the upstream share the server core: two hops on one core.
 */

export interface ProxyEchoRow extends WindowSummary {
  readonly key: string;
  readonly label: string;
  /** Server CPU per round trip in the upstream, and in wsgate (0 for the direct row). */
  readonly upstreamCpuUs: number;
  readonly gatewayCpuUs: number;
}

export interface ProxyMemoryRow {
  readonly key: string;
  readonly label: string;
  readonly connections: number;
  /** RSS and JS heap per idle socket in the upstream process. */
  readonly upstreamRss: number;
  readonly upstreamHeap: number;
  /** The same in wsgate (both legs of each proxied socket); 0 for the direct row. */
  readonly gatewayRss: number;
  readonly gatewayHeap: number;
}

export interface ProxyResults {
  readonly echo: readonly ProxyEchoRow[];
  readonly memory: readonly ProxyMemoryRow[];
}

/** The path wsgate proxies, and the upstream path it pipes to. */
const proxyPath = '/app';
const upstreamPath = '/secured-ws';

const direct: Connector = { ...wsPlain, label: 'direct to the ws echo server' };
const proxied: Connector = {
  ...(wsgateConnectors.header as Connector),
  label: 'through wsgate --proxy (Authorization header)',
  open: (port, c) => (wsgateConnectors.header as Connector).open(port, c, proxyPath),
};
const cases = [
  ['direct', direct],
  ['proxied', proxied],
] as const;

/** A plain `ws` echo server: the upstream of every row. */
function startUpstream(ctx: BenchContext, nodeArgs: readonly string[] = []) {
  return ServerProcess.start(ctx.placement, 'ws-baseline', ['--auth', 'none'], nodeArgs);
}

/** A wsgate node that proxies {@link proxyPath} to `upstream`. */
function startGateway(
  ctx: BenchContext,
  upstream: ServerProcess,
  nodeArgs: readonly string[] = [],
): Promise<WsgateNode> {
  const target = `ws://127.0.0.1:${upstream.port}${upstreamPath}`;
  return startWsgate(ctx, ['--proxy', `${proxyPath}=${target}`], nodeArgs);
}

async function echoRows(ctx: BenchContext): Promise<ProxyEchoRow[]> {
  const wanted = cases.filter(([key]) => ctx.includes(key));
  if (wanted.length === 0) return [];
  const upstream = await startUpstream(ctx);
  const gateway = await startGateway(ctx, upstream);
  try {
    const [credential] = await gateway.mint(1);
    if (!credential) throw new Error('no credential minted');
    const runs = new Map<string, (WindowSummary & { cpuUsEach: readonly number[] })[]>();
    for (let round = 0; round < ctx.count(1, 3); round++) {
      for (const [key, connector] of inTurn(wanted, round)) {
        // Direct: the upstream alone. Proxied: wsgate's port, with wsgate's CPU counted first.
        const port = key === 'direct' ? upstream.port : gateway.server.port;
        const measured = key === 'direct' ? [upstream] : [upstream, gateway.server];
        const sockets = await Promise.all(
          Array.from({ length: clients }, () => connector.open(port, credential)),
        );
        await measureEcho(sockets, connector, measured, ctx.seconds(0.5, 1)); // warm-up
        const m = await measureEcho(sockets, connector, measured, ctx.seconds(2, 5));
        for (const ws of sockets) ws.close();
        ctx.log(
          `  proxy echo ${key}: ${Math.round(m.perSecond)}/s, ${m.cpuUs.toFixed(1)} µs server CPU each`,
        );
        runs.set(key, [...(runs.get(key) ?? []), m]);
        await sleep(200); // the closes settle before the next case
      }
    }
    return wanted.map(([key, connector]) => {
      const r = runs.get(key) ?? [];
      return {
        key,
        label: connector.label,
        ...medianSummary(r),
        upstreamCpuUs: median(r.map((m) => m.cpuUsEach[0] ?? 0)),
        gatewayCpuUs: median(r.map((m) => m.cpuUsEach[1] ?? 0)),
      };
    });
  } finally {
    await gateway.server.stop();
    await upstream.stop();
  }
}

/** Sockets opened and closed first, to warm the servers' code paths. */
const warmup = 200;

/** What a direct socket presents: nothing (the upstream checks no credential). */
const noCredential: Minted = { access: '', refresh: '', sessionId: '', csrf: null };

/**
 * One memory round of one case, in fresh processes: RSS (after a full collection) with `count`
 * idle greeted sockets, minus RSS before, per socket, in the upstream and (proxied) in wsgate,
 * where every socket has its own session and token.
 */
async function memoryRound(
  ctx: BenchContext,
  key: string,
  connector: Connector,
  count: number,
): Promise<Omit<ProxyMemoryRow, 'label'>> {
  const upstream = await startUpstream(ctx, fixedYoungGeneration);
  const gateway =
    key === 'direct' ? undefined : await startGateway(ctx, upstream, fixedYoungGeneration);
  const servers = gateway === undefined ? [upstream] : [upstream, gateway.server];
  try {
    const credentials: readonly Minted[] =
      gateway === undefined
        ? Array.from({ length: warmup + count }, () => noCredential)
        : await gateway.mint(warmup + count);
    const port = gateway === undefined ? upstream.port : gateway.server.port;
    for (const ws of await openAll(connector.open, port, credentials.slice(0, warmup))) ws.close();
    await sleep(500);
    const before = await Promise.all(servers.map((s) => s.stats(true)));
    const sockets: RawWs[] = await openAll(connector.open, port, credentials.slice(warmup));
    await sleep(500);
    const after = await Promise.all(servers.map((s) => s.stats(true)));
    for (const ws of sockets) ws.close();
    const each = (i: number, field: 'rss' | 'heapUsed') => {
      const [b, a] = [before[i], after[i]];
      return a === undefined || b === undefined ? 0 : (a[field] - b[field]) / count;
    };
    return {
      key,
      connections: count,
      upstreamRss: each(0, 'rss'),
      upstreamHeap: each(0, 'heapUsed'),
      gatewayRss: each(1, 'rss'),
      gatewayHeap: each(1, 'heapUsed'),
    };
  } finally {
    await gateway?.server.stop();
    await upstream.stop();
  }
}

async function memoryRows(ctx: BenchContext): Promise<ProxyMemoryRow[]> {
  const count = ctx.count(1000, 5000);
  const wanted = cases.filter(([key]) => ctx.includes(key));
  const runs = new Map<string, Omit<ProxyMemoryRow, 'label'>[]>();
  for (let round = 0; round < ctx.count(1, 3); round++) {
    for (const [key, connector] of inTurn(wanted, round)) {
      const row = await memoryRound(ctx, key, connector, count);
      const kib = (bytes: number) => (bytes / 1024).toFixed(1);
      ctx.log(
        `  proxy memory ${key}: upstream ${kib(row.upstreamRss)} KiB, wsgate ${kib(row.gatewayRss)} KiB RSS per socket`,
      );
      runs.set(key, [...(runs.get(key) ?? []), row]);
    }
  }
  return wanted.map(([key, connector]) => {
    const r = runs.get(key) ?? [];
    const mid = (field: keyof Omit<ProxyMemoryRow, 'key' | 'label'>) =>
      median(r.map((row) => row[field]));
    return {
      key,
      label: connector.label,
      connections: count,
      upstreamRss: mid('upstreamRss'),
      upstreamHeap: mid('upstreamHeap'),
      gatewayRss: mid('gatewayRss'),
      gatewayHeap: mid('gatewayHeap'),
    };
  });
}

export async function proxy(ctx: BenchContext): Promise<ProxyResults> {
  return { echo: await echoRows(ctx), memory: await memoryRows(ctx) };
}
