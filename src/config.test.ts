import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isAbsolute, join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { ConfigError, loadConfig, parseDuration, usableCores, type RawOptions } from './config.js';

/** Asserts that loading fails with a ConfigError whose message names `option`. */
function refuses(flags: RawOptions, option: string | RegExp, env: NodeJS.ProcessEnv = {}): void {
  assert.throws(
    () => loadConfig(flags, env),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
      if (typeof option === 'string')
        assert.ok(err.message.includes(option), `"${err.message}" should name ${option}`);
      else assert.match(err.message, option);
      return true;
    },
  );
}

describe('loadConfig defaults', () => {
  it('listens on 127.0.0.1:8000 with data in ./data, resolved to an absolute path', () => {
    const config = loadConfig({});
    assert.equal(config.port, 8000);
    assert.equal(config.host, '127.0.0.1');
    assert.ok(isAbsolute(config.dataDir));
    assert.equal(config.dataDir, resolve('data'));
    assert.equal(config.database, `sqlite:${join(resolve('data'), 'wsgate.db')}`);
  });

  it('uses 900 s access tokens, 14-day refresh tokens and log level info', () => {
    const config = loadConfig({});
    assert.equal(config.accessTtl, 900);
    assert.equal(config.refreshTtl, 1_209_600);
    assert.equal(config.logLevel, 'info');
  });

  it('has no redis, no extra origins, no HS256 secret, insecure cookies and no demo', () => {
    const config = loadConfig({});
    assert.equal(config.redis, undefined);
    assert.deepEqual(config.origins, []);
    assert.equal(config.hs256Secret, undefined);
    assert.equal(config.secureCookies, false);
    assert.equal(config.demo, false);
    assert.equal(config.allowQueryTokens, false);
    assert.equal(config.audience, 'wsgate');
    assert.equal(config.issuer, 'http://127.0.0.1:8000');
    assert.equal(config.loginAttemptsPerMinute, 5);
  });

  it('puts the database in the data dir when only --data-dir is given', () => {
    const config = loadConfig({ 'data-dir': 'some/where' });
    assert.equal(config.dataDir, resolve('some/where'));
    assert.equal(config.database, `sqlite:${resolve('some/where', 'wsgate.db')}`);
  });
});

