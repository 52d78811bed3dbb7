/**
 * The `Host` check against DNS rebinding: a page served from an attacker's name that resolves to
 * this server sends that name as `Host` and as its own `Origin`, so comparing the two proves
 * nothing. A request is only served when its `Host` names this deployment.
 */
import { isIP } from 'node:net';
import { WsgateError } from '../errors.js';

/** The names a deployment answers to. */
export interface HostPolicy {
  /**
   * The issuer's URL (or its host): its name and port are always allowed. A function when the
   * issuer is only known later (a port chosen at listen time).
   */
  readonly issuer: string | (() => string);
  /** Listening on loopback: `localhost`, `127.0.0.0/8` and `[::1]` are allowed on any port. */
  readonly loopback: boolean;
  /** More names (`chat.example`, any port) or `name:port` pairs (that port only). */
  readonly allowed?: readonly string[];
  /** Told each refused `Host` (undefined when there is none), so an operator can learn why. */
  readonly onRefused?: (host: string | undefined) => void;
}

/** A `Host` header's name (lower case, IPv6 without brackets, no trailing dot) and port. */
export interface HostParts {
  readonly name: string;
  /** The port as written, or undefined when the header gives none. */
  readonly port: number | undefined;
}

const portPattern = /^\d{1,5}$/;

/** Splits `name[:port]` or `[v6][:port]`; undefined when it is not a well-formed host. */
export function splitHost(host: string): HostParts | undefined {
  let name: string;
  let port: string | undefined;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close === -1) return undefined;
    name = host.slice(1, close);
    const rest = host.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return undefined;
    if (rest !== '') port = rest.slice(1);
    if (isIP(name) !== 6) return undefined;
  } else {
    const colon = host.lastIndexOf(':');
    name = colon === -1 ? host : host.slice(0, colon);
    if (colon !== -1) port = host.slice(colon + 1);
    if (name.includes(':')) return undefined;
  }
  if (port !== undefined && (!portPattern.test(port) || Number(port) > 65535)) return undefined;
  name = name.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === '' || !/^[a-z0-9.:_-]+$/.test(name)) return undefined;
  return { name, port: port === undefined ? undefined : Number(port) };
}

/** `localhost`, an address in `127.0.0.0/8`, or `::1`. */
export function isLoopbackName(name: string): boolean {
  if (name === 'localhost') return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  return name === '::1';
}

/** The default port of an `http:`/`https:` URL's scheme. */
function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

/** The issuer's name and effective port. */
function issuerParts(issuer: string): { name: string; port: number } | undefined {
  let url: URL;
  try {
    url = new URL(issuer.includes('://') ? issuer : `http://${issuer}`);
  } catch {
    return undefined;
  }
  const parts = splitHost(url.host);
  if (!parts) return undefined;
  return { name: parts.name, port: parts.port ?? defaultPort(url.protocol) };
}

/**
 * A `Host` check made once from the policy: true when `host` names the deployment. A missing or
 * malformed `Host` is refused. The issuer's port is implied when the header gives none (a TLS
 * terminator in front forwards `chat.example` for `https://chat.example`).
 */
