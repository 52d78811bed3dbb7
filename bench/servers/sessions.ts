import { randomBytes } from 'node:crypto';
// The built package, as `wsgate serve` runs it (npm run bench builds it first).
import { issueToken, type Config, type Runtime } from '../../dist/index.js';
import { UserExistsError } from '../../dist/storage/types.js';

/** The one user every benchmark client signs in as. */
export const benchUser = 'bench';

/** Adds the bench user, unless another process of the deployment did first. */
export async function addBenchUser(runtime: Runtime): Promise<void> {
  try {
    await runtime.users.add(benchUser, 'bench-password-not-secret', 'chat:read chat:write');
  } catch (err) {
    if (!(err instanceof UserExistsError)) throw err;
  }
}

/**
 * What the load generator asks a wsgate bench server for: real sessions (`mint`), many tokens of
 * one session (`tokens`) and the deployment (`info`), made with the runtime's own keys.
 */
export function sessionHandlers(runtime: Runtime, config: Config, url: () => string) {
  const { sessions } = runtime;

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
      const { token } = await issueToken(runtime.keys, {
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

  return {
    mint,
    tokens,
    info: () => ({ url: url(), issuer: sessions.issuer, jwks: runtime.keys.jwks }),
  };
}
