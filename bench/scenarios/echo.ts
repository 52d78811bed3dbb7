import { lineup, type Connector } from '../lib/connectors.js';
import { startBaseline, startWsgate, type BenchContext } from '../lib/context.js';
import type { RawWs } from '../lib/raw-ws.js';
import { ServerProcess } from '../lib/server-process.js';
import { Samples, medianSummary, summarise, type WindowSummary, inTurn } from '../lib/stats.js';

/**
 * Echo round trips: `clients` authenticated sockets each send a text, wait for `You wrote: …` and
 * send the next, for a fixed time. Measures round trips per second, their p50 and p99, and the
 * server's CPU time per round trip.
 */

export interface EchoRow extends WindowSummary {
  readonly key: string;
  readonly label: string;
}

export const clients = 100;

/**
 * Echo round trips on `sockets` for `durationMs`. The server CPU is that of `server`, or of every
 * process of a list (a gateway and its upstream), with each one's share in `cpuUsEach`.
 */
export async function measureEcho(
  sockets: readonly RawWs[],
  connector: Connector,
  server: ServerProcess | readonly ServerProcess[],
  durationMs: number,
): Promise<WindowSummary & { readonly cpuUsEach: readonly number[] }> {
  const servers = server instanceof ServerProcess ? [server] : server;
  const samples = new Samples();
  const before = await Promise.all(servers.map((s) => s.stats()));
  const started = performance.now();
  const deadline = started + durationMs;
  const text = 'the quick brown fox jumps over the lazy dog';
  const frame = connector.message(text);
  const expected = connector.echo(text);
  let wrong = 0;
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          let sentAt = 0;
          const send = () => {
            if (performance.now() >= deadline) return resolve();
            sentAt = performance.now();
            ws.send(frame);
          };
          ws.onText = (reply) => {
            if (reply !== expected) wrong++;
            samples.push(performance.now() - sentAt);
            send();
          };
          ws.onClose = () => resolve();
          send();
        }),
    ),
  );
  const elapsed = performance.now() - started;
  const after = await Promise.all(servers.map((s) => s.stats()));
  if (wrong > 0) throw new Error(`${connector.label}: ${wrong} echoes did not match`);
  const used = after.map((a, i) => a.cpuUs - (before[i]?.cpuUs ?? 0));
  const roundTrips = Math.max(1, samples.length);
  return {
    ...summarise(
      samples.values(),
      elapsed,
      used.reduce((a, b) => a + b, 0),
    ),
    cpuUsEach: used.map((us) => us / roundTrips),
  };
}

export async function echo(ctx: BenchContext): Promise<EchoRow[]> {
  const wsgate = await startWsgate(ctx);
  const [credential] = await wsgate.mint(1);
  if (!credential) throw new Error('no credential minted');
  const servers: Partial<Record<Connector['server'], ServerProcess>> = {
    wsgate: wsgate.server,
    'ws-plain': await startBaseline(ctx, 'ws-plain', wsgate.info),
    'ws-jose': await startBaseline(ctx, 'ws-jose', wsgate.info),
    socketio: await startBaseline(ctx, 'socketio', wsgate.info),
  };
  const cases = lineup.filter(([key]) => ctx.includes(key));
  const rows: EchoRow[] = [];
  try {
    const runs = new Map<string, WindowSummary[]>();
    for (let round = 0; round < ctx.count(1, 3); round++) {
      for (const [key, connector] of inTurn(cases, round)) {
        const server = servers[connector.server];
        if (!server) throw new Error(`no ${connector.server} server in this scenario`);
        const sockets = await Promise.all(
          Array.from({ length: clients }, () => connector.open(server.port, credential)),
        );
        await measureEcho(sockets, connector, server, ctx.seconds(0.5, 1)); // warm-up
        const m = await measureEcho(sockets, connector, server, ctx.seconds(2, 5));
        for (const ws of sockets) ws.close();
        ctx.log(`  echo ${key}: ${Math.round(m.perSecond)}/s, p99 ${m.p99Ms.toFixed(2)} ms`);
        runs.set(key, [...(runs.get(key) ?? []), m]);
      }
    }
    for (const [key, connector] of cases) {
      const r = runs.get(key) ?? [];
      rows.push({
        key,
        label: connector.label,
        ...medianSummary(r),
      });
    }
  } finally {
    await Promise.all(Object.values(servers).map((s) => s?.stop()));
  }
  return rows;
}
