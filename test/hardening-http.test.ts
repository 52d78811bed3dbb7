import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import {
  passwordGrant,
  postForm,
  postJson,
  startTestServer,
  type TestServer,
  type TokenResponse,
} from './support/server.js';
import { safeNext } from '../src/server/routes/pages.js';

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

function signIn(
  server: TestServer,
  fields: Record<string, string>,
  headers: Record<string, string> = { origin: server.url },
) {
  return fetch(`${server.url}/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  });
}

async function auditRows(server: TestServer, event: string) {
  return (await server.runtime.storage.listAudit({ limit: 100_000 })).filter(
    (e) => e.event === event,
  );
}

describe('password spraying: failed logins per client address across usernames', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'login-failures-per-address': '3' });
  });
  after(() => server.stop());

  it('answers 429 with Retry-After once an address has failed 3 times with 3 usernames', async () => {
    for (const username of ['amy', 'bob', 'cat'])
      assert.equal(
        (await postForm(`${server.url}/token`, { username, password: 'x' })).status,
        400,
      );
    const blocked = await postForm(`${server.url}/token`, { username: 'dan', password: 'x' });
    assert.equal(blocked.status, 429);
    const retryAfter = Number(blocked.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    // A real user from that address waits too, on every login endpoint, until the window passes.
    const real = await postJson(`${server.url}/login`, { username: 'johndoe', password: 'secret' });
    assert.equal(real.status, 429);
    server.clock.advance(60_000);
    await passwordGrant(server);
  });

  it('is 30 a minute by default', async () => {
    const { loadConfig } = await import('../src/config.js');
    assert.equal(loadConfig({}).loginFailuresPerAddress, 30);
    assert.equal(
      loadConfig({}, { WSGATE_LOGIN_FAILURES_PER_ADDRESS: '7' }).loginFailuresPerAddress,
      7,
    );
  });
});

describe('password hashing bounded to a few slots and a short queue', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'hash-concurrency': '1', 'hash-queue': '1' });
  });
  after(() => server.stop());

  it('answers 503 with Retry-After to logins beyond one running and one waiting', async () => {
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        postForm(`${server.url}/token`, { username: `spray${i}`, password: 'x' }),
      ),
    );
    const statuses = answers.map((r) => r.status);
    assert.ok(statuses.includes(503), `statuses ${statuses.join(',')}`);
    assert.ok(statuses.includes(400), `statuses ${statuses.join(',')}`);
    const busy = answers.find((r) => r.status === 503)!;
    assert.equal(busy.headers.get('retry-after'), '1');
    assert.deepEqual(await busy.json(), {
      error: 'temporarily_unavailable',
      error_description: 'Too many logins at once; try again shortly',
    });
    // Refused at once, these cost no hash and count as no failure: the real user gets in after.
    await passwordGrant(server);
  });
});

describe('password hashing shared fairly between client addresses', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      'trust-proxy': ['127.0.0.0/8'],
      'hash-concurrency': '1',
      'hash-queue': '4',
    });
  });
  after(() => server.stop());

  it('gives one address at most 2 of the 5 places, so another client still gets in', async () => {
    // One address floods: it may hold 2 places; without the share its 8 logins filled all 5 and
    // every other client got 503 until they were through.
    const flood = Array.from({ length: 8 }, (_, i) =>
      postForm(
        `${server.url}/token`,
        { username: `spray${i}`, password: 'x' },
        { 'x-forwarded-for': '198.51.100.1' },
      ),
    );
    // Refusals are answered at once: the flood holds every place it can get by then.
    await Promise.race(flood.map(async (r) => ((await r).status === 503 ? undefined : never())));
    const honest = await postForm(`${server.url}/token`, {
      username: 'johndoe',
      password: 'secret',
    });
    assert.equal(honest.status, 200);
    // Only failures and refusals for the flood (how many of each depends on when hashes end).
    const statuses = new Set((await Promise.all(flood)).map((r) => r.status));
    assert.deepEqual([...statuses].sort(), [400, 503]);
  });
});

/** A promise that never settles (a race entry that must not win). */
function never(): Promise<never> {
  return new Promise(() => undefined);
}

describe('audit rows from failures are capped', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'audit-failure-rate': '2' });
  });
  after(() => server.stop());

  it('records at most 2 failure rows a second, and every success', async () => {
    for (let i = 0; i < 4; i++)
      await postForm(`${server.url}/token`, { username: `nobody${i}`, password: 'x' });
    assert.equal((await auditRows(server, 'login.failure')).length, 2);
    await passwordGrant(server);
    assert.equal((await auditRows(server, 'login.success')).length, 1);
    server.clock.advance(1000);
    await postForm(`${server.url}/token`, { username: 'nobody9', password: 'x' });
    assert.equal((await auditRows(server, 'login.failure')).length, 3);
  });

  it('truncates a long username from a failed login in the audit trail and the log', async () => {
    server.clock.advance(5000);
    const long = `${'u'.repeat(100)}-the-end`;
    await postForm(`${server.url}/token`, { username: long, password: 'x' });
    const rows = await auditRows(server, 'login.failure');
    const row = rows.find((e) => e.username?.startsWith('uuuu'));
    assert.equal(row?.username, `${'u'.repeat(64)}…`);
    assert.ok(!server.logs.text.includes('the-end'));
  });
});

describe('--trust-proxy: the client address and scheme behind a load balancer', () => {
  let trusting: TestServer;
  let plain: TestServer;
  before(async () => {
    trusting = await startTestServer({
      'trust-proxy': ['127.0.0.0/8'],
      'login-failures-per-address': '2',
    });
    plain = await startTestServer({ 'login-failures-per-address': '2' });
  });
  after(async () => {
    await trusting.stop();
    await plain.stop();
  });

  const fail = (server: TestServer, client: string) =>
    postForm(
      `${server.url}/token`,
      { username: 'nobody', password: 'x' },
      { 'x-forwarded-for': client },
    );

  it('limits and audits each forwarded client on its own when the peer is trusted', async () => {
    assert.equal((await fail(trusting, '203.0.113.1')).status, 400);
    assert.equal((await fail(trusting, '203.0.113.1')).status, 400);
    assert.equal((await fail(trusting, '203.0.113.1')).status, 429);
    assert.equal(
      (await fail(trusting, '203.0.113.2')).status,
      400,
      'another client is not blocked',
    );
    const ips = new Set((await auditRows(trusting, 'login.failure')).map((e) => e.ip));
    assert.deepEqual([...ips].sort(), ['203.0.113.1', '203.0.113.2']);
  });

  it('counts an IPv6 client by its /64, so rotating addresses inside it gains nothing', async () => {
    assert.equal((await fail(trusting, '2001:db8:1:2::1')).status, 400);
    assert.equal((await fail(trusting, '2001:db8:1:2:0:0:0:2')).status, 400);
    assert.equal((await fail(trusting, '2001:db8:1:2:ffff:1:2:3')).status, 429, 'same /64');
    assert.equal((await fail(trusting, '2001:db8:1:3::1')).status, 400, 'another /64');
    const ips = new Set((await auditRows(trusting, 'login.failure')).map((e) => e.ip));
    assert.ok(ips.has('2001:db8:1:2::1'), 'audit rows keep the whole address');
  });

  it('ignores X-Forwarded-For from a peer it does not trust', async () => {
    assert.equal((await fail(plain, '203.0.113.1')).status, 400);
    assert.equal((await fail(plain, '203.0.113.2')).status, 400);
    assert.equal((await fail(plain, '203.0.113.3')).status, 429, 'one address: the peer');
    const ips = new Set((await auditRows(plain, 'login.failure')).map((e) => e.ip));
    assert.deepEqual([...ips], ['127.0.0.1']);
  });

  it('refuses a --trust-proxy that is not an address or CIDR block', async () => {
    const { loadConfig, ConfigError } = await import('../src/config.js');
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/8/1'])
      assert.throws(() => loadConfig({ 'trust-proxy': [bad] }), ConfigError);
    assert.deepEqual(loadConfig({}, { WSGATE_TRUST_PROXY: '10.0.0.0/8, ::1' }).trustProxy, [
      '10.0.0.0/8',
      '::1/128',
    ]);
  });
});

describe('GET /metrics outside loopback', () => {
  let server: TestServer;
  const metricsToken = 'metrics-token-0123456789';
  before(async () => {
    // The trusted proxy makes the forwarded address the client's: a non-loopback one.
    server = await startTestServer({
      'trust-proxy': ['127.0.0.1'],
      'metrics-token': metricsToken,
    });
  });
  after(() => server.stop());

  it('answers loopback clients', async () => {
    assert.equal((await fetch(`${server.url}/metrics`)).status, 200);
  });

  it('refuses other clients without the metrics token, and answers them with it', async () => {
    const away = { 'x-forwarded-for': '198.51.100.4' };
    const refused = await fetch(`${server.url}/metrics`, { headers: away });
    assert.equal(refused.status, 401);
    assert.doesNotMatch(await refused.text(), /wsgate_/);
    const wrong = await fetch(`${server.url}/metrics`, {
      headers: { ...away, authorization: 'Bearer not-the-token-at-all' },
    });
    assert.equal(wrong.status, 401);
    const ok = await fetch(`${server.url}/metrics`, {
      headers: { ...away, authorization: `Bearer ${metricsToken}` },
    });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /wsgate_/);
  });
});

describe('POST /ws-ticket rate limit', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ 'tickets-per-minute': '3' });
  });
  after(() => server.stop());

  it('answers 429 with Retry-After past 3 tickets a minute for one user', async () => {
    const { access_token } = await passwordGrant(server);
    const mint = () =>
      fetch(`${server.url}/ws-ticket`, {
        method: 'POST',
        headers: { authorization: `Bearer ${access_token}` },
      });
    for (let i = 0; i < 3; i++) assert.equal((await mint()).status, 200);
    const limited = await mint();
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    // Another user is not affected; time gives the first one tickets again.
    const jane = await passwordGrant(server, 'janedoe', 'secret2');
    const other = await fetch(`${server.url}/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jane.access_token}` },
    });
    assert.equal(other.status, 200);
    server.clock.advance(20_000);
    assert.equal((await mint()).status, 200);
  });
});

describe('refresh grace period: parallel refreshes with one token', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const refresh = (token: string) =>
    postForm(`${server.url}/token`, { grant_type: 'refresh_token', refresh_token: token });

  it('gives two refreshes within 5 s the same new pair, and treats a use after it as reuse', async () => {
    const login = await passwordGrant(server);
    const [a, b] = await Promise.all([refresh(login.refresh_token), refresh(login.refresh_token)]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    const first = (await a.json()) as TokenResponse;
    const second = (await b.json()) as TokenResponse;
    assert.equal(first.refresh_token, second.refresh_token);
    assert.equal(first.access_token, second.access_token);

    server.clock.advance(4_999);
    const late = (await (await refresh(login.refresh_token)).json()) as TokenResponse;
    assert.equal(late.refresh_token, first.refresh_token);

    // The new token works; the old one, past the grace period, is reuse and ends the session.
    server.clock.advance(1);
    const reuse = await refresh(login.refresh_token);
    assert.equal(reuse.status, 400);
    const sid = String(decodeJwt(login.access_token).sid);
    assert.equal((await server.runtime.storage.getSession(sid))?.revokedReason, 'refresh_reuse');
    assert.equal((await refresh(first.refresh_token)).status, 400);
  });

  it('turns off with --refresh-grace 0', async () => {
    const strict = await startTestServer({ 'refresh-grace': '0' });
    try {
      const login = await passwordGrant(strict);
      const again = (token: string) =>
        postForm(`${strict.url}/token`, { grant_type: 'refresh_token', refresh_token: token });
      assert.equal((await again(login.refresh_token)).status, 200);
      assert.equal((await again(login.refresh_token)).status, 400);
    } finally {
      await strict.stop();
    }
  });

  it('keeps two tabs loading / after the access cookie expired signed in', async () => {
    const res = await signIn(server, { username: 'johndoe', password: 'secret', next: '/' });
    const jar = cookiesOf(res);
    jar.delete('access_token_cookie'); // its Max-Age has passed
    server.clock.advance(16 * 60_000);
    const pages = await Promise.all(
      [0, 1].map(() =>
        fetch(`${server.url}/`, { headers: { cookie: cookieHeader(jar) }, redirect: 'manual' }),
      ),
    );
    assert.deepEqual(
      pages.map((p) => p.status),
      [200, 200],
    );
    const [one, two] = pages.map((p) => cookiesOf(p).get('refresh_token_cookie')?.value);
    assert.ok(one);
    assert.equal(one, two);
    const sid = String(decodeJwt(one).sid);
    assert.equal((await server.runtime.storage.getSession(sid))?.revokedAt, null);
  });
});

describe('sign-in hardening', () => {
  let server: TestServer;
  let production: TestServer;
  before(async () => {
    server = await startTestServer();
    production = await startTestServer({ demo: false });
  });
  after(async () => {
    await server.stop();
    await production.stop();
  });

  const credentials = { username: 'johndoe', password: 'secret', next: '/' };

  it('refuses a cross-site sign-in form (login CSRF) and sets no session cookie', async () => {
    for (const headers of [
      { origin: 'https://attacker.example' },
      { origin: 'null' },
      // The right host with the wrong scheme is another origin.
      { origin: server.url.replace('http:', 'https:') },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { 'sec-fetch-site': 'cross-site', origin: server.url },
      {},
    ]) {
      const res = await signIn(server, credentials, headers);
      assert.equal(res.status, 403, JSON.stringify(headers));
      const jar = cookiesOf(res);
      assert.ok(!jar.has('access_token_cookie'), JSON.stringify(headers));
      assert.match(await res.text(), /did not come from this site/);
    }
  });

  it('accepts its own origin, Sec-Fetch-Site same-origin, or the pre-session value of the form', async () => {
    assert.equal((await signIn(server, credentials)).status, 303);
    assert.equal(
      (await signIn(server, credentials, { 'sec-fetch-site': 'same-origin' })).status,
      303,
    );
    // A form posted under Referrer-Policy: no-referrer carries Origin: null.
    assert.equal(
      (await signIn(server, credentials, { 'sec-fetch-site': 'same-origin', origin: 'null' }))
        .status,
      303,
    );
    const form = await fetch(`${server.url}/login`);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
    const cookie = cookiesOf(form).get('login_csrf');
    assert.ok(csrf && cookie?.attributes.includes('HttpOnly'));
    const withValue = await signIn(
      server,
      { ...credentials, csrf },
      { cookie: `login_csrf=${cookie!.value}` },
    );
    assert.equal(withValue.status, 303);
    const mismatched = await signIn(
      server,
      { ...credentials, csrf: `${csrf}x` },
      { cookie: `login_csrf=${cookie!.value}` },
    );
    assert.equal(mismatched.status, 403);
  });

  it('checks X-CSRF-Token against the signed claim, not a planted cookie', async () => {
    const jar = cookiesOf(await signIn(server, credentials));
    const planted = new Map(jar);
    planted.set('csrf_access_token', { value: 'planted-by-a-sibling', attributes: [] });
    for (const path of ['/session/refresh', '/session/logout']) {
      const res = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { cookie: cookieHeader(planted), 'x-csrf-token': 'planted-by-a-sibling' },
        redirect: 'manual',
      });
      assert.equal(res.status, 403, path);
      const empty = new Map(jar);
      empty.set('csrf_access_token', { value: '', attributes: [] });
      const blank = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { cookie: cookieHeader(empty), 'x-csrf-token': '' },
        redirect: 'manual',
      });
      assert.equal(blank.status, 403, path);
    }
    const sid = String(decodeJwt(jar.get('access_token_cookie')?.value ?? '').sid);
    assert.equal((await server.runtime.storage.getSession(sid))?.revokedAt, null);
  });

  it('redirects to a non-Latin-1 next percent-encoded, with the session cookies set', async () => {
    const res = await signIn(server, { ...credentials, next: '/日本?q=ü' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/%E6%97%A5%E6%9C%AC?q=%C3%BC');
    assert.ok(cookiesOf(res).has('access_token_cookie'));
    // A lone surrogate has no encoding at all: no such path, so the redirect goes home.
    assert.equal(safeNext('/\ud800'), '/');
  });

  it('outside demo mode serves no demo page and no demo text', async () => {
    for (const page of ['/demo/token', '/demo/cookie', '/get-cookie'])
      assert.equal((await fetch(`${production.url}${page}`)).status, 404, page);
    const form = await (await fetch(`${production.url}/login`)).text();
    assert.doesNotMatch(form, /demo|johndoe|secret2/i);
    const demoForm = await (await fetch(`${server.url}/login`)).text();
    assert.match(demoForm, /johndoe/);
  });
});
