import { WsgateError } from '../errors.js';

/** A path served by an upstream WebSocket server: exact (`/app`) or a prefix (`/app/*`). */
export interface ProxyRoute {
  /** As configured: `/app` or `/app/*`. */
  readonly path: string;
  /** The path without `/*`; a prefix route serves it and everything under it. */
  readonly base: string;
  readonly prefix: boolean;
  readonly upstream: URL;
  /** Scopes a credential must carry to open a socket here. */
  readonly scopes: readonly string[];
  /** `aud` of the identity token: the upstream URL without its query unless configured. */
  readonly audience: string;
}

export interface ProxyRouteOptions {
  readonly scopes?: readonly string[];
  readonly audience?: string;
}

/** A route configuration error: the message names the route. */
export class ProxyRouteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProxyRouteError';
  }
}

const pathPattern = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;

/** Validates and normalises one route; throws {@link ProxyRouteError} naming what is wrong. */
export function proxyRoute(
  path: string,
  upstream: string | URL,
  options: ProxyRouteOptions = {},
): ProxyRoute {
  const prefix = path.endsWith('/*');
  const base = prefix ? path.slice(0, -2) : path;
  if (!pathPattern.test(path) || (!prefix && path.includes('*')) || base.includes('*')) {
    throw new ProxyRouteError(
      `proxy path "${path}" must be an absolute path such as /app or /app/*`,
    );
  }
  if (base.includes('//') || /(^|\/)\.\.?(\/|$)/.test(base) || /%(2e|2f|5c)/i.test(base)) {
    throw new ProxyRouteError(`proxy path "${path}" must not hold empty, . or .. segments`);
  }
  if (!prefix && path.length > 1 && path.endsWith('/')) {
    throw new ProxyRouteError(
      `proxy path "${path}" must not end with /; use ${path}* for a prefix`,
    );
  }
  let url: URL;
  try {
    url = new URL(upstream);
  } catch {
    throw new ProxyRouteError(`proxy upstream for ${path} is not a URL: "${String(upstream)}"`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new ProxyRouteError(`proxy upstream for ${path} must be a ws:// or wss:// URL`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new ProxyRouteError(`proxy upstream for ${path} must not carry a user or password`);
  }
  if (url.hash !== '') {
    throw new ProxyRouteError(`proxy upstream for ${path} must not have a #fragment`);
  }
  const withoutQuery = new URL(url);
  withoutQuery.search = '';
  return {
    path,
    base: prefix && base === '' ? '/' : base,
    prefix,
    upstream: url,
    scopes: options.scopes ?? [],
    audience: options.audience ?? withoutQuery.href,
  };
}

/**
 * The part of `path` after the route's base when the route serves it (`''` for the base itself),
 * else undefined. `path` is the raw request path, not decoded.
 */
export function matchProxyRoute(route: ProxyRoute, path: string): string | undefined {
  if (!route.prefix) return path === route.path ? '' : undefined;
  if (path === route.base) return '';
  const base = route.base.endsWith('/') ? route.base.slice(0, -1) : route.base;
  if (!path.startsWith(`${base}/`)) return undefined;
  return path.slice(base.length);
}

/**
 * Refuses a path suffix that could climb out of the upstream path once some server decodes or
 * normalises it: `.` and `..` segments, encoded dots, slashes and backslashes, empty segments.
 */
export function checkSuffix(suffix: string): void {
  if (
    suffix.includes('//') ||
    suffix.includes('\\') ||
    /%(2e|2f|5c|00)/i.test(suffix) ||
    /(^|\/)\.{1,2}(\/|$)/.test(suffix)
  ) {
    throw new WsgateError('invalid_request', 'Path not allowed');
  }
}

/** The upstream path for a suffix: the upstream's own path with the suffix appended. */
export function upstreamPath(route: ProxyRoute, suffix: string): string {
  const own = route.upstream.pathname;
  if (suffix === '') return own;
  return own.endsWith('/') ? own + suffix.slice(1) : own + suffix;
}

/**
 * Whether an HTTP route path (Fastify syntax: `:param` segments, a trailing `*`) could serve a
 * request that this proxy route would take: then one of them would never see its requests.
 */
export function overlapsHttpRoute(route: ProxyRoute, httpPath: string): boolean {
  const http = httpPath.split('/').slice(1);
  const base = route.base === '/' ? [] : route.base.split('/').slice(1);
  if (route.prefix && base.length === 0) return true;
  for (let i = 0; i < base.length; i++) {
    const segment = http[i];
    if (segment === undefined) return false;
    if (segment === '*' || (segment.endsWith('*') && base[i]?.startsWith(segment.slice(0, -1))))
      return true;
    if (!segment.startsWith(':') && segment !== base[i]) return false;
  }
  // Every base segment matched: a prefix route overlaps anything at or under it; an exact route
  // only a path of the same length (or one ending in a wildcard segment).
  return route.prefix || http.length === base.length || http[base.length] === '*';
}
