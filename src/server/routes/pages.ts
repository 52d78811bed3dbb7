import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { WsgateError, httpAnswer, isWsgateError } from '../../errors.js';
import { loginRefused, sendError } from '../errors.js';
import { accessCookie, refreshCookie } from '../../credentials/cookie.js';
import { safeEqual } from '../../credentials/compare.js';
import { forwardedProto, trustedProxies } from '../../client-address.js';
import { isOriginAllowed, issuerScheme } from '../../handshake/origin.js';
import { LoginError, type TokenPair } from '../../sessions/session-service.js';
import type { TokenClaims } from '../../tokens/claims.js';
import type { Runtime } from '../../runtime.js';
import { escapeHtml, htmlPage } from '../html.js';
import { checkCsrfHeader, clearTokenCookies, requestCookie, setTokenCookies } from '../cookies.js';

const webDir = fileURLToPath(new URL('../../../web/', import.meta.url));

const assetTypes: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * What the sign-in page says for a refused login: a person reads it, not a program, so no API
 * code appears. Unknown user, wrong password and disabled account read the same (the API answers
 * them alike too); a limit says when to try again.
 */
export function signInText(err: LoginError): string {
  switch (err.failure) {
    case 'invalid_grant':
    case 'invalid_scope':
      return 'Incorrect username or password.';
    case 'rate_limited':
      return `Too many failed sign-ins. Try again in ${inSeconds(err.retryAfter ?? 60)}.`;
    case 'overloaded':
      return 'The server is busy signing other people in. Try again in a few seconds.';
  }
}

/** `1 second`, `42 seconds`, `1 minute`, `3 minutes` (rounded up). */
function inSeconds(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return s === 1 ? '1 second' : `${s} seconds`;
  const m = Math.ceil(s / 60);
  return m === 1 ? '1 minute' : `${m} minutes`;
}

/**
 * Only a same-origin path may follow a login; anything else (`//evil`, `https://…`) becomes `/`.
 * The result is ready for a `Location` header: what is not printable ASCII is percent-encoded
 * (`/日本` → `/%E6%97%A5%E6%9C%AC`), and a path that cannot be encoded becomes `/`.
 */
export function safeNext(next: unknown): string {
  if (
    typeof next !== 'string' ||
    !next.startsWith('/') ||
    next.startsWith('//') ||
    next.startsWith('/\\')
  )
    return '/';
  // Control characters in a Location header would split the response.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(next) || next.length > 2048) return '/';
  try {
    // A lone surrogate cannot be encoded (URIError): no such path exists.
    return next.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
  } catch {
    return '/';
  }
}

/** The pre-session CSRF cookie of the sign-in form, for browsers that send neither header. */
const loginCsrfCookie = 'login_csrf';

function loginForm(
  next: string,
  options: { message?: string; csrf: string; demo: boolean },
): string {
  const { message, csrf, demo } = options;
  return htmlPage(
    'Sign in · wsgate',
    `<main class="narrow">
<h1>Sign in</h1>
<form method="post" action="/session" class="card stack">
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ''}
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required autofocus maxlength="64">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<button type="submit">Sign in</button>
</form>
${demo ? '<p class="muted">Demo users: johndoe / secret, janedoe / secret2, test / test (demo mode only).</p>\n' : ''}</main>`,
  );
}

function chatPage(): string {
  return htmlPage(
    'Chat · wsgate',
    `<div id="app" class="chat" data-state="connecting">
<header class="topbar">
<h1>wsgate chat</h1>
<span id="status" class="status" role="status" aria-live="polite">Connecting…</span>
<span class="me">Signed in as <strong id="me"></strong></span>
<button id="logout" type="button" class="secondary">Sign out</button>
</header>
<nav class="rooms" aria-label="Rooms">
<h2>Rooms</h2>
<ul id="rooms"></ul>
<form id="join-form" class="inline">
<label for="join-room" class="sr-only">Join or create a room</label>
<input id="join-room" placeholder="new-room" pattern="[a-z0-9][a-z0-9_\\-]{0,63}" maxlength="64">
<button type="submit">Join</button>
</form>
</nav>
<main class="messages-pane">
<h2 id="room-title">#general</h2>
<ol id="messages" class="messages" aria-live="polite"></ol>
<form id="composer" class="composer">
<label for="text" class="sr-only">Message</label>
<textarea id="text" rows="2" maxlength="4000" placeholder="Write a message… (Enter to send, Shift+Enter for a new line)" required></textarea>
<button type="submit">Send</button>
</form>
</main>
<aside class="members" aria-label="Members">
<h2>Members</h2>
<ul id="members"></ul>
</aside>
</div>`,
    { scripts: ['/assets/chat.js'] },
  );
}

