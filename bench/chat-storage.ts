import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresStorage } from '../src/storage/postgres.js';
import { fmt, percentile, Samples } from './lib/stats.js';
// The same database and probe as the test suites (WSGATE_TEST_POSTGRES).
import { postgresReachable, postgresUrl, unreachable } from '../test/support/services.js';

/**
 * Chat storage on PostgreSQL, without sockets: how many messages two nodes (two pools of the
 * default size) store per second, with all writers in one room and with one room per writer, and
 * how long a join's history read and a `since` replay take, idle and while a room is written to.
 * `node --import tsx bench/chat-storage.ts [--seconds=5]`; it works in a schema of its own and
 * drops it.
 */

const seconds = Number(process.argv.find((a) => a.startsWith('--seconds='))?.slice(10) ?? '5');

if (!(await postgresReachable())) {
  console.error(unreachable('PostgreSQL', postgresUrl));
  process.exit(1);
}

const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
const schema = `wsgate_bench_${randomBytes(6).toString('hex')}`;
await admin.query(`CREATE SCHEMA ${schema}`);
const nodes = [0, 1].map(() => new PostgresStorage(postgresUrl, { schema }));

interface Row {
  readonly what: string;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}
const rows: Row[] = [];

/** Runs `op` in `concurrency` loops for `seconds`; one row of its rate and latency. */
async function measure(
  what: string,
  concurrency: number,
  op: (loop: number) => Promise<unknown>,
): Promise<void> {
  const samples = new Samples();
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      while (performance.now() < until) {
        const start = performance.now();
        await op(loop);
        samples.push(performance.now() - start);
      }
    }),
  );
  const latencies = samples.values();
  const row = {
    what,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
  rows.push(row);
  console.log(
    `${what}: ${fmt(row.perSecond)}/s, p50 ${fmt(row.p50Ms)} ms, p99 ${fmt(row.p99Ms)} ms`,
  );
}

const node = (loop: number) => nodes[loop % 2] as PostgresStorage;
const append = (loop: number, room: string) =>
  node(loop).appendMessage({ room, username: 'bench', text: 'hello, bench', ts: Date.now() });

try {
  await Promise.all(nodes.map((n) => n.migrate()));
  // A room with some history to read.
  for (let i = 0; i < 2000; i++) await append(i, 'read');
  const recent = (await nodes[0]?.listMessages('read', { limit: 100 }))?.[0]?.id ?? 0;

  await measure('history read (last 50), idle', 4, (loop) =>
    node(loop).listMessages('read', { limit: 50 }),
  );
  await measure('since replay (100 after an id), idle', 4, (loop) =>
    node(loop).listMessages('read', { afterId: recent, limit: 500 }),
  );
  for (const writers of [1, 8, 32]) {
    await measure(`writes, ${writers} writer(s) in one room`, writers, (loop) =>
      append(loop, 'one'),
    );
  }
  await measure('writes, 32 writers in 32 rooms', 32, (loop) => append(loop, `room-${loop}`));

  // Reads while 16 writers write to the room being read.
  const writing = measure('writes, 16 writers in the room being read', 16, (loop) =>
    append(loop, 'read'),
  );
  await measure('history read (last 50), room written to', 2, (loop) =>
    node(loop).listMessages('read', { limit: 50 }),
  );
  await writing;

  console.log(`\n| case | per second | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: |`);
  for (const r of rows)
    console.log(`| ${r.what} | ${fmt(r.perSecond)} | ${fmt(r.p50Ms)} | ${fmt(r.p99Ms)} |`);
} finally {
  await Promise.all(nodes.map((n) => n.close()));
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
}
