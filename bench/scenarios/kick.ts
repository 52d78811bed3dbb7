import pg from 'pg';
import { wsgateConnectors, type Connector, type Minted } from '../lib/connectors.js';
import {
  startWsgate,
  startWsgateWorkers,
  type BenchContext,
  type WsgateNode,
} from '../lib/context.js';
import { percentile } from '../lib/stats.js';
// The same services, addresses and probes as the test suites (WSGATE_TEST_REDIS, …_POSTGRES).
import {
  postgresReachable,
  postgresUrl,
  redisReachable,
  redisUrl,
  unreachable,
} from '../../test/support/services.js';

/**
 * Revocation kick latency: a socket is open, its session is ended with `POST /logout`, and the
 * clock runs from sending the logout to the socket's close (4410) at the client. Locally one node
 * does both; across nodes the socket is on node B and the logout goes to node A, which reaches B
 * through Redis (PostgreSQL holds the shared sessions).
 */

export interface KickRow {
  readonly key: string;
  readonly label: string;
  readonly kicks: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Why the row was not measured, when it was not. */
  readonly skipped?: string;
}

async function kicks(
  socketNode: WsgateNode,
  logoutNode: WsgateNode,
  credentials: readonly Minted[],
  socketsPerSession = 1,
): Promise<number[]> {
  const header = wsgateConnectors.header as Connector;
  const latencies: number[] = [];
  for (const credential of credentials) {
    const closes: Promise<number>[] = [];
    for (let i = 0; i < socketsPerSession; i++) {
      const ws = await header.open(socketNode.server.port, credential);
      closes.push(
        new Promise<number>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error('no close within 10 s of the logout')),
            10_000,
          );
          ws.onClose = (code) => {
            clearTimeout(timer);
            resolve(code);
          };
        }),
      );
    }
    const started = performance.now();
    const response = await fetch(`http://127.0.0.1:${logoutNode.server.port}/logout`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${credential.access}` },
    });
    if (response.status !== 204) throw new Error(`logout answered ${response.status}`);
    const codes = await Promise.all(closes);
    latencies.push(performance.now() - started);
    const wrong = codes.find((code) => code !== 4410);
    if (wrong !== undefined) throw new Error(`socket closed with ${wrong}, not 4410`);
  }
  return latencies;
}

function row(key: string, label: string, latencies: number[]): KickRow {
  return {
    key,
    label,
    kicks: latencies.length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: Math.max(...latencies),
  };
}

/** A new, empty PostgreSQL database for one run; dropped by the function it returns. */
async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `wsgate_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/** Kicks with the socket on node B and the logout on node A; a skipped row without Redis or PostgreSQL. */
async function acrossNodes(ctx: BenchContext, rounds: number): Promise<KickRow> {
  const label = 'across two nodes (Redis, PostgreSQL)';
  const why = !(await redisReachable())
    ? unreachable('Redis', redisUrl)
    : !(await postgresReachable())
      ? unreachable('PostgreSQL', postgresUrl)
      : undefined;
  if (why !== undefined) {
    if (process.env.CI === 'true') throw new Error(`${why}; in CI the cluster kick must run`);
    ctx.log(`  kick across nodes skipped: ${why}`);
    return { key: 'cluster', label, kicks: 0, p50Ms: NaN, p99Ms: NaN, maxMs: NaN, skipped: why };
  }
  const database = await freshDatabase();
  const shared = [
    ...['--database', database.url, '--redis', redisUrl],
    ...[
      '--redis-prefix',
      `wsgate-bench-${process.pid}:`,
      '--issuer',
      'http://wsgate-bench.invalid',
    ],
  ];
  const nodes: WsgateNode[] = [];
  try {
    nodes.push(await startWsgate(ctx, shared));
    nodes.push(await startWsgate(ctx, shared));
    const [a, b] = nodes as [WsgateNode, WsgateNode];
    const credentials = await a.mint(rounds);
    await kicks(b, a, credentials.slice(0, 10)); // warm-up
    return row('cluster', label, await kicks(b, a, credentials.slice(10)));
  } finally {
    await Promise.all(nodes.map((n) => n.server.stop()));
    await database.drop();
  }
}

/**
 * `--workers 2`: each session has two sockets, opened one after the other, so that the primary
 * deals them to both workers; the logout reaches one worker, and the time runs until the later of
 * the two closes, which is always the kick that crossed to the other worker.
 */
async function acrossWorkers(ctx: BenchContext, rounds: number): Promise<KickRow> {
  const { serverCore } = ctx.placement;
  const node = await startWsgateWorkers(ctx, 2, serverCore === undefined ? undefined : '0,1');
  try {
    const credentials = await node.mint(rounds);
    await kicks(node, node, credentials.slice(0, 10), 2); // warm-up
    const label = 'across the workers of one node (--workers 2, bus through the primary)';
    return row('workers', label, await kicks(node, node, credentials.slice(10), 2));
  } finally {
    await node.server.stop();
  }
}

export async function kick(ctx: BenchContext): Promise<KickRow[]> {
  const rounds = ctx.count(50, 200);
  const rows: KickRow[] = [];
  if (ctx.includes('local')) {
    const node = await startWsgate(ctx);
    try {
      const credentials = await node.mint(rounds);
      await kicks(node, node, credentials.slice(0, 10)); // warm-up
      rows.push(row('local', 'one node', await kicks(node, node, credentials.slice(10))));
    } finally {
      await node.server.stop();
    }
  }
  if (ctx.includes('cluster')) rows.push(await acrossNodes(ctx, rounds));
  if (ctx.includes('workers')) rows.push(await acrossWorkers(ctx, rounds));
  for (const r of rows)
    ctx.log(`  kick ${r.key}: p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms`);
  return rows;
}
