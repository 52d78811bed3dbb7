// Proxy mode from a browser: Debian's Chromium opens a route of `wsgate serve --proxy` (a real
// process) in front of a `ws` backend that knows nothing of wsgate and selects no subprotocol,
// as FastAPI's `accept()` does. Every transport but the first message opens it, with the SDK as
// a page would ship it; a refusal reaches the page as its close code; a logout closes it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { browserSkip, clientBundle, launchChromium, pageScript } from './support/browser.js';
import { fencedSamples } from './support/doc-samples.js';
import { ensureBuilt, startServeProcess, type ServeProcess } from './support/cli.js';
import { passwordGrant } from './support/server.js';
import { chatV2OrNone, startUpstream, type Upstream } from './support/upstream.js';
import { wsUrl } from './support/ws.js';

/** Per-step budget; the page-side waits below stay well under it. */
const stepTimeout = 20_000;

/** What a page-side socket saw: the subprotocol it opened with, what it heard, how it closed. */
interface Seen {
  readonly protocol: string | null;
  readonly messages: string[];
  readonly close: { code: number; reason: string };
}

/**
 * Page-side: opens `new WebSocket(url, protocols)`, sends `send` once open, and resolves when it
 * has heard `expect` messages (then closes it with 1000) or when it closes on its own.
 */
const watchSocket = `(url, protocols, send, expect) => new Promise((resolve) => {
  const ws = new WebSocket(url, protocols);
  const messages = [];
  let protocol = null;
  ws.onopen = () => { protocol = ws.protocol; if (send !== null) ws.send(send); };
  ws.onmessage = (e) => { messages.push(String(e.data)); if (messages.length === expect) ws.close(1000); };
  ws.onclose = (e) => resolve({ protocol, messages, close: { code: e.code, reason: e.reason } });
})`;

async function socket(
  page: Page,
  url: string,
  protocols: string[],
  send: string | null = null,
  expect = 0,
): Promise<Seen> {
  const args = [url, protocols, send, expect].map((a) => JSON.stringify(a)).join(', ');
  return page.evaluate<Seen>(`(${watchSocket})(${args})`);
}

/**
 * Page-side, with the SDK: a raw-mode `WsgateClient` (`options` given as JavaScript source, so
 * that they may hold callbacks) that connects, sends `hello`, and resolves with its echo. The
 * client stays open as `window.sdk`, its `stopped` event recorded in `window.sdkStopped`.
 */
async function sdkEcho(page: Page, options: string): Promise<string> {
  return page.evaluate<string>(`(async () => {
    const c = new wsgateClient.WsgateClient({ protocol: 'raw', ...${options} });
    window.sdk = c;
    window.sdkStopped = new Promise((resolve) => c.on('stopped', resolve));
    const connected = new Promise((resolve) => c.on('state', (s) => s === 'connected' && resolve()));
    c.connect();
    await connected;
    const echo = new Promise((resolve) => c.once('text', resolve));
    c.sendText('hello');
    return echo;
  })()`);
}

