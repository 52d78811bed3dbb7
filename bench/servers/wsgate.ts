import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
// The built package, as `wsgate serve` runs it (npm run bench builds it first).
import { configFlags } from '../../dist/config.js';
import { issueToken, loadConfig, startServer } from '../../dist/index.js';
import { UserExistsError } from '../../dist/storage/types.js';
import { serveIpc } from './ipc.js';

/**
 * A wsgate node for the benchmarks: `wsgate serve` with the flags given on the command line,
 * plus an IPC channel that reports CPU and memory and opens sessions for the load generator.
 */

export const benchUser = 'bench';

const { values } = parseArgs({ options: configFlags, strict: true });
const config = loadConfig(values, {});
const server = await startServer(config);
const { users, sessions } = server.runtime;
try {
  await users.add(benchUser, 'bench-password-not-secret', 'chat:read chat:write');
} catch (err) {
  // The second node of a cluster finds the user the first one made.
  if (!(err instanceof UserExistsError)) throw err;
}

/** Opens `count` real sessions and hands back their tokens, as `POST /token` would. */
async function mint(request: Record<string, unknown>) {
  const count = Number(request.count);
  const cookies = request.cookies === true;
  const minted = [];
  for (let i = 0; i < count; i++) {
    const pair = await sessions.openSession(benchUser, { cookies });
    minted.push({
      access: pair.accessToken,
      refresh: pair.refreshToken,
      sessionId: pair.access.sid,
      csrf: pair.access.csrf ?? null,
    });
  }
  return minted;
}

/**
 * Many distinct access tokens of one real session, each signed like any other: the handshake
 * benchmark needs more tokens than the verified-token cache holds, so that every handshake of a
 * cold run checks a signature. With `cookies`, each carries its own CSRF value.
 */
async function tokens(request: Record<string, unknown>) {
  const count = Number(request.count);
  const cookies = request.cookies === true;
  const pair = await sessions.openSession(benchUser, { cookies });
  const minted = [];
  for (let i = 0; i < count; i++) {
    const csrf = cookies ? randomBytes(24).toString('base64url') : undefined;
    const { token } = await issueToken(server.runtime.keys, {
      type: 'access',
      subject: benchUser,
      sessionId: pair.access.sid,
      scope: pair.access.scope,
      ttl: config.accessTtl,
      issuer: sessions.issuer,
      audience: config.audience,
      now: Date.now(),
      ...(csrf === undefined ? {} : { csrf }),
    });
    minted.push({
      access: token,
      refresh: pair.refreshToken,
      sessionId: pair.access.sid,
      csrf: csrf ?? null,
    });
  }
  return minted;
}

serveIpc(
  server.port,
  {
    mint,
    tokens,
    info: () => ({ url: server.url, issuer: sessions.issuer, jwks: server.runtime.keys.jwks }),
  },
  () => server.close(),
);
