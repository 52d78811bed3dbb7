import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Runtime } from '../runtime.js';
import type { FlagSpec } from './args.js';

/** A positional argument as help shows it: `<name>`, or `[name]` when optional. */
export interface ArgSpec {
  readonly name: string;
  readonly optional?: boolean;
}

/**
 * One CLI command. To add one: a module exporting a `Command`, listed in `commands/index.ts`;
 * parsing, `--help`, usage errors and the refusal of unknown arguments follow from it.
 */
export interface Command {
  /** The words after `wsgate`, e.g. `user add`. */
  readonly name: string;
  readonly args?: readonly ArgSpec[];
  /** One line for the command list. */
  readonly summary: string;
  /** Paragraphs for `wsgate <command> --help`. */
  readonly description?: string;
  /** Flags of this command alone. */
  readonly flags?: Readonly<Record<string, FlagSpec>>;
  /**
   * Which configuration options it accepts: `serve` every one, `deployment` those that locate
   * and shape the deployment (storage, keys, token lifetimes, logging), `none` none.
   */
  readonly config: 'serve' | 'deployment' | 'none';
  run(context: CommandContext): Promise<number>;
}

export interface CommandContext {
  /** Positional arguments, as many as `args` allows; required ones are present. */
  readonly args: readonly string[];
  /** This command's own flags, by name. */
  readonly flags: Readonly<Record<string, string | boolean | string[] | undefined>>;
  /** The parsed configuration (defaults only for commands with `config: 'none'`). */
  readonly config: Config;
  readonly io: CliIo;
  /** The log, at `--log-level` (`warn` unless given for commands other than serve). */
  readonly log: Logger;
  /**
   * Opens the deployment: database, signing keys, issuer. Check every argument first, so that a
   * usage error creates nothing; the runtime is closed when the command ends.
   */
  readonly openRuntime: () => Promise<Runtime>;
}

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  readSecret(prompt: string): Promise<string>;
  readonly env: NodeJS.ProcessEnv;
  /** Whether standard output / error is a terminal (pretty logs, the banner). */
  readonly stdoutIsTty: boolean;
  readonly stderrIsTty: boolean;
  /** Registers a handler for SIGINT and SIGTERM. */
  onSignal(handler: (signal: string) => void): void;
}

/** A mistake in how the command was called: one line, exit 2, nothing created. */
export { ConfigError as UsageError } from '../config.js';