describe(
  'proxy mode from a browser (Chromium, wsgate serve --proxy)',
  { skip: browserSkip },
  () => {
    let upstream: Upstream;
    let server: ServeProcess | undefined;
    let browser: Browser | undefined;
    let context: BrowserContext;
    let page: Page;
    let elsewhere: Server | undefined;
    let dataDir = '';
    let token = '';

    before(
      async () => {
        ensureBuilt();
        // The backend: no auth code, and no subprotocol unless the client offers chat.v2.
        upstream = await startUpstream({
          autoPong: true,
          protocol: chatV2OrNone,
        });
        dataDir = mkdtempSync(join(tmpdir(), 'wsgate-proxy-browser-'));
        server = await startServeProcess(
          [
            ...['--demo', '--port', '0', '--data-dir', dataDir, '--log-format', 'json'],
            ...['--proxy', `/app=${upstream.url}/ws`],
            ...['--proxy', `/admin-app=${upstream.url}/admin`],
            ...['--proxy-scope', '/admin-app=wsgate:admin'],
            ...['--proxy', '/down=ws://127.0.0.1:1/ws'],
          ],
          'wsgate-proxy-browser',
        );
        token = (await passwordGrant(server)).access_token;
        // A page of another origin, which wsgate does not allow.
        elsewhere = createServer((_req, res) => res.end('<!doctype html><title>elsewhere</title>'));
        await new Promise<void>((resolve) => elsewhere?.listen(0, '127.0.0.1', resolve));
        browser = await launchChromium();
        context = await browser.newContext();
        context.setDefaultTimeout(stepTimeout);
        await context.addInitScript(await clientBundle());
        page = await context.newPage();
        // A page of wsgate's own origin: its handshakes carry an Origin that wsgate allows.
        await page.goto(`${server.url}/healthz`);
      },
      { timeout: 90_000 },
    );

    after(async () => {
      await browser?.close();
      server?.child.kill('SIGKILL');
      await server?.exit;
      await upstream?.close();
      if (elsewhere) await new Promise<void>((resolve) => elsewhere?.close(() => resolve()));
      rmSync(dataDir, { recursive: true, force: true });
    });

    const app = () => wsUrl(server as ServeProcess, '/app');
    /** The subprotocols a page offers with a ticket or the cookie. */
    const offer = ['wsgate.v1', 'wsgate.proxy'];

    /** Page-side: a ticket from `POST /ws-ticket`, fetched with the bearer token. */
    const fetchTicket = () => `fetch('/ws-ticket', {
      method: 'POST',
      headers: { authorization: 'Bearer ' + ${JSON.stringify(token)} },
    }).then((res) => res.json()).then((body) => body.ticket)`;
    const ticket = () => page.evaluate<string>(fetchTicket());

    /** Signs the browser in through `POST /session`; resolves with its CSRF value. */
    async function signIn(): Promise<string> {
      const base = (server as ServeProcess).url;
      const answer = await context.request.post(`${base}/session`, {
        form: { username: 'johndoe', password: 'secret', next: '/healthz' },
        headers: { origin: base },
        maxRedirects: 0,
      });
      assert.equal(answer.status(), 303);
      const csrf = (await context.cookies(base)).find((c) => c.name === 'csrf_access_token');
      assert.ok(csrf, 'signed in');
      return csrf.value;
    }

    it(
      'opens a route whose backend selects no subprotocol with wsgate.proxy, by hand and with the SDK',
      { timeout: stepTimeout },
      async () => {
        // Without wsgate.proxy the browser fails the handshake: nothing selected, 1006.
        const bare = await socket(page, app(), ['wsgate.v1', `wsgate.bearer.${token}`]);
        assert.deepEqual([bare.protocol, bare.close.code], [null, 1006]);

        const n = upstream.connections.length + 1;
        const marked = await socket(
          page,
          app(),
          ['wsgate.v1', 'wsgate.proxy', `wsgate.bearer.${token}`],
          'hi',
          1,
        );
        assert.deepEqual([marked.protocol, marked.messages], ['wsgate.proxy', ['hi']]);
        const far = await upstream.connection(n);
        assert.equal(far.protocol, '');
        assert.equal(far.headers['sec-websocket-protocol'], undefined);
        assert.deepEqual(far.headers['x-wsgate-user'], ['johndoe']);

        const echo = await sdkEcho(
          page,
          `{ url: ${JSON.stringify(app())}, getToken: async () => ${JSON.stringify(token)} }`,
        );
        assert.equal(echo, 'hello');
        await page.evaluate('window.sdk.close()');
      },
    );

    it(
      'opens it with a ticket from POST /ws-ticket in ?token=',
      { timeout: stepTimeout },
      async () => {
        const echo = await sdkEcho(
          page,
          `{ url: ${JSON.stringify(app())}, getTicket: () => ${fetchTicket()} }`,
        );
        assert.equal(echo, 'hello');
        await page.evaluate('window.sdk.close()');
        // By hand, with wsgate's two subprotocols, and with none at all.
        const marked = await socket(page, `${app()}?token=${await ticket()}`, offer, 'hi', 1);
        assert.deepEqual([marked.protocol, marked.messages], ['wsgate.proxy', ['hi']]);
        const plain = await socket(page, `${app()}?token=${await ticket()}`, [], 'hi', 1);
        assert.deepEqual([plain.protocol, plain.messages], ['', ['hi']]);
      },
    );

    it('opens it with the sign-in cookie and ?csrf_token=', { timeout: stepTimeout }, async () => {
      const csrf = await signIn();
      const marked = await socket(page, `${app()}?csrf_token=${csrf}`, offer, 'hi', 1);
      assert.deepEqual([marked.protocol, marked.messages], ['wsgate.proxy', ['hi']]);
      const n = upstream.connections.length + 1;
      const echo = await sdkEcho(
        page,
        `{
        url: ${JSON.stringify(app())} + '?csrf_token=' +
          document.cookie.match(/(?:^|; )csrf_access_token=([^;]*)/)[1],
      }`,
      );
      assert.equal(echo, 'hello');
      const far = await upstream.connection(n);
      assert.equal(far.url, '/ws', 'the CSRF value stays with wsgate');
      assert.equal(far.headers.cookie, undefined, "wsgate's cookies stay with wsgate");
      await page.evaluate('window.sdk.close()');
      await context.clearCookies();
    });

    it(
      "gives the browser the backend's own subprotocol when it selects one",
      { timeout: stepTimeout },
      async () => {
        const own = await socket(
          page,
          app(),
          ['chat.v2', 'wsgate.v1', 'wsgate.proxy', `wsgate.bearer.${token}`],
          'hi',
          1,
        );
        assert.deepEqual([own.protocol, own.messages], ['chat.v2', ['hi']]);
        const n = upstream.connections.length + 1;
        const echo = await sdkEcho(
          page,
          `{ url: ${JSON.stringify(app())}, subprotocols: ['chat.v2'], getToken: async () => ${JSON.stringify(token)} }`,
        );
        assert.equal(echo, 'hello');
        assert.equal((await upstream.connection(n)).protocol, 'chat.v2');
        await page.evaluate('window.sdk.close()');
      },
    );

    it(
      'tells the page why a handshake was refused: 4401, 4403 for a scope or an Origin, 1014',
      { timeout: stepTimeout },
      async () => {
        const before = upstream.connections.length;
        const bearer = (credential: string) => [...offer, credential];
        const bad = await socket(page, app(), bearer('wsgate.bearer.not-a-token'));
        assert.deepEqual([bad.protocol, bad.close.code], ['wsgate.v1', 4401]);
        const admin = wsUrl(server as ServeProcess, '/admin-app');
        const scope = await socket(page, admin, bearer(`wsgate.bearer.${token}`));
        assert.deepEqual([scope.protocol, scope.close.code], ['wsgate.v1', 4403]);
        const down = wsUrl(server as ServeProcess, '/down');
        const gone = await socket(page, down, bearer(`wsgate.bearer.${token}`));
        assert.deepEqual([gone.protocol, gone.close.code], ['wsgate.v1', 1014]);
        const foreign = await context.newPage();
        try {
          await foreign.goto(`http://127.0.0.1:${(elsewhere?.address() as AddressInfo).port}/`);
          const origin = await socket(foreign, app(), bearer(`wsgate.bearer.${token}`));
          assert.deepEqual([origin.protocol, origin.close.code], ['wsgate.v1', 4403]);
        } finally {
          await foreign.close();
        }
        assert.equal(
          upstream.connections.length,
          before,
          'no refused handshake reached the backend',
        );
      },
    );

    it(
      "closes the page's proxied socket with 4410 on logout, and the backend's with 1008 revoked",
      { timeout: stepTimeout },
      async () => {
        const { access_token } = await passwordGrant(server as ServeProcess);
        const n = upstream.connections.length + 1;
        const echo = await sdkEcho(
          page,
          `{ url: ${JSON.stringify(app())}, getToken: async () => ${JSON.stringify(access_token)} }`,
        );
        assert.equal(echo, 'hello');
        const far = await upstream.connection(n);
        const res = await fetch(`${(server as ServeProcess).url}/logout`, {
          method: 'POST',
          headers: { authorization: `Bearer ${access_token}` },
        });
        assert.equal(res.status, 204);
        const stopped = await page.evaluate<{ code: number }>('window.sdkStopped');
        assert.equal(stopped.code, 4410);
        assert.deepEqual(await far.closed, { code: 1008, reason: 'revoked' });
      },
    );

    it(
      'runs the browser sample of docs/proxy.md: it hears the backend, and goes to /login on logout',
      { timeout: stepTimeout },
      async () => {
        const sample = fencedSamples(/^ts$/).find(
          (f) => f.file === 'docs/proxy.md' && f.code.includes("protocol: 'raw'"),
        );
        assert.ok(sample, 'docs/proxy.md has the browser sample');
        const csrf = await signIn();
        const base = (server as ServeProcess).url;
        const tab = await context.newPage();
        try {
          await tab.goto(`${base}/healthz`);
          const heard = tab.waitForEvent('console', (m) => m.text() === 'backend: hello');
          await tab.evaluate(await pageScript(sample.code));
          await heard;
          const logout = await context.request.post(`${base}/session/logout`, {
            headers: { 'x-csrf-token': csrf, origin: base },
            maxRedirects: 0,
          });
          assert.equal(logout.status(), 303);
          await tab.waitForURL(`${base}/login`);
        } finally {
          await tab.close();
          await context.clearCookies();
        }
      },
    );
  },
);
