import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { keySetFromStoredKeys, keyFileName, type StoredKey } from '../src/tokens/keys.js';
import { verifyToken } from '../src/tokens/verify.js';
import { postForm } from './support/server.js';
import { bin, cleanEnv, ensureBuilt, repo, wsgate } from './support/cli.js';
import { configOptions } from '../src/config.js';

const defaultIssuer = 'http://127.0.0.1:8000';

const dirs: string[] = [];
/** A fresh, empty data directory, deleted after the file's tests. */
function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-cli-'));
  dirs.push(dir);
  return dir;
}

function decodeJwtPart(part: string | undefined): Record<string, unknown> {
  assert.ok(part, 'missing JWT part');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}

async function addUser(
  dataDir: string,
  name: string,
  password = 'correct horse battery',
): Promise<void> {
  const run = await wsgate(['user', 'add', name, '--data-dir', dataDir], `${password}\n`);
  assert.equal(run.code, 0, run.stderr);
}

interface IssuedJson {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
  session_id: string;
}

async function issueJson(dataDir: string, name: string): Promise<IssuedJson> {
  const run = await wsgate(['token', 'issue', name, '--json', '--data-dir', dataDir]);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as IssuedJson;
}

/** The `sessions list` row for `id`, or undefined. */
async function sessionRow(dataDir: string, id: string, all = false): Promise<string | undefined> {
  const run = await wsgate(['sessions', 'list', '--data-dir', dataDir, ...(all ? ['--all'] : [])]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^SESSION\s+USER\s+STATE\s+CREATED\s+EXPIRES$/m);
  return run.stdout.split('\n').find((line) => line.startsWith(id));
}

before(ensureBuilt);
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('wsgate user', () => {
  it('adds a user with the password from standard input and lists it with default scopes, active', async () => {
    const dataDir = freshDataDir();
    const add = await wsgate(
      ['user', 'add', 'alice', '--data-dir', dataDir],
      'correct horse battery\n',
    );
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.stdout, 'created user alice\n');

    const list = await wsgate(['user', 'list', '--data-dir', dataDir]);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^USERNAME\s+STATE\s+SCOPES\s+CREATED$/);
    assert.equal(lines.length, 2);
    assert.match(
      lines[1] ?? '',
      /^alice\s+active\s+chat:read chat:write\s+\d{4}-\d\d-\d\dT[\d:.]+Z$/,
    );
    assert.ok(
      !`${add.stdout}${add.stderr}${list.stdout}`.includes('correct horse'),
      'the password is never echoed',
    );
  });

  it('refuses to add the same user twice with exit code 1 and a clear message', async () => {
    const dataDir = freshDataDir();
    await addUser(dataDir, 'alice');
    const again = await wsgate(
      ['user', 'add', 'alice', '--data-dir', dataDir],
      'another password\n',
    );
    assert.equal(again.code, 1);
    assert.match(again.stderr, /user "alice" already exists/);
    const list = await wsgate(['user', 'list', '--data-dir', dataDir]);
    assert.equal(list.stdout.split('\n').filter((line) => line.startsWith('alice')).length, 1);
  });

  it('has no way to take a password from argv: --password is an unknown option (exit 2)', async () => {
    const dataDir = freshDataDir();
    const run = await wsgate(
      ['user', 'add', 'bob', '--password', 'x', '--data-dir', dataDir],
      'pw-from-stdin\n',
    );
    assert.equal(run.code, 2);
    assert.equal(
      run.stderr,
      'wsgate user add: unknown option --password (wsgate user add --help)\n',
    );
    await addUser(dataDir, 'carol');
    const list = await wsgate(['user', 'list', '--data-dir', dataDir]);
    assert.doesNotMatch(list.stdout, /^bob/m, 'bob was not created');
  });

  it('fails when standard input holds no password', async () => {
    const dataDir = freshDataDir();
    const run = await wsgate(['user', 'add', 'dave', '--data-dir', dataDir], '');
    assert.equal(run.code, 1);
    assert.match(run.stderr, /no password on standard input/);
  });

  it('refuses a password shorter than 8 characters outside demo mode', async () => {
    const dataDir = freshDataDir();
    const run = await wsgate(['user', 'add', 'erin', '--data-dir', dataDir], 'abcdefg\n');
    assert.equal(run.code, 1);
    assert.match(run.stderr, /at least 8 characters/);
    // Characters, not UTF-16 units: four emoji are four.
    const emoji = await wsgate(['user', 'add', 'erin', '--data-dir', dataDir], '😀😀😀😀\n');
    assert.equal(emoji.code, 1);
    assert.match(emoji.stderr, /at least 8 characters/);
  });

  it('changes a password from standard input and reports the sessions it revoked', async () => {
    const dataDir = freshDataDir();
    await addUser(dataDir, 'alice');
    const first = await issueJson(dataDir, 'alice');
    const second = await issueJson(dataDir, 'alice');

    const run = await wsgate(
      ['user', 'passwd', 'alice', '--data-dir', dataDir],
      'a brand new password\n',
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'password changed for alice; 2 session(s) revoked\n');
    for (const { session_id: id } of [first, second]) {
      assert.equal(await sessionRow(dataDir, id), undefined);
      assert.match((await sessionRow(dataDir, id, true)) ?? '', /revoked \(password_change\)/);
    }

    const unknown = await wsgate(
      ['user', 'passwd', 'nobody', '--data-dir', dataDir],
      'whatever1\n',
    );
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no user "nobody"/);
  });

  it('disables a user, who then gets no token', async () => {
    const dataDir = freshDataDir();
    await addUser(dataDir, 'alice');
    const issued = await issueJson(dataDir, 'alice');

    const disable = await wsgate(['user', 'disable', 'alice', '--data-dir', dataDir]);
    assert.equal(disable.code, 0, disable.stderr);
    assert.equal(disable.stdout, 'disabled user alice; 1 session(s) revoked\n');
    assert.match(
      (await sessionRow(dataDir, issued.session_id, true)) ?? '',
      /revoked \(user_disabled\)/,
    );

    const list = await wsgate(['user', 'list', '--data-dir', dataDir]);
    assert.match(list.stdout, /^alice\s+disabled\s/m);

    const token = await wsgate(['token', 'issue', 'alice', '--data-dir', dataDir]);
    assert.equal(token.code, 1);
    assert.match(token.stderr, /no active user "alice"/);
    assert.equal(token.stdout, '');
  });
});

