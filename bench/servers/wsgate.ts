import { parseArgs } from 'node:util';
// The built package, as `wsgate serve` runs it (npm run bench builds it first).
import { configFlags } from '../../dist/config.js';
import { loadConfig, startServer } from '../../dist/index.js';
import { serveIpc } from './ipc.js';
import { addBenchUser, sessionHandlers } from './sessions.js';

/**
 * A wsgate node for the benchmarks: `wsgate serve` with the flags given on the command line,
 * plus an IPC channel that reports CPU and memory and opens sessions for the load generator.
 */

const { values } = parseArgs({ options: configFlags, strict: true });
const config = loadConfig(values, {});
const server = await startServer(config);
await addBenchUser(server.runtime);

serveIpc(
  server.port,
  sessionHandlers(server.runtime, config, () => server.url),
  () => server.close(),
);
