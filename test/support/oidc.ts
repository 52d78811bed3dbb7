import { createHash, randomBytes } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { type Configuration } from 'oidc-provider';

/**
 * A real OpenID Provider for the tests: oidc-provider (a certified OpenID Connect implementation)
 * in-process on 127.0.0.1:0. It issues JWT access tokens for the resource `urn:wsgate` (audience
 * `wsgate`, RFC 8707 resource indicators), by the authorization code flow with refresh tokens and
 * by client credentials, puts the session's `sid` in access tokens, and sends back-channel
 * logouts. Its keys can be rotated while it runs.
 */
export interface TestProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** The provider instance serving now (replaced by {@link rotateKeys}). */
  readonly provider: Provider;
  /** The private signing keys published now, newest first. */
  readonly keys: readonly JWK[];
  /** Client credentials grant: a token for the client itself (`sub` is the client id). */
  clientCredentials(scope?: string): Promise<ProviderTokens>;
  /** The authorization code flow as a browser runs it, for `login`, with `offline_access`. */
  authorizationCode(
    login: string,
    scope?: string,
  ): Promise<ProviderTokens & { cookies: CookieJar }>;
  refresh(refreshToken: string): Promise<ProviderTokens>;
  /**
   * Publishes a new signing key (it signs from now on) beside the old ones, or, with `withdraw`,
   * only the newest: a provider restarted with new keys, sessions kept.
   */
  rotateKeys(options?: { withdraw?: boolean }): Promise<void>;
  /** RP-initiated logout as a browser does it; the provider then sends back-channel logouts. */
  endSession(cookies: CookieJar, idToken: string): Promise<void>;
  close(): Promise<void>;
}

export interface ProviderTokens {
  readonly access_token: string;
  readonly refresh_token?: string;
  readonly id_token?: string;
  readonly scope?: string;
  readonly expires_in: number;
}

export type CookieJar = Map<string, string>;

export const resource = 'urn:wsgate';

async function signingKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

function configuration(
  keys: readonly JWK[],
  client: { id: string; secret: string; redirect: string; backchannel: string | undefined },
  accessTokenTtl: number,
): Configuration {
  return {
    clients: [
      {
        client_id: client.id,
        client_secret: client.secret,
        redirect_uris: [client.redirect],
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
        scope: 'openid offline_access chat:read chat:write',
        ...(client.backchannel === undefined
          ? {}
          : {
              backchannel_logout_uri: client.backchannel,
              backchannel_logout_session_required: true,
            }),
        post_logout_redirect_uris: [client.redirect],
      },
    ],
    jwks: { keys: keys },
    cookies: { keys: ['wsgate-test-cookie-key'] },
    scopes: ['openid', 'offline_access', 'chat:read', 'chat:write'],
    claims: { openid: ['sub'], profile: ['preferred_username'] },
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, preferred_username: id }),
    }),
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'chat:read chat:write',
          audience: 'wsgate',
          accessTokenFormat: 'jwt',
          accessTokenTTL: accessTokenTtl,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    // The provider's own sid for this login, so a back-channel logout can name the session.
    extraTokenClaims: (_ctx, token) => {
      const sid = (token as unknown as { sid?: string }).sid;
      return sid === undefined ? undefined : { sid };
    },
    // Loopback only in tests: the provider refuses special-use addresses by default (SSRF).
    fetch: (url, options) => {
      const rest: RequestInit & { dispatcher?: unknown } = { ...options };
      delete rest.dispatcher;
      return globalThis.fetch(url, rest);
    },
  };
}

function storeCookies(jar: CookieJar, response: Response): void {
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const index = pair!.indexOf('=');
    const name = pair!.slice(0, index);
    const value = pair!.slice(index + 1);
    if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(name);
    else jar.set(name, value);
  }
}

function cookieHeader(jar: CookieJar): string {
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}