describe('loadConfig from the environment', () => {
  it('reads PORT, HOST and every WSGATE_* variable', () => {
    const config = loadConfig(
      {},
      {
        PORT: '9000',
        HOST: 'localhost',
        WSGATE_DATA_DIR: '/srv/wsgate',
        WSGATE_DATABASE: 'postgres://wsgate@db.example/wsgate',
        WSGATE_REDIS: 'redis://cache.example:6379',
        WSGATE_ORIGINS: 'https://a.example, https://b.example/app',
        WSGATE_ACCESS_TTL: '5m',
        WSGATE_REFRESH_TTL: '2d',
        WSGATE_SECURE_COOKIES: 'true',
        WSGATE_LOG_LEVEL: 'debug',
        WSGATE_DEMO: '1',
        WSGATE_ALLOW_QUERY_TOKENS: 'no',
        WSGATE_ISSUER: 'https://auth.example',
        WSGATE_AUDIENCE: 'chat',
        WSGATE_HS256_SECRET: 'x'.repeat(32),
        WSGATE_LOGIN_ATTEMPTS: '7',
      },
    );
    assert.equal(config.port, 9000);
    assert.equal(config.host, 'localhost');
    assert.equal(config.dataDir, '/srv/wsgate');
    assert.equal(config.database, 'postgres://wsgate@db.example/wsgate');
    assert.equal(config.redis, 'redis://cache.example:6379');
    assert.deepEqual(config.origins, ['https://a.example', 'https://b.example']);
    assert.equal(config.accessTtl, 300);
    assert.equal(config.refreshTtl, 172_800);
    assert.equal(config.secureCookies, true);
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.demo, true);
    assert.equal(config.allowQueryTokens, false);
    assert.equal(config.issuer, 'https://auth.example');
    assert.equal(config.audience, 'chat');
    assert.equal(config.hs256Secret, 'x'.repeat(32));
    assert.equal(config.loginAttemptsPerMinute, 7);
  });

  it('ignores empty variables', () => {
    const config = loadConfig({}, { PORT: '', HOST: '', WSGATE_LOG_LEVEL: '', WSGATE_DEMO: '' });
    assert.equal(config.port, 8000);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.demo, false);
  });

  it('lets flags win over the environment', () => {
    const config = loadConfig(
      {
        port: '1234',
        host: '::1',
        'data-dir': '/flag/dir',
        'access-ttl': '60',
        'log-level': 'warn',
        origin: ['https://flag.example'],
      },
      {
        PORT: '9000',
        HOST: 'localhost',
        WSGATE_DATA_DIR: '/env/dir',
        WSGATE_ACCESS_TTL: '120',
        WSGATE_LOG_LEVEL: 'debug',
        WSGATE_ORIGINS: 'https://env.example',
      },
    );
    assert.equal(config.port, 1234);
    assert.equal(config.host, '::1');
    assert.equal(config.dataDir, '/flag/dir');
    assert.equal(config.database, 'sqlite:/flag/dir/wsgate.db');
    assert.equal(config.accessTtl, 60);
    assert.equal(config.logLevel, 'warn');
    assert.deepEqual(config.origins, ['https://flag.example']);
  });

  it('keeps an environment value when the flag is absent (undefined)', () => {
    const config = loadConfig({ port: undefined }, { PORT: '9000' });
    assert.equal(config.port, 9000);
  });

  it('accepts 1/true/yes/on and 0/false/no/off for booleans, and refuses anything else naming the variable', () => {
    for (const value of ['1', 'true', 'YES', 'on']) {
      assert.equal(loadConfig({}, { WSGATE_SECURE_COOKIES: value }).secureCookies, true, value);
    }
    for (const value of ['0', 'false', 'No', 'off']) {
      assert.equal(loadConfig({}, { WSGATE_SECURE_COOKIES: value }).secureCookies, false, value);
    }
    refuses({}, 'WSGATE_SECURE_COOKIES', { WSGATE_SECURE_COOKIES: 'maybe' });
    refuses({}, 'WSGATE_DEMO', { WSGATE_DEMO: '2' });
  });

  it('refuses a bad PORT naming the variable, and a bad --port naming the flag', () => {
    refuses({}, /^PORT="eighty" /, { PORT: 'eighty' });
    refuses({ port: '65536' }, '--port');
    refuses({ port: '-1' }, '--port');
    refuses({ port: '80.5' }, '--port');
    assert.equal(loadConfig({ port: '0' }).port, 0);
    assert.equal(loadConfig({ port: '65535' }).port, 65535);
  });
});

describe('durations', () => {
  it('reads plain seconds and s, m, h, d suffixes', () => {
    assert.equal(parseDuration('access-ttl', '900'), 900);
    assert.equal(parseDuration('access-ttl', '900s'), 900);
    assert.equal(parseDuration('access-ttl', '15m'), 900);
    assert.equal(parseDuration('access-ttl', '12h'), 43_200);
    assert.equal(parseDuration('refresh-ttl', '14d'), 1_209_600);
    assert.equal(parseDuration('refresh-ttl', ' 14d '), 1_209_600);
  });

  it('applies durations from flags', () => {
    const config = loadConfig({ 'access-ttl': '15m', 'refresh-ttl': '14d' });
    assert.equal(config.accessTtl, 900);
    assert.equal(config.refreshTtl, 1_209_600);
  });

  for (const bad of [
    '',
    '0',
    '0m',
    '-5',
    '15x',
    '1.5h',
    '15 m',
    'm',
    '15M',
    '999999999999999999999d',
  ]) {
    it(`refuses the duration ${JSON.stringify(bad)} naming the option`, () => {
      refuses({ 'access-ttl': bad }, '--access-ttl');
      refuses({ 'refresh-ttl': bad }, '--refresh-ttl');
    });
  }

  it('refuses a refresh-ttl shorter than the access-ttl', () => {
    refuses({ 'access-ttl': '1h', 'refresh-ttl': '30m' }, '--refresh-ttl');
    refuses({ 'access-ttl': '30d' }, '--refresh-ttl');
    refuses({}, 'WSGATE_REFRESH_TTL="1h"', { WSGATE_ACCESS_TTL: '2h', WSGATE_REFRESH_TTL: '1h' });
  });

  it('accepts a refresh-ttl equal to the access-ttl', () => {
    const config = loadConfig({ 'access-ttl': '1h', 'refresh-ttl': '3600' });
    assert.equal(config.accessTtl, 3600);
    assert.equal(config.refreshTtl, 3600);
  });
});

