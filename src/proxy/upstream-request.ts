import {
  accessCookie,
  csrfCookie,
  csrfRefreshCookie,
  refreshCookie,
} from '../credentials/cookie.js';
import { upstreamPath, type ProxyRoute } from './route.js';

/** Who the upstream is told it is talking to, as plain headers beside the signed identity. */
export interface IdentityHeaders {
  readonly user: string;
  readonly scope: string;
  readonly session: string;
  readonly issuer: string;
}

export interface UpstreamRequestInput {
  readonly route: ProxyRoute;
  /** The request path after the route's base (`''` on exact routes). */
  readonly suffix: string;
  /** The client's query string, without `?`. */
  readonly query: string;
  /** The client's subprotocols, in order. */
  readonly protocols: readonly string[];
  /** The client's headers as received (`IncomingMessage.rawHeaders`). */
  readonly rawHeaders: readonly string[];
  /** The client's address, and the proxies in front of wsgate when they are trusted. */
  readonly forwardedFor: string;
  /** The scheme the client used to reach wsgate (or the trusted proxy in front of it). */
  readonly proto: 'http' | 'https';
  /** The host the client asked for. */
  readonly host: string | undefined;
  readonly identity: IdentityHeaders;
  /** The signed `X-Wsgate-Identity` JWT. */
  readonly identityToken: string;
}

export interface UpstreamRequest {
  readonly url: URL;
  readonly protocols: readonly string[];
  readonly headers: Readonly<Record<string, string | string[]>>;
}

/** Query parameters that carry credentials and never leave wsgate. */
const credentialParams = new Set(['token', 'csrf_token']);

/** Cookies wsgate sets for its own sign-in; the upstream never sees them. */
const wsgateCookies = new Set([accessCookie, refreshCookie, csrfCookie, csrfRefreshCookie]);

/**
 * Headers that belong to one hop or to wsgate: the client's versions are dropped and wsgate sets
 * its own. `Forwarded` and `X-Real-IP` would let a client claim another address.
 */
const droppedHeaders = new Set([
  'host',
  'connection',
  'upgrade',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'content-length',
  'authorization',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'sec-websocket-accept',
  'forwarded',
  'x-real-ip',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
]);

/**
 * True for every header name the upstream might read as one of wsgate's identity headers: Rack,
 * Django and CGI servers turn `-` into `_` and merge `X-Wsgate_User` with `X-Wsgate-User`.
 */
export function isWsgateHeader(name: string): boolean {
  return name.toLowerCase().replaceAll('_', '-').startsWith('x-wsgate-');
}

/** Percent-encodes what is not printable ASCII, and `%` itself, so any header value is safe. */
export function encodeHeaderValue(value: string): string {
  let out = '';
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (code > 0x20 && code < 0x7f && char !== '%') out += char;
    else if (char === ' ') out += ' ';
    else
      for (const byte of Buffer.from(char, 'utf8'))
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Whether a query parameter's name, decoded as URLSearchParams decodes it, is a credential. */
function isCredentialParam(pair: string): boolean {
  const eq = pair.indexOf('=');
  const rawName = eq === -1 ? pair : pair.slice(0, eq);
  const [name] = new URLSearchParams(`${rawName}=`).keys();
  return name !== undefined && credentialParams.has(name);
}

/** The client's query without `token` and `csrf_token`, every other byte left as sent. */
export function forwardedQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .filter((pair) => pair !== '' && !isCredentialParam(pair))
    .join('&');
}

/** The `Cookie` header without wsgate's cookies; undefined when nothing is left. */
export function forwardedCookies(header: string): string | undefined {
  const kept = header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => {
      if (part === '') return false;
      const eq = part.indexOf('=');
      const name = (eq === -1 ? part : part.slice(0, eq)).trim();
      return !wsgateCookies.has(name);
    });
  return kept.length === 0 ? undefined : kept.join('; ');
}

/** Header names the `Connection` header declares hop-by-hop. */
function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() !== 'connection') continue;
    for (const token of (rawHeaders[i + 1] as string).split(',')) {
      const name = token.trim().toLowerCase();
      // `Connection: upgrade` is the handshake itself, not a header to drop.
      if (name !== '' && name !== 'upgrade') tokens.add(name);
    }
  }
  return tokens;
}

/**
 * Builds the request wsgate sends upstream for an accepted client: the upstream URL with the
 * client's path suffix and query (credentials removed), the client's subprotocols but wsgate's,
 * its end-to-end headers without credentials or anything that reads as `X-Wsgate-*`, then the
 * forwarding and identity headers that only wsgate sets.
 */
export function buildUpstreamRequest(input: UpstreamRequestInput): UpstreamRequest {
  const { route } = input;
  const url = new URL(route.upstream);
  url.pathname = upstreamPath(route, input.suffix);
  const query = forwardedQuery(input.query);
  const own = url.search.slice(1);
  url.search = [own, query].filter((part) => part !== '').join('&');

  const hopByHop = connectionTokens(input.rawHeaders);
  const headers: Record<string, string | string[]> = {};
  const cookies: string[] = [];
  for (let i = 0; i + 1 < input.rawHeaders.length; i += 2) {
    const name = (input.rawHeaders[i] as string).toLowerCase();
    const value = input.rawHeaders[i + 1] as string;
    if (droppedHeaders.has(name) || hopByHop.has(name) || isWsgateHeader(name)) continue;
    if (name === 'cookie') {
      cookies.push(value);
      continue;
    }
    const prev = headers[name];
    headers[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  }
  const cookie = cookies.length === 0 ? undefined : forwardedCookies(cookies.join('; '));
  if (cookie !== undefined) headers.cookie = cookie;

  headers['x-forwarded-for'] = input.forwardedFor;
  headers['x-forwarded-proto'] = input.proto;
  if (input.host !== undefined) headers['x-forwarded-host'] = input.host;
  headers['x-wsgate-user'] = encodeHeaderValue(input.identity.user);
  headers['x-wsgate-scope'] = encodeHeaderValue(input.identity.scope);
  headers['x-wsgate-session'] = encodeHeaderValue(input.identity.session);
  headers['x-wsgate-issuer'] = encodeHeaderValue(input.identity.issuer);
  headers['x-wsgate-identity'] = input.identityToken;

  return {
    url,
    protocols: input.protocols.filter((p) => !p.toLowerCase().startsWith('wsgate.')),
    headers,
  };
}
