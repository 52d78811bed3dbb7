import { parseProxyOptions, type ProxyConfig } from './proxy/config.js';
import { parseTrustSpec, type TrustSpec } from './issuers/trusted-issuers.js';
import { IssuerError } from './issuers/issuer-error.js';
import { ProxyRouteError, overlapsHttpRoute, type ProxyRoute } from './proxy/route.js';
import { httpRoutePaths } from './server/http-paths.js';
import { isLoopbackName, splitHost } from './handshake/host.js';
import { resolve } from 'node:path';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';

/** Everything a wsgate server or CLI command needs, parsed and validated once at start. */
export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  /** `sqlite:<path>` or a `postgres://` URL. */
  readonly database: string;
  /** True when `--database` was given; otherwise the database lives in the data dir. */
  readonly databaseGiven: boolean;
  readonly redis: string | undefined;
  /**
   * Where each given option came from, as an error message names it: `--redis "redis://…"` or
   * `WSGATE_REDIS="redis://…"`, passwords hidden.
   */
  readonly given: Readonly<Partial<Record<ConfigOptionName, string>>>;
  /** Prefix of Redis keys and channels, so deployments can share one Redis. */
  readonly redisPrefix: string;
  /** Browser origins allowed besides the request's own site, e.g. `https://app.example`. */
  readonly origins: readonly string[];
  /** Host names (`chat.example`, or `chat.example:8443`) answered besides the issuer's. */
  readonly allowedHosts: readonly string[];
  /** Access token lifetime in seconds. */
  readonly accessTtl: number;
  /** Refresh token lifetime in seconds. */
  readonly refreshTtl: number;
  readonly secureCookies: boolean;
  readonly logLevel: LogLevel;
  /**
   * `pretty` lines for a person at a terminal, or one JSON object a line for a collector;
   * undefined: pretty when the log goes to a terminal, else JSON.
   */
  readonly logFormat: LogFormat | undefined;
  readonly demo: boolean;
  /** Accept `?token=<jwt>` on WebSocket handshakes (fastapi-jwt-auth compatibility). */
  readonly allowQueryTokens: boolean;
  /**
   * The `iss` a first start stores for the deployment: `--issuer`, else the listening URL, e.g.
   * `http://127.0.0.1:8000`. Once stored, the deployment's value wins (see `runtime.deployment`).
   */
  readonly issuer: string;
  /** True when `issuer` was derived from host and port rather than given. */
  readonly issuerDerived: boolean;
  readonly audience: string;
  /** True when `--audience` was given; otherwise the stored (or default) audience applies. */
  readonly audienceGiven: boolean;
  /** When set, tokens are signed with HS256 and this secret instead of the Ed25519 key pair. */
  readonly hs256Secret: string | undefined;
  /** Login failures allowed per username and client address per minute. */
  readonly loginAttemptsPerMinute: number;
  /** Login failures allowed per client address per minute, whatever the usernames. */
  readonly loginFailuresPerAddress: number;
  /**
   * Password hashes computed at once on this machine (one per usable core by default); with
   * `--workers`, the primary hands these slots to all the workers.
   */
  readonly hashConcurrency: number;
  /**
   * Password checks that may wait for a hashing slot (one queue for all the workers); beyond
   * them, 503 with `Retry-After`.
   */
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
  readonly joinedBytesPerMinute: number;
  /** Rooms listed in a chat `welcome` at most. */
  readonly welcomeRooms: number;
  /** Paths served by upstream WebSocket servers (proxy mode). */
  readonly proxies: readonly ProxyRoute[];
  /** Extra PEM CA certificates trusted for `wss://` upstreams. */
  readonly proxyCa: readonly string[];
  /** Bearer token that opens `GET /metrics` to non-loopback clients; loopback only when unset. */
  readonly metricsToken: string | undefined;
  /**
   * Worker processes serving one port (`--workers`); 1 runs the server in this process. `auto`
   * is resolved at start to the cores this process may use.
   */
  readonly workers: number;
  /** True when `--workers auto` chose {@link Config.workers}. */
  readonly workersAuto: boolean;
  /** WebSocket limits given on the command line; the gate's defaults fill in the rest. */
  readonly limits: Readonly<Partial<Record<LimitName, number>>>;
  /** Trusted external issuers (`--trust`), with their JWKS URL when discovery is skipped. */
  readonly trust: readonly TrustSpec[];
  /** `aud` values accepted on external access tokens. */
  readonly trustAudiences: readonly string[];
  /** Seconds the last good keys of an issuer keep serving while its fetches fail. */
  readonly trustStale: number;
  /** Seconds a back-channel logout or admin revoke of an external identity is remembered. */
  readonly trustRevocationTtl: number;
  /** The claim (name or dotted path) an external user is shown by. */
  readonly usernameClaim: string;
  /** A claim (name or dotted path) that adds scopes to external tokens. */
  readonly scopeClaim: string | undefined;
  /** `aud` values accepted on logout tokens: the client ids registered at the providers. */
  readonly backchannelAudiences: readonly string[];
  /** Trusted issuers whose `wsgate:admin` scope is honoured. */
  readonly adminIssuers: readonly string[];
}

