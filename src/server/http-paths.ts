/**
 * Every HTTP route path the server serves (Fastify syntax: `:param` segments, a trailing `*`),
 * known before anything starts: the configuration refuses a `--proxy` path that overlaps one
 * (DESIGN §9, exit 2) without opening a database or a port. `buildApp` refuses to register a
 * route this list does not cover, so the list cannot fall behind the routes.
 */
export const httpRoutePaths: readonly string[] = [
  '/',
  '/login',
  '/logout',
  '/refresh',
  '/token',
  '/ws-ticket',
  '/me',
  '/session',
  '/session/refresh',
  '/session/logout',
  '/demo/token',
  '/demo/cookie',
  '/get-cookie',
  '/assets/:name',
  '/favicon.ico',
  '/healthz',
  '/readyz',
  '/metrics',
  '/.well-known/jwks.json',
  '/.well-known/oauth-authorization-server',
  '/backchannel-logout',
  '/admin/revoke',
  '/openapi.json',
  // The API explorer's page and its files.
  '/docs',
  '/docs/*',
];

/** Whether `url`, a route path as Fastify registers it, is in {@link httpRoutePaths} or under a `/*` entry of it. */
export function isKnownHttpRoute(url: string): boolean {
  return httpRoutePaths.some(
    (path) => path === url || (path.endsWith('/*') && url.startsWith(path.slice(0, -1))),
  );
}
