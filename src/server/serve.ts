import type { FastifyInstance } from 'fastify';
import { listeningUrl, type Config } from '../config.js';
import { createRuntime, type Runtime, type RuntimeOptions } from '../runtime.js';
import { buildApp, type AppOptions } from './app.js';
import type { Gate } from '../handshake/gate.js';

export interface RunningServer {
  readonly runtime: Runtime;
  readonly app: FastifyInstance;
  readonly gate: Gate;
  /** The base URL the server listens on, e.g. `http://127.0.0.1:8000`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, finishes in-flight work, closes the database. Safe to call twice. */
  close(): Promise<void>;
}

/** Starts a wsgate node: runtime, HTTP server, listening socket. */
export async function startServer(
  config: Config,
  options: RuntimeOptions & AppOptions = {},
): Promise<RunningServer> {
  const runtime = await createRuntime(config, options);
  let app: FastifyInstance;
  let gate: Gate;
  try {
    ({ app, gate } = await buildApp(runtime, options));
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    await runtime.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = listeningUrl(config.host, port);
  if (config.issuerDerived && config.port === 0) runtime.sessions.setIssuer(url);
  let closing: Promise<void> | undefined;
  return {
    runtime,
    app,
    gate,
    port,
    url,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await runtime.close();
      })()),
  };
}