export type LimitName =
  | 'maxPayload'
  | 'messageRate'
  | 'messageBurst'
  | 'handshakeRate'
  | 'handshakeBurst'
  | 'connectionsPerUser'
  | 'connectionsPerAddress'
  | 'heartbeatMs'
  | 'authTimeoutMs';

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];
export const logFormats = ['pretty', 'json'] as const;
export type LogFormat = (typeof logFormats)[number];

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
  upgradeTimeout: 10,
  maxRooms: 1000,
  roomCreationsPerMinute: 30,
  welcomeRooms: 100,
  joinedBytesPerMinute: 4 * 1024 * 1024,
  redisPrefix: 'wsgate:',
} as const;

/** A configuration or usage error: the CLI prints its one-line message and exits with 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** How an option's value is written: a string, an on/off switch, or a repeatable string. */
export type OptionKind = 'string' | 'boolean' | 'list';

/** Sections of `wsgate serve --help`, in this order. */
export const optionGroups = {
  listen: 'Listening',
  storage: 'Storage and cluster',
  tokens: 'Tokens',
  browser: 'Browsers',
  limits: 'Limits',
  issuers: 'External identity providers',
  proxy: 'Proxy mode',
  logging: 'Logging',
} as const;
export type OptionGroup = keyof typeof optionGroups;

/** One configuration option: its flag (the key), its environment variable and its help. */
export interface OptionSpec {
  readonly kind: OptionKind;
  /** The environment variable read when the flag is absent; a list is comma-separated there. */
  readonly env: string;
  /** Placeholder for the value in help, e.g. `URL`. */
  readonly arg?: string;
  /** One line for `--help`. */
  readonly help: string;
  /** The default as `--help` shows it. */
  readonly default?: string;
  readonly group: OptionGroup;
  /**
   * `all`: every command that opens the deployment accepts it (storage, keys, token lifetimes);
   * `serve`: only `wsgate serve`, and any other command refuses it rather than ignore it.
   */
  readonly scope: 'all' | 'serve';
  /** Never echo the value in an error message. */
  readonly secret?: boolean;
  /** For a WebSocket limit: the gate limit it sets and how its value is read. */
  readonly limit?: readonly [LimitName, 'bytes' | 'count' | 'duration'];
  /** For a list: how its environment variable separates entries (`,` when absent). */
  readonly separator?: string;
}

/**
 * Every configuration option, flag name → spec. To add one: an entry here, a field in
 * {@link Config}, and a line in {@link loadConfig}; help, environment variables, parsing and
 * the per-command checks follow from the entry.
 */
