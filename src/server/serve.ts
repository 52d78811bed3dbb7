import { createServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { listeningUrl, type Config } from '../config.js';
import { unlogged } from '../log.js';
import { checkFirstStart, createRuntime, type Runtime, type RuntimeOptions } from '../runtime.js';
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

/** Fails with a message naming the address when `host:port` cannot be listened on. */
export async function checkPortFree(host: string, port: number): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'is already in use'
          : err.code === 'EACCES'
            ? 'needs more privileges'
            : `cannot be listened on (${err.code ?? err.message})`;
      reject(new Error(`--port ${port}: ${listeningUrl(host, port)} ${why}`, { cause: err }));
    });
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}

export interface StartOptions {
  /**
   * False for a `--workers` worker: the primary checked the port, and the workers share it, so
   * a probe that binds it alone would find it taken.
   */
  readonly checkPort?: boolean;
}

/** Starts a wsgate node: runtime, HTTP server, listening socket. */
export async function startServer(
  config: Config,
  options: RuntimeOptions & AppOptions & StartOptions = {},
): Promise<RunningServer> {
  checkFirstStart(config);
  // A busy port is found before the first start creates a data dir it would leave behind.
  if (config.port !== 0 && options.checkPort !== false)
    await checkPortFree(config.host, config.port);
  const runtime = await createRuntime(config, options);
  // A derived issuer names the listening port, which port 0 only tells after listen().
  const issuerAfterListen = config.issuerDerived && config.port === 0;
  let app: FastifyInstance | undefined;
  let gate: Gate;
  let url: string;
  let port: number;
  try {
    if (!issuerAfterListen) await runtime.claimDeployment();
    ({ app, gate } = await buildApp(runtime, options));
    await app.listen({ port: config.port, host: config.host, listenTextResolver: () => unlogged });
    const address = app.server.address();
    port = typeof address === 'object' && address ? address.port : config.port;
    url = listeningUrl(config.host, port);
    if (issuerAfterListen) await runtime.claimDeployment(url);
  } catch (err) {
    await app?.close();
    await runtime.close();
    throw err;
  }
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
