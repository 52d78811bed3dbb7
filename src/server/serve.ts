import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { createRuntime, type Runtime, type RuntimeOptions } from '../runtime.js';
import { buildApp } from './app.js';

export interface RunningServer {
  readonly runtime: Runtime;
  readonly app: FastifyInstance;
  /** The base URL the server listens on, e.g. `http://127.0.0.1:8000`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, finishes in-flight work, closes the database. Safe to call twice. */
  close(): Promise<void>;
}

/** Starts a wsgate node: runtime, HTTP server, listening socket. */
export async function startServer(
  config: Config,
  options: RuntimeOptions = {},
): Promise<RunningServer> {
  const runtime = await createRuntime(config, options);
  let app: FastifyInstance;
  try {
    app = await buildApp(runtime);
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await runtime.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  return {
    runtime,
    app,
    port,
    url: `http://${host}:${port}`,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await runtime.close();
      })()),
  };
}