export const configOptions = {
  port: {
    kind: 'string',
    env: 'PORT',
    arg: 'N',
    default: '8000',
    group: 'listen',
    scope: 'all',
    help: 'port to listen on; 0 picks a free one',
  },
  host: {
    kind: 'string',
    env: 'HOST',
    arg: 'ADDR',
    default: '127.0.0.1',
    group: 'listen',
    scope: 'all',
    help: 'address to listen on; a non-loopback one needs --issuer on first start',
  },
  issuer: {
    kind: 'string',
    env: 'WSGATE_ISSUER',
    arg: 'URL',
    default: 'the stored one, else the listening URL',
    group: 'listen',
    scope: 'all',
    help: "the deployment's public URL and token issuer, stored on first start",
  },
  workers: {
    kind: 'string',
    env: 'WSGATE_WORKERS',
    arg: 'N|auto',
    default: '1',
    group: 'listen',
    scope: 'serve',
    help: 'worker processes on one port; auto: one per core within the CPU quota',
  },
  demo: {
    kind: 'boolean',
    env: 'WSGATE_DEMO',
    group: 'listen',
    scope: 'serve',
    help: 'seed the demo users, serve the demo pages and compatibility paths; loopback only',
  },
  'data-dir': {
    kind: 'string',
    env: 'WSGATE_DATA_DIR',
    arg: 'DIR',
    default: './data',
    group: 'storage',
    scope: 'all',
    help: 'where the SQLite database and the signing keys live (created on first start)',
  },
  database: {
    kind: 'string',
    env: 'WSGATE_DATABASE',
    arg: 'URL',
    default: 'sqlite:<data-dir>/wsgate.db',
    group: 'storage',
    scope: 'all',
    help: 'sqlite:<path> (its directory must exist) or postgres://… (keys are kept in it)',
  },
  redis: {
    kind: 'string',
    env: 'WSGATE_REDIS',
    arg: 'URL',
    group: 'storage',
    scope: 'all',
    help: 'redis:// or rediss:// URL; turns on cluster mode',
  },
  'redis-prefix': {
    kind: 'string',
    env: 'WSGATE_REDIS_PREFIX',
    arg: 'PREFIX',
    default: 'wsgate:',
    group: 'storage',
    scope: 'all',
    help: 'prefix of Redis keys and channels, so deployments can share one Redis',
  },
  'access-ttl': {
    kind: 'string',
    env: 'WSGATE_ACCESS_TTL',
    arg: 'DURATION',
    default: '900 (15m)',
    group: 'tokens',
    scope: 'all',
    help: 'access token lifetime: seconds, or with s, m, h, d',
  },
  'refresh-ttl': {
    kind: 'string',
    env: 'WSGATE_REFRESH_TTL',
    arg: 'DURATION',
    default: '14d',
    group: 'tokens',
    scope: 'all',
    help: 'refresh token lifetime',
  },
  audience: {
    kind: 'string',
    env: 'WSGATE_AUDIENCE',
    arg: 'AUD',
    default: 'the stored one, else wsgate',
    group: 'tokens',
    scope: 'all',
    help: "the deployment's token audience, stored on first start",
  },
  'hs256-secret': {
    kind: 'string',
    env: 'WSGATE_HS256_SECRET',
    arg: 'SECRET',
    group: 'tokens',
    scope: 'all',
    secret: true,
    help: 'sign with HS256 and this secret (≥32 bytes) instead of Ed25519',
  },
  'allow-query-tokens': {
    kind: 'boolean',
    env: 'WSGATE_ALLOW_QUERY_TOKENS',
    default: 'on in demo mode',
    group: 'tokens',
    scope: 'serve',
    help: 'accept ?token=<jwt> on WebSocket handshakes (fastapi-jwt-auth compatibility)',
  },
  origin: {
    kind: 'list',
    env: 'WSGATE_ORIGINS',
    arg: 'ORIGIN',
    group: 'browser',
    scope: 'serve',
    help: 'a browser origin allowed besides the server’s own (repeatable)',
  },
  'secure-cookies': {
    kind: 'boolean',
    env: 'WSGATE_SECURE_COOKIES',
    group: 'browser',
    scope: 'serve',
    help: 'mark cookies Secure (always so when the issuer is https)',
  },
  'login-attempts': {
    kind: 'string',
    env: 'WSGATE_LOGIN_ATTEMPTS',
    arg: 'N',
    default: '5',
    group: 'limits',
    scope: 'serve',
    help: 'failed logins per minute per username and client address',
  },
  'login-failures-per-address': {
    kind: 'string',
    env: 'WSGATE_LOGIN_FAILURES_PER_ADDRESS',
    arg: 'N',
    default: '30',
    group: 'limits',
    scope: 'serve',
    help: 'failed logins per minute per client address, across usernames',
  },
  'hash-concurrency': {
    kind: 'string',
    env: 'WSGATE_HASH_CONCURRENCY',
    arg: 'N',
    default: 'one per core',
    group: 'limits',
    scope: 'serve',
    help: 'password hashes computed at once on this machine, all workers together',
  },
  'hash-queue': {
    kind: 'string',
    env: 'WSGATE_HASH_QUEUE',
    arg: 'N',
    default: '16',
    group: 'limits',
    scope: 'serve',
    help: 'password checks waiting for a hashing slot; beyond them 503 with Retry-After',
  },
  'audit-failure-rate': {
    kind: 'string',
    env: 'WSGATE_AUDIT_FAILURE_RATE',
    arg: 'N',
    default: '100',
    group: 'limits',
    scope: 'serve',
    help: 'audit rows a second recorded for failures',
  },
  'tickets-per-minute': {
    kind: 'string',
    env: 'WSGATE_TICKETS_PER_MINUTE',
    arg: 'N',
    default: '60',
    group: 'limits',
    scope: 'serve',
    help: 'POST /ws-ticket calls per user per minute',
  },
  'refresh-grace': {
    kind: 'string',
    env: 'WSGATE_REFRESH_GRACE',
    arg: 'DURATION',
    default: '5s (at most 60s; 0 turns it off)',
    group: 'tokens',
    scope: 'serve',
    help: 'a just-rotated refresh token presented again within it gets the same new pair',
  },
  'allowed-host': {
    kind: 'list',
    env: 'WSGATE_ALLOWED_HOSTS',
    arg: 'HOST[:PORT]',
    group: 'listen',
    scope: 'serve',
    help: 'a Host answered besides the issuer’s and loopback names, else 421 (repeatable)',
  },
  'trust-proxy': {
    kind: 'list',
    env: 'WSGATE_TRUST_PROXY',
    arg: 'CIDR',
    group: 'listen',
    scope: 'serve',
    help: 'peers whose X-Forwarded-For / -Proto are believed (repeatable)',
  },
  'metrics-token': {
    kind: 'string',
    env: 'WSGATE_METRICS_TOKEN',
    arg: 'TOKEN',
    group: 'listen',
    scope: 'serve',
    secret: true,
    help: 'bearer token that opens GET /metrics to non-loopback clients (≥16 characters)',
  },
  'upgrade-timeout': {
    kind: 'string',
    env: 'WSGATE_UPGRADE_TIMEOUT',
    arg: 'DURATION',
    default: '10s',
    group: 'limits',
    scope: 'serve',
    help: 'time a client has to send a whole request head (three times it for the body); then the connection is dropped',
  },
  'max-rooms': {
    kind: 'string',
    env: 'WSGATE_MAX_ROOMS',
    arg: 'N',
    default: '1000',
    group: 'limits',
    scope: 'serve',
    help: 'live chat rooms at most',
  },
  'room-creations-per-minute': {
    kind: 'string',
    env: 'WSGATE_ROOM_CREATIONS_PER_MINUTE',
    arg: 'N',
    default: '30',
    group: 'limits',
    scope: 'serve',
    help: 'new chat rooms one user may create per minute',
  },
  'welcome-rooms': {
    kind: 'string',
    env: 'WSGATE_WELCOME_ROOMS',
    arg: 'N',
    default: '100',
    group: 'limits',
    scope: 'serve',
    help: 'rooms listed in a chat welcome at most',
  },
  'joined-bytes-per-minute': {
    kind: 'string',
    env: 'WSGATE_JOINED_BYTES_PER_MINUTE',
    arg: 'BYTES',
    default: '4194304 (4 MiB)',
    group: 'limits',
    scope: 'serve',
    help: 'bytes of chat joined frames (history, replay, members) one user may be sent per minute',
  },
  trust: {
    kind: 'list',
    env: 'WSGATE_TRUST',
    arg: 'ISSUER[=JWKS-URL]',
    group: 'issuers',
    scope: 'serve',
    help: 'accept access tokens of this OpenID issuer, keys found by discovery or at JWKS-URL (repeatable)',
  },
  'trust-audience': {
    kind: 'list',
    env: 'WSGATE_TRUST_AUDIENCE',
    arg: 'AUD',
    default: 'wsgate',
    group: 'issuers',
    scope: 'serve',
    help: 'an aud accepted on external access tokens (repeatable)',
  },
  'trust-stale': {
    kind: 'string',
    env: 'WSGATE_TRUST_STALE',
    arg: 'DURATION',
    default: '1h (at most 24h)',
    group: 'issuers',
    scope: 'serve',
    help: "how long an issuer's last good keys serve while its key fetches fail",
  },
  'trust-revocation-ttl': {
    kind: 'string',
    env: 'WSGATE_TRUST_REVOCATION_TTL',
    arg: 'DURATION',
    default: '24h',
    group: 'issuers',
    scope: 'serve',
    help: 'how long a back-channel logout or admin revoke of an external identity is remembered',
  },
  'username-claim': {
    kind: 'string',
    env: 'WSGATE_USERNAME_CLAIM',
    arg: 'CLAIM',
    default: 'sub',
    group: 'issuers',
    scope: 'serve',
    help: 'claim (or dotted path) an external user is shown by, as <issuer host>:<name>',
  },
  'scope-claim': {
    kind: 'string',
    env: 'WSGATE_SCOPE_CLAIM',
    arg: 'CLAIM',
    group: 'issuers',
    scope: 'serve',
    help: 'claim (or dotted path, e.g. realm_access.roles) whose values add scopes, besides scope and scp',
  },
  'backchannel-audience': {
    kind: 'list',
    env: 'WSGATE_BACKCHANNEL_AUDIENCE',
    arg: 'CLIENT-ID',
    group: 'issuers',
    scope: 'serve',
    help: 'an aud accepted on back-channel logout tokens: a client id registered at a provider (repeatable)',
  },
  'admin-issuer': {
    kind: 'list',
    env: 'WSGATE_ADMIN_ISSUER',
    arg: 'ISSUER',
    group: 'issuers',
    scope: 'serve',
    help: 'a --trust issuer whose wsgate:admin scope may call POST /admin/revoke (repeatable)',
  },
  proxy: {
    kind: 'list',
    env: 'WSGATE_PROXY',
    arg: 'PATH=URL',
    group: 'proxy',
    scope: 'serve',
    help: 'serve PATH (exact, or PATH/* for a prefix) by piping each accepted socket to a ws:// or wss:// upstream (repeatable)',
  },
  'proxy-scope': {
    kind: 'list',
    env: 'WSGATE_PROXY_SCOPE',
    separator: ';',
    arg: 'PATH=SCOPES',
    group: 'proxy',
    scope: 'serve',
    help: 'scopes a proxied PATH needs (repeatable; entries separated by ; in the variable)',
  },
  'proxy-audience': {
    kind: 'list',
    env: 'WSGATE_PROXY_AUDIENCE',
    arg: '[PATH=]AUD',
    group: 'proxy',
    scope: 'serve',
    help: 'aud of X-Wsgate-Identity (default: the upstream URL without its query)',
  },
  'proxy-ca': {
    kind: 'list',
    env: 'WSGATE_PROXY_CA',
    arg: 'FILE',
    group: 'proxy',
    scope: 'serve',
    help: 'PEM CA certificate trusted for wss:// upstreams (repeatable)',
  },
  'max-message': {
    kind: 'string',
    env: 'WSGATE_MAX_MESSAGE',
    arg: 'BYTES',
    default: '65536',
    group: 'limits',
    scope: 'serve',
    limit: ['maxPayload', 'bytes'],
    help: 'largest WebSocket message; larger closes with 1009',
  },
  'message-rate': {
    kind: 'string',
    env: 'WSGATE_MESSAGE_RATE',
    arg: 'N',
    default: '50',
    group: 'limits',
    scope: 'serve',
    limit: ['messageRate', 'count'],
    help: 'messages per second per socket (then 4429)',
  },
  'message-burst': {
    kind: 'string',
    env: 'WSGATE_MESSAGE_BURST',
    arg: 'N',
    default: '100',
    group: 'limits',
    scope: 'serve',
    limit: ['messageBurst', 'count'],
    help: 'burst of messages allowed above the rate',
  },
  'handshake-rate': {
    kind: 'string',
    env: 'WSGATE_HANDSHAKE_RATE',
    arg: 'N',
    default: '50',
    group: 'limits',
    scope: 'serve',
    limit: ['handshakeRate', 'count'],
    help: 'WebSocket handshakes per second per client address (then 429)',
  },
  'handshake-burst': {
    kind: 'string',
    env: 'WSGATE_HANDSHAKE_BURST',
    arg: 'N',
    default: '200',
    group: 'limits',
    scope: 'serve',
    limit: ['handshakeBurst', 'count'],
    help: 'burst of handshakes allowed above the rate',
  },
  'max-connections-per-user': {
    kind: 'string',
    env: 'WSGATE_MAX_CONNECTIONS_PER_USER',
    arg: 'N',
    default: '20',
    group: 'limits',
    scope: 'serve',
    limit: ['connectionsPerUser', 'count'],
    help: 'open sockets per user',
  },
  'max-connections-per-address': {
    kind: 'string',
    env: 'WSGATE_MAX_CONNECTIONS_PER_ADDRESS',
    arg: 'N',
    default: '1000',
    group: 'limits',
    scope: 'serve',
    limit: ['connectionsPerAddress', 'count'],
    help: 'open connections per client address, plain HTTP and upgrades in progress included',
  },
  heartbeat: {
    kind: 'string',
    env: 'WSGATE_HEARTBEAT',
    arg: 'DURATION',
    default: '30s',
    group: 'limits',
    scope: 'serve',
    limit: ['heartbeatMs', 'duration'],
    help: 'ping interval; a socket that misses a pong is closed',
  },
  'auth-timeout': {
    kind: 'string',
    env: 'WSGATE_AUTH_TIMEOUT',
    arg: 'DURATION',
    default: '5s',
    group: 'limits',
    scope: 'serve',
    limit: ['authTimeoutMs', 'duration'],
    help: 'time for a first-message {"type":"auth"} (then 4408)',
  },
  'log-level': {
    kind: 'string',
    env: 'WSGATE_LOG_LEVEL',
    arg: 'LEVEL',
    default: 'info (warn for commands other than serve)',
    group: 'logging',
    scope: 'all',
    help: logLevels.join(', '),
  },
  'log-format': {
    kind: 'string',
    env: 'WSGATE_LOG_FORMAT',
    arg: 'FORMAT',
    default: 'pretty on a terminal, else json',
    group: 'logging',
    scope: 'all',
    help: 'pretty or json',
  },
} as const satisfies Record<string, OptionSpec>;

