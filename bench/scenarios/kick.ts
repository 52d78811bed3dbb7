import pg from 'pg';
import { Redis } from 'ioredis';
import { wsgateConnectors, type Connector, type Minted } from '../lib/connectors.js';
import { startWsgate, type BenchContext, type WsgateNode } from '../lib/context.js';
import { percentile } from '../lib/stats.js';

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

const redisUrl = process.env.WSGATE_BENCH_REDIS ?? 'redis://127.0.0.1:6379';
const postgresUrl = process.env.WSGATE_BENCH_POSTGRES ?? 'postgres://root@127.0.0.1:5432/test';

async function kicks(
  socketNode: WsgateNode,
  logoutNode: WsgateNode,
  credentials: readonly Minted[],
): Promise<number[]> {
  const header = wsgateConnectors.header as Connector;
  const latencies: number[] = [];
  for (const credential of credentials) {
    const ws = await header.open(socketNode.server.port, credential);
    const closed = new Promise<number>((resolve) => {
      ws.onClose = (code) => resolve(code);
    });
    const started = performance.now();
    const response = await fetch(`http://127.0.0.1:${logoutNode.server.port}/logout`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${credential.access}` },
    });
    if (response.status !== 204) throw new Error(`logout answered ${response.status}`);
    const code = await closed;
    latencies.push(performance.now() - started);
    if (code !== 4410) throw new Error(`socket closed with ${code}, not 4410`);
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

async function reachable(check: () => Promise<unknown>): Promise<boolean> {
  try {
    await check();
    return true;
  } catch {
    return false;
  }
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
  if (ctx.includes('cluster')) {
    const label = 'across two nodes (Redis, PostgreSQL)';
    const redisUp = await reachable(async () => {
      const redis = new Redis(redisUrl, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      redis.on('error', () => undefined);
      try {
        await redis.connect();
        await redis.ping();
      } finally {
        redis.disconnect();
      }
    });
    const database = redisUp ? await freshDatabase().catch(() => undefined) : undefined;
    if (!redisUp || !database) {
      const why = !redisUp ? `Redis not reachable at ${redisUrl}` : 'PostgreSQL not reachable';
      ctx.log(`  kick across nodes skipped: ${why}`);
      rows.push({
        key: 'cluster',
        label,
        kicks: 0,
        p50Ms: NaN,
        p99Ms: NaN,
        maxMs: NaN,
        skipped: why,
      });
      return rows;
    }
    const shared = [
      '--database',
      database.url,
      '--redis',
      redisUrl,
      '--redis-prefix',
      `wsgate-bench-${process.pid}:`,
      '--issuer',
      'http://wsgate-bench.invalid',
    ];
    const nodes: WsgateNode[] = [];
    try {
      nodes.push(await startWsgate(ctx, shared));
      nodes.push(await startWsgate(ctx, shared));
      const [a, b] = nodes as [WsgateNode, WsgateNode];
      const credentials = await a.mint(rounds);
      await kicks(b, a, credentials.slice(0, 10)); // warm-up
      rows.push(row('cluster', label, await kicks(b, a, credentials.slice(10))));
    } finally {
      await Promise.all(nodes.map((n) => n.server.stop()));
      await database.drop();
    }
  }
  for (const r of rows)
    ctx.log(`  kick ${r.key}: p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms`);
  return rows;
}