describe('--demo', () => {
  for (const host of ['0.0.0.0', '192.0.2.1', '::', '2001:db8::1', 'example.com']) {
    it(`refuses to listen on the non-loopback host ${host}`, () => {
      refuses({ demo: true, host }, /--demo/);
      refuses({ demo: true, host }, host);
    });
  }

  it('refuses a non-loopback HOST from the environment too', () => {
    refuses({}, /--demo.*0\.0\.0\.0/, { WSGATE_DEMO: 'true', HOST: '0.0.0.0' });
    refuses({ demo: true }, '0.0.0.0', { HOST: '0.0.0.0' });
  });

  for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost']) {
    it(`accepts the loopback host ${host}`, () => {
      const config = loadConfig({ demo: true, host });
      assert.equal(config.demo, true);
      assert.equal(config.host, host);
    });
  }

  it('lets a non-demo server listen anywhere', () => {
    assert.equal(loadConfig({ host: '0.0.0.0' }).host, '0.0.0.0');
    assert.equal(loadConfig({ host: '0.0.0.0' }).issuer, 'http://0.0.0.0:8000');
  });

  it('brackets an IPv6 host in the default issuer', () => {
    assert.equal(loadConfig({ host: '::1' }).issuer, 'http://[::1]:8000');
  });

  // `isLoopback` accepts "[::1]", but the host is then used unchanged: the issuer becomes
  // "http://[[::1]]:8000" and listen() fails with getaddrinfo ENOTFOUND [::1].
  it('normalises a bracketed [::1] host, which it accepts as loopback, to ::1', () => {
    const config = loadConfig({ demo: true, host: '[::1]' });
    assert.equal(config.host, '::1');
    assert.equal(config.issuer, 'http://[::1]:8000');
  });

  it('allows query tokens by default in demo mode only', () => {
    assert.equal(loadConfig({ demo: true }).allowQueryTokens, true);
    assert.equal(loadConfig({}).allowQueryTokens, false);
    assert.equal(loadConfig({ 'allow-query-tokens': true }).allowQueryTokens, true);
    assert.equal(
      loadConfig({ demo: true }, { WSGATE_ALLOW_QUERY_TOKENS: 'false' }).allowQueryTokens,
      false,
    );
  });
});

