import { resolve } from 'node:path';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { parseProxyOptions, proxyListSeparators, type ProxyConfig } from './proxy/config.js';
import { ProxyRouteError, type ProxyRoute } from './proxy/route.js';

/** Everything a wsgate server or CLI command needs, parsed and validated once at start. */
export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  /** `sqlite:<path>` or a `postgres://` URL. */
  readonly database: string;
  readonly redis: string | undefined;
  /** Prefix of Redis keys and channels, so deployments can share one Redis. */
  readonly redisPrefix: string;
  /** Browser origins allowed besides the request's own host, e.g. `https://app.example`. */
  readonly origins: readonly string[];
  /** Access token lifetime in seconds. */
  readonly accessTtl: number;
  /** Refresh token lifetime in seconds. */
  readonly refreshTtl: number;
  readonly secureCookies: boolean;
  readonly logLevel: LogLevel;
  readonly demo: boolean;
  /** Accept `?token=<jwt>` on WebSocket handshakes (fastapi-jwt-auth compatibility). */
  readonly allowQueryTokens: boolean;
  /** The `iss` of every token; by default the listening URL, e.g. `http://127.0.0.1:8000`. */
  readonly issuer: string;
  /** True when `issuer` was derived from host and port (a server on port 0 fixes it at listen). */
  readonly issuerDerived: boolean;
  readonly audience: string;
  /** When set, tokens are signed with HS256 and this secret instead of the Ed25519 key pair. */
  readonly hs256Secret: string | undefined;
  /** Login failures allowed per username and client address per minute. */
  readonly loginAttemptsPerMinute: number;
  /** Login failures allowed per client address per minute, whatever the usernames. */
  readonly loginFailuresPerAddress: number;
  /** Password hashes computed at once (one per core by default). */
  readonly hashConcurrency: number;
  /** Password checks that may wait for a hashing slot; beyond them, 503 with `Retry-After`. */
  readonly hashQueue: number;
  /** Audit rows a second recorded for failures (logins, refreshes, refused handshakes). */
  readonly auditFailureRate: number;
  /** `POST /ws-ticket` calls allowed per user per minute. */
  readonly ticketsPerMinute: number;
  /** Seconds in which a just-rotated refresh token returns the same new pair instead of reuse. */
  readonly refreshGrace: number;
  /** Peers (CIDR blocks) whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed. */
  readonly trustProxy: readonly string[];
  /** Seconds a client has to send a whole request head (an upgrade's included). */
  readonly upgradeTimeout: number;
  /** Live chat rooms at most, all nodes together as this node sees them. */
  readonly maxRooms: number;
  /** New chat rooms one user may create per minute. */
  readonly roomCreationsPerMinute: number;
  /** Rooms listed in a chat `welcome` at most. */
  readonly welcomeRooms: number;
  /** Bearer token that opens `GET /metrics` to non-loopback clients; loopback only when unset. */
  readonly metricsToken: string | undefined;
  /** WebSocket limits given on the command line; the gate's defaults fill in the rest. */
  readonly limits: Readonly<Partial<Record<LimitName, number>>>;
  /** Paths served by upstream WebSocket servers (proxy mode). */
  readonly proxies: readonly ProxyRoute[];
  /** Extra PEM CA certificates trusted for `wss://` upstreams. */
  readonly proxyCa: readonly string[];
}

/** Gate limits settable by flag: flag → [limit name, unit]. */
const limitFlags = {
  'max-message': ['maxPayload', 'bytes'],
  'message-rate': ['messageRate', 'count'],
  'message-burst': ['messageBurst', 'count'],
  'handshake-rate': ['handshakeRate', 'count'],
  'handshake-burst': ['handshakeBurst', 'count'],
  'max-connections-per-user': ['connectionsPerUser', 'count'],
  heartbeat: ['heartbeatMs', 'duration'],
  'auth-timeout': ['authTimeoutMs', 'duration'],
} as const;

type LimitFlag = keyof typeof limitFlags;
export type LimitName = (typeof limitFlags)[LimitFlag][0];

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