describe('wsgate token issue', () => {
  it('prints a signed access token for the user', async () => {
    const dataDir = freshDataDir();
    await addUser(dataDir, 'alice');
    const run = await wsgate(['token', 'issue', 'alice', '--data-dir', dataDir]);
    assert.equal(run.code, 0, run.stderr);
    const token = run.stdout.trim();
    assert.equal(run.stdout, `${token}\n`);
    const parts = token.split('.');
    assert.equal(parts.length, 3);
    assert.ok(parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p)));

    const header = decodeJwtPart(parts[0]);
    const payload = decodeJwtPart(parts[1]);
    assert.equal(header.alg, 'EdDSA');
    assert.equal(header.typ, 'at+jwt');
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.type, 'access');
    assert.equal(payload.scope, 'chat:read chat:write');
    assert.equal(payload.iss, defaultIssuer);
    assert.equal(payload.aud, 'wsgate');
    assert.equal((payload.exp as number) - (payload.iat as number), 900);

    // The signature holds against the key pair the CLI stored in the data dir.
    const stored = JSON.parse(readFileSync(join(dataDir, keyFileName), 'utf8')) as {
      keys: StoredKey[];
    };
    const claims = await verifyToken(keySetFromStoredKeys(stored.keys), token, {
      type: 'access',
      issuer: defaultIssuer,
      audience: 'wsgate',
      now: Date.now(),
    });
    assert.equal(claims.sub, 'alice');
    assert.equal(statSync(join(dataDir, keyFileName)).mode & 0o777, 0o600);
  });

  it('prints access token, refresh token and session id as JSON with --json', async () => {
    const dataDir = freshDataDir();
    await addUser(dataDir, 'alice');
    const issued = await issueJson(dataDir, 'alice');
    assert.equal(issued.token_type, 'bearer');
    assert.equal(issued.expires_in, 900);
    assert.equal(issued.scope, 'chat:read chat:write');
    assert.match(issued.session_id, /^[0-9a-f-]{36}$/);
    const access = decodeJwtPart(issued.access_token.split('.')[1]);
    const refresh = decodeJwtPart(issued.refresh_token.split('.')[1]);
    assert.equal(access.type, 'access');
    assert.equal(refresh.type, 'refresh');
    assert.equal(access.sid, issued.session_id);
    assert.equal(refresh.sid, issued.session_id);
  });

  it('refuses an unknown user', async () => {
    const dataDir = freshDataDir();
    const run = await wsgate(['token', 'issue', 'nobody', '--data-dir', dataDir]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /no active user "nobody"/);
  });
});