export type ConfigOptionName = keyof typeof configOptions;

type ValueOf<K extends OptionKind> = K extends 'boolean'
  ? boolean
  : K extends 'list'
    ? string[]
    : string;

/** Options as they arrive from flags: strings, booleans and lists, keyed by flag name. */
export type RawOptions = {
  [K in ConfigOptionName]?: ValueOf<(typeof configOptions)[K]['kind']> | undefined;
};

/** Flag definitions in `node:util` parseArgs form (for scripts such as the benchmarks). */
export const configFlags = Object.fromEntries(
  Object.entries(configOptions).map(([name, spec]) => [
    name,
    spec.kind === 'list'
      ? { type: 'string', multiple: true }
      : { type: spec.kind === 'boolean' ? 'boolean' : 'string' },
  ]),
) as {
  [K in ConfigOptionName]: (typeof configOptions)[K]['kind'] extends 'boolean'
    ? { type: 'boolean' }
    : (typeof configOptions)[K]['kind'] extends 'list'
      ? { type: 'string'; multiple: true }
      : { type: 'string' };
};

/** The environment variable read for each option; flags win over the environment. */
export const environmentVariables = Object.fromEntries(
  Object.entries(configOptions).map(([name, spec]) => [name, spec.env]),
) as Readonly<Record<ConfigOptionName, string>>;

