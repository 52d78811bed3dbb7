import { ConfigError, type OptionKind } from '../config.js';

/** A flag a command accepts: how its value is written, and its line in the command's help. */
export interface FlagSpec {
  readonly kind: OptionKind;
  /** Placeholder for the value in help, e.g. `NAME`. */
  readonly arg?: string;
  readonly help: string;
  readonly default?: string;
  /** A one-letter alias, e.g. `h` for `--help`. */
  readonly short?: string;
}

export interface ParsedArgs {
  readonly values: Record<string, string | boolean | string[]>;
  readonly positionals: string[];
}

/**
 * Reads `argv` against `flags`. Unlike `node:util` parseArgs, a value may start with `-`
 * (`--access-ttl -1` is a bad duration, not an ambiguous argument), and every refusal is one
 * line naming the argument: a {@link ConfigError}.
 */
export function parseFlags(argv: readonly string[], flags: Record<string, FlagSpec>): ParsedArgs {
  const values: Record<string, string | boolean | string[]> = {};
  const positionals: string[] = [];
  const shorts = new Map(
    Object.entries(flags).flatMap(([name, spec]) =>
      spec.short === undefined ? [] : [[spec.short, name] as const],
    ),
  );
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
    } else {
      const long = arg.length === 2 ? shorts.get(arg.slice(1)) : undefined;
      if (long === undefined) throw new ConfigError(`unknown option ${arg}`);
      name = long;
    }
    const spec = Object.hasOwn(flags, name) ? flags[name] : undefined;
    if (spec === undefined) throw new ConfigError(`unknown option --${name}`);
    if (spec.kind === 'boolean') {
      if (inline === undefined) values[name] = true;
      else if (/^(true|1|yes|on)$/i.test(inline)) values[name] = true;
      else if (/^(false|0|no|off)$/i.test(inline)) values[name] = false;
      else throw new ConfigError(`--${name} takes no value, or true/false; got "${inline}"`);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length)
        throw new ConfigError(`--${name} needs a value (${spec.arg ?? 'VALUE'})`);
      value = argv[++i] ?? '';
    }
    if (spec.kind === 'list') {
      const list = values[name];
      values[name] = Array.isArray(list) ? [...list, value] : [value];
    } else {
      if (values[name] !== undefined) throw new ConfigError(`--${name} is given twice`);
      values[name] = value;
    }
  }
  return { values, positionals };
}
