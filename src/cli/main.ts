import { parseArgs } from 'node:util';
import {
  ConfigError,
  configFlags,
  isLoopback,
  loadConfig,
  parseDuration,
  type Config,
} from '../config.js';
import { createLogger } from '../log.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { startServer } from '../server/serve.js';
import { UserError } from '../users/user-service.js';
import { UserExistsError } from '../storage/types.js';
import { readSecret } from './prompt.js';
import { scanCommand } from './scan.js';

const usage = `wsgate: authentication and authorization for WebSockets

Usage:
  wsgate serve [--demo] [options]       start a node (default http://127.0.0.1:8000)
  wsgate user add <name> [--scopes "chat:read chat:write"]
  wsgate user passwd <name>             change a password; ends every session of the user
  wsgate user disable|enable <name>
  wsgate user list
  wsgate token issue <name> [--json]    open a session and print an access token
  wsgate sessions list [--user <name>] [--all]
  wsgate sessions revoke <session-id> | --user <name>
  wsgate audit [--since 1h|2026-11-23T10:00:00Z] [--limit 100] [--json]
  wsgate scan <ws-url> [--token-file <path>] [--json]   security self-test of an endpoint

Passwords are read from a prompt, or from the first line of standard input when it is not a
terminal; never from the command line.

Options (flag / environment variable, default):
  --port PORT (8000)   --host HOST (127.0.0.1)   --data-dir WSGATE_DATA_DIR (./data)
  --database WSGATE_DATABASE (sqlite:<data-dir>/wsgate.db)   --redis WSGATE_REDIS
  --origin WSGATE_ORIGINS (repeatable)   --access-ttl WSGATE_ACCESS_TTL (900)
  --refresh-ttl WSGATE_REFRESH_TTL (14d)   --secure-cookies   --log-level WSGATE_LOG_LEVEL (info)
  --issuer WSGATE_ISSUER   --audience WSGATE_AUDIENCE (wsgate)
  --hs256-secret WSGATE_HS256_SECRET (≥32 bytes; HS256 instead of Ed25519)
  --allow-query-tokens   --login-attempts WSGATE_LOGIN_ATTEMPTS (5 per minute)
  --login-failures-per-address N (30 per minute)   --trust-proxy CIDR (repeatable)
  --hash-concurrency N (one per core)   --hash-queue N (16)   --audit-failure-rate N (100/s)
  --tickets-per-minute N (60 per user)   --refresh-grace DURATION (5s)   --metrics-token TOKEN
  --max-rooms N (1000)   --room-creations-per-minute N (30 per user)   --welcome-rooms N (100)
  --upgrade-timeout DURATION (10s)
  --demo   seed the demo users, enable the compatibility paths; loopback only

WebSocket limits (flag / WSGATE_ variable, default):
  --max-message BYTES (65536)   --message-rate N (50/s)   --message-burst N (100)
  --handshake-rate N (50/s per address)   --handshake-burst N (200)
  --max-connections-per-user N (20)   --heartbeat DURATION (30s)   --auth-timeout DURATION (5s)

Proxy mode (flag / environment variable; flags repeatable):
  --proxy PATH=URL WSGATE_PROXY   serve PATH (exact, or PATH/* for a prefix) by piping each
      accepted socket to a ws:// or wss:// upstream, e.g. --proxy /app=ws://127.0.0.1:9000/ws
  --proxy-scope PATH=SCOPES WSGATE_PROXY_SCOPE (entries separated by ;)   scopes PATH needs
  --proxy-audience [PATH=]AUD WSGATE_PROXY_AUDIENCE   aud of X-Wsgate-Identity (the upstream URL)
  --proxy-ca FILE WSGATE_PROXY_CA   PEM CA certificate trusted for wss:// upstreams
`;

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  // scan talks to a remote endpoint only: no config, no data dir, options of its own.
  if (argv[0] === 'scan') return scanCommand(argv.slice(1), io);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        ...configFlags,
        scopes: { type: 'string' },
        user: { type: 'string' },
        all: { type: 'boolean' },
        json: { type: 'boolean' },
        since: { type: 'string' },
        limit: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.err(`wsgate: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, sub, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    io.out(usage);
    return command === undefined && !values.help ? 2 : 0;
  }

  let config: Config;
  try {
    config = loadConfig(values, io.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`wsgate: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  if (command === 'serve') return serve(config, io);
  if (!['user', 'token', 'sessions', 'audit'].includes(command)) {
    io.err(`wsgate: unknown command "${command}"\n\n${usage}`);
    return 2;
  }

  const quiet = values['log-level'] === undefined && io.env.WSGATE_LOG_LEVEL === undefined;
  const runtime = await createRuntime(config, {
    log: createLogger(quiet ? 'warn' : config.logLevel),
  });
  try {
    switch (command) {
      case 'user':
        return await userCommand(runtime, io, sub, rest, values.scopes);
      case 'token':
        return await tokenCommand(runtime, io, sub, rest, values.json === true);
      case 'sessions':
        return await sessionsCommand(runtime, io, sub, rest, values.user, values.all === true);
      default:
        return await auditCommand(runtime, io, values.since, values.limit, values.json === true);
    }
  } catch (err) {
    if (err instanceof UserError || err instanceof UserExistsError || err instanceof ConfigError) {
      io.err(`wsgate: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await runtime.close();
  }
}

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  readSecret(prompt: string): Promise<string>;
  readonly env: NodeJS.ProcessEnv;
  /** Registers a handler for SIGINT and SIGTERM. */
  onSignal(handler: (signal: string) => void): void;
}

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  readSecret,
  env: process.env,
  onSignal: (handler) => {
    process.once('SIGINT', handler);
    process.once('SIGTERM', handler);
  },
};

async function serve(config: Config, io: CliIo): Promise<number> {
  let server;
  try {
    server = await startServer(config);
  } catch (err) {
    // A conflict only the assembled server can see, such as a proxy path over an HTTP route.
    if (!(err instanceof ConfigError)) throw err;
    io.err(`wsgate: ${err.message}\n`);
    return 2;
  }
  const { log } = server.runtime;
  for (const warning of startupWarnings(config, server.runtime.sessions.issuer)) log.warn(warning);
  log.info(
    { url: server.url, demo: config.demo, alg: server.runtime.keys.alg },
    `wsgate listening on ${server.url}${config.demo ? ' (demo mode)' : ''}`,
  );
  await new Promise<void>((resolve) => {
    io.onSignal((signal) => {
      log.info({ signal }, 'shutting down');
      server.close().then(resolve, (err: unknown) => {
        log.error({ err }, 'error while shutting down');
        resolve();
      });
    });
  });
  return 0;
}

/** What a production start should not do unawares: plain HTTP on a public address. */
export function startupWarnings(config: Config, issuer: string): string[] {
  if (isLoopback(config.host)) return [];
  if (issuer.startsWith('https://') || config.secureCookies) return [];
  return [
    `listening on ${config.host}, a non-loopback address, with the issuer ${issuer} on plain HTTP and cookies without Secure: put wsgate behind a TLS terminator, give --issuer https://… and --secure-cookies (docs/deploy.md)`,
  ];
}

function need(value: string | undefined, what: string): string {
  if (!value) throw new UserError(`missing ${what}`);
  return value;
}

async function userCommand(
  runtime: Runtime,
  io: CliIo,
  sub: string | undefined,
  rest: string[],
  scopes: string | undefined,
): Promise<number> {
  const { users } = runtime;
  switch (sub) {
    case 'add': {
      const name = need(rest[0], 'username');
      const password = await io.readSecret(`Password for ${name}: `);
      await users.add(name, password, ...(scopes === undefined ? [] : [scopes]));
      io.out(`created user ${name}\n`);
      return 0;
    }
    case 'passwd': {
      const name = need(rest[0], 'username');
      const password = await io.readSecret(`New password for ${name}: `);
      const revoked = await users.setPassword(name, password);
      io.out(`password changed for ${name}; ${revoked.length} session(s) revoked\n`);
      return 0;
    }
    case 'disable':
    case 'enable': {
      const name = need(rest[0], 'username');
      const revoked = await users.setDisabled(name, sub === 'disable');
      io.out(
        `${sub}d user ${name}${sub === 'disable' ? `; ${revoked.length} session(s) revoked` : ''}\n`,
      );
      return 0;
    }
    case 'list': {
      const rows = (await users.list()).map((u) => [
        u.username,
        u.disabled ? 'disabled' : 'active',
        u.scopes,
        new Date(u.createdAt).toISOString(),
      ]);
      io.out(table(['USERNAME', 'STATE', 'SCOPES', 'CREATED'], rows));
      return 0;
    }
    default:
      throw new UserError('usage: wsgate user add|passwd|disable|enable|list');
  }
}

async function tokenCommand(
  runtime: Runtime,
  io: CliIo,
  sub: string | undefined,
  rest: string[],
  json: boolean,
): Promise<number> {
  if (sub !== 'issue') throw new UserError('usage: wsgate token issue <name>');
  const name = need(rest[0], 'username');
  const user = await runtime.storage.getUser(name);
  if (!user || user.disabled) throw new UserError(`no active user "${name}"`);
  const pair = await runtime.sessions.openSession(name);
  if (json) {
    io.out(
      `${JSON.stringify({
        access_token: pair.accessToken,
        token_type: 'bearer',
        expires_in: pair.expiresIn,
        refresh_token: pair.refreshToken,
        scope: pair.access.scope,
        session_id: pair.access.sid,
      })}\n`,
    );
  } else {
    io.out(`${pair.accessToken}\n`);
  }
  return 0;
}

async function sessionsCommand(
  runtime: Runtime,
  io: CliIo,
  sub: string | undefined,
  rest: string[],
  user: string | undefined,
  all: boolean,
): Promise<number> {
  const { storage, sessions, clock } = runtime;
  switch (sub) {
    case 'list': {
      const list = await storage.listSessions({
        ...(user === undefined ? {} : { username: user }),
        ...(all ? {} : { activeAt: clock() }),
      });
      const rows = list.map((s) => [
        s.id,
        s.username,
        s.revokedAt === null
          ? s.expiresAt > clock()
            ? 'active'
            : 'expired'
          : `revoked (${s.revokedReason ?? ''})`,
        new Date(s.createdAt).toISOString(),
        new Date(s.expiresAt).toISOString(),
      ]);
      io.out(table(['SESSION', 'USER', 'STATE', 'CREATED', 'EXPIRES'], rows));
      return 0;
    }
    case 'revoke': {
      if (user !== undefined) {
        const ids = await sessions.revokeUser(user, 'admin');
        io.out(`revoked ${ids.length} session(s) of ${user}\n`);
        return 0;
      }
      const id = need(rest[0], 'session id (or --user <name>)');
      if (!(await sessions.revoke(id, 'admin'))) {
        io.err(`wsgate: no live session "${id}"\n`);
        return 1;
      }
      io.out(`revoked session ${id}\n`);
      return 0;
    }
    default:
      throw new UserError('usage: wsgate sessions list|revoke');
  }
}

/** `--since` is a duration back from now (`15m`, `2h`, `7d`) or a date. */
function parseSince(value: string | undefined, now: number): number {
  if (value === undefined) return now - 24 * 3600_000;
  if (/^\d+[smhd]?$/.test(value.trim())) return now - parseDuration('since', value) * 1000;
  const at = Date.parse(value);
  if (Number.isNaN(at))
    throw new UserError('--since is a duration such as 2h, or a date such as 2026-11-23T10:00:00Z');
  return at;
}

async function auditCommand(
  runtime: Runtime,
  io: CliIo,
  since: string | undefined,
  limit: string | undefined,
  json: boolean,
): Promise<number> {
  const max = limit === undefined ? 100 : Number(limit);
  if (!Number.isSafeInteger(max) || max < 1 || max > 100_000)
    throw new UserError('--limit is 1 to 100000');
  const events = await runtime.storage.listAudit({
    since: parseSince(since, runtime.clock()),
    limit: max,
  });
  if (json) {
    for (const e of events) io.out(`${JSON.stringify(e)}\n`);
    return 0;
  }
  const rows = events.map((e) => [
    new Date(e.ts).toISOString(),
    e.event,
    e.username ?? '',
    e.sessionId ?? '',
    e.ip ?? '',
    e.detail === undefined ? '' : JSON.stringify(e.detail),
  ]);
  io.out(table(['TIME', 'EVENT', 'USER', 'SESSION', 'IP', 'DETAIL'], rows));
  return 0;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}
