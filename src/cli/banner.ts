import { join } from 'node:path';
import { isLoopback, redactUrl, type Config } from '../config.js';
import { answeredHosts } from '../runtime.js';
import { demoUsers } from '../users/user-service.js';
import { keyFileName } from '../tokens/keys.js';

/** What a started node tells the person at the terminal. */
export interface BannerFacts {
  readonly config: Config;
  readonly version: string;
  /** The URL the node listens on. */
  readonly url: string;
  /** The deployment's issuer, as stored. */
  readonly issuer: string;
  /** How many users the deployment has. */
  readonly users: number;
}

/** Where the deployment's database and signing keys are, as one line for the banner. */
function dataLine(config: Config): [string, string] {
  const keys =
    config.hs256Secret !== undefined
      ? 'HS256 with the --hs256-secret key'
      : config.database.startsWith('sqlite:')
        ? `signing keys in ${join(config.dataDir, keyFileName)}`
        : 'signing keys in the database';
  if (!config.databaseGiven) return ['data', `${config.dataDir} (SQLite wsgate.db, ${keys})`];
  const database = config.database.startsWith('sqlite:')
    ? `SQLite ${config.database.slice('sqlite:'.length)}`
    : `PostgreSQL ${redactUrl(config.database)}`;
  return ['database', `${database}; ${keys}`];
}

/** The flag a CLI command needs to open this deployment, when the environment does not give it. */
function deploymentFlag(config: Config): string {
  if (config.given.database?.startsWith('--')) return ' --database <the same URL>';
  if (config.given['data-dir']?.startsWith('--')) return ` --data-dir ${config.dataDir}`;
  return '';
}

/**
 * The short text `wsgate serve` prints on a terminal before its log lines: where to point a
 * browser, who can sign in (or how to add a first user), where the deployment's state lives, and
 * which external issuers and upstreams it works with.
 */
export function startupBanner(facts: BannerFacts): string {
  const { config } = facts;
  const loopback = isLoopback(config.host);
  // Off loopback the pages are reached by the issuer's name: the listening address (0.0.0.0, a
  // private IP) is not a name the node answers.
  const url = loopback ? facts.url : facts.issuer.replace(/\/$/, '');
  const rows: [string, string][] = [];
  if (config.demo) {
    rows.push([
      'users',
      `${demoUsers.map((u) => `${u.username} / ${u.password}`).join(', ')} (demo)`,
    ]);
    rows.push(['pages', `${url}/ (chat), /login, /demo/token, /demo/cookie, /docs`]);
  } else {
    rows.push([
      'users',
      facts.users === 0
        ? `no users yet: wsgate user add <name>${deploymentFlag(config)}, then sign in at /login`
        : `${facts.users} (wsgate user list${deploymentFlag(config)})`,
    ]);
    rows.push(['pages', `${url}/ (chat), /login, /docs`]);
  }
  rows.push(dataLine(config));
  if (config.redis !== undefined) {
    rows.push(['cluster', `Redis ${redactUrl(config.redis)}, prefix ${config.redisPrefix}`]);
  }
  rows.push(['issuer', facts.issuer]);
  if (!loopback || config.allowedHosts.length > 0) {
    const hosts = answeredHosts(config, facts.issuer);
    rows.push(['hosts', `${hosts}; any other Host gets 421 (add names with --allowed-host)`]);
  }
  for (const trusted of config.trust) {
    rows.push([
      'trusts',
      trusted.jwksUri ? `${trusted.issuer} (keys at ${trusted.jwksUri})` : trusted.issuer,
    ]);
  }
  for (const route of config.proxies) {
    rows.push(['proxy', `${route.path} → ${route.upstream.href}`]);
  }
  const width = Math.max(...rows.map(([label]) => label.length));
  const body = rows.map(([label, text]) => `  ${label.padEnd(width)}  ${text}`).join('\n');
  const mode = config.demo ? ' (demo mode)' : '';
  return `\nwsgate ${facts.version} listening on ${facts.url}${mode}\n\n${body}\n\nCtrl+C stops it. Log lines follow.\n\n`;
}
