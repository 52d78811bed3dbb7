/**
 * `wsgate scan` (DESIGN.md §10) against small servers that each leave out one defence, against
 * wsgate itself, and through the CLI. Every target is a real server on port 0; the scanner's waits
 * are shortened through its options, and no verdict depends on a race: a sound target answers at
 * once, a weak one never does.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { WebSocketServer } from 'ws';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkIds,
  formatReport,
  formatReportJson,
  scan,
  type CheckId,
  type ScanOptions,
  type ScanReport,
  type Verdict,
} from '../src/scan/index.js';
import { mintToken, soundShape, startTarget, type TargetShape } from './support/scan-targets.js';
import { startTestServer, type ManualClock } from './support/server.js';
import { wsUrl } from './support/ws.js';
import { chatV2OrNone, startUpstream } from './support/upstream.js';
import { ensureBuilt, wsgate } from './support/cli.js';
import { createServer } from 'node:http';
import { createGate, createVerifier, issueToken, keySetFromSecret } from '../src/index.js';

/** Short waits: a sound target answers in milliseconds, a weak one not at all. */
const fast = { timeoutMs: 5000, halfOpenMs: 8000 } as const;

/**
 * Lifetime of the tokens that test expiry: long enough for every other check to finish first on a
 * loaded machine, short enough to wait for.
 */
const shortLived = 15;

/** The checks that present a garbage or forged token. */
const tokenChecks = ['garbage-token', 'alg-none', 'signature-altered', 'payload-altered'] as const;

const weakOf = (report: ScanReport): CheckId[] =>
  report.checks.filter((c) => c.verdict === 'WEAK').map((c) => c.id);

const verdictsOf = (report: ScanReport): Record<CheckId, Verdict> =>
  Object.fromEntries(report.checks.map((c) => [c.id, c.verdict])) as Record<CheckId, Verdict>;

const checkOf = (report: ScanReport, id: CheckId) => {
  const check = report.checks.find((c) => c.id === id);
  assert.ok(check, `no ${id} in the report`);
  return check;
};

/** What a sound bearer-token server earns: everything held, the harmless facts as info. */
const soundVerdicts: Record<CheckId, Verdict> = {
  'no-credential': 'held',
  'garbage-token': 'held',
  'alg-none': 'held',
  'signature-altered': 'held',
  'payload-altered': 'held',
  'query-token': 'held',
  'origin-foreign': 'held',
  'origin-null': 'held',
  'origin-missing': 'info',
  'host-rebinding': 'held',
  'message-size': 'held',
  'message-flood': 'held',
  'invalid-utf8': 'held',
  'handshake-flood': 'held',
  'half-open': 'held',
  'token-expiry': 'n/a',
};

/**
 * At most this many scans at once: each floods its target with handshakes, and targets and scanner
 * share this process's event loop.
 */
const slot = semaphore(2);

function semaphore(size: number) {
  let free = size;
  const queue: (() => void)[] = [];
  return async <T>(work: () => Promise<T>): Promise<T> => {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => queue.push(resolve));
    try {
      return await work();
    } finally {
      const next = queue.shift();
      if (next) next();
      else free++;
    }
  };
}

function scanTarget(
  shape: Partial<TargetShape>,
  options: Partial<ScanOptions> & { tokenSeconds?: number; claims?: Record<string, unknown> } = {},
): Promise<{ report: ScanReport; token: string }> {
  return slot(() => scanTargetNow(shape, options));
}

async function scanTargetNow(
  shape: Partial<TargetShape>,
  options: Partial<ScanOptions> & { tokenSeconds?: number; claims?: Record<string, unknown> } = {},
): Promise<{ report: ScanReport; token: string }> {
  const target = await startTarget({ ...soundShape, ...shape });
  try {
    const { tokenSeconds, claims, ...rest } = options;
    const token = await mintToken(tokenSeconds ?? 3600, claims);
    const report = await scan({ url: target.url, token, ...fast, ...rest });
    return { report, token };
  } finally {
    await target.close();
  }
}

