import type { IncomingMessage } from 'node:http';
import { WsgateError } from '../errors.js';
import { authorizationOf } from './authorization-header.js';
import { v1Protocol } from '../protocol/subprotocols.js';
import { clientAddress, forwardedProto, type TrustedProxy } from '../client-address.js';

// The wire names are defined once, in the browser-safe protocol module the client also uses.
export { v1Protocol, bearerProtocolPrefix, proxyProtocol } from '../protocol/subprotocols.js';

/** Longest request target accepted on a handshake (the query may carry a ticket or token). */
export const maxUrlLength = 4096;

/** What the gate reads from an upgrade request, parsed once. */
export interface HandshakeRequest {
  readonly path: string;
  /** The query string's parameters, parsed on first use. */
  readonly query: URLSearchParams;
  /** Whether the request target has a query string at all (cheaper than parsing it). */
  readonly hasQuery: boolean;
  /** Subprotocols the client offered, in order. */
  readonly protocols: readonly string[];
  /** The client offered `wsgate.v1`: failures are reported as close codes after the upgrade. */
  readonly offeredV1: boolean;
  readonly origin: string | undefined;
  readonly host: string | undefined;
  /** The client's address: the peer's, or from `X-Forwarded-For` when the peer is a trusted proxy. */
  readonly ip: string;
  /** The scheme a trusted proxy says the client used (`X-Forwarded-Proto`); else undefined. */
  readonly forwardedProto: 'http' | 'https' | undefined;
  /** The connection itself is TLS (the server was given a certificate). */
  readonly encrypted: boolean;
  readonly authorization: string | string[] | undefined;
  /** Cookies, parsed lazily: most handshakes carry none that matter. */
  cookie(name: string): string | undefined;
}

const tchar = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function parseProtocols(header: string | undefined): readonly string[] {
  // A present but blank header is malformed (RFC 6455 §4.1): it fails the token check below.
  if (header === undefined) return noProtocols;
  const list = header.split(',').map((p) => p.trim());
  for (const p of list) {
    if (!tchar.test(p))
      throw new WsgateError('invalid_request', 'Malformed Sec-WebSocket-Protocol');
  }
  if (new Set(list).size !== list.length) {
    throw new WsgateError('invalid_request', 'Repeated subprotocol');
  }
  return list;
}

/** Parses a `Cookie` header; the first occurrence of a name wins. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!header) return cookies;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    // The first occurrence wins, as in browsers' most-specific-path-first order.
    if (!cookies.has(name)) {
      try {
        cookies.set(name, decodeURIComponent(value));
      } catch {
        cookies.set(name, value);
      }
    }
  }
  return cookies;
}

/** No subprotocols offered: shared, never changed. */
const noProtocols: readonly string[] = Object.freeze([]);

/**
 * An upgrade request as the gate reads it: the headers are read once, and the query and the
 * cookies only when asked for (most handshakes carry neither). A class, so that its methods are
 * shared rather than made for each handshake; it keeps the few header values it needs, never the
 * request itself (an accepted socket may hold on to this object).
 */
class ParsedHandshake implements HandshakeRequest {
  readonly path: string;
  readonly protocols: readonly string[];
  readonly offeredV1: boolean;
  readonly origin: string | undefined;
  readonly host: string | undefined;
  readonly ip: string;
  readonly forwardedProto: 'http' | 'https' | undefined;
  readonly encrypted: boolean;
  readonly authorization: string | string[] | undefined;
  readonly #search: string;
  readonly #cookieHeader: string | undefined;
  #query: URLSearchParams | undefined;
  #cookies: Map<string, string> | undefined;

  constructor(req: IncomingMessage, trusted: TrustedProxy) {
    const target = req.url ?? '/';
    if (target.length > maxUrlLength)
      throw new WsgateError('invalid_request', 'Request target too long');
    const q = target.indexOf('?');
    this.path = q === -1 ? target : target.slice(0, q);
    this.#search = q === -1 ? '' : target.slice(q + 1);
    const { headers } = req;
    this.protocols = parseProtocols(headers['sec-websocket-protocol']);
    this.offeredV1 = this.protocols.length > 0 && this.protocols.includes(v1Protocol);
    this.origin = headers.origin;
    this.host = headers.host;
    const peer = req.socket.remoteAddress ?? '';
    this.ip = clientAddress(peer, headers['x-forwarded-for'], trusted);
    this.forwardedProto = forwardedProto(peer, headers['x-forwarded-proto'], trusted);
    this.encrypted = 'encrypted' in req.socket && req.socket.encrypted === true;
    this.authorization = authorizationOf(req);
    this.#cookieHeader = headers.cookie;
  }

  get query(): URLSearchParams {
    this.#query ??= new URLSearchParams(this.#search);
    return this.#query;
  }

  get hasQuery(): boolean {
    return this.#search !== '';
  }

  cookie(name: string): string | undefined {
    this.#cookies ??= parseCookies(this.#cookieHeader);
    return this.#cookies.get(name);
  }
}

/** Nobody is a trusted proxy. */
const trustNobody: TrustedProxy = () => false;

/**
 * Reads an upgrade request; `X-Forwarded-For` and `-Proto` are believed only from `trusted`
 * peers. Throws `invalid_request` for a malformed target or subprotocol list.
 */
export function parseHandshake(
  req: IncomingMessage,
  trusted: TrustedProxy = trustNobody,
): HandshakeRequest {
  return new ParsedHandshake(req, trusted);
}
