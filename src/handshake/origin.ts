import { splitHost } from './host.js';

/** What a browser origin is compared with: the request's own site, and the allowed origins. */
export interface OriginContext {
  /** The request's `Host` header. */
  readonly host: string | undefined;
  /** The scheme browsers reached this server with (the issuer's, or a trusted proxy's). */
  readonly scheme: 'http' | 'https';
  /** Origins allowed besides the request's own site, as `URL.origin` writes them. */
  readonly allowed: readonly string[];
}

/**
 * Origin policy, fail closed: a request that carries `Origin` must come from its own site — the
 * same scheme, host and port — or from an allowed origin. Clients that send no `Origin`
 * (non-browsers) pass here; cookie credentials, which browsers attach on their own, additionally
 * require one.
 */
export function isOriginAllowed(origin: string | undefined, context: OriginContext): boolean {
  if (origin === undefined) return true;
  if (origin === 'null' || origin === '') return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (context.allowed.includes(url.origin)) return true;
  return context.host !== undefined && url.origin === siteOrigin(context.scheme, context.host);
}

/** The origin a page on this site has, as `URL.origin` writes it (default ports dropped). */
function siteOrigin(scheme: 'http' | 'https', host: string): string | undefined {
  if (splitHost(host) === undefined) return undefined;
  try {
    return new URL(`${scheme}://${host}`).origin;
  } catch {
    return undefined;
  }
}

/** The scheme of an issuer URL, which is the scheme browsers use to reach the deployment. */
export function issuerScheme(issuer: string): 'http' | 'https' {
  return issuer.startsWith('https:') ? 'https' : 'http';
}
