import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig, type Config, type RawOptions } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server/serve.js';
import type { GateLimits } from '../../src/handshake/gate.js';
import type { PubSub } from '../../src/pubsub/types.js';
import type { ClusterOptions } from '../../src/cluster/cluster.js';
import type { Timers } from '../../src/clock.js';

/** A clock the test moves by hand, so expiry is tested without sleeping. */
export interface ManualClock {
  (): number;
  advance(ms: number): void;
  set(ms: number): void;
}

export function manualClock(start = Date.UTC(2026, 0, 1)): ManualClock {
  let now = start;
  const clock = (() => now) as ManualClock;
  clock.advance = (ms) => {
    now += ms;
  };
  clock.set = (ms) => {
    now = ms;
  };
  return clock;
}

/** Collects every log line the server writes, to check that no secret reaches them. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    callback();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export interface TestServer extends RunningServer {
  readonly clock: ManualClock;
  readonly logs: LogCapture;
  readonly dataDir: string;
  readonly config: Config;
  /** Stops the server and deletes its data dir. */
  stop(): Promise<void>;
}

export const testIssuer = 'http://wsgate.test';

/**
 * Starts a real wsgate node on 127.0.0.1:0 with a fresh SQLite file in a temp dir, demo users
 * seeded, a manual clock and captured logs.
 */
export async function startTestServer(
  options: RawOptions = {},
  extra: {
    clock?: ManualClock;
    dataDir?: string;
    gateLimits?: Partial<GateLimits>;
    /** Cluster mode over this bus (e.g. a MemoryBus connection shared with other nodes). */
    bus?: PubSub;
    cluster?: ClusterOptions;
    /** How long proxied upstreams have to answer (tests of a hanging upstream shorten it). */
    proxyDialTimeoutMs?: number;
    /** How often revocations stored by other processes are read (a test of the bus raises it). */
    revocationPollMs?: number;
    /** The node's background timers (heartbeat, first-message wait, presence, revocation poll). */
    timers?: Timers;
  } = {},
): Promise<TestServer> {
  const dataDir = extra.dataDir ?? mkdtempSync(join(tmpdir(), 'wsgate-test-'));
  const config = loadConfig({
    port: '0',
    host: '127.0.0.1',
    'data-dir': dataDir,
    demo: true,
    issuer: testIssuer,
    'log-level': 'info',
    ...options,
  });
  const clock = extra.clock ?? manualClock(Date.now());
  const logs = new LogCapture();
  const server = await startServer(config, {
    clock,
    log: createLogger(config.logLevel, logs),
    ...(extra.gateLimits === undefined ? {} : { gateLimits: extra.gateLimits }),
    ...(extra.bus === undefined ? {} : { bus: extra.bus }),
    ...(extra.cluster === undefined ? {} : { cluster: extra.cluster }),
    ...(extra.proxyDialTimeoutMs === undefined
      ? {}
      : { proxyDialTimeoutMs: extra.proxyDialTimeoutMs }),
    ...(extra.revocationPollMs === undefined ? {} : { revocationPollMs: extra.revocationPollMs }),
    ...(extra.timers === undefined ? {} : { timers: extra.timers }),
  });
  return {
    ...server,
    clock,
    logs,
    dataDir,
    config,
    stop: async () => {
      await server.close();
      if (extra.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** POSTs a form-encoded body. */
export function postForm(
  url: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

/** POSTs JSON. */
export function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

export interface TokenResponse {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  scope?: string;
}

/** Logs in through `POST /token` and returns the token response. */
export async function passwordGrant(
  server: { url: string },
  username = 'johndoe',
  password = 'secret',
): Promise<TokenResponse> {
  const res = await postForm(`${server.url}/token`, { username, password });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as TokenResponse;
}