function demoTokenPage(): string {
  return htmlPage(
    'WebSocket Authorize · token',
    `<main class="narrow">
<h1>WebSocket Authorize</h1>
<form id="connect" class="card stack">
<label for="token">Token:</label>
<textarea id="token" rows="4" cols="50"></textarea>
<button type="submit">Send</button>
</form>
<ul id="messages" class="plain"></ul>
<p class="muted">Get a token from <code>POST /login</code> or <code>POST /token</code>; it is sent as <code>?token=</code>, the fastapi-jwt-auth way (demo mode or <code>--allow-query-tokens</code>).</p>
</main>`,
    { scripts: ['/assets/demo-token.js'] },
  );
}

function demoCookiePage(): string {
  return htmlPage(
    'WebSocket Authorize · cookie',
    `<main class="narrow">
<h1>WebSocket Authorize</h1>
<button id="send" type="button">Send</button>
<ul id="messages" class="plain"></ul>
<p class="muted">Get the cookies from <a href="/get-cookie">/get-cookie</a> (demo mode) or by <a href="/login?next=%2Fdemo%2Fcookie">signing in</a>; the page sends the <code>csrf_access_token</code> value as <code>?csrf_token=</code>.</p>
</main>`,
    { scripts: ['/assets/demo-cookie.js'] },
  );
}

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(body);
}

/** Reads the static files once at start: only these names are ever served from disk. */
function loadAssets(): Map<string, { type: string; body: Buffer }> {
  const assets = new Map<string, { type: string; body: Buffer }>();
  for (const dir of ['static', 'dist']) {
    let names: string[];
    try {
      names = readdirSync(`${webDir}${dir}`);
    } catch {
      continue;
    }
    for (const name of names) {
      const type = assetTypes[name.slice(name.lastIndexOf('.'))];
      if (type) assets.set(name, { type, body: readFileSync(`${webDir}${dir}/${name}`) });
    }
  }
  return assets;
}

