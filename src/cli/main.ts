import { ConfigError, loadConfig, type RawOptions } from '../config.js';
import { createLogger } from '../log.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { UserError } from '../users/user-service.js';
import { UserExistsError } from '../storage/types.js';
import { parseFlags, type FlagSpec } from './args.js';
import type { CliIo, Command } from './command.js';
import { commands } from './commands/index.js';
import { commandHelp, configOptionsOf, globalHelp, groupHelp } from './help.js';
import { readSecret } from './prompt.js';
import { scanCommand } from './scan.js';

export type { CliIo } from './command.js';

const helpFlag: FlagSpec = { kind: 'boolean', short: 'h', help: 'show this help' };

function groups(): string[] {
  return [...new Set(commands.map((c) => c.name.split(' ')[0] as string))];
}

/** The command named by the leading words of argv, and the arguments after its name. */
function findCommand(argv: readonly string[]): { command: Command; rest: string[] } | string {
  const [first, second] = argv;
  const two = commands.find((c) => c.name === `${first} ${second}`);
  if (two) return { command: two, rest: argv.slice(2) };
  const one = commands.find((c) => c.name === first);
  if (one) return { command: one, rest: argv.slice(1) };
  if (first === undefined || !groups().includes(first)) {
    return `wsgate: unknown command ${JSON.stringify(first)}; the commands are ${groups().join(', ')} (wsgate --help)`;
  }
  const subs = commands
    .filter((c) => c.name.startsWith(`${first} `))
    .map((c) => c.name.slice(first.length + 1));
  const list = `${subs.slice(0, -1).join(', ')} or ${subs.at(-1) ?? ''}`;
  if (second === undefined || second.startsWith('-')) {
    return `wsgate ${first}: missing command: ${list} (wsgate ${first} --help)`;
  }
  return `wsgate ${first}: unknown command ${JSON.stringify(second)}; expected ${list} (wsgate ${first} --help)`;
}

function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** The environment with only the variables of the options `command` accepts. */
function relevantEnv(command: Command, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const names = new Set(configOptionsOf(command).map(([, spec]) => spec.env));
  return Object.fromEntries(Object.entries(env).filter(([name]) => names.has(name)));
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  // scan talks to a remote endpoint only: no config, no data dir, options of its own.
  if (argv[0] === 'scan') return scanCommand(argv.slice(1), io);
  if (argv.length === 0) {
    io.out(globalHelp(commands));
    return 2;
  }
  const [first] = argv;
  if (first === '--help' || first === '-h' || first === 'help') {
    io.out(globalHelp(commands));
    return 0;
  }
  if (first?.startsWith('-')) {
    io.err(`wsgate: the command comes first: wsgate <command> [options] (wsgate --help)\n`);
    return 2;
  }
  const found = findCommand(argv);
  if (typeof found === 'string') {
    if (wantsHelp(argv) && first !== undefined && groups().includes(first)) {
      io.out(groupHelp(first, commands));
      return 0;
    }
    io.err(`${found}\n`);
    return 2;
  }
  const { command, rest } = found;
  const prefix = `wsgate ${command.name}`;
  if (wantsHelp(rest)) {
    io.out(commandHelp(command));
    return 0;
  }

  let args: string[];
  let ownFlags: Record<string, string | boolean | string[] | undefined>;
  let config;
  let levelGiven = false;
  try {
    const configFlags = Object.fromEntries(configOptionsOf(command));
    const parsed = parseFlags(rest, { ...configFlags, ...command.flags, help: helpFlag });
    const specs = command.args ?? [];
    const required = specs.filter((a) => !a.optional).length;
    if (parsed.positionals.length < required) {
      throw new ConfigError(`missing <${specs[parsed.positionals.length]?.name ?? 'argument'}>`);
    }
    if (parsed.positionals.length > specs.length) {
      throw new ConfigError(
        `unexpected argument ${JSON.stringify(parsed.positionals[specs.length])}`,
      );
    }
    args = parsed.positionals;
    ownFlags = Object.fromEntries(
      Object.keys(command.flags ?? {}).map((name) => [name, parsed.values[name]]),
    );
    const raw = Object.fromEntries(
      Object.keys(configFlags).map((name) => [name, parsed.values[name]]),
    ) as RawOptions;
    const env = command.config === 'none' ? {} : relevantEnv(command, io.env);
    config = loadConfig(raw, env);
    levelGiven = raw['log-level'] !== undefined || Boolean(env.WSGATE_LOG_LEVEL);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`${prefix}: ${err.message} (${prefix} --help)\n`);
      return 2;
    }
    throw err;
  }

  const serving = command.config === 'serve';
  // Other commands print their results on stdout: their log goes to stderr, warnings only.
  const tty = serving ? io.stdoutIsTty : io.stderrIsTty;
  const log = createLogger(serving || levelGiven ? config.logLevel : 'warn', {
    format: config.logFormat ?? (tty ? 'pretty' : 'json'),
    destination: serving ? 1 : 2,
  });
  let runtime: Runtime | undefined;
  try {
    return await command.run({
      args,
      flags: ownFlags,
      config,
      io,
      log,
      openRuntime: async () => (runtime ??= await createRuntime(config, { log })),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`${prefix}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof UserError || err instanceof UserExistsError) {
      io.err(`${prefix}: ${err.message}\n`);
      return 1;
    }
    // A failure to start (database, keys, Redis, port): one line; the stack at debug level.
    log.debug({ err }, 'command failed');
    io.err(`${prefix}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await runtime?.close();
  }
}

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  readSecret,
  env: process.env,
  stdoutIsTty: process.stdout.isTTY,
  stderrIsTty: process.stderr.isTTY,
  onSignal: (handler) => {
    process.once('SIGINT', handler);
    process.once('SIGTERM', handler);
  },
};
