import { configOptions, optionGroups, type OptionSpec } from '../config.js';
import type { FlagSpec } from './args.js';
import type { Command } from './command.js';

const width = 80;

function wrap(text: string, indent = ''): string {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(' ')) {
      if (line && indent.length + line.length + 1 + word.length > width) {
        lines.push(indent + line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(indent + line);
  }
  return lines.join('\n');
}

function synopsis(command: Command): string {
  const args = (command.args ?? []).map((a) => (a.optional ? `[${a.name}]` : `<${a.name}>`));
  return [command.name, ...args].join(' ');
}

function flagLine(name: string, spec: FlagSpec | OptionSpec, extra: string[]): string {
  const short = 'short' in spec && spec.short !== undefined ? `-${spec.short}, ` : '';
  const left = `  ${short}--${name}${spec.arg === undefined ? '' : ` ${spec.arg}`}`;
  const notes = [...extra, ...(spec.default === undefined ? [] : [`default ${spec.default}`])];
  const help = spec.kind === 'list' ? `${spec.help}` : spec.help;
  const first =
    left.length < 28 ? `${left.padEnd(28)}${help}` : `${left}\n${' '.repeat(28)}${help}`;
  return notes.length === 0 ? first : `${first}\n${' '.repeat(28)}(${notes.join('; ')})`;
}

/** Which configuration options a command accepts. */
export function configOptionsOf(command: Command): [string, OptionSpec][] {
  if (command.config === 'none') return [];
  return (Object.entries(configOptions) as [string, OptionSpec][]).filter(
    ([, spec]) => command.config === 'serve' || spec.scope === 'all',
  );
}

/** `wsgate <command> --help`. */
export function commandHelp(command: Command): string {
  const parts = [
    `Usage: wsgate ${synopsis(command)} [options]`,
    wrap(
      command.description ??
        `${command.summary[0]?.toUpperCase() ?? ''}${command.summary.slice(1)}.`,
    ),
  ];
  const own = Object.entries(command.flags ?? {}).map(([name, spec]) => flagLine(name, spec, []));
  own.push(flagLine('help', { kind: 'boolean', short: 'h', help: 'show this help' }, []));
  parts.push(`Options:\n${own.join('\n')}`);
  const config = configOptionsOf(command);
  if (config.length > 0) {
    parts.push(
      'Configuration (a flag wins over its environment variable, which wins over the default):',
    );
    for (const [group, title] of Object.entries(optionGroups)) {
      const lines = config
        .filter(([, spec]) => spec.group === group)
        .map(([name, spec]) => flagLine(name, spec, [spec.env]));
      if (lines.length > 0) parts.push(`${title}:\n${lines.join('\n')}`);
    }
  }
  return `${parts.join('\n\n')}\n`;
}

/** `wsgate --help`: the commands. */
export function globalHelp(commands: readonly Command[]): string {
  const rows = commands.map((c) => [synopsis(c), c.summary] as const);
  const left = Math.max(...rows.map(([s]) => s.length)) + 2;
  return `wsgate: authentication and authorization for WebSockets

Usage: wsgate <command> [options]

Commands:
${rows.map(([s, summary]) => `  ${s.padEnd(left)}${summary}`).join('\n')}
  ${'scan <ws-url> [options]'.padEnd(left)}security self-test of a WebSocket endpoint

Run \`wsgate <command> --help\` for what a command does and every option it takes.
Passwords are read from a prompt or standard input, never from the command line.
`;
}

/** `wsgate user --help`: the commands of one group. */
export function groupHelp(group: string, commands: readonly Command[]): string {
  const members = commands.filter((c) => c.name.startsWith(`${group} `));
  const rows = members.map((c) => [synopsis(c), c.summary] as const);
  const left = Math.max(...rows.map(([s]) => s.length)) + 2;
  return `Usage: wsgate ${group} <command> [options]

Commands:
${rows.map(([s, summary]) => `  wsgate ${s.padEnd(left)}${summary}`).join('\n')}

Run \`wsgate ${group} <command> --help\` for what a command does and every option it takes.
`;
}