/** The pages: cookie login with redirect, the chat page, the seed demo pages, and their assets. */
export function pageRoutes(app: FastifyInstance, runtime: Runtime): void {
  const { sessions, config } = runtime;
  const secure = config.secureCookies;
  const assets = loadAssets();
  const trusted = trustedProxies(config.trustProxy);
  const ownScheme = issuerScheme(sessions.issuer);

  /**
   * The sign-in form, with a fresh pre-session CSRF value in a hidden field and in an HttpOnly
   * cookie (for browsers that send neither `Origin` nor `Sec-Fetch-Site`).
   */
  function formPage(reply: FastifyReply, status: number, next: string, message?: string) {
    const csrf = randomBytes(24).toString('base64url');
    reply.header(
      'set-cookie',
      `${loginCsrfCookie}=${csrf}; Path=/session; Max-Age=3600; SameSite=Strict; HttpOnly${secure ? '; Secure' : ''}`,
    );
    return html(
      reply,
      status,
      loginForm(next, { csrf, demo: config.demo, ...(message === undefined ? {} : { message }) }),
    );
  }

  /**
   * Login CSRF: a cross-site form must not sign a browser in to the attacker's account. A browser
   * that sends `Sec-Fetch-Site` (page script cannot set it) must say same-origin; else an
   * `Origin` must be this site's (scheme, host and port) or an `--origin`; a client that sends
   * neither, or `Origin: null` (what a form posted under `Referrer-Policy: no-referrer` carries),
   * must echo the form's pre-session value.
   */
  function sameSiteSignIn(request: FastifyRequest, formCsrf: string | undefined): boolean {
    const site = request.headers['sec-fetch-site'];
    if (site !== undefined) return site === 'same-origin';
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      const peer = request.socket.remoteAddress ?? '';
      const scheme =
        forwardedProto(peer, request.headers['x-forwarded-proto'], trusted) ?? ownScheme;
      return isOriginAllowed(origin, {
        host: request.headers.host,
        scheme,
        allowed: config.origins,
      });
    }
    return safeEqual(formCsrf, requestCookie(request, loginCsrfCookie));
  }

  /** `X-CSRF-Token` must equal the `csrf` claim of the session's own signed token. */
  async function checkCsrf(request: FastifyRequest): Promise<void> {
    const token = requestCookie(request, accessCookie) ?? requestCookie(request, refreshCookie);
    const claims = token === undefined ? undefined : await sessions.claimsIgnoringExpiry(token);
    checkCsrfHeader(request, claims?.csrf);
  }

  app.get<{ Params: { name: string } }>(
    '/assets/:name',
    { schema: { hide: true } },
    async (request, reply) => {
      const asset = assets.get(request.params.name);
      if (!asset) return sendError(reply, new WsgateError('not_found'));
      return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
    },
  );

  // Browsers ask for it after any page, JSON ones included; pages themselves declare none.
  app.get('/favicon.ico', { schema: { hide: true } }, async (_request, reply) =>
    reply.code(204).header('cache-control', 'public, max-age=86400').send(),
  );

  app.get<{ Querystring: { next?: string } }>(
    '/login',
    {
      schema: {
        summary: 'The sign-in form',
        tags: ['pages'],
        querystring: { type: 'object', properties: { next: { type: 'string' } } },
      },
    },
    async (request, reply) => formPage(reply, 200, safeNext(request.query.next)),
  );

  app.post<{ Body: { username?: string; password?: string; next?: string; csrf?: string } }>(
    '/session',
    {
      schema: {
        summary: 'Sign in with a form; sets the token cookies and redirects to next',
        tags: ['pages'],
        consumes: ['application/x-www-form-urlencoded'],
        body: {
          type: 'object',
          properties: {
            username: { type: 'string', maxLength: 256 },
            password: { type: 'string', maxLength: 4096 },
            next: { type: 'string', maxLength: 4096 },
            csrf: { type: 'string', maxLength: 256 },
          },
        },
      },
    },
    async (request, reply) => {
      const next = safeNext(request.body.next);
      if (!sameSiteSignIn(request, request.body.csrf)) {
        request.log.warn({ ip: request.ip }, 'cross-site sign-in refused');
        return formPage(
          reply,
          403,
          next,
          'This sign-in did not come from this site. Reload the page and try again.',
        );
      }
      try {
        const pair = await sessions.login({
          username: request.body.username ?? '',
          password: request.body.password ?? '',
          ip: request.ip,
          cookies: true,
        });
        setTokenCookies(reply, pair, { secure });
        return reply.code(303).header('location', next).header('cache-control', 'no-store').send();
      } catch (err) {
        if (!(err instanceof LoginError)) throw err;
        const { status, headers } = httpAnswer(err);
        reply.headers(headers);
        return formPage(reply, loginRefused(err) ? 401 : status, next, signInText(err));
      }
    },
  );

  /** The access cookie's claims, refreshing the cookies from the refresh cookie when it expired. */
  async function cookieSession(
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<TokenClaims | undefined> {
    const access = requestCookie(request, accessCookie);
    if (access !== undefined) {
      try {
        return await sessions.verify(access, 'access');
      } catch (err) {
        if (!isWsgateError(err)) throw err;
      }
    }
    const refresh = requestCookie(request, refreshCookie);
    if (refresh === undefined) return undefined;
    let pair: TokenPair;
    try {
      pair = await sessions.refresh(refresh, { ip: request.ip, cookies: true });
    } catch (err) {
      if (isWsgateError(err)) return undefined;
      throw err;
    }
    setTokenCookies(reply, pair, { secure });
    return pair.access;
  }

  app.get(
    '/',
    {
      schema: {
        summary: 'The chat page; without a valid session, a redirect to the sign-in form',
        tags: ['pages'],
      },
    },
    async (request, reply) => {
      const claims = await cookieSession(request, reply);
      if (!claims)
        return reply
          .code(303)
          .header('location', '/login?next=%2F')
          .header('cache-control', 'no-store')
          .send();
      return html(reply, 200, chatPage());
    },
  );

  app.post(
    '/session/refresh',
    { schema: { summary: 'Rotate the token cookies (needs X-CSRF-Token)', tags: ['pages'] } },
    async (request, reply) => {
      await checkCsrf(request);
      const refresh = requestCookie(request, refreshCookie);
      if (refresh === undefined) throw new WsgateError('credential_missing');
      const pair = await sessions.refresh(refresh, { ip: request.ip, cookies: true });
      setTokenCookies(reply, pair, { secure });
      return reply.header('cache-control', 'no-store').send({ expires_in: pair.expiresIn });
    },
  );

  app.post(
    '/session/logout',
    {
      schema: {
        summary: 'Sign out: revoke the session and clear the cookies (needs X-CSRF-Token)',
        tags: ['pages'],
      },
    },
    async (request, reply) => {
      await checkCsrf(request);
      const token = requestCookie(request, accessCookie) ?? requestCookie(request, refreshCookie);
      if (token !== undefined) {
        // An expired token still names its session; its signature is checked before trusting it.
        const claims = await sessions.claimsIgnoringExpiry(token);
        if (claims)
          await sessions.revoke(claims.sid, 'logout', { username: claims.sub, ip: request.ip });
      }
      clearTokenCookies(reply, { secure });
      return reply
        .code(303)
        .header('location', '/login')
        .header('cache-control', 'no-store')
        .send();
    },
  );

  // The seed demo pages exist in demo mode only.
  if (config.demo) demoRoutes(app);

  app.get(
    '/me',
    { schema: { summary: 'The signed-in user of the cookie session', tags: ['pages'] } },
    async (request, reply) => {
      const claims = await cookieSession(request, reply);
      if (!claims) throw new WsgateError('credential_missing');
      reply.header('cache-control', 'no-store');
      return { user: claims.sub, scope: claims.scope, exp: claims.exp };
    },
  );
}

function demoRoutes(app: FastifyInstance): void {
  app.get(
    '/demo/token',
    { schema: { summary: 'Seed demo: connect with a pasted token', tags: ['pages'] } },
    async (_request, reply) => html(reply, 200, demoTokenPage()),
  );
  app.get(
    '/demo/cookie',
    {
      schema: { summary: 'Seed demo: connect with the cookie and its CSRF value', tags: ['pages'] },
    },
    async (_request, reply) => html(reply, 200, demoCookiePage()),
  );
}
