import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { configFlags } from '../../dist/config.js';
import { createLogger } from '../../dist/log.js';
import { createRuntime, loadConfig } from '../../dist/index.js';
import { serveIpc, type ProcessStats } from './ipc.js';
import { addBenchUser, sessionHandlers } from './sessions.js';

/**
 * `wsgate serve --workers n` for the benchmarks, run as an operator runs it (`bin/wsgate.js`),
 * behind the same IPC as the one-process bench server. This process opens the deployment first
 * (the bench user, sessions and tokens, signed with the deployment's keys) and reports the CPU
 * time and memory of the primary and every worker together, read from /proc.
 */

const args = process.argv.slice(2);
const { values } = parseArgs({ options: configFlags, strict: true, args });
const config = loadConfig(values, {});
const runtime = await createRuntime(config, { log: createLogger('silent') });
await runtime.claimDeployment();
await addBenchUser(runtime);

const bin = fileURLToPath(new URL('../../bin/wsgate.js', import.meta.url));
const child = spawn(process.execPath, [bin, 'serve', ...args, '--log-format', 'json'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const pids = new Set<number>(child.pid === undefined ? [] : [child.pid]);
const url = await new Promise<string>((resolve, reject) => {
  child.once('exit', (code) => reject(new Error(`wsgate serve exited with ${code}`)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    let entry: { msg?: string; url?: string; pid?: number };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      return;
    }
    if (entry.msg === 'worker started' && entry.pid !== undefined) pids.add(entry.pid);
    if (entry.msg?.startsWith('wsgate listening on') && entry.url) resolve(entry.url);
  });
});

const tick = 1_000_000 / 100; // µs per clock tick (USER_HZ is 100 on Linux)
const page = 4096;

/** CPU time and RSS of the primary and every worker, from /proc/<pid>/stat. */
function stats(): ProcessStats {
  let cpuUs = 0;
  let rss = 0;
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // a worker that died; its replacement is counted from its own start
    }
    // Fields after the command name (which may hold spaces): state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    cpuUs += (Number(fields[11]) + Number(fields[12])) * tick;
    rss += Number(fields[21]) * page;
  }
  return { cpuUs, rss, heapUsed: 0 };
}

serveIpc(
  Number(new URL(url).port),
  { ...sessionHandlers(runtime, config, () => url), stats },
  async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    await runtime.close();
  },
);