export async function startTestProvider(
  options: { backchannelLogoutUri?: string; accessTokenTtl?: number } = {},
): Promise<TestProvider> {
  const holder: { handler?: RequestListener } = {};
  const server: Server = createServer((req, res) => holder.handler?.(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = {
    id: 'chat-app',
    secret: randomBytes(24).toString('base64url'),
    redirect: `${issuer}/cb`,
    backchannel: options.backchannelLogoutUri,
  };
  let keys: JWK[] = [await signingKey()];
  let provider!: Provider;
  const serve = () => {
    provider = new Provider(issuer, configuration(keys, client, options.accessTokenTtl ?? 300));
    const callback = provider.callback();
    holder.handler = (req, res) => void callback(req, res);
  };
  serve();
  const basic = `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`;

  async function token(form: Record<string, string>): Promise<ProviderTokens> {
    const response = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    const body = (await response.json()) as ProviderTokens & { error?: string };
    if (!response.ok) throw new Error(`token endpoint: ${response.status} ${JSON.stringify(body)}`);
    return body;
  }

  /** Follows redirects by hand, keeping cookies, until one leaves the provider. */
  async function browse(jar: CookieJar, url: string, init: RequestInit = {}): Promise<URL> {
    let next = new URL(url);
    let request: RequestInit = init;
    for (let hops = 0; hops < 20; hops++) {
      if (!next.href.startsWith(issuer) || next.pathname === '/cb') return next;
      const response = await fetch(next, {
        ...request,
        redirect: 'manual',
        headers: { ...(request.headers as Record<string, string>), cookie: cookieHeader(jar) },
      });
      storeCookies(jar, response);
      const location = response.headers.get('location');
      if (location === null) {
        const body = await response.text();
        // A page with a form the browser would submit: the dev login, the consent, the logout.
        const uid = /action="[^"]*\/interaction\/([^"/]+)"/.exec(body)?.[1];
        if (uid !== undefined) {
          const prompt = body.includes('name="login"') ? 'login' : 'consent';
          const fields: Record<string, string> =
            prompt === 'login'
              ? { prompt, login: jar.get('__login') ?? 'alice', password: 'x' }
              : { prompt };
          next = new URL(`/interaction/${uid}`, issuer);
          request = {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams(fields).toString(),
          };
          continue;
        }
        const xsrf = /name="xsrf" value="([^"]+)"/.exec(body)?.[1];
        if (xsrf !== undefined && body.includes('/session/end/confirm')) {
          next = new URL('/session/end/confirm', issuer);
          request = {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ xsrf, logout: 'yes' }).toString(),
          };
          continue;
        }
        return next;
      }
      next = new URL(location, next);
      request = {};
    }
    throw new Error('too many redirects at the provider');
  }

  return {
    issuer,
    clientId: client.id,
    clientSecret: client.secret,
    get provider() {
      return provider;
    },
    get keys() {
      return keys;
    },
    clientCredentials: (scope = 'chat:read chat:write') =>
      token({ grant_type: 'client_credentials', scope, resource }),
    async authorizationCode(login, scope = 'openid offline_access chat:read chat:write') {
      const jar: CookieJar = new Map([['__login', login]]);
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const auth = new URL('/auth', issuer);
      auth.search = new URLSearchParams({
        client_id: client.id,
        response_type: 'code',
        redirect_uri: client.redirect,
        scope,
        prompt: 'consent',
        resource,
        state: randomBytes(8).toString('hex'),
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }).toString();
      const landed = await browse(jar, auth.href);
      const code = landed.searchParams.get('code');
      if (code === null) throw new Error(`no code: ${landed.href}`);
      const tokens = await token({
        grant_type: 'authorization_code',
        code,
        redirect_uri: client.redirect,
        code_verifier: verifier,
        resource,
      });
      jar.delete('__login');
      return { ...tokens, cookies: jar };
    },
    refresh: (refreshToken) =>
      token({ grant_type: 'refresh_token', refresh_token: refreshToken, resource }),
    async rotateKeys(rotation = {}) {
      const fresh = await signingKey();
      keys = rotation.withdraw ? [fresh] : [fresh, ...keys];
      serve();
    },
    async endSession(cookies, idToken) {
      const end = new URL('/session/end', issuer);
      end.search = new URLSearchParams({ id_token_hint: idToken, client_id: client.id }).toString();
      await browse(cookies, end.href);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