export const defaults = {
  port: 8000,
  host: '127.0.0.1',
  dataDir: './data',
  accessTtl: 900,
  refreshTtl: 14 * 24 * 3600,
  logLevel: 'info',
  audience: 'wsgate',
  loginAttemptsPerMinute: 5,
  loginFailuresPerAddress: 30,
  hashQueue: 16,
  auditFailureRate: 100,
  ticketsPerMinute: 60,
  refreshGrace: 5,
  maxRooms: 1000,
  roomCreationsPerMinute: 30,
  welcomeRooms: 100,
} as const;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Options as they arrive from flags or the environment: strings, booleans and lists. */
export interface RawOptions {
  port?: string | undefined;
  host?: string | undefined;
  'data-dir'?: string | undefined;
  database?: string | undefined;
  redis?: string | undefined;
  'redis-prefix'?: string | undefined;
  origin?: string[] | undefined;
  'access-ttl'?: string | undefined;
  'refresh-ttl'?: string | undefined;
  'secure-cookies'?: boolean | undefined;
  'log-level'?: string | undefined;
  demo?: boolean | undefined;
  'allow-query-tokens'?: boolean | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
  'hs256-secret'?: string | undefined;
  'login-attempts'?: string | undefined;
  'login-failures-per-address'?: string | undefined;
  'hash-concurrency'?: string | undefined;
  'hash-queue'?: string | undefined;
  'audit-failure-rate'?: string | undefined;
  'tickets-per-minute'?: string | undefined;
  'refresh-grace'?: string | undefined;
  'trust-proxy'?: string[] | undefined;
  'metrics-token'?: string | undefined;
  'max-rooms'?: string | undefined;
  'upgrade-timeout'?: string | undefined;
  'room-creations-per-minute'?: string | undefined;
  'welcome-rooms'?: string | undefined;
  'max-message'?: string | undefined;
  'message-rate'?: string | undefined;
  'message-burst'?: string | undefined;
  'handshake-rate'?: string | undefined;
  'handshake-burst'?: string | undefined;
  'max-connections-per-user'?: string | undefined;
  heartbeat?: string | undefined;
  'auth-timeout'?: string | undefined;
  proxy?: string[] | undefined;
  'proxy-scope'?: string[] | undefined;
  'proxy-audience'?: string[] | undefined;
  'proxy-ca'?: string[] | undefined;
}

/** Flag definitions shared by every command, in `node:util` parseArgs form. */
export const configFlags = {
  port: { type: 'string' },
  host: { type: 'string' },
  'data-dir': { type: 'string' },
  database: { type: 'string' },
  redis: { type: 'string' },
  'redis-prefix': { type: 'string' },
  origin: { type: 'string', multiple: true },
  'access-ttl': { type: 'string' },
  'refresh-ttl': { type: 'string' },
  'secure-cookies': { type: 'boolean' },
  'log-level': { type: 'string' },
  demo: { type: 'boolean' },
  'allow-query-tokens': { type: 'boolean' },
  issuer: { type: 'string' },
  audience: { type: 'string' },
  'hs256-secret': { type: 'string' },
  'login-attempts': { type: 'string' },
  'login-failures-per-address': { type: 'string' },
  'hash-concurrency': { type: 'string' },
  'hash-queue': { type: 'string' },
  'audit-failure-rate': { type: 'string' },
  'tickets-per-minute': { type: 'string' },
  'refresh-grace': { type: 'string' },
  'trust-proxy': { type: 'string', multiple: true },
  'metrics-token': { type: 'string' },
  'max-rooms': { type: 'string' },
  'upgrade-timeout': { type: 'string' },
  'room-creations-per-minute': { type: 'string' },
  'welcome-rooms': { type: 'string' },
  'max-message': { type: 'string' },
  'message-rate': { type: 'string' },
  'message-burst': { type: 'string' },
  'handshake-rate': { type: 'string' },
  'handshake-burst': { type: 'string' },
  'max-connections-per-user': { type: 'string' },
  heartbeat: { type: 'string' },
  'auth-timeout': { type: 'string' },
  proxy: { type: 'string', multiple: true },
  'proxy-scope': { type: 'string', multiple: true },
  'proxy-audience': { type: 'string', multiple: true },
  'proxy-ca': { type: 'string', multiple: true },
} as const;