/** An option's value and where it came from, so that an error names the flag or the variable. */
interface Given<T> {
  readonly value: T;
  /** `--port` or `PORT`. */
  readonly source: string;
  /** `--port "abc"` or `PORT="abc"`; without the value for a secret. */
  readonly shown: string;
}

/** Hides the password of a URL such as `postgres://user:pw@host/db`. */
export function redactUrl(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@]*:)[^@/]*@/i, '$1***@');
}

function shownValue(name: ConfigOptionName, source: string, value: unknown): string {
  const spec: OptionSpec = configOptions[name];
  if (spec.secret) return source;
  const text = Array.isArray(value) ? value.join(',') : String(value);
  const quoted = JSON.stringify(redactUrl(text));
  return source.startsWith('--') ? `${source} ${quoted}` : `${source}=${quoted}`;
}

function parseBoolean(source: string, value: string): boolean {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(`${source} must be true or false, got ${JSON.stringify(value)}`);
}

class Options {
  readonly #given = new Map<ConfigOptionName, Given<unknown>>();

  constructor(flags: RawOptions, env: NodeJS.ProcessEnv) {
    for (const [name, spec] of Object.entries(configOptions) as [ConfigOptionName, OptionSpec][]) {
      const flag = flags[name];
      if (flag !== undefined) {
        this.#given.set(name, {
          value: flag,
          source: `--${name}`,
          shown: shownValue(name, `--${name}`, flag),
        });
        continue;
      }
      const text = env[spec.env];
      if (text === undefined || text === '') continue;
      const value =
        spec.kind === 'boolean'
          ? parseBoolean(spec.env, text)
          : spec.kind === 'list'
            ? text
                .split(spec.separator ?? ',')
                .map((v) => v.trim())
                .filter(Boolean)
            : text;
      this.#given.set(name, { value, source: spec.env, shown: shownValue(name, spec.env, text) });
    }
  }

  get<K extends ConfigOptionName>(
    name: K,
  ): Given<ValueOf<(typeof configOptions)[K]['kind']>> | undefined {
    return this.#given.get(name) as Given<ValueOf<(typeof configOptions)[K]['kind']>> | undefined;
  }

  value<K extends ConfigOptionName>(
    name: K,
  ): ValueOf<(typeof configOptions)[K]['kind']> | undefined {
    return this.get(name)?.value;
  }

  /** Parses a string option with `parse`, which returns the value or a rule it broke. */
  parse<T>(
    name: ConfigOptionName,
    parse: (value: string) => T | { broke: string },
    fallback: T,
  ): T {
    const given = this.#given.get(name);
    if (given === undefined) return fallback;
    const result = parse(given.value as string);
    if (typeof result === 'object' && result !== null && 'broke' in result) {
      throw new ConfigError(`${given.shown} ${result.broke}`);
    }
    return result;
  }

  /** How each given option is shown in a message, by name. */
  shown(): Partial<Record<ConfigOptionName, string>> {
    return Object.fromEntries([...this.#given].map(([name, given]) => [name, given.shown]));
  }

  fail(name: ConfigOptionName, rule: string): never {
    const given = this.#given.get(name);
    throw new ConfigError(`${given?.shown ?? `--${name}`} ${rule}`);
  }
}

const durationUnits: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

function duration(value: string): number | { broke: string } {
  const match = /^(\d+)([smhd]?)$/.exec(value.trim());
  if (!match) return { broke: 'must be a duration such as 900, 15m or 14d' };
  const seconds = Number(match[1]) * (durationUnits[match[2] || 's'] ?? 1);
  if (!Number.isSafeInteger(seconds) || seconds <= 0) {
    return { broke: 'must be a positive duration' };
  }
  return seconds;
}

/** Parses `900`, `900s`, `15m`, `12h` or `14d` into seconds; `option` names it in the error. */
export function parseDuration(option: string, value: string): number {
  const result = duration(value);
  if (typeof result === 'number') return result;
  throw new ConfigError(`--${option} ${JSON.stringify(value)} ${result.broke}`);
}

function integer(min: number, max: number) {
  return (value: string): number | { broke: string } => {
    if (!/^\d+$/.test(value)) return { broke: `must be a whole number from ${min} to ${max}` };
    const n = Number(value);
    if (n < min || n > max) return { broke: `must be a whole number from ${min} to ${max}` };
    return n;
  };
}

/** A loopback listening address: the names the Host check answers on a loopback listener. */
export function isLoopback(host: string): boolean {
  return isLoopbackName(host);
}

/** `http://host:port`, with an IPv6 host in brackets. */
export function listeningUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function origin(value: string): string | { broke: string } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { broke: 'is not a URL such as https://app.example' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { broke: 'must be an http or https origin' };
  }
  return url.origin;
}

