import { parseDuration } from '../../config.js';
import { UsageError, type Command } from '../command.js';
import { table } from '../table.js';

/** `--since` is a duration back from now (`15m`, `2h`, `7d`) or a date; ms since the epoch. */
function parseSince(value: string | undefined, now: number): number {
  if (value === undefined) return now - 24 * 3600_000;
  if (/^\d+[smhd]?$/.test(value.trim())) return now - parseDuration('since', value) * 1000;
  const at = Date.parse(value);
  if (Number.isNaN(at))
    throw new UsageError(
      `--since ${JSON.stringify(value)} must be a duration such as 2h, or a date such as 2026-11-23T10:00:00Z`,
    );
  return at;
}

export const audit: Command = {
  name: 'audit',
  summary: 'print the audit log: logins, tokens, refused handshakes, revocations',
  flags: {
    since: {
      kind: 'string',
      arg: 'WHEN',
      default: '24h',
      help: 'a duration back from now (15m, 2h, 7d) or a date (2026-11-23T10:00:00Z)',
    },
    limit: {
      kind: 'string',
      arg: 'N',
      default: '100',
      help: 'at most this many events (1-100000)',
    },
    json: { kind: 'boolean', help: 'one JSON object a line' },
  },
  config: 'deployment',
  async run({ flags, io, openRuntime }) {
    const limit = flags.limit as string | undefined;
    const max = limit === undefined ? 100 : /^\d+$/.test(limit) ? Number(limit) : NaN;
    if (!Number.isSafeInteger(max) || max < 1 || max > 100_000)
      throw new UsageError(
        `--limit ${JSON.stringify(limit)} must be a whole number from 1 to 100000`,
      );
    // Validated before the deployment is opened, so that a bad value creates nothing.
    parseSince(flags.since as string | undefined, Date.now());
    const runtime = await openRuntime();
    const events = await runtime.storage.listAudit({
      since: parseSince(flags.since as string | undefined, runtime.clock()),
      limit: max,
    });
    if (flags.json === true) {
      for (const e of events) io.out(`${JSON.stringify(e)}\n`);
      return 0;
    }
    const rows = events.map((e) => [
      new Date(e.ts).toISOString(),
      e.event,
      e.username ?? '',
      e.sessionId ?? '',
      e.ip ?? '',
      e.detail === undefined ? '' : JSON.stringify(e.detail),
    ]);
    io.out(table(['TIME', 'EVENT', 'USER', 'SESSION', 'IP', 'DETAIL'], rows));
    return 0;
  },
};