describe('wsgate sessions', () => {
  it('lists an issued session as active, and after revoke shows it only with --all, as revoked (admin)', async () => {
    const dataDir = freshDataDir();
    await addUser(dataDir, 'alice');
    const { session_id: id } = await issueJson(dataDir, 'alice');
    const { session_id: other } = await issueJson(dataDir, 'alice');

    assert.match((await sessionRow(dataDir, id)) ?? '', new RegExp(`^${id}\\s+alice\\s+active\\s`));

    const revoke = await wsgate(['sessions', 'revoke', id, '--data-dir', dataDir]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.equal(revoke.stdout, `revoked session ${id}\n`);

    assert.equal(await sessionRow(dataDir, id), undefined);
    assert.match(
      (await sessionRow(dataDir, id, true)) ?? '',
      new RegExp(`^${id}\\s+alice\\s+revoked \\(admin\\)\\s`),
    );
    assert.match(
      (await sessionRow(dataDir, other)) ?? '',
      /\sactive\s/,
      'the other session lives on',
    );

    const again = await wsgate(['sessions', 'revoke', id, '--data-dir', dataDir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no live session/);
  });

  it('filters by --user and revokes every session of a user with --user', async () => {
    const dataDir = freshDataDir();
    await addUser(dataDir, 'alice');
    await addUser(dataDir, 'bob');
    const a = await issueJson(dataDir, 'alice');
    const b = await issueJson(dataDir, 'bob');

    const listBob = await wsgate(['sessions', 'list', '--user', 'bob', '--data-dir', dataDir]);
    assert.ok(listBob.stdout.includes(b.session_id));
    assert.ok(!listBob.stdout.includes(a.session_id));

    const revoke = await wsgate(['sessions', 'revoke', '--user', 'alice', '--data-dir', dataDir]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.equal(revoke.stdout, 'revoked 1 session(s) of alice\n');
    assert.equal(await sessionRow(dataDir, a.session_id), undefined);
    assert.ok(await sessionRow(dataDir, b.session_id));
  });
});

describe('wsgate usage errors', () => {
  it('refuses serve --demo on a non-loopback host with exit code 2, before touching the data dir', async () => {
    const dataDir = join(freshDataDir(), 'never');
    const run = await wsgate(['serve', '--demo', '--host', '0.0.0.0', '--data-dir', dataDir]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /loopback/);
    assert.match(run.stderr, /0\.0\.0\.0/);
    assert.ok(!existsSync(dataDir));
  });

  it('answers an unknown command with exit code 2 and one line listing the commands', async () => {
    const run = await wsgate(['frobnicate', '--data-dir', freshDataDir()]);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /^wsgate: unknown command "frobnicate"; the commands are serve, user, token, sessions, audit\b.*\(wsgate --help\)\n$/,
    );
  });

  // main() opens the runtime (creating the data dir, the database and a signing key) before it
  // looks at the command, so a typo such as `wsgate sever` leaves a fresh ./data behind.
  it('does not create a data dir for an unknown command', async () => {
    const dataDir = join(freshDataDir(), 'never');
    const run = await wsgate(['frobnicate', '--data-dir', dataDir]);
    assert.equal(run.code, 2);
    assert.ok(!existsSync(dataDir), `${dataDir} was created`);
  });

  it('prints the usage with exit code 2 when no command is given, and 0 for --help', async () => {
    const none = await wsgate([]);
    assert.equal(none.code, 2);
    assert.match(none.stdout, /Usage:/);
    const help = await wsgate(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^ {2}user add <name> +create a user$/m);
  });

  it('refuses a bad option value with exit code 2 naming the option', async () => {
    const run = await wsgate([
      'user',
      'list',
      '--access-ttl',
      'soon',
      '--data-dir',
      freshDataDir(),
    ]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--access-ttl/);
  });
});

describe('wsgate usage errors are one line naming the argument, exit 2, and create nothing', () => {
  const cases: [string, string[], RegExp, NodeJS.ProcessEnv?][] = [
    [
      'a group without its command',
      ['user'],
      /^wsgate user: missing command: add, passwd, disable, enable or list /,
    ],
    ['user add without a name', ['user', 'add'], /^wsgate user add: missing <name> /],
    ['an unknown flag', ['serve', '--bogus'], /^wsgate serve: unknown option --bogus /],
    ['a flag before the command', ['--bogus'], /^wsgate: the command comes first/],
    [
      'a negative duration',
      ['serve', '--access-ttl', '-1'],
      /^wsgate serve: --access-ttl "-1" must be a duration/,
    ],
    ['a flag without its value', ['user', 'list', '--data-dir'], /--data-dir needs a value/],
    [
      'a flag of another command',
      ['user', 'list', '--json'],
      /^wsgate user list: unknown option --json /,
    ],
    [
      'a serve-only option on another command',
      ['user', 'list', '--demo'],
      /^wsgate user list: unknown option --demo /,
    ],
    [
      'an extra argument',
      ['serve', 'extra-arg'],
      /^wsgate serve: unexpected argument "extra-arg" /,
    ],
    [
      'a bad --since',
      ['audit', '--since', 'bogus'],
      /^wsgate audit: --since "bogus" must be a duration/,
    ],
    [
      'a bad --limit',
      ['audit', '--limit', '0'],
      /^wsgate audit: --limit "0" must be a whole number/,
    ],
    [
      'a bad variable',
      ['user', 'list'],
      /^wsgate user list: PORT="abc" must be a whole number/,
      { PORT: 'abc' },
    ],
    ['a session id and --user', ['sessions', 'revoke', 'abc', '--user', 'alice'], /not both/],
  ];
  for (const [what, args, message, env] of cases) {
    it(`refuses ${what}`, async () => {
      const dataDir = join(freshDataDir(), 'never');
      const run = await wsgate(
        args.includes('--data-dir') ? args : [...args, '--data-dir', dataDir],
        '',
        { WSGATE_DATA_DIR: dataDir, ...env },
      );
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trimEnd().split('\n').length, 1, run.stderr);
      assert.ok(!existsSync(dataDir), `${dataDir} was created`);
    });
  }
});

describe('wsgate help', () => {
  it('explains each command on its own: serve --help and user add --help differ', async () => {
    const serveHelp = await wsgate(['serve', '--help']);
    const addHelp = await wsgate(['user', 'add', '--help']);
    assert.equal(serveHelp.code, 0);
    assert.equal(addHelp.code, 0);
    assert.match(serveHelp.stdout, /^Usage: wsgate serve \[options\]/);
    assert.match(addHelp.stdout, /^Usage: wsgate user add <name> \[options\]/);
    assert.match(addHelp.stdout, /--scopes SCOPES/);
    assert.doesNotMatch(serveHelp.stdout, /--scopes/);
    assert.doesNotMatch(addHelp.stdout, /--demo|--origin|--max-message/);
  });

  it('lists every configuration option with its variable in serve --help', async () => {
    const { stdout } = await wsgate(['serve', '--help']);
    for (const [name, spec] of Object.entries(configOptions)) {
      assert.match(stdout, new RegExp(`^ {2}--${name}\\b`, 'm'), `--${name} is missing`);
      assert.ok(stdout.includes(spec.env), `${spec.env} is missing`);
    }
  });

  it('lists the commands of a group with wsgate user --help', async () => {
    const run = await wsgate(['user', '--help']);
    assert.equal(run.code, 0);
    for (const sub of ['add', 'passwd', 'disable', 'enable', 'list']) {
      assert.match(run.stdout, new RegExp(`wsgate user ${sub}\\b`));
    }
  });
});

interface LogLine {
  msg?: string;
  url?: string;
  level?: number;
  [key: string]: unknown;
}

interface Served {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: string;
  readonly logs: LogLine[];
  readonly stderr: () => string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `wsgate serve …` and waits for its "wsgate listening on" log line. */
async function serve(args: readonly string[]): Promise<Served> {
  const child = spawn(process.execPath, [bin, 'serve', ...args], { cwd: repo, env: cleanEnv() });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const logs: LogLine[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no "wsgate listening on" line within 15 s; stderr: ${stderr}`));
    }, 15_000);
    void exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`serve exited early (${code ?? signal}); stderr: ${stderr}`));
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      let entry: LogLine;
      try {
        entry = JSON.parse(line) as LogLine;
      } catch {
        entry = { msg: `NOT JSON: ${line}` }; // every stdout line should be a JSON log line
      }
      logs.push(entry);
      if (entry.msg?.startsWith('wsgate listening on') && typeof entry.url === 'string') {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
  });
  return { child, url, logs, stderr: () => stderr, exit };
}

describe('wsgate serve', () => {
  it(
    'listens in demo mode, answers POST /token, and exits 0 on SIGTERM',
    { timeout: 30_000 },
    async () => {
      const dataDir = freshDataDir();
      const server = await serve(['--demo', '--port', '0', '--data-dir', dataDir]);
      try {
        assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
        assert.notEqual(server.url, 'http://127.0.0.1:0');

        const res = await postForm(`${server.url}/token`, {
          username: 'johndoe',
          password: 'secret',
        });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('cache-control'), 'no-store');
        const body = (await res.json()) as {
          token_type?: string;
          access_token?: string;
          refresh_token?: string;
        };
        assert.equal(body.token_type, 'bearer');
        assert.equal(typeof body.access_token, 'string');
        assert.equal(decodeJwtPart(body.access_token?.split('.')[1]).sub, 'johndoe');

        const bad = await postForm(`${server.url}/token`, {
          username: 'johndoe',
          password: 'wrong',
        });
        assert.equal(bad.status, 400);
        assert.deepEqual(await bad.json(), {
          error: 'invalid_grant',
          error_description: 'Bad username or password',
        });
      } finally {
        server.child.kill('SIGTERM');
      }
      const { code, signal } = await server.exit;
      assert.equal(signal, null);
      assert.equal(code, 0, server.stderr());
      assert.ok(server.logs.some((l) => l.msg === 'shutting down'));
      assert.deepEqual(
        server.logs.filter((l) => l.msg?.startsWith('NOT JSON')),
        [],
        'stdout carries only JSON log lines',
      );
      const logText = JSON.stringify(server.logs);
      assert.ok(
        !logText.includes('"secret"') && !logText.includes('wrong'),
        'no password reaches the logs',
      );
      assert.ok(existsSync(join(dataDir, 'wsgate.db')));
    },
  );

  it(
    'issues a token with no --port that a server on another port accepts: both use the stored issuer',
    { timeout: 60_000 },
    async () => {
      const dataDir = freshDataDir();
      const server = await serve(['--port', '0', '--data-dir', dataDir]);
      try {
        await addUser(dataDir, 'alice');
        const issued = await issueJson(dataDir, 'alice');
        assert.equal(decodeJwtPart(issued.access_token.split('.')[1]).iss, server.url);
        const res = await fetch(`${server.url}/ws-ticket`, {
          method: 'POST',
          headers: { authorization: `Bearer ${issued.access_token}` },
        });
        assert.equal(res.status, 200);
      } finally {
        server.child.kill('SIGTERM');
        await server.exit;
      }
    },
  );

  it('refuses a first start on 0.0.0.0 without --issuer with exit 2, creating nothing', async () => {
    const dataDir = join(freshDataDir(), 'never');
    const run = await wsgate(['serve', '--host', '0.0.0.0', '--port', '0', '--data-dir', dataDir]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^wsgate serve: the first start .* 0\.0\.0\.0 needs --issuer/);
    assert.ok(!existsSync(dataDir));
  });

  it('names the file when the signing keys are not valid JSON, and the directory of a --database that does not exist', async () => {
    const dataDir = freshDataDir();
    writeFileSync(join(dataDir, keyFileName), '{');
    const keys = await wsgate(['user', 'list', '--data-dir', dataDir]);
    assert.equal(keys.code, 1);
    assert.match(keys.stderr, new RegExp(`${join(dataDir, keyFileName)} is not valid JSON`));
    const missing = join(freshDataDir(), 'no', 'such');
    const db = await wsgate(['user', 'list', '--database', `sqlite:${missing}/x.db`]);
    assert.equal(db.code, 2);
    assert.match(db.stderr, /the directory .*no\/such does not exist/);
    assert.ok(!existsSync(missing));
  });

  it('names --redis or WSGATE_REDIS, password hidden, when Redis cannot be reached', async () => {
    // Port 1 on loopback refuses at once: nothing listens there.
    const flag = await wsgate([
      'serve',
      '--port',
      '0',
      '--data-dir',
      freshDataDir(),
      '--redis',
      'redis://:hunter2@127.0.0.1:1',
    ]);
    assert.equal(flag.code, 1);
    assert.match(
      flag.stderr,
      /^wsgate serve: --redis "redis:\/\/:\*\*\*@127\.0\.0\.1:1": connect ECONNREFUSED 127\.0\.0\.1:1\n$/,
    );
    const variable = await wsgate(['user', 'list', '--data-dir', freshDataDir()], '', {
      WSGATE_REDIS: 'redis://:hunter2@127.0.0.1:1',
    });
    assert.equal(variable.code, 1);
    assert.match(
      variable.stderr,
      /^wsgate user list: WSGATE_REDIS="redis:\/\/:\*\*\*@127\.0\.0\.1:1": /,
    );
    assert.ok(!`${flag.stderr}${variable.stderr}`.includes('hunter2'));
  });

  it('names --database or WSGATE_DATABASE when the database cannot be reached', async () => {
    const flag = await wsgate(['user', 'list', '--database', 'postgres://u:pw@127.0.0.1:1/x']);
    assert.equal(flag.code, 1);
    assert.match(
      flag.stderr,
      /^wsgate user list: --database "postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/x": connect ECONNREFUSED/,
    );
    const variable = await wsgate(['user', 'list'], '', {
      WSGATE_DATABASE: 'postgres://127.0.0.1:1/x',
    });
    assert.match(
      variable.stderr,
      /^wsgate user list: WSGATE_DATABASE="postgres:\/\/127\.0\.0\.1:1\/x": /,
    );
  });

  it('says which port is busy, exit 1, creating no data dir', async () => {
    const first = await serve(['--port', '0', '--data-dir', freshDataDir()]);
    try {
      const dataDir = join(freshDataDir(), 'never');
      const port = new URL(first.url).port;
      const run = await wsgate(['serve', '--port', port, '--data-dir', dataDir]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, new RegExp(`^wsgate serve: --port ${port}: .* is already in use`));
      assert.ok(!existsSync(dataDir));
    } finally {
      first.child.kill('SIGTERM');
      await first.exit;
    }
  });

  // With --port 0 the issuer is computed before listen(), so it (and everything derived from it)
  // names port 0: the RFC 8414 metadata points clients at http://127.0.0.1:0/token.
  it(
    'advertises its real address in the RFC 8414 metadata when started on port 0',
    {
      timeout: 30_000,
    },
    async () => {
      const server = await serve(['--demo', '--port', '0', '--data-dir', freshDataDir()]);
      try {
        const res = await fetch(`${server.url}/.well-known/oauth-authorization-server`);
        assert.equal(res.status, 200);
        const meta = (await res.json()) as { issuer?: string; token_endpoint?: string };
        assert.equal(meta.token_endpoint, `${server.url}/token`);
        assert.equal(meta.issuer, server.url);
      } finally {
        server.child.kill('SIGTERM');
        await server.exit;
      }
    },
  );

  it(
    'warns at start when a non-loopback listener has a plain-HTTP issuer and no --secure-cookies',
    { timeout: 30_000 },
    async () => {
      const base = ['--host', '0.0.0.0', '--port', '0', '--issuer', 'http://gate.example'];
      const warned = await serve([...base, '--data-dir', freshDataDir()]);
      const quiet = await serve([...base, '--secure-cookies', '--data-dir', freshDataDir()]);
      try {
        // The warning comes before the "listening" line, so both are in by now.
        const warning = (s: Served) => s.logs.filter((l) => /non-loopback/.test(l.msg ?? ''));
        assert.equal(warning(warned).length, 1);
        assert.match(warning(warned)[0]?.msg ?? '', /--secure-cookies/);
        assert.equal(warning(quiet).length, 0);
      } finally {
        for (const s of [warned, quiet]) {
          s.child.kill('SIGTERM');
          await s.exit;
        }
      }
    },
  );
});