function issuerUrl(value: string): string | { broke: string } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { broke: 'is not a URL such as https://chat.example' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { broke: 'must be an http or https URL' };
  }
  if (url.search || url.hash || url.username || url.password) {
    return { broke: 'must not carry a query, fragment or credentials' };
  }
  return value;
}

function parseOrigins(o: Options): string[] {
  return listValues(o, 'origin', origin);
}

/** A `--trust-proxy` entry: an address or an address/prefix block, IPv4 or IPv6. */
function cidr(value: string): string | { broke: string } {
  const [address = '', prefix, extra] = value.trim().split('/');
  const family = isIP(address);
  const max = family === 4 ? 32 : 128;
  if (
    family === 0 ||
    extra !== undefined ||
    (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max))
  ) {
    return { broke: 'is not an address or CIDR block such as 10.0.0.0/8 or ::1' };
  }
  return `${address}/${prefix ?? max}`;
}

/** An `--allowed-host` entry: a host name or address, with or without a port. */
function allowedHost(value: string): string | { broke: string } {
  const parts = splitHost(value.trim());
  if (parts === undefined)
    return { broke: 'is not a host such as chat.example or chat.example:8443' };
  const name = parts.name.includes(':') ? `[${parts.name}]` : parts.name;
  return parts.port === undefined ? name : `${name}:${parts.port}`;
}

function parseTrustProxy(o: Options): string[] {
  return listValues(o, 'trust-proxy', cidr);
}

function parseWorkers(options: Options): { workers: number; workersAuto: boolean } {
  if (options.value('workers')?.trim() === 'auto')
    return { workers: usableCores(), workersAuto: true };
  const count = integer(1, 256);
  const workers = options.parse(
    'workers',
    (v) => {
      const n = count(v.trim());
      return typeof n === 'number' ? n : { broke: 'must be auto or a whole number from 1 to 256' };
    },
    1,
  );
  return { workers, workersAuto: false };
}

/**
 * The cores this process may use: the CPUs it may run on, within the cgroup's CPU quota
 * (`/sys/fs/cgroup/cpu.max`, e.g. `200000 100000` for two cores' worth), at least one.
 */
export function usableCores(cpuMax = readCpuMax(), cores = availableParallelism()): number {
  const [quota, period] = (cpuMax ?? '').trim().split(/\s+/);
  const q = Number(quota);
  const p = Number(period);
  if (quota === 'max' || !(q > 0) || !(p > 0)) return cores;
  return Math.max(1, Math.min(cores, Math.floor(q / p)));
}

