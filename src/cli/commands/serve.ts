import { isLoopback, type Config } from '../../config.js';
import { answeredHosts } from '../../runtime.js';
import type { Command } from '../command.js';

/**
 * The `Host` names answered, for the "listening" log line of a node off loopback (or with
 * --allowed-host): a container's or a service's log is where its operator looks first for a 421.
 */
function hostsField(config: Config, issuer: string): { hosts?: string } {
  if (isLoopback(config.host) && config.allowedHosts.length === 0) return {};
  return { hosts: answeredHosts(config, issuer) };
}

function hostsText(field: { hosts?: string }): string {
  return field.hosts === undefined ? '' : `; answers Host ${field.hosts}, others get 421`;
}

/** What a production start should not do unawares: plain HTTP on a public address. */
export function startupWarnings(config: Config, issuer: string): string[] {
  if (isLoopback(config.host)) return [];
  if (issuer.startsWith('https://') || config.secureCookies) return [];
  return [
    `listening on ${config.host}, a non-loopback address, with the issuer ${issuer} on plain HTTP and cookies without Secure: put wsgate behind a TLS terminator, give --issuer https://… and --secure-cookies (docs/deploy.md)`,
  ];
}
import cluster from 'node:cluster';
import { startServer } from '../../server/serve.js';
import { packageVersion } from '../../server/app.js';
import { startupBanner } from '../banner.js';
import { runPrimary } from '../../workers/primary.js';
import { runWorker } from '../../workers/worker.js';

export const serve: Command = {
  name: 'serve',
  summary: 'start a node (default http://127.0.0.1:8000)',
  description:
    'Starts a wsgate node: the HTTP endpoints, the WebSocket endpoints and the chat. The first start creates the database, the signing keys and the issuer of the deployment; later starts and other nodes on the same database use them. Stops gracefully on SIGINT or SIGTERM (open sockets get 1001).',
  config: 'serve',
  async run({ config, io, log: logger }) {
    if (cluster.isWorker) return runWorker(config, logger.child({ worker: cluster.worker?.id }));
    if (config.workers > 1) {
      return runPrimary(config, {
        log: logger,
        onSignal: (handler) => io.onSignal(handler),
        onListening: ({ url, issuer, alg, users }) => {
          for (const warning of startupWarnings(config, issuer)) logger.warn(warning);
          if (io.stdoutIsTty && config.logFormat !== 'json') {
            io.out(startupBanner({ config, version: packageVersion, url, issuer, users }));
          } else {
            const hosts = hostsField(config, issuer);
            logger.info(
              { url, demo: config.demo, alg, workers: config.workers, ...hosts },
              `wsgate listening on ${url}${config.demo ? ' (demo mode)' : ''} with ${config.workers} workers${hostsText(hosts)}`,
            );
          }
        },
        onFatal: (message) => io.err(`wsgate serve: ${message}\n`),
      });
    }
    const server = await startServer(config, { log: logger });
    for (const warning of startupWarnings(config, server.runtime.sessions.issuer)) {
      logger.warn(warning);
    }
    const { log } = server.runtime;
    // Listening for the signal before saying "listening": whoever reads that line may stop the
    // server at once, and an unhandled SIGINT kills the process (exit 130) without a drain.
    const stopped = new Promise<void>((resolve) => {
      io.onSignal((signal) => {
        log.info({ signal }, 'shutting down');
        server.close().then(resolve, (err: unknown) => {
          log.error({ err }, 'error while shutting down');
          resolve();
        });
      });
    });
    // A person at a terminal gets the banner in place of the "listening" line; a collector (not
    // a terminal, or --log-format json) gets that line as JSON.
    if (io.stdoutIsTty && config.logFormat !== 'json') {
      io.out(
        startupBanner({
          config,
          version: packageVersion,
          url: server.url,
          issuer: server.runtime.sessions.issuer,
          users: (await server.runtime.users.list()).length,
        }),
      );
    } else {
      const hosts = hostsField(config, server.runtime.sessions.issuer);
      log.info(
        { url: server.url, demo: config.demo, alg: server.runtime.keys.alg, ...hosts },
        `wsgate listening on ${server.url}${config.demo ? ' (demo mode)' : ''}${hostsText(hosts)}`,
      );
    }
    await stopped;
    return 0;
  },
};
