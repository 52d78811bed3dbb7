import { readFileSync } from 'node:fs';
import { proxyRoute, ProxyRouteError, type ProxyRoute } from './route.js';

/** The proxy options as they arrive from flags or the environment. */
export interface RawProxyOptions {
  proxy?: string[] | undefined;
  'proxy-scope'?: string[] | undefined;
  'proxy-audience'?: string[] | undefined;
  'proxy-ca'?: string[] | undefined;
}

export interface ProxyConfig {
  /** Paths served by upstream WebSocket servers. */
  readonly proxies: readonly ProxyRoute[];
  /** Extra PEM CA certificates trusted for `wss://` upstreams. */
  readonly proxyCa: readonly string[];
}

/** How the environment variables separate their entries (scopes hold spaces, so `;` there). */
export const proxyListSeparators = {
  proxy: /\s*,\s*/,
  'proxy-scope': /\s*;\s*/,
  'proxy-audience': /\s*,\s*/,
  'proxy-ca': /\s*,\s*/,
} as const;

/** Splits `<path>=<value>` at the first `=`; paths never need one. */
function splitSpec(flag: string, spec: string): [string, string] {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) {
    throw new ProxyRouteError(`--${flag} "${spec}" must be <path>=<value>`);
  }
  return [spec.slice(0, eq).trim(), spec.slice(eq + 1).trim()];
}

/**
 * Reads `--proxy <path>=<url>` (repeatable), `--proxy-scope <path>=<scopes>`, `--proxy-audience
 * [<path>=]<aud>` and `--proxy-ca <pem file>`. Throws {@link ProxyRouteError} naming the flag.
 * `credentialAudiences` are the audiences wsgate accepts credentials for: an identity token
 * must never carry one of them.
 */
export function parseProxyOptions(
  raw: RawProxyOptions,
  credentialAudiences: readonly string[],
): ProxyConfig {
  const scopes = new Map<string, string[]>();
  for (const spec of raw['proxy-scope'] ?? []) {
    const [path, list] = splitSpec('proxy-scope', spec);
    scopes.set(path, list.split(/[\s,]+/).filter(Boolean));
  }
  const audiences = new Map<string, string>();
  let defaultAudience: string | undefined;
  for (const spec of raw['proxy-audience'] ?? []) {
    if (spec.startsWith('/')) {
      const [path, audience] = splitSpec('proxy-audience', spec);
      audiences.set(path, audience);
    } else if (spec.trim() === '') {
      throw new ProxyRouteError('--proxy-audience must not be empty');
    } else {
      defaultAudience = spec.trim();
    }
  }
  const proxies: ProxyRoute[] = [];
  for (const spec of raw.proxy ?? []) {
    const [path, upstream] = splitSpec('proxy', spec);
    if (proxies.some((r) => r.path === path)) {
      throw new ProxyRouteError(`--proxy ${path} is given twice`);
    }
    const audience = audiences.get(path) ?? defaultAudience;
    let route: ProxyRoute;
    try {
      route = proxyRoute(path, upstream, {
        scopes: scopes.get(path) ?? [],
        ...(audience === undefined ? {} : { audience }),
      });
    } catch (err) {
      if (err instanceof ProxyRouteError) throw new ProxyRouteError(`--proxy: ${err.message}`);
      throw err;
    }
    if (credentialAudiences.includes(route.audience)) {
      throw new ProxyRouteError(
        `--proxy-audience for ${path} is "${route.audience}", an audience wsgate accepts credentials for; identity tokens need their own`,
      );
    }
    proxies.push(route);
  }
  for (const [flag, paths] of [
    ['proxy-scope', scopes.keys()],
    ['proxy-audience', audiences.keys()],
  ] as const) {
    for (const path of paths) {
      if (!proxies.some((r) => r.path === path)) {
        throw new ProxyRouteError(`--${flag} names ${path}, which no --proxy serves`);
      }
    }
  }
  const proxyCa = (raw['proxy-ca'] ?? []).map((file) => {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch {
      throw new ProxyRouteError(`--proxy-ca ${file} cannot be read`);
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new ProxyRouteError(`--proxy-ca ${file} holds no PEM certificate`);
    }
    return pem;
  });
  return { proxies, proxyCa };
}