function readCpuMax(): string | undefined {
  try {
    return readFileSync('/sys/fs/cgroup/cpu.max', 'utf8');
  } catch {
    return undefined; // no cgroup v2 here (macOS, cgroup v1): the CPU count stands
  }
}

function parseLimits(options: Options): Partial<Record<LimitName, number>> {
  const limits: Partial<Record<LimitName, number>> = {};
  for (const [name, spec] of Object.entries(configOptions) as [ConfigOptionName, OptionSpec][]) {
    if (spec.limit === undefined || options.get(name) === undefined) continue;
    const [limit, unit] = spec.limit;
    limits[limit] =
      unit === 'duration'
        ? options.parse(name, duration, 0) * 1000
        : options.parse(name, integer(1, unit === 'bytes' ? 100 * 1024 * 1024 : 1_000_000_000), 0);
  }
  return limits;
}

/**
 * Builds the config from flags (highest), environment variables and defaults, and validates it.
 * Throws {@link ConfigError} with a one-line message naming the offending flag or variable.
 */
export function loadConfig(flags: RawOptions, env: NodeJS.ProcessEnv = {}): Config {
  const o = new Options(flags, env);

  const port = o.parse('port', integer(0, 65535), defaults.port);
  // `[::1]` is how a URL writes an IPv6 address; listen() wants it bare.
  const host = (o.value('host') ?? defaults.host).replace(/^\[(.+)\]$/, '$1');
  const demo = o.value('demo') ?? false;
  if (demo && !isLoopback(host)) {
    throw new ConfigError(
      `--demo only listens on loopback (127.0.0.1, ::1 or localhost); refusing ${o.get('host')?.shown ?? host}`,
    );
  }
  const dataDir = resolve(o.value('data-dir') ?? defaults.dataDir);
  const database = o.value('database') ?? `sqlite:${resolve(dataDir, 'wsgate.db')}`;
  if (!/^sqlite:./.test(database) && !/^postgres(ql)?:\/\/./.test(database)) {
    o.fail('database', 'must be sqlite:<path> or a postgres:// URL');
  }
  const redis = o.value('redis');
  if (redis !== undefined && !/^rediss?:\/\/./.test(redis)) {
    o.fail('redis', 'must be a redis:// or rediss:// URL');
  }

  const logLevel = o.parse(
    'log-level',
    (v) =>
      (logLevels as readonly string[]).includes(v)
        ? (v as LogLevel)
        : { broke: `must be one of ${logLevels.join(', ')}` },
    defaults.logLevel,
  );
  const logFormat = o.parse(
    'log-format',
    (v): LogFormat | undefined | { broke: string } =>
      (logFormats as readonly string[]).includes(v)
        ? (v as LogFormat)
        : { broke: `must be one of ${logFormats.join(', ')}` },
    undefined,
  );

  const secret = o.value('hs256-secret');
  if (secret !== undefined && Buffer.byteLength(secret, 'utf8') < 32) {
    o.fail('hs256-secret', 'must be at least 32 bytes long');
  }

  const accessTtl = o.parse('access-ttl', duration, defaults.accessTtl);
  const refreshTtl = o.parse('refresh-ttl', duration, defaults.refreshTtl);
  if (refreshTtl < accessTtl) {
    o.fail('refresh-ttl', `must not be shorter than the access token lifetime (${accessTtl} s)`);
  }
  const issuer = o.parse('issuer', issuerUrl, listeningUrl(host, port));
  const audience = o.parse(
    'audience',
    (v) => (v.trim() === '' ? { broke: 'must not be empty' } : v),
    defaults.audience,
  );

  const issuers = parseIssuers(o, issuer);
  let proxy: ProxyConfig;
  try {
    proxy = parseProxyOptions(
      {
        proxy: o.value('proxy'),
        'proxy-scope': o.value('proxy-scope'),
        'proxy-audience': o.value('proxy-audience'),
        'proxy-ca': o.value('proxy-ca'),
      },
      issuers.trust.length === 0 ? [audience] : [audience, ...issuers.trustAudiences],
    );
  } catch (err) {
    if (err instanceof ProxyRouteError) throw new ConfigError(err.message);
    throw err;
  }
  // Found here, before a database, a port or a timer exists: one of the two would never be reached.
  for (const route of proxy.proxies) {
    const clash = httpRoutePaths.find((path) => overlapsHttpRoute(route, path));
    if (clash !== undefined) {
      throw new ConfigError(`--proxy ${route.path} overlaps the HTTP route ${clash}`);
    }
  }

  return {
    port,
    host,
    dataDir,
    database,
    databaseGiven: o.get('database') !== undefined,
    redis,
    given: o.shown(),
    redisPrefix: o.value('redis-prefix') ?? defaults.redisPrefix,
    origins: parseOrigins(o),
    allowedHosts: listValues(o, 'allowed-host', allowedHost),
    accessTtl,
    refreshTtl,
    secureCookies: o.value('secure-cookies') ?? false,
    logLevel,
    logFormat,
    demo,
    allowQueryTokens: o.value('allow-query-tokens') ?? demo,
    issuer,
    issuerDerived: o.get('issuer') === undefined,
    audience,
    audienceGiven: o.get('audience') !== undefined,
    hs256Secret: secret,
    loginAttemptsPerMinute: o.parse(
      'login-attempts',
      integer(1, 1_000_000),
      defaults.loginAttemptsPerMinute,
    ),
    loginFailuresPerAddress: o.parse(
      'login-failures-per-address',
      integer(1, 1_000_000),
      defaults.loginFailuresPerAddress,
    ),
    hashConcurrency: o.parse('hash-concurrency', integer(1, 1_024), usableCores()),
    hashQueue: o.parse('hash-queue', integer(0, 100_000), defaults.hashQueue),
    auditFailureRate: o.parse(
      'audit-failure-rate',
      integer(1, 1_000_000),
      defaults.auditFailureRate,
    ),
    ticketsPerMinute: o.parse(
      'tickets-per-minute',
      integer(1, 1_000_000),
      defaults.ticketsPerMinute,
    ),
    refreshGrace: o.parse(
      'refresh-grace',
      (v) => {
        if (/^\s*0+[smhd]?\s*$/.test(v)) return 0;
        const seconds = duration(v);
        return typeof seconds === 'number' ? Math.min(seconds, 60) : seconds;
      },
      defaults.refreshGrace,
    ),
    trustProxy: parseTrustProxy(o),
    metricsToken: o.parse(
      'metrics-token',
      (v) =>
        Buffer.byteLength(v, 'utf8') < 16 || !/^[\x21-\x7e]+$/.test(v)
          ? { broke: 'must be at least 16 printable ASCII characters' }
          : v,
      undefined,
    ),
    upgradeTimeout: o.parse('upgrade-timeout', duration, defaults.upgradeTimeout),
    maxRooms: o.parse('max-rooms', integer(1, 1_000_000), defaults.maxRooms),
    roomCreationsPerMinute: o.parse(
      'room-creations-per-minute',
      integer(1, 1_000_000),
      defaults.roomCreationsPerMinute,
    ),
    welcomeRooms: o.parse('welcome-rooms', integer(1, 1_000_000), defaults.welcomeRooms),
    joinedBytesPerMinute: o.parse(
      'joined-bytes-per-minute',
      integer(1, 1_000_000_000_000),
      defaults.joinedBytesPerMinute,
    ),
    ...parseWorkers(o),
    limits: parseLimits(o),
    proxies: proxy.proxies,
    proxyCa: proxy.proxyCa,
    ...issuers,
  };
}

