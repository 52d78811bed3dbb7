import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WsgateError } from '../errors.js';
import { proxyProtocol, type HandshakeRequest } from '../credentials/request.js';
import type { Principal } from '../credentials/principal.js';
import {
  DialError,
  defaultDialTimeoutMs,
  dialUpstream,
  type DialedUpstream,
  type DialFailure,
} from './dial.js';
import { signIdentity, type IdentityKey } from './identity.js';
import { checkSuffix, matchProxyRoute, type ProxyRoute } from './route.js';
import { buildUpstreamRequest } from './upstream-request.js';
import type { Direction, PipeEnd } from './pipe.js';

/** What a gate needs to proxy sockets: the identity key, and how to reach upstreams. */
export interface ProxyOptions {
  /** Signs `X-Wsgate-Identity` (see `deriveIdentityKey`, `createIdentityKey`). */
  readonly identityKey: IdentityKey;
  /** The `iss` of identity tokens: the deployment's issuer. A function when it is set late. */
  readonly issuer: string | (() => string);
  /** How long an upstream has to accept a socket (default 5 s). */
  readonly dialTimeoutMs?: number;
  /** Extra PEM CA certificates trusted for `wss://` upstreams. */
  readonly ca?: readonly string[];
  /** Told of upstream dials, frames and ends (for metrics). */
  readonly events?: ProxyEvents;
}

export interface ProxyEvents {
  /** An upstream accepted a socket after `ms`. */
  readonly dialed?: (ms: number) => void;
  readonly dialFailed?: (reason: DialFailure) => void;
  readonly frame?: (direction: Direction, bytes: number) => void;
  /** A proxied socket opened; `ended` follows once both its legs are closed. */
  readonly opened?: () => void;
  readonly ended?: (end: PipeEnd) => void;
}

/** The proxy route serving `path` and the suffix it serves, or undefined. Longest base wins. */
export function findProxyRoute(
  routes: readonly ProxyRoute[],
  path: string,
): { route: ProxyRoute; suffix: string } | undefined {
  let best: { route: ProxyRoute; suffix: string } | undefined;
  for (const route of routes) {
    const suffix = matchProxyRoute(route, path);
    if (suffix === undefined) continue;
    if (!best || route.base.length > best.route.base.length) best = { route, suffix };
  }
  if (best?.route.prefix) checkSuffix(best.suffix);
  return best;
}

/**
 * The subprotocol a proxied client gets: the one its upstream chose (`''` for none), else
 * `wsgate.proxy` when the client offered it, so that a browser accepts the handshake, else none.
 * Never `wsgate.v1`: the stream is the upstream's.
 */
export function clientProtocol(upstream: string, offered: readonly string[]): string | false {
  if (upstream !== '') return upstream;
  return offered.includes(proxyProtocol) ? proxyProtocol : false;
}

/**
 * Dials the upstream of an accepted client: called after every check has passed and before the
 * client's upgrade, so that the client gets the upstream's subprotocol. A dial that fails for
 * any reason is `bad_gateway` (502 / 1014); one the client abandons ends with the dial aborted.
 * On success the client socket is paused: resume it once `ws` has it.
 */
export async function dialForClient(
  req: IncomingMessage,
  socket: Duplex,
  request: HandshakeRequest,
  principal: Principal,
  target: { route: ProxyRoute; suffix: string },
  options: ProxyOptions,
  now: number,
): Promise<DialedUpstream> {
  const claims = principal.claims;
  if (!claims || principal.username === null) throw new WsgateError('credential_missing');
  const issuer = typeof options.issuer === 'string' ? options.issuer : options.issuer();
  const identity = signIdentity(
    options.identityKey,
    {
      sub: claims.sub,
      name: principal.username,
      idp: claims.iss,
      sid: claims.sid,
      scope: claims.scope,
      exp: claims.exp,
    },
    { issuer, audience: target.route.audience, now },
  );
  const q = (req.url ?? '').indexOf('?');
  const upstreamRequest = buildUpstreamRequest({
    route: target.route,
    suffix: target.suffix,
    query: q === -1 ? '' : (req.url ?? '').slice(q + 1),
    protocols: request.protocols,
    rawHeaders: req.rawHeaders,
    // The gate read both once, believing `X-Forwarded-*` only from a `--trust-proxy` peer.
    forwardedFor: request.ip,
    proto: request.forwardedProto ?? (request.encrypted ? 'https' : 'http'),
    host: request.host,
    identity: {
      user: principal.username,
      scope: claims.scope,
      session: claims.sid,
      issuer: claims.iss,
    },
    identityToken: identity.token,
  });
  // The client may leave while the upstream is slow to answer: stop dialling then. Its end is
  // only seen while reading; a client may not send before the 101, but what it sends is kept.
  const abort = new AbortController();
  const onGone = (): void => abort.abort();
  const early: Buffer[] = [];
  const onData = (chunk: Buffer): void => void early.push(chunk);
  socket.on('data', onData);
  socket.once('end', onGone);
  socket.once('close', onGone);
  const started = performance.now();
  const stopWatching = (): void => {
    socket.off('data', onData);
    socket.off('end', onGone);
    socket.off('close', onGone);
  };
  try {
    const dialed = await dialUpstream(upstreamRequest, {
      timeoutMs: options.dialTimeoutMs ?? defaultDialTimeoutMs,
      signal: abort.signal,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    });
    options.events?.dialed?.(performance.now() - started);
    stopWatching();
    // Paused until the upgrade hands the socket to `ws`, which the caller then resumes.
    socket.pause();
    for (const chunk of early.reverse()) socket.unshift(chunk);
    return dialed;
  } catch (err) {
    stopWatching();
    if (!(err instanceof DialError)) throw err;
    options.events?.dialFailed?.(err.reason);
    throw new WsgateError('bad_gateway', undefined, { cause: err });
  }
}