const envNames: Record<keyof RawOptions, string> = {
  port: 'PORT',
  host: 'HOST',
  'data-dir': 'WSGATE_DATA_DIR',
  database: 'WSGATE_DATABASE',
  redis: 'WSGATE_REDIS',
  'redis-prefix': 'WSGATE_REDIS_PREFIX',
  origin: 'WSGATE_ORIGINS',
  'access-ttl': 'WSGATE_ACCESS_TTL',
  'refresh-ttl': 'WSGATE_REFRESH_TTL',
  'secure-cookies': 'WSGATE_SECURE_COOKIES',
  'log-level': 'WSGATE_LOG_LEVEL',
  demo: 'WSGATE_DEMO',
  'allow-query-tokens': 'WSGATE_ALLOW_QUERY_TOKENS',
  issuer: 'WSGATE_ISSUER',
  audience: 'WSGATE_AUDIENCE',
  'hs256-secret': 'WSGATE_HS256_SECRET',
  'login-attempts': 'WSGATE_LOGIN_ATTEMPTS',
  'login-failures-per-address': 'WSGATE_LOGIN_FAILURES_PER_ADDRESS',
  'hash-concurrency': 'WSGATE_HASH_CONCURRENCY',
  'hash-queue': 'WSGATE_HASH_QUEUE',
  'audit-failure-rate': 'WSGATE_AUDIT_FAILURE_RATE',
  'tickets-per-minute': 'WSGATE_TICKETS_PER_MINUTE',
  'refresh-grace': 'WSGATE_REFRESH_GRACE',
  'trust-proxy': 'WSGATE_TRUST_PROXY',
  'metrics-token': 'WSGATE_METRICS_TOKEN',
  'max-rooms': 'WSGATE_MAX_ROOMS',
  'upgrade-timeout': 'WSGATE_UPGRADE_TIMEOUT',
  'room-creations-per-minute': 'WSGATE_ROOM_CREATIONS_PER_MINUTE',
  'welcome-rooms': 'WSGATE_WELCOME_ROOMS',
  'max-message': 'WSGATE_MAX_MESSAGE',
  'message-rate': 'WSGATE_MESSAGE_RATE',
  'message-burst': 'WSGATE_MESSAGE_BURST',
  'handshake-rate': 'WSGATE_HANDSHAKE_RATE',
  'handshake-burst': 'WSGATE_HANDSHAKE_BURST',
  'max-connections-per-user': 'WSGATE_MAX_CONNECTIONS_PER_USER',
  heartbeat: 'WSGATE_HEARTBEAT',
  'auth-timeout': 'WSGATE_AUTH_TIMEOUT',
  proxy: 'WSGATE_PROXY',
  'proxy-scope': 'WSGATE_PROXY_SCOPE',
  'proxy-audience': 'WSGATE_PROXY_AUDIENCE',
  'proxy-ca': 'WSGATE_PROXY_CA',
};

/** The environment variable read for each option; flags win over the environment. */
export const environmentVariables: Readonly<Record<keyof RawOptions, string>> = envNames;

const booleanOptions = new Set<keyof RawOptions>(['secure-cookies', 'demo', 'allow-query-tokens']);

function fromEnv(env: NodeJS.ProcessEnv): RawOptions {
  const raw: Record<string, unknown> = {};
  for (const [option, name] of Object.entries(envNames) as [keyof RawOptions, string][]) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (booleanOptions.has(option)) raw[option] = parseBoolean(name, value);
    else if (option === 'origin' || option === 'trust-proxy')
      raw[option] = value
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean);
    else if (option in proxyListSeparators)
      raw[option] = value
        .trim()
        .split(proxyListSeparators[option as keyof typeof proxyListSeparators])
        .filter(Boolean);
    else raw[option] = value;
  }
  return raw;
}

function parseBoolean(name: string, value: string): boolean {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(`${name} must be true or false, got "${value}"`);
}