/** Each value of a list option, or the rule one of them broke, named as given. */
function listValues(
  o: Options,
  name: ConfigOptionName,
  check: (value: string) => string | { broke: string },
): string[] {
  const given = o.get(name) as Given<string[]> | undefined;
  if (given === undefined) return [];
  return given.value.map((value) => {
    const result = check(value);
    if (typeof result === 'string') return result;
    const shown = given.source.startsWith('--')
      ? `${given.source} ${JSON.stringify(value)}`
      : `${given.source} entry ${JSON.stringify(value)}`;
    throw new ConfigError(`${shown} ${result.broke}`);
  });
}

const notEmpty = (v: string): string | { broke: string } =>
  v.trim() === '' ? { broke: 'must not be empty' } : v.trim();

/** The claim names of --username-claim and --scope-claim: printable, no spaces. */
const claimName = (v: string): string | { broke: string } =>
  /^[\x21-\x7e]{1,200}$/.test(v) ? v : { broke: 'must be a claim name or dotted path' };

type IssuerConfig = Pick<
  Config,
  | 'trust'
  | 'trustAudiences'
  | 'trustStale'
  | 'trustRevocationTtl'
  | 'usernameClaim'
  | 'scopeClaim'
  | 'backchannelAudiences'
  | 'adminIssuers'
>;

/** The external-issuer options (docs/identity-providers.md). */
function parseIssuers(o: Options, ownIssuer: string): IssuerConfig {
  const trust: TrustSpec[] = [];
  for (const value of listValues(o, 'trust', (v) => v.trim())) {
    let spec: TrustSpec;
    try {
      spec = parseTrustSpec(value);
    } catch (err) {
      if (err instanceof IssuerError) throw new ConfigError(err.message);
      throw err;
    }
    if (spec.issuer === ownIssuer)
      throw new ConfigError(`--trust ${spec.issuer} is wsgate's own issuer`);
    if (!trust.some((t) => t.issuer === spec.issuer)) trust.push(spec);
  }
  const trusted = new Set(trust.map((t) => t.issuer));
  const adminIssuers = listValues(o, 'admin-issuer', (v) =>
    trusted.has(v.trim()) ? v.trim() : { broke: 'is not a --trust issuer' },
  );
  const trustStale = o.parse('trust-stale', duration, 3600);
  if (trustStale > 86_400) o.fail('trust-stale', 'must be at most 24h');
  const audiences = listValues(o, 'trust-audience', notEmpty);
  return {
    trust,
    trustAudiences: audiences.length === 0 ? [defaults.audience] : audiences,
    trustStale,
    trustRevocationTtl: o.parse('trust-revocation-ttl', duration, 86_400),
    usernameClaim: o.parse('username-claim', claimName, 'sub'),
    scopeClaim: o.parse('scope-claim', claimName, undefined),
    backchannelAudiences: listValues(o, 'backchannel-audience', notEmpty),
    adminIssuers,
  };
}
