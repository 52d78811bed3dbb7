import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { ServerProcess, type Placement } from './server-process.js';
import type { Minted } from './connectors.js';

/** What every scenario needs: the run's mode, where processes go, and how to start servers. */
export interface BenchContext {
  readonly quick: boolean;
  readonly placement: Placement;
  /** A duration in milliseconds: `quickSeconds` under `--quick`, else `fullSeconds`. */
  seconds(quickSeconds: number, fullSeconds: number): number;
  /** A count: `quickCount` under `--quick`, else `fullCount`. */
  count(quickCount: number, fullCount: number): number;
  log(line: string): void;
  /** Whether a case (e.g. `wsgate-header`) was asked for; all are unless `--cases=` names some. */
  includes(key: string): boolean;
}

/**
 * The limits a benchmark raises, and why: the defaults (50 handshakes/s per address, 50 messages/s
 * per socket, 20 sockets per user) exist to stop one abusive client, and the load generator is
 * one client address and one user opening thousands of sockets. Every other default stays.
 */
export const raisedLimits = [
  '--handshake-rate',
  '1000000',
  '--handshake-burst',
  '1000000',
  '--message-rate',
  '1000000',
  '--message-burst',
  '1000000',
  '--max-connections-per-user',
  '1000000',
  '--max-connections-per-address',
  '1000000',
  '--tickets-per-minute',
  '1000000',
];

export interface WsgateInfo {
  readonly url: string;
  readonly issuer: string;
  readonly jwks: JSONWebKeySet;
}

export interface WsgateNode {
  readonly server: ServerProcess;
  readonly info: WsgateInfo;
  /** Opens `count` sessions for the bench user; `cookies` gives tokens with a CSRF value. */
  mint(count: number, cookies?: boolean): Promise<Minted[]>;
  /** `count` distinct access tokens of one session (for more tokens than sessions are worth). */
  tokens(count: number, cookies?: boolean): Promise<Minted[]>;
}

/** A new, empty data directory for one server: every run starts from nothing. */
export function freshDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'wsgate-bench-'));
}

/** Starts a wsgate node on a fresh data dir (unless `args` names a database) with raised limits. */
export async function startWsgate(
  ctx: BenchContext,
  args: readonly string[] = [],
  nodeArgs: readonly string[] = [],
): Promise<WsgateNode> {
  return startWsgateScript(ctx, 'wsgate', ctx.placement, args, nodeArgs);
}

/**
 * Starts `wsgate serve --workers n` on `serverCore` (a core or a `taskset -c` list), as the
 * CLI runs it, with the same IPC as {@link startWsgate}.
 */
export function startWsgateWorkers(
  ctx: BenchContext,
  workers: number,
  serverCore: number | string | undefined,
  args: readonly string[] = [],
): Promise<WsgateNode> {
  const placement = { ...ctx.placement, serverCore };
  // An explicit issuer: the bench process opens the deployment before the workers listen.
  const flags = ['--workers', String(workers), '--issuer', 'http://127.0.0.1', ...args];
  return startWsgateScript(ctx, 'wsgate-workers', placement, flags, []);
}

async function startWsgateScript(
  ctx: BenchContext,
  script: string,
  placement: BenchContext['placement'],
  args: readonly string[],
  nodeArgs: readonly string[],
): Promise<WsgateNode> {
  const dataDir = freshDataDir();
  const flags = ['--port', '0', '--data-dir', dataDir, '--allow-query-tokens'];
  let server: ServerProcess;
  try {
    server = await ServerProcess.start(
      placement,
      script,
      [...flags, ...raisedLimits, ...args],
      nodeArgs,
    );
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  // The data dir holds a private signing key: it goes with the server.
  server.afterStop(() => rmSync(dataDir, { recursive: true, force: true }));
  const info = await server.request<WsgateInfo>('info');
  return {
    server,
    info,
    mint: (count, cookies = false) => server.request<Minted[]>('mint', { count, cookies }),
    tokens: (count, cookies = false) => server.request<Minted[]>('tokens', { count, cookies }),
  };
}

/**
 * Starts a baseline server that verifies the tokens of the wsgate node `info` describes:
 * `ws-crypto` checks them by hand on `node:crypto` (HS256 when `args` gives `--hs256-secret`),
 * `ws-preframed` is the plain server framing each chat broadcast once.
 */
export function startBaseline(
  ctx: BenchContext,
  name: 'ws-plain' | 'ws-jose' | 'ws-crypto' | 'ws-preframed' | 'socketio',
  info: WsgateInfo,
  nodeArgs: readonly string[] = [],
  args: readonly string[] = [],
): Promise<ServerProcess> {
  const keys = ['--jwks', JSON.stringify(info.jwks), '--issuer', info.issuer];
  if (name === 'socketio') return ServerProcess.start(ctx.placement, 'socketio', keys, nodeArgs);
  const auth = {
    'ws-plain': ['--auth', 'none'],
    'ws-jose': ['--auth', 'jose'],
    'ws-crypto': ['--auth', 'crypto'],
    'ws-preframed': ['--auth', 'none', '--fanout', 'preframed'],
  }[name];
  return ServerProcess.start(ctx.placement, 'ws-baseline', [...auth, ...keys, ...args], nodeArgs);
}
