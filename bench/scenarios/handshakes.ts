import {
  socketIo,
  wsCrypto,
  wsJose,
  wsPlain,
  wsgateConnectors,
  type Connector,
  type Minted,
} from '../lib/connectors.js';
import { startBaseline, startWsgate, type BenchContext } from '../lib/context.js';
import type { ServerProcess } from '../lib/server-process.js';
import { median, inTurn } from '../lib/stats.js';
import { generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Authenticated handshakes per second: `concurrency` clients each open a socket, wait for the
 * greeting and close, over and over. Tokens come from a pool larger than wsgate's verified-token
 * cache, taken in turn, so every handshake checks a signature; one more row reuses 100 tokens to
 * show a reconnecting client's handshake.
 */

export interface HandshakeRow {
  readonly label: string;
  readonly key: string;
  /** Handshakes completed per second (median of the rounds). */
  readonly perSecond: number;
  /** Server CPU time per handshake in microseconds (median of the rounds). */
  readonly cpuUs: number;
  /** Share of the load generator's core in use, 0–1; near 1 means the client set the pace. */
  readonly loadCpu: number;
  readonly failed: number;
}

interface Measured {
  readonly perSecond: number;
  readonly cpuUs: number;
  readonly loadCpu: number;
  readonly failed: number;
  readonly error?: unknown;
}

const concurrency = 32;

/** A row of the table: key, how to connect, and the credentials to cycle through. */
type Case = [string, Connector, readonly Minted[]];

/** Where each pool was left off, so that one run's tokens are not the next run's. */
const cursors = new WeakMap<readonly Minted[], number>();

/** Handshakes on `server` for `durationMs`, cycling through `credentials`. */
export async function measureHandshakes(
  connector: Connector,
  server: ServerProcess,
  credentials: readonly Minted[],
  durationMs: number,
): Promise<Measured> {
  const before = await server.stats();
  const loadBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + durationMs;
  let done = 0;
  let failed = 0;
  let next = cursors.get(credentials) ?? 0;
  let error: unknown;
  const worker = async () => {
    while (performance.now() < deadline) {
      const credential = credentials[next++ % credentials.length] as Minted;
      try {
        const ws = await connector.open(server.port, credential);
        ws.close();
        done++;
      } catch (err) {
        failed++;
        error ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  cursors.set(credentials, next);
  const elapsed = performance.now() - started;
  const load = process.cpuUsage(loadBefore);
  const after = await server.stats();
  return {
    perSecond: (done / elapsed) * 1000,
    cpuUs: (after.cpuUs - before.cpuUs) / Math.max(1, done),
    loadCpu: (load.user + load.system) / 1000 / elapsed,
    failed,
    error,
  };
}

/** An external identity provider reduced to its JWK Set, and RS256 access tokens it signed. */
interface Rs256Issuer {
  readonly trust: string;
  readonly tokens: readonly Minted[];
  readonly server: Server;
}

/**
 * An RS256 issuer on loopback for `--trust <issuer>=<jwks-url>`: the common provider setup. Its
 * tokens are never in a verified-token cache (external tokens are checked every time), so a
 * small pool of distinct users does.
 */
async function startRs256Issuer(count: number): Promise<Rs256Issuer> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = {
    ...publicKey.export({ format: 'jwk' }),
    kid: 'bench-rsa',
    alg: 'RS256',
    use: 'sig',
  };
  const server = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const header = b64({ alg: 'RS256', typ: 'at+jwt', kid: 'bench-rsa' });
  const now = Math.floor(Date.now() / 1000);
  const tokens = Array.from({ length: count }, (_, i): Minted => {
    const payload = b64({
      iss: issuer,
      sub: `user-${i}`,
      aud: 'wsgate',
      scope: 'chat:read chat:write',
      iat: now,
      exp: now + 3600,
      jti: randomUUID(),
    });
    const signature = sign('sha256', Buffer.from(`${header}.${payload}`), privateKey);
    return {
      access: `${header}.${payload}.${signature.toString('base64url')}`,
      refresh: '',
      sessionId: '',
      csrf: null,
    };
  });
  return { trust: `${issuer}=${issuer}/jwks`, tokens, server };
}

/** More tokens than the verified-token cache holds, used in turn: every handshake misses it. */
export const coldPool = 10_000;

export async function handshakes(ctx: BenchContext): Promise<HandshakeRow[]> {
  const wsgate = await startWsgate(ctx);
  const cold = await wsgate.tokens(coldPool);
  const coldCookies = await wsgate.tokens(coldPool, true);
  const seen = cold.slice(0, 100);
  // The same gate with HS256: what the handshake costs when checking a signature is cheap. The
  // secret is made for this run and thrown away with the process.
  const secret = randomBytes(32).toString('base64url');
  const hs256 = await startWsgate(ctx, ['--hs256-secret', secret]);
  const hs256Tokens = await hs256.tokens(coldPool);
  // The same gate trusting an external issuer: RS256 access tokens checked with its public key.
  const idp = await startRs256Issuer(1000);
  const rs256 = await startWsgate(ctx, ['--trust', idp.trust]);
  const baselines = {
    'ws-plain': await startBaseline(ctx, 'ws-plain', wsgate.info),
    'ws-jose': await startBaseline(ctx, 'ws-jose', wsgate.info),
    'ws-crypto': await startBaseline(ctx, 'ws-crypto', wsgate.info),
    'ws-crypto-hs256': await startBaseline(
      ctx,
      'ws-crypto',
      hs256.info,
      [],
      ['--hs256-secret', secret],
    ),
    socketio: await startBaseline(ctx, 'socketio', wsgate.info),
  };
  const servers: Partial<Record<Connector['server'], ServerProcess>> = {
    ...baselines,
    wsgate: wsgate.server,
    'wsgate-hs256': hs256.server,
    'wsgate-rs256': rs256.server,
  };
  const wsgateCases = Object.entries(wsgateConnectors).map(([name, c]): Case => [
    `wsgate-${name}`,
    c,
    name === 'cookie' ? coldCookies : cold,
  ]);
  const header = wsgateConnectors.header as Connector;
  const cases = (
    [
      ['ws-plain', wsPlain, cold],
      ['ws-jose', wsJose, cold],
      ['ws-crypto', wsCrypto, cold],
      [
        'ws-crypto-hs256',
        { ...wsCrypto, server: 'ws-crypto-hs256', label: `${wsCrypto.label}, HS256` },
        hs256Tokens,
      ],
      ['socketio', socketIo, cold],
      ...wsgateCases,
      ['wsgate-header-seen', { ...header, label: `${header.label}, token seen before` }, seen],
      [
        'wsgate-header-hs256',
        { ...header, server: 'wsgate-hs256', label: `${header.label}, HS256` },
        hs256Tokens,
      ],
      [
        'wsgate-header-rs256',
        { ...header, server: 'wsgate-rs256', label: `${header.label}, RS256 external issuer` },
        idp.tokens,
      ],
    ] as Case[]
  ).filter(([key]) => ctx.includes(key));
  const rounds = ctx.count(1, 3);
  const results = new Map<string, Measured[]>(cases.map(([key]) => [key, []]));
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [key, connector, credentials] of inTurn(cases, round)) {
        const server = servers[connector.server];
        if (!server) throw new Error(`no ${connector.server} server in this scenario`);
        await measureHandshakes(connector, server, credentials, ctx.seconds(1, 2)); // warm-up
        const m = await measureHandshakes(connector, server, credentials, ctx.seconds(2, 5));
        if (m.failed > 0) ctx.log(`  ${key}: ${m.failed} failed, first: ${String(m.error)}`);
        ctx.log(`  handshakes ${key}: ${Math.round(m.perSecond)}/s, ${Math.round(m.cpuUs)} µs CPU`);
        results.get(key)?.push(m);
      }
    }
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
    idp.server.close();
  }
  return cases.map(([key, connector]) => {
    const runs = results.get(key) ?? [];
    return {
      key,
      label: connector.label,
      perSecond: median(runs.map((r) => r.perSecond)),
      cpuUs: median(runs.map((r) => r.cpuUs)),
      loadCpu: median(runs.map((r) => r.loadCpu)),
      failed: runs.reduce((sum, r) => sum + r.failed, 0),
    };
  });
}