describe('wsgate scan', { concurrency: true }, () => {
  describe(
    'wsgate scan against small servers, each missing one defence',
    { concurrency: true },
    () => {
      it('finds nothing WEAK on a sound server: exit 0, and each check as expected', async () => {
        const { report } = await scanTarget({});
        assert.ok(report.baseline.ok, report.baseline.got);
        assert.deepEqual(verdictsOf(report), soundVerdicts, formatReport(report));
        assert.equal(report.exitCode, 0);
      });

      it('holds token-expiry when the server closes the socket at exp', async () => {
        const { report } = await scanTarget({}, { tokenSeconds: shortLived });
        assert.equal(checkOf(report, 'token-expiry').verdict, 'held', formatReport(report));
        assert.match(checkOf(report, 'token-expiry').got, /closed 4001/);
        assert.deepEqual(weakOf(report), []);
      });

      it('reports a server that accepts any upgrade: no credential and any Origin or Host', async () => {
        const { report } = await scanTarget({ credential: 'none', origin: 'none' });
        assert.deepEqual(
          weakOf(report),
          ['no-credential', 'origin-foreign', 'origin-null', 'host-rebinding'],
          formatReport(report),
        );
        // A forged token proves nothing where no token is needed: n/a, and saying why.
        for (const id of tokenChecks) {
          assert.equal(checkOf(report, id).verdict, 'n/a');
          assert.match(checkOf(report, id).note ?? '', /without a credential/);
        }
        assert.equal(checkOf(report, 'origin-missing').verdict, 'info');
        assert.equal(report.exitCode, 1);
      });

      it('reports a query-string token checked only by its shape: the forgeries and the query', async () => {
        const { report } = await scanTarget(
          { credential: 'query-shape-only' },
          { transport: 'query' },
        );
        assert.deepEqual(
          weakOf(report),
          ['signature-altered', 'payload-altered', 'query-token'],
          formatReport(report),
        );
        // An empty signature fails even a shape check; garbage too.
        assert.equal(checkOf(report, 'alg-none').verdict, 'held');
        assert.equal(checkOf(report, 'garbage-token').verdict, 'held');
        assert.equal(report.exitCode, 1);
      });

      it('reports cookie authentication without an Origin check: foreign, null, missing, rebinding', async () => {
        const { report } = await scanTarget(
          { credential: 'cookie', origin: 'none' },
          { transport: 'cookie' },
        );
        assert.deepEqual(
          weakOf(report),
          ['origin-foreign', 'origin-null', 'origin-missing', 'host-rebinding'],
          formatReport(report),
        );
        assert.match(checkOf(report, 'origin-foreign').note ?? '', /cookie/);
      });

      it('reports only host-rebinding where the cookie server compares Origin with Host', async () => {
        const { report } = await scanTarget(
          { credential: 'cookie', origin: 'same-host' },
          { transport: 'cookie' },
        );
        assert.deepEqual(weakOf(report), ['host-rebinding'], formatReport(report));
        assert.equal(checkOf(report, 'origin-missing').verdict, 'held');
      });

      it('holds every Origin check on a cookie server that checks Origin against its own', async () => {
        const { report } = await scanTarget({ credential: 'cookie' }, { transport: 'cookie' });
        assert.deepEqual(weakOf(report), [], formatReport(report));
        for (const id of [
          'origin-foreign',
          'origin-null',
          'origin-missing',
          'host-rebinding',
        ] as const)
          assert.equal(checkOf(report, id).verdict, 'held');
      });

      it('reports a server that verifies the token but never closes the socket at exp', async () => {
        const { report } = await scanTarget({ closeAtExp: false }, { tokenSeconds: shortLived });
        assert.deepEqual(weakOf(report), ['token-expiry'], formatReport(report));
        assert.match(checkOf(report, 'token-expiry').got, /still open .* after exp/);
      });

      it('reports a server without a message size limit', async () => {
        const { report } = await scanTarget({ maxPayload: 100 * 1024 * 1024 });
        assert.deepEqual(weakOf(report), ['message-size'], formatReport(report));
      });

      it('calls a foreign Origin on a bearer-only endpoint and missing rate limits info, not WEAK', async () => {
        const { report } = await scanTarget({
          origin: 'none',
          messageLimit: false,
          handshakeLimit: false,
        });
        assert.deepEqual(weakOf(report), [], formatReport(report));
        for (const id of ['origin-foreign', 'origin-null', 'host-rebinding'] as const) {
          assert.equal(checkOf(report, id).verdict, 'info', formatReport(report));
          assert.match(checkOf(report, id).note ?? '', /harmless/);
        }
        assert.equal(checkOf(report, 'message-flood').verdict, 'info', formatReport(report));
        assert.equal(checkOf(report, 'handshake-flood').verdict, 'info', formatReport(report));
        assert.equal(report.exitCode, 0);
      });

      it('reports a server that holds a half-open upgrade request past the wait', async () => {
        const { report } = await scanTarget({ slowHeaders: true });
        assert.deepEqual(weakOf(report), ['half-open'], formatReport(report));
        assert.match(checkOf(report, 'half-open').got, /still held after 8 s/);
      });

      it('fails the baseline on a server that answers 404: every check n/a, exit 3', async () => {
        const { report } = await scanTarget({ notFound: true });
        assert.equal(report.baseline.ok, false);
        assert.match(report.baseline.got, /404/);
        assert.equal(report.exitCode, 3);
        assert.deepEqual(
          report.checks.map((c) => c.verdict),
          checkIds.map(() => 'n/a'),
        );
        assert.match(formatReport(report), /baseline failed/i);
      });

      it("fails the baseline on a server that does not answer the URL's host name, and says what to do", async () => {
        // A wsgate node off loopback answers only its issuer's name: scanned by its address, 421.
        const keys = keySetFromSecret('a-test-secret-of-at-least-thirty-two-bytes');
        const options = { issuer: 'https://feed.example', audience: 'feed' };
        const gate = createGate({
          verify: createVerifier(keys, options),
          hosts: { issuer: options.issuer, loopback: false },
        });
        gate.route('/live', { requirement: 'required' }, (ws) => ws.send('hello'));
        const http = createServer((_req, res) => res.writeHead(404).end());
        http.on('upgrade', gate.handleUpgrade);
        await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
        try {
          const { port } = http.address() as AddressInfo;
          const { token } = await issueToken(keys, {
            ...{ type: 'access', subject: 'amy', sessionId: 's1', scope: '', ttl: 300 },
            ...{ now: Date.now(), ...options },
          });
          const report = await slot(() =>
            scan({ url: `ws://127.0.0.1:${port}/live`, token, ...fast }),
          );
          assert.equal(report.exitCode, 3);
          assert.match(report.baseline.got, /^421 Misdirected Request/);
          assert.match(
            formatReport(report),
            /421: the server does not answer to the host name in the URL\. Scan the URL its clients\nuse; a wsgate node reached by another name needs that name in --allowed-host\.\n$/,
          );
        } finally {
          http.closeAllConnections();
          await new Promise<void>((resolve) => http.close(() => resolve()));
        }
      });

      it('fails the baseline without --token when the bare upgrade gets 404', async () => {
        const target = await startTarget({ ...soundShape, notFound: true });
        try {
          const report = await slot(() => scan({ url: target.url, ...fast }));
          assert.equal(report.exitCode, 3);
        } finally {
          await target.close();
        }
      });

      it('without --token, runs what needs no credential and never calls the rest held', async () => {
        const target = await startTarget(soundShape);
        try {
          const report = await slot(() => scan({ url: target.url, ...fast }));
          assert.ok(report.baseline.ok, report.baseline.got);
          assert.match(report.baseline.got, /401/);
          const v = verdictsOf(report);
          assert.equal(v['no-credential'], 'held');
          assert.equal(v['garbage-token'], 'held');
          assert.equal(v['half-open'], 'held');
          for (const id of [
            'alg-none',
            'signature-altered',
            'payload-altered',
            'query-token',
            'origin-foreign',
            'origin-null',
            'origin-missing',
            'host-rebinding',
            'message-size',
            'message-flood',
            'invalid-utf8',
            'token-expiry',
          ] as const) {
            assert.equal(v[id], 'n/a', `${id} needs a credential`);
            assert.match(checkOf(report, id).note ?? '', /needs a credential/);
          }
          assert.equal(report.exitCode, 0);
        } finally {
          await target.close();
        }
      });

      it('calls a throttled probe n/a, never held', async () => {
        // The baseline is the only upgrade this server lets through; every later one gets 429.
        const { report } = await scanTarget({ throttleAfter: 1 });
        assert.ok(report.baseline.ok);
        for (const id of [
          'no-credential',
          'garbage-token',
          'alg-none',
          'origin-foreign',
        ] as const) {
          assert.equal(checkOf(report, id).verdict, 'n/a', formatReport(report));
          assert.match(checkOf(report, id).note ?? '', /throttled/);
        }
        assert.equal(checkOf(report, 'handshake-flood').verdict, 'held');
        assert.ok(
          !report.checks.some(
            (c) => c.verdict === 'held' && c.id !== 'handshake-flood' && c.id !== 'half-open',
          ),
        );
      });

      it('fails the baseline, as a browser fails the handshake, when the 101 selects none of the offered subprotocols or one not offered', async (t) => {
        const token = await mintToken();
        for (const [selects, got] of [
          [
            false,
            /^101 selecting none of the offered subprotocols \(a browser fails this handshake\)$/,
          ],
          ['chat.v2', /^101 selecting "chat\.v2", which was not offered \(a browser fails/],
        ] as const) {
          // A server that upgrades anyone and never selects what the scanner offers.
          const server = await startUpstream({ protocol: () => selects });
          t.after(() => server.close());
          const report = await slot(() =>
            scan({ url: `${server.url}/live`, token, transport: 'subprotocol', ...fast }),
          );
          assert.equal(report.baseline.ok, false, formatReport(report));
          assert.match(report.baseline.got, got);
          assert.equal(report.exitCode, 3);
        }
      });

      it('leaves a check n/a, never held, when the server upgrades a forged token without selecting an offered subprotocol', async (t) => {
        const token = await mintToken();
        // Refuses an upgrade that offers no subprotocol, upgrades every other, and selects
        // wsgate.v1 only for the real token: a browser could not use a forged token's socket, but
        // the server did upgrade it.
        const wss = new WebSocketServer({
          port: 0,
          host: '127.0.0.1',
          verifyClient: (info: { req: IncomingMessage }) =>
            info.req.headers['sec-websocket-protocol'] !== undefined,
          handleProtocols: (offered) => offered.has(`wsgate.bearer.${token}`) && 'wsgate.v1',
        });
        // The invalid-UTF-8 probe's socket fails here; that is not news.
        wss.on('connection', (ws) => ws.on('error', () => undefined));
        t.after(() => {
          for (const ws of wss.clients) ws.terminate();
          return new Promise((resolve) => wss.close(resolve));
        });
        await once(wss, 'listening');
        const { port } = wss.address() as AddressInfo;
        const report = await slot(() =>
          scan({ url: `ws://127.0.0.1:${port}/live`, token, transport: 'subprotocol', ...fast }),
        );
        assert.ok(report.baseline.ok, formatReport(report));
        assert.equal(checkOf(report, 'no-credential').verdict, 'held', formatReport(report));
        for (const id of tokenChecks) {
          const check = checkOf(report, id);
          assert.equal(check.verdict, 'n/a', formatReport(report));
          assert.match(check.got, /^101 selecting none of the offered subprotocols/);
          assert.match(check.note ?? '', /as in a browser, the socket could not be used/);
        }
      });

      it('never prints the token or an altered copy, in text or JSON, even when the server echoes it', async () => {
        for (const transport of ['bearer', 'cookie'] as const) {
          const { report, token } = await scanTarget(
            {
              leaky: true,
              ...(transport === 'cookie' ? { credential: 'cookie', origin: 'none' } : {}),
            },
            { transport, claims: { csrf: 'csrf-value-0123456789' } },
          );
          const [header, payload, signature] = token.split('.') as [string, string, string];
          // The server's echo reached the report path: refusals carried the token in their reasons.
          assert.ok(
            report.checks.some((c) => /closed 4001/.test(c.got)),
            `the leaky server's close reasons were read:\n${formatReport(report)}`,
          );
          for (const text of [formatReport(report), formatReportJson(report)]) {
            for (const part of [token, header, payload, signature, 'csrf-value-0123456789']) {
              assert.ok(!text.includes(part), `the report holds a part of the token:\n${text}`);
            }
            // Any altered copy starts with a base64url JSON object ("eyJ") or is a long token-like run.
            assert.doesNotMatch(text, /eyJ[\w-]{8,}/);
            assert.doesNotMatch(text, /[\w-]{40,}/);
          }
        }
      });
    },
  );

  /** The real clock, for a server whose tokens must really expire; it cannot be moved. */
  function realClock(): ManualClock {
    const refuse = () => {
      throw new Error('the real clock cannot be moved');
    };
    return Object.assign(() => Date.now(), { advance: refuse, set: refuse });
  }

  describe('wsgate scan against wsgate', { concurrency: true }, () => {
    const servers: { stop(): Promise<void> }[] = [];
    after(async () => {
      await Promise.all(servers.map((s) => s.stop()));
    });

    function scanWsgate(
      config: Record<string, string | boolean | string[]>,
      transport: 'bearer' | 'cookie' | 'subprotocol',
      { clock, path = '/ws' }: { clock?: ManualClock; path?: string } = {},
    ): Promise<ScanReport> {
      return slot(async () => {
        // The scan here waits 8 s for a half-open upgrade to be dropped: less than the 10 s
        // default deadline (the CLI waits 15 s), so the servers drop it sooner.
        const options = { 'upgrade-timeout': '4s', ...config };
        const server = await startTestServer(options, clock === undefined ? {} : { clock });
        servers.push(server);
        const user = config.demo === false ? 'alice' : 'johndoe';
        if (config.demo === false) await server.runtime.users.add(user, 'alice-password');
        const pair = await server.runtime.sessions.openSession(user, {
          cookies: transport === 'cookie',
        });
        const url = wsUrl(server, path);
        return scan({ url, token: pair.accessToken, transport, ...fast });
      });
    }

    const production = { demo: false };
    const expected: Record<CheckId, Verdict> = soundVerdicts;
    const reports = new Map<string, Promise<ScanReport>>();
    const once = (key: string, make: () => Promise<ScanReport>) => {
      if (!reports.has(key)) reports.set(key, make());
      return reports.get(key)!;
    };
    const productionBearer = () => once('bearer', () => scanWsgate(production, 'bearer'));
    const productionCookie = () => once('cookie', () => scanWsgate(production, 'cookie'));
    const demo = () => once('demo', () => scanWsgate({}, 'bearer'));

    const assertVerdicts = (report: ScanReport, want: Record<CheckId, Verdict>) => {
      for (const id of checkIds)
        assert.equal(checkOf(report, id).verdict, want[id], `${id}:\n${formatReport(report)}`);
    };

    it('in production mode, every applicable check holds (bearer)', async () => {
      const report = await productionBearer();
      assert.ok(report.baseline.ok, report.baseline.got);
      assertVerdicts(report, expected);
    });

    it('in production mode, every applicable check holds (cookie with its CSRF value)', async () => {
      const report = await productionCookie();
      assert.ok(report.baseline.ok, report.baseline.got);
      assertVerdicts(report, { ...expected, 'origin-missing': 'held' });
    });

    it('on a proxied route whose backend selects no subprotocol, the subprotocol transport is accepted and every applicable check holds', async (t) => {
      const backend = await startUpstream({ protocol: chatV2OrNone });
      t.after(() => backend.close());
      const report = await scanWsgate(
        { ...production, proxy: [`/app=${backend.url}/ws`] },
        'subprotocol',
        { path: '/app' },
      );
      assert.ok(report.baseline.ok, formatReport(report));
      assert.match(report.baseline.sent, /wsgate\.v1, wsgate\.proxy, wsgate\.bearer\.<token>/);
      assertVerdicts(report, expected);
      // The backend got the scanner's sockets, never a wsgate.* subprotocol.
      assert.ok(backend.connections.length > 0);
      for (const c of backend.connections) assert.equal(c.protocol, '');
    });

    it('in production mode, a socket does not outlive its token', async () => {
      const report = await scanWsgate(
        { ...production, 'access-ttl': String(shortLived) },
        'bearer',
        { clock: realClock() },
      );
      const check = checkOf(report, 'token-expiry');
      assert.equal(check.verdict, 'held', formatReport(report));
      assert.match(check.got, /closed 4419/);
    });

    it('in demo mode, only the query-token check is WEAK: the seeds’ ?token= compatibility path', async () => {
      const report = await demo();
      assert.deepEqual(weakOf(report), ['query-token'], formatReport(report));
      const query = checkOf(report, 'query-token');
      assert.match(query.got, /token: 101/);
      assert.match(query.note ?? '', /logs/);
      assertVerdicts(report, { ...expected, 'query-token': 'WEAK' });
    });
  });

  describe('wsgate scan on the command line', { concurrency: true }, () => {
    ensureBuilt();
    const dir = mkdtempSync(join(tmpdir(), 'wsgate-scan-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('reads --token-file, prints JSON with --json, and exits 0 on a sound server', async () => {
      const target = await startTarget(soundShape);
      try {
        const file = join(dir, 'token.txt');
        const token = await mintToken();
        writeFileSync(file, `${token}\n`);
        const run = await slot(() =>
          wsgate(['scan', target.url, '--token-file', file, '--json', '--timeout', '5']),
        );
        assert.equal(run.code, 0, run.stdout + run.stderr);
        const report = JSON.parse(run.stdout) as ScanReport & { counts: Record<Verdict, number> };
        assert.equal(report.checks.length, checkIds.length);
        assert.equal(report.counts.WEAK, 0);
        assert.ok(!run.stdout.includes(token.split('.')[2]!));
      } finally {
        await target.close();
      }
    });

    it('exits 1 and prints one line per check when something is WEAK', async () => {
      const target = await startTarget({ ...soundShape, maxPayload: 100 * 1024 * 1024 });
      try {
        const token = await mintToken();
        const run = await slot(() =>
          wsgate(['scan', target.url, '--token', token, '--timeout', '5']),
        );
        assert.equal(run.code, 1, run.stdout + run.stderr);
        for (const id of checkIds)
          assert.match(run.stdout, new RegExp(`^${id} +(held|WEAK|info|n/a) `, 'm'));
        assert.match(run.stdout, /^message-size +WEAK /m);
        assert.match(run.stdout, /authorised/);
        assert.ok(!run.stdout.includes(token));
      } finally {
        await target.close();
      }
    });

    it('exits 3 when the baseline fails', async () => {
      const target = await startTarget({ ...soundShape, notFound: true });
      try {
        const run = await wsgate(['scan', target.url, '--timeout', '5']);
        assert.equal(run.code, 3, run.stdout + run.stderr);
        assert.match(run.stdout, /baseline +FAILED/);
      } finally {
        await target.close();
      }
    });

    it('refuses usage errors with one line and exit 2, never echoing the token', async () => {
      const token = await mintToken();
      const cases: [string[], RegExp][] = [
        [['scan'], /missing the endpoint/],
        [
          ['scan', 'ws://127.0.0.1:1/x', '--transport', 'carrier-pigeon', '--token', token],
          /--transport/,
        ],
        [['scan', 'ws://127.0.0.1:1/x', '--timeout', 'soon'], /--timeout/],
        [['scan', 'ws://127.0.0.1:1/x', '--origin', 'not an origin'], /--origin/],
        [['scan', 'ws://127.0.0.1:1/x', '--token', token, '--token-file', 't.txt'], /not both/],
        [['scan', 'ws://127.0.0.1:1/x', '--token-file', join(dir, 'absent.txt')], /--token-file/],
        [['scan', `ftp://127.0.0.1:1/x?token=${token}`], /ws:\/\//],
        [['scan', 'ws://127.0.0.1:1/x', `--tokne=${token}`], /tokne/],
        [['scan', 'ws://127.0.0.1:1/x', 'ws://127.0.0.1:2/y'], /one endpoint/],
      ];
      for (const [args, message] of cases) {
        const run = await wsgate(args);
        assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
        assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
        assert.match(run.stderr, message);
        assert.ok(!run.stderr.includes(token.split('.')[1]!), run.stderr);
        assert.equal(run.stdout, '');
      }
    });

    it('explains itself with --help and exit 0', async () => {
      const run = await wsgate(['scan', '--help']);
      assert.equal(run.code, 0);
      assert.match(run.stdout, /wsgate scan <ws-url>/);
      assert.match(run.stdout, /authorised/);
    });
  });
});
