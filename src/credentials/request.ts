import type { IncomingMessage } from 'node:http';
import { WsgateError } from '../errors.js';
import { authorizationOf } from './authorization-header.js';
import { v1Protocol } from '../protocol/subprotocols.js';

// The wire names are defined once, in the browser-safe protocol module the client also uses.
export { v1Protocol, bearerProtocolPrefix } from '../protocol/subprotocols.js';

/** Longest request target accepted on a handshake (the query may carry a ticket or token). */
export const maxUrlLength = 4096;

/** What the gate reads from an upgrade request, parsed once. */
export interface HandshakeRequest {
  readonly path: string;
  readonly query: URLSearchParams;
  /** Subprotocols the client offered, in order. */
  readonly protocols: readonly string[];
  /** The client offered `wsgate.v1`: failures are reported as close codes after the upgrade. */
  readonly offeredV1: boolean;
  readonly origin: string | undefined;
  readonly host: string | undefined;
  readonly ip: string;
  readonly authorization: string | string[] | undefined;
  /** Cookies, parsed lazily: most handshakes carry none that matter. */
  cookie(name: string): string | undefined;
}

const tchar = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function parseProtocols(header: string | undefined): string[] {
  // A present but blank header is malformed (RFC 6455 §4.1): it fails the token check below.
  if (header === undefined) return [];
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

/** Reads an upgrade request. Throws `invalid_request` for a malformed target or subprotocol list. */
export function parseHandshake(req: IncomingMessage): HandshakeRequest {
  const target = req.url ?? '/';
  if (target.length > maxUrlLength)
    throw new WsgateError('invalid_request', 'Request target too long');
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : target.slice(q + 1));
  const protocols = parseProtocols(req.headers['sec-websocket-protocol']);
  // Only the header is kept, not the request: an accepted socket may hold on to this object.
  const cookieHeader = req.headers.cookie;
  let cookies: Map<string, string> | undefined;
  return {
    path,
    query,
    protocols,
    offeredV1: protocols.includes(v1Protocol),
    origin: req.headers.origin,
    host: req.headers.host,
    ip: req.socket.remoteAddress ?? '',
    authorization: authorizationOf(req),
    cookie(name) {
      cookies ??= parseCookies(cookieHeader);
      return cookies.get(name);
    },
  };
}
