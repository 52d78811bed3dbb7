// Browser end-to-end suite: Debian's Chromium (never a downloaded browser) drives the real pages of a
// demo server — sign-in, chat between two users, presence, XSS, history, token hygiene, sign-out,
// the seed demo pages, CSP and a clean console. Screenshots go to test-results/e2e/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { browserSkip as skip, launchChromium } from './support/browser.js';
import { passwordGrant, startTestServer, type TestServer } from './support/server.js';

const shotDir = fileURLToPath(new URL('../test-results/e2e/', import.meta.url));
const webDist = fileURLToPath(new URL('../web/dist/chat.js', import.meta.url));

/** Per-step budget; each `it` stays well under 15 s, selector waits well under that. */
const stepTimeout = 15_000;
const waitTimeout = 8_000;

const payload = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`;

/** An HTML document the browser loaded, with its Content-Security-Policy. */
interface LoadedDocument {
  readonly url: string;
  readonly status: number;
  readonly csp: string | undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Evaluates a page-side expression (the project has no DOM typings, so no DOM closures here). */
async function js<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate<T>(expression);
}

describe('browser end-to-end (Chromium)', { skip }, () => {
  let server: TestServer | undefined;
  let browser: Browser | undefined;
  let johnContext: BrowserContext;
  let janeContext: BrowserContext;
  let john: Page;
  let jane: Page;
  let base = '';
  let step = 0;
  const sent: { user: string; text: string }[] = [];
  const documents: LoadedDocument[] = [];
  const pageErrors: string[] = [];
  const consoleErrors: string[] = [];

  /** Records page errors, console errors and every HTML document's CSP. */
  function watch(page: Page, label: string): Page {
    page.setDefaultTimeout(waitTimeout);
    page.on('pageerror', (err) => pageErrors.push(`[${label}] ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error')
        consoleErrors.push(`[${label}] ${msg.text()} (${msg.location().url || page.url()})`);
    });
    page.on('response', (res) => {
      if (res.request().resourceType() !== 'document') return;
      const type = res.headers()['content-type'] ?? '';
      if (!type.startsWith('text/html')) return;
      documents.push({
        url: res.url(),
        status: res.status(),
        csp: res.headers()['content-security-policy'],
      });
    });
    return page;
  }

  async function newUserPage(context: BrowserContext, label: string): Promise<Page> {
    return watch(await context.newPage(), label);
  }

  async function shot(page: Page, name: string): Promise<void> {
    step += 1;
    await page.screenshot({ path: `${shotDir}${String(step).padStart(2, '0')}-${name}.png` });
  }

  async function connected(page: Page): Promise<void> {
    await page.locator('#app[data-state="connected"]').waitFor();
  }

  /** The `#messages` row whose `.text` is exactly `text`. */
  function row(page: Page, text: string) {
    return page
      .locator('#messages li')
      .filter({ has: page.locator('.text', { hasText: new RegExp(`^${escapeRegExp(text)}$`) }) });
  }

  function member(page: Page, user: string) {
    return page.locator('#members li', { hasText: new RegExp(`^${escapeRegExp(user)}$`) });
  }

  /** Types `text` into the composer, sends it with Enter, and waits for the ack (input cleared). */
  async function say(page: Page, user: string, text: string): Promise<void> {
    await page.locator('#text').fill(text);
    await page.locator('#text').press('Enter');
    await row(page, text).waitFor();
    await page.waitForFunction('document.getElementById("text").value === ""', undefined, {
      timeout: waitTimeout,
    });
    sent.push({ user, text });
  }

  async function signIn(page: Page, username: string, password: string): Promise<void> {
    await page.goto(`${base}/`);
    assert.ok(
      page.url().endsWith('/login?next=%2F'),
      `redirected to the login page: ${page.url()}`,
    );
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(password);
    await Promise.all([
      page.waitForURL(`${base}/`),
      page.locator('form[action="/session"] button[type="submit"]').click(),
    ]);
    await connected(page);
    await page.locator('#me', { hasText: username }).waitFor();
    assert.equal(await page.locator('#me').textContent(), username);
  }

  before(
    async () => {
      if (!existsSync(webDist))
        assert.fail('web/dist/chat.js is missing: run `npm run build` before the browser suite');
      rmSync(shotDir, { recursive: true, force: true });
      mkdirSync(shotDir, { recursive: true });
      server = await startTestServer();
      base = server.url;
      browser = await launchChromium();
      const viewport = { width: 1100, height: 700 };
      johnContext = await browser.newContext({ viewport });
      janeContext = await browser.newContext({ viewport });
      john = await newUserPage(johnContext, 'johndoe');
      jane = await newUserPage(janeContext, 'janedoe');
    },
    { timeout: 30_000 },
  );

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it(
    'redirects / to the login page; signing in through the form lands on / connected, with #me set',
    { timeout: stepTimeout },
    async () => {
      await john.goto(`${base}/`);
      assert.ok(john.url().endsWith('/login?next=%2F'), john.url());
      await john.locator('#username').waitFor();
      await shot(john, 'login-form');

      await signIn(john, 'johndoe', 'secret');
      await shot(john, 'johndoe-connected');
      await signIn(jane, 'janedoe', 'secret2');
      await shot(jane, 'janedoe-connected');
      assert.equal(new URL(john.url()).pathname, '/');
      assert.equal(new URL(jane.url()).pathname, '/');
    },
  );

  it(
    'lets both users chat both ways in #general, each seeing the other’s message',
    { timeout: stepTimeout },
    async () => {
      await say(john, 'johndoe', 'Hello from John');
      const atJane = row(jane, 'Hello from John');
      await atJane.waitFor();
      assert.equal(await atJane.locator('.user').textContent(), 'johndoe');

      await say(jane, 'janedoe', 'Hi John, Jane here');
      const atJohn = row(john, 'Hi John, Jane here');
      await atJohn.waitFor();
      assert.equal(await atJohn.locator('.user').textContent(), 'janedoe');
      assert.equal(await john.locator('#room-title').textContent(), '#general');
      await shot(john, 'johndoe-chat');
      await shot(jane, 'janedoe-chat');
    },
  );

  it('shows presence: each user sees the other in #members', { timeout: stepTimeout }, async () => {
    await member(john, 'janedoe').waitFor();
    await member(jane, 'johndoe').waitFor();
    assert.deepEqual(await john.locator('#members li').allTextContents(), ['janedoe', 'johndoe']);
    assert.deepEqual(await jane.locator('#members li').allTextContents(), ['janedoe', 'johndoe']);
    await shot(jane, 'members');
  });

  it(
    'renders an HTML/script payload as literal text and never runs it',
    { timeout: stepTimeout },
    async () => {
      await say(john, 'johndoe', payload);
      const atJane = row(jane, payload);
      await atJane.waitFor();
      for (const page of [john, jane]) {
        const text = row(page, payload).locator('.text');
        assert.equal(await text.textContent(), payload);
        assert.equal(await page.locator('#messages img').count(), 0);
        assert.equal(await page.locator('#messages script').count(), 0);
        assert.equal(await js<string>(page, 'typeof window.__xss'), 'undefined');
      }
      await shot(jane, 'xss-as-text');
    },
  );

  it('keeps the history across a reload, in order', { timeout: stepTimeout }, async () => {
    await jane.reload();
    await connected(jane);
    await row(jane, sent.at(-1)!.text).waitFor();
    const texts = await jane.locator('#messages li .text').allTextContents();
    const users = await jane.locator('#messages li .user').allTextContents();
    assert.deepEqual(
      texts,
      sent.map((m) => m.text),
    );
    assert.deepEqual(
      users,
      sent.map((m) => m.user),
    );
    await shot(jane, 'history-after-reload');
  });

  it(
    'leaves no token readable by page script: cookies, storage and URL are clean',
    { timeout: stepTimeout },
    async () => {
      for (const page of [john, jane]) {
        const cookie = await js<string>(page, 'document.cookie');
        assert.doesNotMatch(cookie, /access_token_cookie|refresh_token_cookie/);
        assert.ok(
          !cookie
            .split(';')
            .some((part) => part.trim().split('=').slice(1).join('=').startsWith('eyJ')),
          `a JWT-looking cookie value is readable: ${cookie}`,
        );
        assert.doesNotMatch(cookie, /eyJ/);
        assert.match(cookie, /csrf_access_token=/);
        assert.equal(await js<number>(page, 'localStorage.length'), 0);
        assert.equal(await js<number>(page, 'sessionStorage.length'), 0);
        const href = await js<string>(page, 'location.href');
        assert.doesNotMatch(href, /token|ticket/i);
      }
      // The tokens do exist, as HttpOnly cookies only.
      const cookies = await johnContext.cookies(base);
      for (const name of ['access_token_cookie', 'refresh_token_cookie']) {
        const c = cookies.find((x) => x.name === name);
        assert.ok(c, `${name} is set`);
        assert.equal(c.httpOnly, true, `${name} is HttpOnly`);
        assert.equal(c.sameSite, 'Strict', `${name} is SameSite=Strict`);
      }
    },
  );

  it(
    'signs out: johndoe ends on /login and / redirects there again; janedoe keeps chatting, connected',
    { timeout: stepTimeout },
    async () => {
      await Promise.all([john.waitForURL(`${base}/login`), john.locator('#logout').click()]);
      await john.locator('#username').waitFor();
      await shot(john, 'johndoe-signed-out');

      await john.goto(`${base}/`);
      assert.ok(john.url().endsWith('/login?next=%2F'), john.url());
      await john.locator('#username').waitFor();

      await say(jane, 'janedoe', 'Still here after John left');
      assert.equal(await jane.locator('#app').getAttribute('data-state'), 'connected');
      await member(jane, 'johndoe').waitFor({ state: 'detached' });
      assert.deepEqual(await jane.locator('#members li').allTextContents(), ['janedoe']);
      assert.equal(await jane.locator('#app').getAttribute('data-state'), 'connected');
      await shot(jane, 'janedoe-still-chatting');
    },
  );

  it(
    'runs the seed demo pages: /demo/token with a pasted token, /demo/cookie after /get-cookie',
    { timeout: stepTimeout },
    async () => {
      const context = await browser!.newContext({ viewport: { width: 900, height: 600 } });
      try {
        const page = watch(await context.newPage(), 'demo');
        const { access_token } = await passwordGrant(server!, 'johndoe', 'secret');

        await page.goto(`${base}/demo/token`);
        await page.locator('#token').fill(access_token);
        await page.locator('#connect button[type="submit"]').click();
        await page.locator('#messages li', { hasText: /^Successfully Login!$/ }).waitFor();
        await page.locator('#messages li', { hasText: '"sub":"johndoe"' }).waitFor();
        await shot(page, 'demo-token');

        // A refused token: the page offers wsgate.v1, so it sees the close code and reason, and
        // the previous connection's output is gone.
        await page.locator('#token').fill('not-a-token');
        await page.locator('#connect button[type="submit"]').click();
        await page.locator('#messages li', { hasText: /^Connection closed: 4401 / }).waitFor();
        const lines = await page.locator('#messages li').allTextContents();
        assert.equal(lines.length, 1, lines.join(' | '));
        assert.match(lines[0] ?? '', /^Connection closed: 4401 \S/);
        await shot(page, 'demo-token-refused');

        // Demo mode sets the cookies of user test. Fetched through the context's own request client
        // (same cookie jar): a browser *navigating* to this JSON URL also asks for /favicon.ico,
        // which the server answers 404 — a console error that has nothing to do with the pages.
        const grant = await context.request.get(`${base}/get-cookie`);
        assert.equal(grant.status(), 200);
        assert.deepEqual(await grant.json(), { msg: 'Successfully login' });
        const names = (await context.cookies(base)).map((c) => c.name);
        assert.ok(names.includes('access_token_cookie') && names.includes('csrf_access_token'));
        await page.goto(`${base}/demo/cookie`);
        await page.locator('#send').click();
        await page.locator('#messages li', { hasText: /^Successfully Login!$/ }).waitFor();
        await page.locator('#messages li', { hasText: '"sub":"test"' }).waitFor();
        await shot(page, 'demo-cookie');
      } finally {
        await context.close();
      }
    },
  );

  it(
    'renders /docs: the HTTP operations, and the WebSocket endpoints, transports and close codes as tables',
    { timeout: stepTimeout },
    async () => {
      const context = await browser!.newContext({ viewport: { width: 1200, height: 1600 } });
      try {
        const page = watch(await context.newPage(), 'docs');
        await page.goto(`${base}/docs`);
        const info = page.locator('.swagger-ui .info');
        await info.locator('h2', { hasText: 'Close codes' }).waitFor();
        const tables = info.locator('table');
        assert.equal(await tables.count(), 3);
        const headers = await info.locator('table thead').allTextContents();
        assert.match(headers[0] ?? '', /path\s*credential\s*behaviour/);
        assert.match(headers[2] ?? '', /close code after it/);
        await tables
          .nth(0)
          .locator('td code', { hasText: /^\/secured-ws$/ })
          .waitFor();
        await tables
          .nth(2)
          .locator('td', { hasText: /^4410$/ })
          .waitFor();
        // No Markdown left as text: no heading marks or pipes in code boxes, no backticks.
        const text = (await info.textContent()) ?? '';
        assert.doesNotMatch(text, /## |\|---|`/);
        await page
          .locator('.opblock-summary-path', { hasText: /^\/token$/ })
          .first()
          .waitFor();
        const summaries = await page.locator('.opblock-summary-description').allTextContents();
        assert.ok(summaries.length > 10, summaries.join(' | '));
        for (const summary of summaries) assert.doesNotMatch(summary, /`/);
        await shot(page, 'docs');
      } finally {
        await context.close();
      }
    },
  );

  it(
    'served every page under a CSP without unsafe-inline, with no console or page errors',
    { timeout: stepTimeout },
    async () => {
      const paths = new Set(documents.map((d) => new URL(d.url).pathname));
      for (const path of ['/login', '/', '/demo/token', '/demo/cookie', '/docs'])
        assert.ok(paths.has(path), `loaded ${path}`);
      for (const doc of documents) {
        assert.ok(doc.csp, `CSP on ${doc.url} (${doc.status})`);
        assert.match(doc.csp, /script-src 'self'/, doc.url);
        assert.doesNotMatch(doc.csp, /unsafe-inline/, doc.url);
      }
      assert.deepEqual(pageErrors, [], 'page errors');
      assert.deepEqual(consoleErrors, [], 'console errors');
    },
  );
});

describe('sign-in refusals in the browser (Chromium)', { skip }, () => {
  let server: TestServer | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let other: Server | undefined;
  let base = '';
  const shown: string[] = [];

  before(
    async () => {
      mkdirSync(shotDir, { recursive: true });
      // Two failed sign-ins per minute and name, and one hash at a time with no queue: each
      // refusal is easy to reach. `test` is a disabled account.
      server = await startTestServer({
        'login-attempts': '2',
        'hash-concurrency': '1',
        'hash-queue': '0',
      });
      base = server.url;
      await server.runtime.users.setDisabled('test', true);
      browser = await launchChromium();
      context = await browser.newContext({ viewport: { width: 800, height: 600 } });
      context.setDefaultTimeout(waitTimeout);
    },
    { timeout: 30_000 },
  );

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (other) await new Promise<void>((resolve) => other?.close(() => resolve()));
  });

  /** Submits the sign-in form on `page`; resolves with the answer's status and the page's alert. */
  async function submit(page: Page, username: string, password: string) {
    await page.goto(`${base}/login`);
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(password);
    const [answer] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/session'),
      page.locator('form[action="/session"] button[type="submit"]').click(),
    ]);
    await page.waitForLoadState();
    const alert = page.locator('p.error[role="alert"]');
    const message = (await alert.count()) > 0 ? ((await alert.textContent()) ?? '') : '';
    if (message) shown.push(message);
    return { status: answer.status(), retryAfter: answer.headers()['retry-after'], message };
  }

  async function shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: `${shotDir}sign-in-${name}.png` });
  }

  it(
    'reads the same for a wrong password, an unknown user and a disabled account (401)',
    { timeout: stepTimeout },
    async () => {
      const page = await context.newPage();
      const wrong = await submit(page, 'janedoe', 'not-her-password');
      await shot(page, 'wrong-password');
      const unknown = await submit(page, 'nobody', 'whatever');
      const disabled = await submit(page, 'test', 'test');
      await shot(page, 'disabled-account');
      for (const answer of [wrong, unknown, disabled]) {
        assert.equal(answer.status, 401);
        assert.equal(answer.message, 'Incorrect username or password.');
      }
      // The form is back, empty, ready for another try.
      assert.equal(await page.locator('#username').inputValue(), '');
      await page.close();
    },
  );

  it(
    'says when to try again once a name has failed too often (429)',
    { timeout: stepTimeout },
    async () => {
      const page = await context.newPage();
      for (let i = 0; i < 2; i++)
        assert.equal((await submit(page, 'johndoe', `wrong-${i}`)).status, 401);
      const limited = await submit(page, 'johndoe', 'secret');
      await shot(page, 'rate-limited');
      assert.equal(limited.status, 429);
      const seconds = Number(limited.retryAfter);
      assert.ok(seconds >= 1 && seconds <= 60, `Retry-After ${limited.retryAfter}`);
      const when = seconds === 60 ? '1 minute' : seconds === 1 ? '1 second' : `${seconds} seconds`;
      assert.equal(limited.message, `Too many failed sign-ins. Try again in ${when}.`);
      await page.close();
    },
  );

  it(
    'says the server is busy when every hashing slot is taken (503)',
    { timeout: stepTimeout },
    async () => {
      // One hash at a time and no queue: of sign-ins sent together, all but one find it busy.
      // Each round sends six (the browser's connections per host); a round without a 503 (the
      // hashes did not overlap) is sent again.
      const pages = await Promise.all(Array.from({ length: 6 }, () => context.newPage()));
      let busy: { page: Page; message: string; retryAfter: string | undefined } | undefined;
      for (let round = 0; round < 5 && busy === undefined; round++) {
        await Promise.all(pages.map((p) => p.goto(`${base}/login`)));
        for (const p of pages) {
          await p.locator('#username').fill('janedoe');
          await p.locator('#password').fill('secret2');
        }
        const answers = await Promise.all(
          pages.map(async (p) => {
            const [answer] = await Promise.all([
              p.waitForResponse((r) => new URL(r.url()).pathname === '/session'),
              p.locator('form[action="/session"] button[type="submit"]').click(),
            ]);
            return {
              page: p,
              status: answer.status(),
              retryAfter: answer.headers()['retry-after'],
            };
          }),
        );
        const refused = answers.find((a) => a.status === 503);
        if (refused) {
          await refused.page.waitForLoadState();
          const message = (await refused.page.locator('p.error[role="alert"]').textContent()) ?? '';
          shown.push(message);
          busy = { page: refused.page, message, retryAfter: refused.retryAfter };
        }
      }
      assert.ok(busy, 'a sign-in found every hashing slot taken');
      await shot(busy.page, 'busy');
      assert.equal(busy.retryAfter, '1');
      assert.equal(
        busy.message,
        'The server is busy signing other people in. Try again in a few seconds.',
      );
      await Promise.all(pages.map((p) => p.close()));
    },
  );

  it(
    'refuses a sign-in posted from another site with its own wording (403)',
    { timeout: stepTimeout },
    async () => {
      // Another origin (same host, another port) with a form that signs the visitor in.
      other = createServer((_req, res) => {
        res
          .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
          .end(
            `<!doctype html><form method="post" action="${base}/session">` +
              '<input name="username" value="janedoe"><input name="password" value="secret2">' +
              '<button type="submit">Win a prize</button></form>',
          );
      });
      await new Promise<void>((resolve) => other?.listen(0, '127.0.0.1', resolve));
      // A visitor with no session yet (the other tests signed janedoe in elsewhere).
      const visitor = await browser!.newContext({ viewport: { width: 800, height: 600 } });
      const page = await visitor.newPage();
      await page.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
      const [answer] = await Promise.all([
        page.waitForResponse((r) => new URL(r.url()).pathname === '/session'),
        page.locator('button[type="submit"]').click(),
      ]);
      await page.waitForLoadState();
      assert.equal(answer.status(), 403);
      const message = (await page.locator('p.error[role="alert"]').textContent()) ?? '';
      shown.push(message);
      assert.equal(
        message,
        'This sign-in did not come from this site. Reload the page and try again.',
      );
      assert.ok(
        !(await visitor.cookies(base)).some((c) => c.name === 'access_token_cookie'),
        'not signed in',
      );
      await shot(page, 'cross-site');
      await visitor.close();
    },
  );

  it('never shows an API error code on the page', () => {
    assert.ok(shown.length >= 6, `messages seen: ${shown.length}`);
    for (const message of shown)
      assert.doesNotMatch(
        message,
        /invalid_grant|invalid_scope|rate_limited|temporarily_unavailable|csrf_failed|\b[a-z]+_[a-z]+\b/,
      );
  });
});