const durationUnits: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses `900`, `900s`, `15m`, `12h` or `14d` into seconds. */
export function parseDuration(option: string, value: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(value.trim());
  if (!match) throw new ConfigError(`--${option} must be a duration such as 900, 15m or 14d`);
  const seconds = Number(match[1]) * (durationUnits[match[2] || 's'] ?? 1);
  if (!Number.isSafeInteger(seconds) || seconds <= 0) {
    throw new ConfigError(`--${option} must be a positive duration`);
  }
  return seconds;
}

function parseInteger(option: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(`--${option} must be a whole number`);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(`--${option} must be between ${min} and ${max}`);
  return n;
}

/** Validates a `--trust-proxy` entry: an address or an address/prefix block, IPv4 or IPv6. */
function normaliseCidr(value: string): string {
  const [address = '', prefix, extra] = value.trim().split('/');
  const family = isIP(address);
  const max = family === 4 ? 32 : 128;
  if (
    family === 0 ||
    extra !== undefined ||
    (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max))
  ) {
    throw new ConfigError(
      `--trust-proxy "${value}" is not an address or CIDR block such as 10.0.0.0/8 or ::1`,
    );
  }
  return `${address}/${prefix ?? max}`;
}

/** Parses a duration that may be 0 (a feature turned off). */
function parseDurationOrZero(option: string, value: string): number {
  return /^\s*0+[smhd]?\s*$/.test(value) ? 0 : parseDuration(option, value);
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** `http://host:port`, with an IPv6 host in brackets. */
export function listeningUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function normaliseOrigin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`--origin "${value}" is not a URL such as https://app.example`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`--origin "${value}" must be an http or https origin`);
  }
  return url.origin;
}

function parseLimits(raw: RawOptions): Partial<Record<LimitName, number>> {
  const limits: Partial<Record<LimitName, number>> = {};
  for (const [flag, [name, unit]] of Object.entries(limitFlags) as [
    LimitFlag,
    (typeof limitFlags)[LimitFlag],
  ][]) {
    const value = raw[flag];
    if (value === undefined) continue;
    limits[name] =
      unit === 'duration'
        ? parseDuration(flag, value) * 1000
        : parseInteger(flag, value, 1, unit === 'bytes' ? 100 * 1024 * 1024 : 1_000_000_000);
  }
  return limits;
}

function integerOption(
  raw: RawOptions,
  option:
    | 'login-failures-per-address'
    | 'hash-concurrency'
    | 'hash-queue'
    | 'audit-failure-rate'
    | 'tickets-per-minute'
    | 'max-rooms'
    | 'room-creations-per-minute'
    | 'welcome-rooms',
  fallback: number,
  max = 1_000_000,
  min = 1,
): number {
  const value = raw[option];
  return value === undefined ? fallback : parseInteger(option, value, min, max);
}

function metricsToken(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (Buffer.byteLength(value, 'utf8') < 16 || !/^[\x21-\x7e]+$/.test(value)) {
    throw new ConfigError('--metrics-token must be at least 16 printable ASCII characters');
  }
  return value;
}

/**
 * Builds the config from flags (highest), environment variables and defaults, and validates it.
 * Throws {@link ConfigError} with a message naming the offending option.
 */
