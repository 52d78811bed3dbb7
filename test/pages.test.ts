import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { startTestServer, type TestServer } from './support/server.js';
import { connect, wsUrl } from './support/ws.js';

/** Cookies from Set-Cookie headers, with their attributes. */
function cookiesOf(res: Response): Map<string, { value: string; attributes: string[] }> {
  const jar = new Map<string, { value: string; attributes: string[] }>();
  for (const header of res.headers.getSetCookie()) {
    const [pair, ...attributes] = header.split(';').map((p) => p.trim());
    const eq = (pair ?? '').indexOf('=');
    jar.set((pair ?? '').slice(0, eq), { value: (pair ?? '').slice(eq + 1), attributes });
  }
  return jar;
}

function cookieHeader(jar: Map<string, { value: string }>): string {
  return [...jar].map(([k, v]) => `${k}=${v.value}`).join('; ');
}

describe('cookie login and pages', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  async function signIn(username = 'johndoe', password = 'secret', next = '/') {
    return fetch(`${server.url}/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url },
      body: new URLSearchParams({ username, password, next }).toString(),
      redirect: 'manual',
    });
  }

  it('redirects / to the sign-in form without a session', async () => {
    const res = await fetch(`${server.url}/`, { redirect: 'manual' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/login?next=%2F');
  });

  it('serves the sign-in form under a strict CSP, with no inline script', async () => {
    const res = await fetch(`${server.url}/login?next=%2F`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    const html = await res.text();
    assert.match(html, /<form method="post" action="\/session"/);
    assert.match(html, /<label for="username">/);
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/);
    assert.doesNotMatch(html, /\son[a-z]+=/i);
  });

  it('signs in: HttpOnly SameSite=Strict token cookies, a readable CSRF cookie equal to the claim, 303 to next', async () => {
    const res = await signIn('johndoe', 'secret', '/demo/cookie');
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/demo/cookie');
    const jar = cookiesOf(res);
    for (const name of ['access_token_cookie', 'refresh_token_cookie']) {
      const c = jar.get(name);
      assert.ok(c, name);
      assert.ok(c.attributes.includes('HttpOnly'), `${name} HttpOnly`);
      assert.ok(c.attributes.includes('SameSite=Strict'), `${name} SameSite`);
      assert.ok(!c.attributes.includes('Secure'), 'not Secure without --secure-cookies');
    }
    const csrf = jar.get('csrf_access_token');
    assert.ok(csrf && !csrf.attributes.includes('HttpOnly'));
    assert.equal(decodeJwt(jar.get('access_token_cookie')?.value ?? '').csrf, csrf.value);
    const page = await fetch(`${server.url}/`, { headers: { cookie: cookieHeader(jar) } });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script type="module" src="\/assets\/chat.js"><\/script>/);
  });

  it('only follows same-origin paths after sign-in', async () => {
    for (const next of [
      '//evil.example',
      'https://evil.example/',
      '/\\evil.example',
      'javascript:alert(1)',
    ]) {
      const res = await signIn('johndoe', 'secret', next);
      assert.equal(res.status, 303);
      assert.equal(res.headers.get('location'), '/', next);
    }
  });

  it('answers bad credentials with 401 and the form, without saying which part was wrong', async () => {
    const wrong = await signIn('janedoe', 'nope');
    const unknown = await signIn('nobody', 'nope');
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    // Each form carries its own pre-session CSRF value; apart from it the answers are the same.
    const withoutCsrf = (html: string) => html.replace(/name="csrf" value="[^"]*"/, '');
    const a = withoutCsrf(await wrong.text());
    assert.equal(a, withoutCsrf(await unknown.text()));
    assert.match(a, /Incorrect username or password\./);
    assert.ok(!cookiesOf(wrong).has('access_token_cookie'));
  });

  it('rotates the cookies on /session/refresh only with the X-CSRF-Token header', async () => {
    const jar = cookiesOf(await signIn());
    const without = await fetch(`${server.url}/session/refresh`, {
      method: 'POST',
      headers: { cookie: cookieHeader(jar) },
    });
    assert.equal(without.status, 403);
    const res = await fetch(`${server.url}/session/refresh`, {
      method: 'POST',
      headers: {
        cookie: cookieHeader(jar),
        'x-csrf-token': jar.get('csrf_access_token')?.value ?? '',
      },
    });
    assert.equal(res.status, 200);
    const next = cookiesOf(res);
    assert.notEqual(
      next.get('refresh_token_cookie')?.value,
      jar.get('refresh_token_cookie')?.value,
    );
    assert.equal(decodeJwt(next.get('access_token_cookie')?.value ?? '').fresh, false);
  });

  it('renews the session after the access cookie has expired: the CSRF cookie outlives it', async () => {
    const jar = cookiesOf(await signIn());
    assert.ok(jar.get('access_token_cookie')?.attributes.includes('Max-Age=900'));
    assert.ok(jar.get('csrf_access_token')?.attributes.includes('Max-Age=1209600'));
    // What a browser still holds once the access cookie's Max-Age has passed.
    jar.delete('access_token_cookie');
    server.clock.advance(16 * 60_000);
    try {
      const res = await fetch(`${server.url}/session/refresh`, {
        method: 'POST',
        headers: {
          cookie: cookieHeader(jar),
          'x-csrf-token': jar.get('csrf_access_token')?.value ?? '',
        },
      });
      assert.equal(res.status, 200);
      assert.ok(cookiesOf(res).get('access_token_cookie'));
    } finally {
      server.clock.advance(-16 * 60_000);
    }
  });

  it('signs out: revokes the session, clears the cookies, 303 to /login; the socket opened with the cookie is refused after', async () => {
    const jar = cookiesOf(await signIn());
    const csrf = jar.get('csrf_access_token')?.value ?? '';
    const access = jar.get('access_token_cookie')?.value ?? '';
    const without = await fetch(`${server.url}/session/logout`, {
      method: 'POST',
      headers: { cookie: cookieHeader(jar) },
      redirect: 'manual',
    });
    assert.equal(without.status, 403);
    const res = await fetch(`${server.url}/session/logout`, {
      method: 'POST',
      headers: { cookie: cookieHeader(jar), 'x-csrf-token': csrf },
      redirect: 'manual',
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/login');
    for (const [, c] of cookiesOf(res)) assert.ok(c.attributes.includes('Max-Age=0'));
    const session = await server.runtime.storage.getSession(String(decodeJwt(access).sid));
    assert.equal(session?.revokedReason, 'logout');
    const ws = await connect(`${wsUrl(server, '/ws')}?csrf_token=${encodeURIComponent(csrf)}`, {
      headers: { cookie: `access_token_cookie=${access}`, origin: server.url },
    });
    assert.equal(ws.kind, 'http');
    if (ws.kind === 'http') assert.equal(ws.status, 401);
  });

  it('renews an expired access cookie from the refresh cookie when the page loads', async () => {
    const jar = cookiesOf(await signIn());
    server.clock.advance(16 * 60_000);
    try {
      const res = await fetch(`${server.url}/`, { headers: { cookie: cookieHeader(jar) } });
      assert.equal(res.status, 200);
      assert.ok(cookiesOf(res).get('access_token_cookie'));
    } finally {
      server.clock.advance(-16 * 60_000);
    }
  });

  it('serves /get-cookie in demo mode with cookies for user test, and the cookie demo connects with them', async () => {
    const res = await fetch(`${server.url}/get-cookie`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { msg: 'Successfully login' });
    const jar = cookiesOf(res);
    assert.equal(decodeJwt(jar.get('access_token_cookie')?.value ?? '').sub, 'test');
    const ws = await connect(
      `${wsUrl(server, '/ws')}?csrf_token=${encodeURIComponent(jar.get('csrf_access_token')?.value ?? '')}`,
      {
        headers: { cookie: cookieHeader(jar), origin: server.url },
        messages: 1,
      },
    );
    assert.equal(ws.kind, 'open');
    if (ws.kind === 'open') {
      assert.equal(ws.messages[0], 'Successfully Login!');
      ws.socket.terminate();
    }
  });

  it('has no /get-cookie outside demo mode', async () => {
    const strict = await startTestServer({ demo: false });
    try {
      assert.equal((await fetch(`${strict.url}/get-cookie`)).status, 404);
    } finally {
      await strict.stop();
    }
  });

  it('serves the seed demo pages and their scripts, and nothing else from /assets', async () => {
    for (const [page, script] of [
      ['/demo/token', '/assets/demo-token.js'],
      ['/demo/cookie', '/assets/demo-cookie.js'],
    ] as const) {
      const res = await fetch(`${server.url}${page}`);
      assert.equal(res.status, 200);
      assert.doesNotMatch(res.headers.get('content-security-policy') ?? '', /unsafe-inline/);
      assert.match(await res.text(), new RegExp(`src="${script}"`));
      const js = await fetch(`${server.url}${script}`);
      assert.equal(js.status, 200);
      assert.match(js.headers.get('content-type') ?? '', /javascript/);
    }
    assert.equal((await fetch(`${server.url}/assets/..%2Fpackage.json`)).status, 404);
    assert.equal((await fetch(`${server.url}/assets/nope.js`)).status, 404);
  });
});
