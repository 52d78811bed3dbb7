import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  formatReport,
  formatReportJson,
  scan,
  scanTransports,
  ScanUsageError,
  type ScanTransport,
} from '../scan/index.js';
import type { CliIo } from './main.js';
import { readSecret } from './prompt.js';

type ScanIo = Pick<CliIo, 'out' | 'err' | 'readSecret'>;

const stdio: ScanIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  readSecret,
};

export const scanUsage = `Usage: wsgate scan <ws-url> [--token <jwt> | --token-file <path>] [options]

Probes a WebSocket endpoint (wsgate or any other) the way an attacker would and prints one line
per check: held, WEAK, info or n/a, with what was sent and what came back. Only for servers you
own or are authorised to test. See docs/scan.md.

Options:
  --token <jwt>          a credential the endpoint accepts (visible to other local users in ps:
                         prefer --token-file)
  --token-file <path>    read the credential from a file (- for standard input)
  --transport <how>      bearer (Authorization header, the default), query (?token=),
                         subprotocol (wsgate.v1, wsgate.proxy, wsgate.bearer.<jwt>, as a
                         browser on wsgate's own and proxied routes) or cookie
  --cookie-name <name>   the cookie for --transport cookie (access_token_cookie)
  --origin <origin>      an Origin the server allows, sent with every probe not about Origin
  --timeout <seconds>    how long an upgraded socket must stay open to count as accepted (10)
  --json                 print the report as JSON

Exit codes: 0 every applicable check held, 1 some check is WEAK, 2 usage error, 3 the baseline
failed (the credential was not accepted, or the bare upgrade got neither 101, 401 nor 403).
`;

class UsageError extends Error {}

interface Parsed {
  url: string;
  token?: string;
  transport: ScanTransport;
  cookieName?: string;
  origin?: string;
  timeoutMs?: number;
  json: boolean;
}

async function parse(argv: string[], io: ScanIo): Promise<Parsed | 'help'> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        token: { type: 'string' },
        'token-file': { type: 'string' },
        transport: { type: 'string' },
        'cookie-name': { type: 'string' },
        origin: { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    // parseArgs names the flag; never echo a value (it may be a token).
    throw new UsageError((err as Error).message.split('. ')[0] ?? 'invalid arguments');
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length === 0) throw new UsageError('missing the endpoint: wsgate scan <ws-url>');
  if (positionals.length > 1) throw new UsageError('give one endpoint URL');
  const out: Parsed = {
    url: positionals[0] ?? '',
    transport: 'bearer',
    json: values.json === true,
  };

  if (values.token !== undefined && values['token-file'] !== undefined) {
    throw new UsageError('give --token or --token-file, not both');
  }
  if (values.token !== undefined) out.token = checkToken(values.token.trim(), '--token');
  if (values['token-file'] !== undefined) {
    const file = values['token-file'];
    let text: string;
    try {
      text = file === '-' ? await io.readSecret('Token: ') : readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(
        `--token-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    out.token = checkToken(text.trim(), '--token-file');
  }
  if (values.transport !== undefined) {
    if (!scanTransports.includes(values.transport as ScanTransport)) {
      throw new UsageError(`--transport must be one of ${scanTransports.join(', ')}`);
    }
    out.transport = values.transport as ScanTransport;
  }
  if (values['cookie-name'] !== undefined) {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(values['cookie-name'])) {
      throw new UsageError('--cookie-name is not a valid cookie name');
    }
    out.cookieName = values['cookie-name'];
  }
  if (values.origin !== undefined) {
    let origin: URL | undefined;
    try {
      origin = new URL(values.origin);
    } catch {
      origin = undefined;
    }
    if (
      !origin ||
      !/^https?:$/.test(origin.protocol) ||
      origin.origin !== values.origin.replace(/\/$/, '')
    ) {
      throw new UsageError('--origin must be an origin such as https://app.example');
    }
    out.origin = origin.origin;
  }
  if (values.timeout !== undefined) {
    const s = Number(values.timeout);
    if (!/^\d+(\.\d+)?$/.test(values.timeout) || s < 0.1 || s > 300) {
      throw new UsageError('--timeout must be a number of seconds from 0.1 to 300');
    }
    out.timeoutMs = Math.round(s * 1000);
  }
  return out;
}

function checkToken(token: string, flag: string): string {
  if (token === '') throw new UsageError(`${flag}: the credential is empty`);
  if (/[^\x21-\x7e]/.test(token)) {
    throw new UsageError(
      `${flag}: the credential holds whitespace, control or non-ASCII characters`,
    );
  }
  return token;
}

/** `wsgate scan`: resolves to the exit code (0, 1, 2 or 3). */
export async function scanCommand(argv: string[], io: ScanIo = stdio): Promise<number> {
  let options: Parsed | 'help';
  try {
    options = await parse(argv, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`wsgate scan: ${err.message} (see wsgate scan --help)\n`);
      return 2;
    }
    throw err;
  }
  if (options === 'help') {
    io.out(scanUsage);
    return 0;
  }
  let report;
  try {
    report = await scan({
      url: options.url,
      transport: options.transport,
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.cookieName === undefined ? {} : { cookieName: options.cookieName }),
      ...(options.origin === undefined ? {} : { origin: options.origin }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
  } catch (err) {
    if (err instanceof ScanUsageError) {
      io.err(`wsgate scan: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  io.out(options.json ? formatReportJson(report) : formatReport(report));
  return report.exitCode;
}
