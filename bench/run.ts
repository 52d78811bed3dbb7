import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdirSync, writeFileSync } from 'node:fs';
import { raisedLimits, type BenchContext } from './lib/context.js';
import { machine, markdown, svg, type Results } from './lib/report.js';
import { ServerProcess, buildServers, type Placement } from './lib/server-process.js';
import { handshakes } from './scenarios/handshakes.js';
import { echo } from './scenarios/echo.js';
import { memory } from './scenarios/memory.js';
import { fanout } from './scenarios/fanout.js';
import { kick } from './scenarios/kick.js';
import { workers } from './scenarios/workers.js';
import { proxy } from './scenarios/proxy.js';

const quick = process.argv.includes('--quick');
/** `--only=handshakes,echo,proxy` runs those scenarios; `--cases=ws-plain,wsgate-header` those cases. */
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',');
const cases = process.argv
  .find((a) => a.startsWith('--cases='))
  ?.slice(8)
  .split(',');

/** Servers on core 0 and the load generator on core 1, when the machine has two and taskset. */
function placement(): Placement {
  // `--profile-interval=<µs>` samples more often than V8's default (1000 µs).
  const interval = process.argv.find((a) => a.startsWith('--profile-interval='))?.slice(19);
  const nodeArgs = process.argv.includes('--profile')
    ? [
        '--cpu-prof',
        '--cpu-prof-dir',
        fileURLToPath(new URL('results/profiles/', import.meta.url)),
        ...(interval === undefined ? [] : ['--cpu-prof-interval', interval]),
      ]
    : [];
  // Pin only where both cores may be used (not in a container limited to other CPUs).
  const pinnable = (core: number) =>
    spawnSync('taskset', ['-c', String(core), 'true']).status === 0;
  if (!pinnable(0) || !pinnable(1)) return { serverCore: undefined, loadCore: undefined, nodeArgs };
  return { serverCore: 0, loadCore: 1, nodeArgs };
}

const where = placement();
if (where.loadCore !== undefined && process.env.WSGATE_BENCH_PINNED === undefined) {
  // Run the load generator itself on its own core: start this script again under taskset.
  const self = fileURLToPath(import.meta.url);
  const result = spawnSync(
    'taskset',
    [
      '-c',
      String(where.loadCore),
      process.execPath,
      '--import',
      'tsx',
      self,
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit', env: { ...process.env, WSGATE_BENCH_PINNED: '1' } },
  );
  process.exit(result.status ?? 1);
}

await buildServers();
const ctx: BenchContext = {
  quick,
  placement: where,
  seconds: (q, f) => (quick ? q : f) * 1000,
  count: (q, f) => (quick ? q : f),
  log: (line) => console.log(line),
  includes: (key) => cases === undefined || cases.includes(key),
};

const wanted = (name: string) => only === undefined || only.includes(name);

/** Runs a scenario; whatever happens, no server it started outlives it. */
async function scenario<T>(run: (ctx: BenchContext) => Promise<T>): Promise<T> {
  try {
    return await run(ctx);
  } finally {
    await ServerProcess.stopAll();
  }
}
const results: Results = {
  date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
  quick,
  node: process.version,
  cpu: machine(),
  pinned: where.serverCore !== undefined,
  raisedLimits,
  ...(wanted('handshakes') ? { handshakes: await scenario(handshakes) } : {}),
  ...(wanted('echo') ? { echo: await scenario(echo) } : {}),
  ...(wanted('fanout') ? { fanout: await scenario(fanout) } : {}),
  ...(wanted('memory') ? { memory: await scenario(memory) } : {}),
  ...(wanted('kick') ? { kick: await scenario(kick) } : {}),
  ...(wanted('workers') ? { workers: await scenario(workers) } : {}),
  ...(wanted('proxy') ? { proxy: await scenario(proxy) } : {}),
};

// Only a full run of every scenario replaces the published results; others go beside them.
const name = quick ? 'quick' : only !== undefined || cases !== undefined ? 'partial' : 'latest';
const resultsDir = fileURLToPath(new URL('results/', import.meta.url));
mkdirSync(resultsDir, { recursive: true });
const report = markdown(results, name);
writeFileSync(`${resultsDir}${name}.md`, report);
writeFileSync(`${resultsDir}${name}.svg`, svg(results));
writeFileSync(`${resultsDir}${name}.json`, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\n${report}`);
console.log(`written to ${resultsDir}${name}.md, ${name}.svg and ${name}.json`);