export function hostChecker(policy: HostPolicy): (host: string | undefined) => boolean {
  const issuerOf =
    typeof policy.issuer === 'string' ? () => policy.issuer as string : policy.issuer;
  let seen = issuerOf();
  let issuer = issuerParts(seen);
  const names = new Set<string>();
  const pairs = new Set<string>();
  for (const entry of policy.allowed ?? []) {
    const parts = splitHost(entry);
    if (!parts) continue;
    if (parts.port === undefined) names.add(parts.name);
    else pairs.add(`${parts.name} ${parts.port}`);
  }
  const named = (host: string): boolean => {
    const parts = splitHost(host);
    if (!parts) return false;
    if (policy.loopback && isLoopbackName(parts.name)) return true;
    if (names.has(parts.name)) return true;
    if (parts.port !== undefined && pairs.has(`${parts.name} ${parts.port}`)) return true;
    return (
      issuer !== undefined &&
      parts.name === issuer.name &&
      (parts.port === undefined || parts.port === issuer.port)
    );
  };
  /** The last `Host` allowed, and the issuer then: nearly every request repeats it (one check). */
  let lastAllowed: string | undefined;
  let lastIssuer = seen;
  const allowed = (host: string | undefined): boolean => {
    if (host === undefined) return false;
    const now = issuerOf();
    if (now !== seen) {
      seen = now;
      issuer = issuerParts(now);
    }
    // The verdict depends only on the header and the issuer (the rest of the policy is fixed).
    if (host === lastAllowed && now === lastIssuer) return true;
    if (!named(host)) return false;
    lastAllowed = host;
    lastIssuer = now;
    return true;
  };
  const { onRefused } = policy;
  if (onRefused === undefined) return allowed;
  return (host) => {
    if (allowed(host)) return true;
    onRefused(host);
    return false;
  };
}

/**
 * The names a policy answers, as an operator reads them: `chat.example (the issuer's host),
 * loopback names, --allowed-host chat.internal`.
 */
export function describeHosts(policy: HostPolicy): string {
  const issuer = typeof policy.issuer === 'string' ? policy.issuer : policy.issuer();
  const parts = issuerParts(issuer);
  const names: string[] = [];
  if (parts !== undefined) {
    const host = parts.name.includes(':') ? `[${parts.name}]` : parts.name;
    const url = new URL(issuer.includes('://') ? issuer : `http://${issuer}`);
    const implied = parts.port === defaultPort(url.protocol);
    names.push(`${implied ? host : `${host}:${parts.port}`} (the issuer's host)`);
  }
  if (policy.loopback) names.push('localhost and loopback addresses');
  if (policy.allowed !== undefined && policy.allowed.length > 0) {
    names.push(`--allowed-host ${policy.allowed.join(', ')}`);
  }
  return names.join(', ');
}

/**
 * The request's `Host`: an array when it carries more than one. Node keeps the first and drops
 * the rest, while a proxy in front may route by another, so the check would pass on a name the
 * request was not sent to; RFC 9112 §3.2 answers two with 400.
 */
export function hostOf(req: {
  readonly rawHeaders: readonly string[];
  readonly headers: { readonly host?: string | undefined };
}): string | string[] | undefined {
  const { rawHeaders } = req;
  let hosts: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host')
      (hosts ??= []).push(rawHeaders[i + 1] as string);
  }
  return hosts !== undefined && hosts.length > 1 ? hosts : req.headers.host;
}

/**
 * Why a request does not name this deployment, or undefined when it does: two `Host` headers
 * (400), or a `Host` — or an absolute-form target's authority — that `allowed` refuses (421; no
 * name is refused without `allowed`). The one check of every HTTP request and WebSocket upgrade.
 */
export function hostRefusal(
  req: Parameters<typeof hostOf>[0] & { readonly url?: string | undefined },
  allowed: ((host: string | undefined) => boolean) | undefined,
): WsgateError | undefined {
  const host = hostOf(req);
  if (Array.isArray(host)) return new WsgateError('invalid_request', 'More than one Host header');
  if (allowed === undefined) return undefined;
  const authority = targetAuthority(req.url);
  if (!allowed(host) || (authority !== undefined && !allowed(authority)))
    return new WsgateError('misdirected_request');
  return undefined;
}

/**
 * The authority of an absolute-form request target (`GET http://name/path`), which RFC 9112
 * §3.2.2 puts before `Host`; undefined for the usual origin form (`/path`). The check reads
 * both, so no target names another site than the one checked.
 */
export function targetAuthority(target: string | undefined): string | undefined {
  if (target === undefined || target.startsWith('/') || target === '*') return undefined;
  try {
    return new URL(target).host;
  } catch {
    return '';
  }
}
