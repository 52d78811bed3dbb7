import { isIP } from 'node:net';
import { IssuerError } from './issuer-error.js';

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

/**
 * Parses a URL wsgate will fetch from or trust as an issuer: https, or http only on a loopback
 * host; no user info (a password in a URL ends up in logs) and no fragment. `what` names the URL
 * in the error, e.g. `--trust` or `jwks_uri`.
 */
export function checkIssuerUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new IssuerError('insecure_url', `${what} is not an absolute URL: ${value}`);
  }
  if (url.username !== '' || url.password !== '')
    throw new IssuerError('insecure_url', `${what} must not carry user info`);
  if (url.hash !== '') throw new IssuerError('insecure_url', `${what} must not have a fragment`);
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return url;
  throw new IssuerError(
    'insecure_url',
    `${what} must use https (http only on loopback): ${url.origin}${url.pathname}`,
  );
}

/** The host (and port, when not the scheme's default) that prefixes an external user's name. */
export function issuerHost(issuer: string): string {
  return new URL(issuer).host;
}
