/**
 * Origin policy, fail closed: a handshake that carries `Origin` must come from the request's own
 * host or from an allowed origin. Clients that send no `Origin` (non-browsers) pass here; cookie
 * credentials, which browsers attach on their own, additionally require one.
 */
export function isOriginAllowed(
  origin: string | undefined,
  host: string | undefined,
  allowed: readonly string[],
): boolean {
  if (origin === undefined) return true;
  if (origin === 'null' || origin === '') return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (allowed.includes(url.origin)) return true;
  return host !== undefined && url.host === host.toLowerCase();
}