export function loadConfig(flags: RawOptions, env: NodeJS.ProcessEnv = {}): Config {
  const raw: RawOptions = { ...fromEnv(env) };
  for (const [key, value] of Object.entries(flags)) {
    if (value !== undefined) (raw as Record<string, unknown>)[key] = value;
  }

  const port = raw.port === undefined ? defaults.port : parseInteger('port', raw.port, 0, 65535);
  // `[::1]` is how a URL writes an IPv6 address; listen() wants it bare.
  const host = (raw.host ?? defaults.host).replace(/^\[(.+)\]$/, '$1');
  const demo = raw.demo ?? false;
  if (demo && !isLoopback(host)) {
    throw new ConfigError(
      `--demo only listens on loopback (127.0.0.1, ::1 or localhost); refusing --host ${host}`,
    );
  }
  const dataDir = resolve(raw['data-dir'] ?? defaults.dataDir);
  const database = raw.database ?? `sqlite:${resolve(dataDir, 'wsgate.db')}`;
  if (!database.startsWith('sqlite:') && !/^postgres(ql)?:\/\//.test(database)) {
    throw new ConfigError('--database must be sqlite:<path> or a postgres:// URL');
  }
  if (raw.redis !== undefined && !/^rediss?:\/\//.test(raw.redis)) {
    throw new ConfigError('--redis must be a redis:// or rediss:// URL');
  }

  const logLevel = raw['log-level'] ?? defaults.logLevel;
  if (!(logLevels as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`--log-level must be one of ${logLevels.join(', ')}`);
  }

  const secret = raw['hs256-secret'];
  if (secret !== undefined && Buffer.byteLength(secret, 'utf8') < 32) {
    throw new ConfigError('--hs256-secret must be at least 32 bytes long');
  }

  const accessTtl =
    raw['access-ttl'] === undefined
      ? defaults.accessTtl
      : parseDuration('access-ttl', raw['access-ttl']);
  const refreshTtl =
    raw['refresh-ttl'] === undefined
      ? defaults.refreshTtl
      : parseDuration('refresh-ttl', raw['refresh-ttl']);
  if (refreshTtl < accessTtl) {
    throw new ConfigError('--refresh-ttl must not be shorter than --access-ttl');
  }

  const audience = raw.audience ?? defaults.audience;
  let proxy: ProxyConfig;
  try {
    proxy = parseProxyOptions(raw, [audience]);
  } catch (err) {
    if (err instanceof ProxyRouteError) throw new ConfigError(err.message);
    throw err;
  }

  return {
    port,
    host,
    dataDir,
    database,
    redis: raw.redis,
    redisPrefix: raw['redis-prefix'] ?? 'wsgate:',
    origins: (raw.origin ?? []).map(normaliseOrigin),
    accessTtl,
    refreshTtl,
    secureCookies: raw['secure-cookies'] ?? false,
    logLevel: logLevel as LogLevel,
    demo,
    allowQueryTokens: raw['allow-query-tokens'] ?? demo,
    issuer: raw.issuer ?? listeningUrl(host, port),
    issuerDerived: raw.issuer === undefined,
    audience,
    hs256Secret: secret,
    loginAttemptsPerMinute:
      raw['login-attempts'] === undefined
        ? defaults.loginAttemptsPerMinute
        : parseInteger('login-attempts', raw['login-attempts'], 1, 1_000_000),
    loginFailuresPerAddress: integerOption(
      raw,
      'login-failures-per-address',
      defaults.loginFailuresPerAddress,
    ),
    hashConcurrency: integerOption(raw, 'hash-concurrency', availableParallelism(), 1_024),
    hashQueue: integerOption(raw, 'hash-queue', defaults.hashQueue, 100_000, 0),
    auditFailureRate: integerOption(raw, 'audit-failure-rate', defaults.auditFailureRate),
    ticketsPerMinute: integerOption(raw, 'tickets-per-minute', defaults.ticketsPerMinute),
    refreshGrace:
      raw['refresh-grace'] === undefined
        ? defaults.refreshGrace
        : Math.min(parseDurationOrZero('refresh-grace', raw['refresh-grace']), 60),
    trustProxy: (raw['trust-proxy'] ?? []).map(normaliseCidr),
    maxRooms: integerOption(raw, 'max-rooms', defaults.maxRooms),
    upgradeTimeout:
      raw['upgrade-timeout'] === undefined
        ? 10
        : parseDuration('upgrade-timeout', raw['upgrade-timeout']),
    roomCreationsPerMinute: integerOption(
      raw,
      'room-creations-per-minute',
      defaults.roomCreationsPerMinute,
    ),
    welcomeRooms: integerOption(raw, 'welcome-rooms', defaults.welcomeRooms),
    metricsToken: metricsToken(raw['metrics-token']),
    limits: parseLimits(raw),
    proxies: proxy.proxies,
    proxyCa: proxy.proxyCa,
  };
}