describe('validation', () => {
  it('refuses an HS256 secret shorter than 32 bytes', () => {
    refuses({ 'hs256-secret': 'x'.repeat(31) }, '--hs256-secret');
    refuses({}, /^WSGATE_HS256_SECRET must/, { WSGATE_HS256_SECRET: 'short' });
    // 15 two-byte characters plus one: 31 bytes, though 16 characters.
    refuses({ 'hs256-secret': `${'é'.repeat(15)}a` }, '--hs256-secret');
  });

  it('accepts an HS256 secret of exactly 32 bytes, counted in UTF-8', () => {
    assert.equal(loadConfig({ 'hs256-secret': 'x'.repeat(32) }).hs256Secret, 'x'.repeat(32));
    assert.equal(loadConfig({ 'hs256-secret': 'é'.repeat(16) }).hs256Secret, 'é'.repeat(16));
  });

  it('normalises origins to their URL origin', () => {
    const config = loadConfig({
      origin: [
        'https://app.example/some/path?q=1',
        'HTTPS://App.Example:443',
        'http://localhost:3000/',
        'https://x.example:8443',
      ],
    });
    assert.deepEqual(config.origins, [
      'https://app.example',
      'https://app.example',
      'http://localhost:3000',
      'https://x.example:8443',
    ]);
  });

  for (const bad of [
    'app.example',
    'not a url',
    'null',
    '*',
    'ftp://files.example',
    'javascript:alert(1)',
    'file:///etc/passwd',
  ]) {
    it(`refuses the origin ${JSON.stringify(bad)}`, () => {
      refuses({ origin: ['https://ok.example', bad] }, '--origin');
    });
  }

  it('refuses a bad origin from WSGATE_ORIGINS', () => {
    refuses({}, 'WSGATE_ORIGINS entry "ws://chat.example"', {
      WSGATE_ORIGINS: 'https://ok.example,ws://chat.example',
    });
  });

  it('accepts every log level and refuses anything else', () => {
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
      assert.equal(loadConfig({ 'log-level': level }).logLevel, level);
    }
    refuses({ 'log-level': 'verbose' }, '--log-level');
    refuses({ 'log-level': 'INFO' }, '--log-level');
    refuses({}, 'WSGATE_LOG_LEVEL="loud"', { WSGATE_LOG_LEVEL: 'loud' });
  });

  it('accepts sqlite: paths and postgres:// URLs for --database', () => {
    assert.equal(loadConfig({ database: 'sqlite:/tmp/x.db' }).database, 'sqlite:/tmp/x.db');
    assert.equal(
      loadConfig({ database: 'postgres://u:p@db/wsgate' }).database,
      'postgres://u:p@db/wsgate',
    );
    assert.equal(
      loadConfig({ database: 'postgresql://db/wsgate' }).database,
      'postgresql://db/wsgate',
    );
  });

  for (const bad of [
    'mysql://db/wsgate',
    './wsgate.db',
    '/var/lib/wsgate.db',
    'http://db/wsgate',
    'postgres:db',
  ]) {
    it(`refuses the database ${JSON.stringify(bad)}`, () => {
      refuses({ database: bad }, '--database');
    });
  }

  it('refuses a --redis that is not a redis:// or rediss:// URL', () => {
    assert.equal(loadConfig({ redis: 'rediss://cache.example' }).redis, 'rediss://cache.example');
    refuses({ redis: 'http://cache.example' }, '--redis');
  });

  it('refuses a login-attempts limit that is not a positive whole number', () => {
    refuses({ 'login-attempts': '0' }, '--login-attempts');
    refuses({ 'login-attempts': 'many' }, '--login-attempts');
    assert.equal(loadConfig({ 'login-attempts': '10' }).loginAttemptsPerMinute, 10);
  });
});

describe('limit flags', () => {
  it('parses WebSocket limits from flags and the environment, durations in milliseconds', () => {
    const config = loadConfig(
      { 'max-message': '1024', heartbeat: '10s', 'max-connections-per-user': '3' },
      { WSGATE_MESSAGE_RATE: '5', WSGATE_AUTH_TIMEOUT: '2s' },
    );
    assert.deepEqual(config.limits, {
      maxPayload: 1024,
      heartbeatMs: 10_000,
      connectionsPerUser: 3,
      messageRate: 5,
      authTimeoutMs: 2000,
    });
    assert.deepEqual(loadConfig({}).limits, {});
  });

  it('refuses a limit that is not a positive whole number, naming the flag', () => {
    for (const [flag, value] of [
      ['message-rate', '0'],
      ['message-burst', 'lots'],
      ['heartbeat', '-5s'],
      ['max-message', '1e9'],
    ] as const) {
      assert.throws(
        () => loadConfig({ [flag]: value }),
        (err: unknown) => err instanceof ConfigError && err.message.includes(`--${flag}`),
      );
    }
  });
});

describe('error messages', () => {
  it('never echo a secret', () => {
    assert.throws(
      () => loadConfig({ 'hs256-secret': 'hunter2-but-too-short' }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.startsWith('--hs256-secret ') &&
        !err.message.includes('hunter2'),
    );
  });

  it('hide the password of a URL they quote', () => {
    assert.throws(
      () => loadConfig({ redis: 'http://user:s3cret@cache.example' }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.includes('http://user:***@cache.example') &&
        !err.message.includes('s3cret'),
    );
  });
});

describe('issuer and audience', () => {
  it('derive the issuer from the listening address unless one is given', () => {
    const derived = loadConfig({ port: '9001' });
    assert.equal(derived.issuer, 'http://127.0.0.1:9001');
    assert.equal(derived.issuerDerived, true);
    const given = loadConfig({ issuer: 'https://chat.example' });
    assert.equal(given.issuer, 'https://chat.example');
    assert.equal(given.issuerDerived, false);
  });

  for (const bad of [
    'chat.example',
    'ftp://chat.example',
    'https://u:p@chat.example',
    'https://chat.example/?a=1',
  ]) {
    it(`refuses the issuer ${JSON.stringify(bad)}`, () => {
      refuses({ issuer: bad }, '--issuer');
    });
  }

  it('refuses an empty audience', () => {
    refuses({ audience: ' ' }, '--audience');
  });

  it('accepts pretty and json log formats and nothing else', () => {
    assert.equal(loadConfig({}).logFormat, undefined);
    assert.equal(loadConfig({ 'log-format': 'json' }).logFormat, 'json');
    assert.equal(loadConfig({}, { WSGATE_LOG_FORMAT: 'pretty' }).logFormat, 'pretty');
    refuses({ 'log-format': 'xml' }, '--log-format "xml"');
  });
});

describe('--workers', () => {
  it('runs one process by default, and the number given', () => {
    assert.equal(loadConfig({}).workers, 1);
    assert.equal(loadConfig({ workers: '4' }).workers, 4);
    assert.equal(loadConfig({}, { WSGATE_WORKERS: '3' }).workers, 3);
  });

  it('refuses zero, fractions, words and more than 256', () => {
    for (const value of ['0', '1.5', 'many', '-2', '257', '']) {
      refuses({ workers: value }, /--workers .*must be auto or a whole number from 1 to 256/);
    }
  });

  it('chooses as many as the cores within the cgroup quota for auto', () => {
    const auto = loadConfig({ workers: 'auto' });
    assert.ok(auto.workersAuto && auto.workers >= 1);
    const cores = availableParallelism();
    assert.equal(usableCores('max 100000\n'), cores);
    assert.equal(usableCores(undefined), cores);
    assert.equal(usableCores('100000 100000\n'), 1);
    assert.equal(usableCores('150000 100000\n'), 1, 'a core and a half is one worker');
    assert.equal(usableCores(`${(cores + 8) * 100000} 100000`), cores, 'never above the CPUs');
    assert.equal(usableCores('50000 100000'), 1, 'at least one');
    assert.equal(usableCores('garbage'), cores);
  });

  it('gives password hashing one slot per usable core by default, as many as auto workers', () => {
    assert.equal(loadConfig({}).hashConcurrency, usableCores());
    assert.equal(
      loadConfig({ workers: 'auto' }).hashConcurrency,
      loadConfig({ workers: 'auto' }).workers,
    );
    assert.equal(loadConfig({ 'hash-concurrency': '3', workers: '2' }).hashConcurrency, 3);
  });
});

describe('--proxy and the HTTP routes', () => {
  it('refuses a proxy path that overlaps an HTTP route, naming both', () => {
    const upstream = 'ws://127.0.0.1:9000/ws';
    refuses({ proxy: [`/token=${upstream}`] }, '--proxy /token overlaps the HTTP route /token');
    // A prefix over HTTP routes, an exact path a parameter or wildcard route takes, the root.
    refuses({ proxy: [`/session/*=${upstream}`] }, /--proxy \/session\/\* overlaps .*\/session/);
    refuses({ proxy: [`/assets/app.js=${upstream}`] }, /overlaps the HTTP route \/assets\/:name/);
    refuses({ proxy: [`/docs/socket=${upstream}`] }, /overlaps the HTTP route \/docs\/\*/);
    refuses({ proxy: [`/*=${upstream}`] }, /--proxy \/\* overlaps the HTTP route \//);
    refuses({}, /--proxy \/metrics overlaps/, { WSGATE_PROXY: `/metrics=${upstream}` });
  });

  it('takes proxy paths beside the HTTP routes, and over the built-in WebSocket endpoints', () => {
    const config = loadConfig({
      proxy: ['/app=ws://127.0.0.1:9000/ws', '/ws=ws://h/ws', '/api/*=ws://h/', '/tokens=ws://h/'],
    });
    assert.deepEqual(
      config.proxies.map((r) => r.path),
      ['/app', '/ws', '/api/*', '/tokens'],
    );
  });
});
