import { cpus } from 'node:os';
import type { HandshakeRow } from '../scenarios/handshakes.js';
import type { EchoRow } from '../scenarios/echo.js';
import type { FanoutRow } from '../scenarios/fanout.js';
import type { MemoryRow } from '../scenarios/memory.js';
import type { KickRow } from '../scenarios/kick.js';
import type { WorkersRow } from '../scenarios/workers.js';
import type { ProxyResults } from '../scenarios/proxy.js';
import { fmt, ratio } from './stats.js';

/** Everything one run measured, as written to `bench/results/latest.json`. */
export interface Results {
  readonly date: string;
  readonly quick: boolean;
  readonly node: string;
  readonly cpu: string;
  readonly pinned: boolean;
  readonly raisedLimits: readonly string[];
  readonly handshakes?: readonly HandshakeRow[];
  readonly echo?: readonly EchoRow[];
  readonly fanout?: readonly FanoutRow[];
  readonly memory?: readonly MemoryRow[];
  readonly kick?: readonly KickRow[];
  readonly workers?: readonly WorkersRow[];
  readonly proxy?: ProxyResults;
}

/** One goal of the issue: a measured value against its bound. */
export interface Goal {
  readonly scenario: string;
  readonly value: number;
  readonly unit: 'ratio' | 'ms';
  readonly bound: number;
  readonly direction: 'at least' | 'below' | 'at most';
  readonly met: boolean;
  readonly note: string;
}

export function machine(): string {
  return `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores`;
}

function find<T extends { key: string }>(
  rows: readonly T[] | undefined,
  key: string,
): T | undefined {
  return rows?.find((r) => r.key === key);
}

/** A goal of the issue: how to read its value from a run, and the bound it must keep. */
interface GoalSpec {
  readonly scenario: string;
  readonly unit: Goal['unit'];
  readonly direction: Goal['direction'];
  readonly bound: number;
  readonly note: string;
  /** Undefined when the run did not measure it (a partial run, a skipped row). */
  value(r: Results): number | undefined;
}

/** `field` of row `key` over the same field of row `base`, when the run has both. */
function rowRatio<T extends { key: string }>(
  rows: readonly T[] | undefined,
  key: string,
  base: string,
  field: keyof T & string,
): number | undefined {
  const row = find(rows, key);
  const baseline = find(rows, base);
  if (!row || !baseline) return undefined;
  return ratio(row[field] as number, baseline[field] as number);
}

function kickP99(r: Results, key: string): number | undefined {
  const row = find(r.kick, key);
  return row && row.skipped === undefined ? row.p99Ms : undefined;
}

const goalSpecs: readonly GoalSpec[] = [
  {
    scenario: 'handshakes/s vs plain ws, no auth (every token new)',
    unit: 'ratio',
    direction: 'at least',
    bound: 0.8,
    note: 'Authorization header; each handshake checks an Ed25519 signature',
    value: (r) => rowRatio(r.handshakes, 'wsgate-header', 'ws-plain', 'perSecond'),
  },
  {
    scenario: 'handshakes/s vs plain ws, no auth (token seen before)',
    unit: 'ratio',
    direction: 'at least',
    bound: 0.8,
    note: 'a reconnecting client: the verified-token cache answers',
    value: (r) => rowRatio(r.handshakes, 'wsgate-header-seen', 'ws-plain', 'perSecond'),
  },
  {
    scenario: 'handshakes/s vs ws + the same Ed25519 check by hand (every token new)',
    unit: 'ratio',
    direction: 'at least',
    bound: 0.95,
    note: "the gate's own work beyond `ws` and the signature check",
    value: (r) => rowRatio(r.handshakes, 'wsgate-header', 'ws-crypto', 'perSecond'),
  },
  {
    scenario: 'handshakes/s vs ws + the same HS256 check by hand (every token new)',
    unit: 'ratio',
    direction: 'at least',
    bound: 0.95,
    note: "a cheap signature: the gate's own work shows",
    value: (r) => rowRatio(r.handshakes, 'wsgate-header-hs256', 'ws-crypto-hs256', 'perSecond'),
  },
  {
    scenario: 'handshakes/s vs Socket.IO + JWT',
    unit: 'ratio',
    direction: 'at least',
    bound: 2,
    note: 'both check a signature on every handshake',
    value: (r) => rowRatio(r.handshakes, 'wsgate-header', 'socketio', 'perSecond'),
  },
  {
    scenario: 'echo round trips/s vs plain ws',
    unit: 'ratio',
    direction: 'at least',
    bound: 0.95,
    note: '100 clients',
    value: (r) => rowRatio(r.echo, 'wsgate', 'ws-plain', 'perSecond'),
  },
  ...[1000, 5000].map((members): GoalSpec => ({
    scenario: `fan-out deliveries/s vs ws pre-framed, ${fmt(members)} members`,
    unit: 'ratio',
    direction: 'at least',
    bound: 0.95,
    note: 'four in flight; wsgate also stores each message',
    value: (r) => rowRatio(r.fanout, `wsgate-${members}`, `ws-preframed-${members}`, 'perSecond'),
  })),
  {
    scenario: 'fan-out deliveries/s vs ws pre-framed, 5,000 members, one in flight',
    unit: 'ratio',
    direction: 'at least',
    bound: 0.95,
    note: 'the sender waits for every member to have each message',
    value: (r) => rowRatio(r.fanout, 'wsgate-5000-1', 'ws-preframed-5000-1', 'perSecond'),
  },
  {
    scenario: 'memory per idle authenticated connection vs plain ws',
    unit: 'ratio',
    direction: 'at most',
    bound: 1.2,
    note: 'RSS after a full collection',
    value: (r) => rowRatio(r.memory, 'wsgate', 'ws-plain', 'rssPerConnection'),
  },
  {
    scenario: 'revocation kick p99, one node',
    unit: 'ms',
    direction: 'below',
    bound: 50,
    note: 'from POST /logout to the close at the client',
    value: (r) => kickP99(r, 'local'),
  },
  ...(['handshakes', 'echo'] as const).map((what): GoalSpec => ({
    scenario: `${what}/s, --workers 2 vs --workers 1`,
    unit: 'ratio',
    direction: 'at least',
    bound: 1.8,
    note: 'the goal is for two free cores; see "All cores" for the cores each side got',
    value: (r) => {
      const one = find(r.workers, 'workers-1');
      const two = find(r.workers, 'workers-2');
      if (!one || !two) return undefined;
      return what === 'echo'
        ? ratio(two.echo.perSecond, one.echo.perSecond)
        : ratio(two.handshakesPerSecond, one.handshakesPerSecond);
    },
  })),
  {
    scenario: 'proxied echo round trips/s vs direct to the same upstream',
    unit: 'ratio',
    direction: 'at least',
    bound: 0.5,
    note: '100 clients; wsgate and the upstream share one core',
    value: (r) => rowRatio(r.proxy?.echo, 'proxied', 'direct', 'perSecond'),
  },
  {
    scenario: 'memory per idle proxied socket (wsgate) vs a direct one (upstream)',
    unit: 'ratio',
    direction: 'at most',
    bound: 2,
    note: "wsgate's RSS holds both legs of each proxied socket",
    value: (r) => {
      const proxied = find(r.proxy?.memory, 'proxied');
      const direct = find(r.proxy?.memory, 'direct');
      return proxied && direct ? ratio(proxied.gatewayRss, direct.upstreamRss) : undefined;
    },
  },
  {
    scenario: 'revocation kick p99, across workers',
    unit: 'ms',
    direction: 'below',
    bound: 50,
    note: 'logout on one worker, sockets on both, through the primary',
    value: (r) => kickP99(r, 'workers'),
  },
  {
    scenario: 'revocation kick p99, across two nodes',
    unit: 'ms',
    direction: 'below',
    bound: 100,
    note: 'logout on node A, socket on node B, over Redis',
    value: (r) => kickP99(r, 'cluster'),
  },
];

/** The issue's goals, computed from the rows of one run (a goal whose rows are missing is left out). */
export function goals(r: Results): Goal[] {
  const out: Goal[] = [];
  for (const spec of goalSpecs) {
    const value = spec.value(r);
    if (value === undefined) continue;
    const met =
      Number.isFinite(value) &&
      (spec.direction === 'at least'
        ? value >= spec.bound
        : spec.direction === 'below'
          ? value < spec.bound
          : value <= spec.bound);
    const { scenario, unit, direction, bound, note } = spec;
    out.push({ scenario, value, unit, bound, direction, met, note });
  }
  return out;
}

const kib = (bytes: number) => fmt(bytes / 1024);
const x = (value: number) => `${fmt(value)}×`;

/** A Markdown table; `align` has one letter per column, `l` or `r` (default: text left, rest right). */
function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  align?: string,
): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  const rule = head.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'l' ? '---' : '---:'));
  return [line(head), line(rule), ...rows.map(line)].join('\n');
}

/** The report as Markdown: goals first, then every scenario's table. */
export function markdown(r: Results, name = 'latest'): string {
  const parts: string[] = [];
  parts.push(`# wsgate benchmarks: ${name === 'latest' ? 'latest full' : name} run\n`);
  parts.push(
    `${r.date} · ${r.quick ? '`--quick` (smoke run: short windows, one round)' : 'full run (medians of several rounds)'} · Node ${r.node} · ${r.cpu} · ${r.pinned ? 'servers pinned to core 0, load generator to core 1 (taskset)' : 'not pinned (needs taskset and two cores)'}.\n`,
  );
  parts.push(
    `Every figure is from this one run; compare ratios, not absolute numbers, across machines. Limits raised for the load generator (one address, one user, thousands of sockets): \`${r.raisedLimits.join(' ')}\`; every other default stands.\n`,
  );
  const g = goals(r);
  if (g.length > 0) {
    parts.push('## Goals\n');
    parts.push(
      table(
        ['scenario', 'measured', 'goal', 'met', 'notes'],
        g.map((item) => [
          item.scenario,
          item.unit === 'ratio' ? x(item.value) : `${fmt(item.value)} ms`,
          `${item.direction === 'at least' ? '≥' : item.direction === 'below' ? '<' : '≤'} ${item.unit === 'ratio' ? x(item.bound) : `${fmt(item.bound)} ms`}`,
          item.met ? 'yes' : '**no**',
          item.note,
        ]),
        'lrrll',
      ),
    );
    parts.push(`\n![goals](${name}.svg)\n`);
  }
  if (r.handshakes) {
    const plain = find(r.handshakes, 'ws-plain');
    const sio = find(r.handshakes, 'socketio');
    parts.push('## Authenticated handshakes\n');
    parts.push(
      "32 clients open a socket, wait for the greeting and close it, over and over. wsgate tokens come from a pool of 10,000, more than its verified-token cache holds, so every wsgate row checks a signature except “token seen before”, where 100 tokens are reused as reconnecting clients would; the “RS256 external issuer” row checks an identity provider's RS256 access tokens (1,000 users, never cached). Server CPU is the server process's own CPU time per handshake; \"load core\" is how busy the load generator's core was (near 100 %, the client set the pace).\n",
    );
    parts.push(
      table(
        [
          'server · transport',
          'handshakes/s',
          'vs ws (no auth)',
          'vs Socket.IO',
          'server CPU µs',
          'load core',
          'failed',
        ],
        r.handshakes.map((row) => [
          row.label,
          fmt(row.perSecond),
          plain ? x(ratio(row.perSecond, plain.perSecond)) : '–',
          sio ? x(ratio(row.perSecond, sio.perSecond)) : '–',
          fmt(row.cpuUs),
          `${fmt(row.loadCpu * 100)} %`,
          String(row.failed),
        ]),
      ),
    );
    parts.push('');
  }
  if (r.echo) {
    const plain = find(r.echo, 'ws-plain');
    parts.push('## Echo round trips, 100 clients\n');
    parts.push(
      table(
        ['server', 'round trips/s', 'vs ws', 'p50 ms', 'p99 ms', 'server CPU µs'],
        r.echo.map((row) => [
          row.label,
          fmt(row.perSecond),
          plain ? x(ratio(row.perSecond, plain.perSecond)) : '–',
          fmt(row.p50Ms),
          fmt(row.p99Ms),
          fmt(row.cpuUs),
        ]),
      ),
    );
    parts.push('');
  }
  if (r.fanout) {
    parts.push('## Chat fan-out, one sender\n');
    parts.push(
      'Members join one room; the sender keeps four messages in flight, or one (it waits for every member to have each message before the next). A delivery is one member receiving one message; its time runs from the send.\n',
    );
    parts.push(
      table(
        [
          'members',
          'in flight',
          'server',
          'deliveries/s',
          'vs ws',
          'vs pre-framed',
          'p50 ms',
          'p99 ms',
          'server CPU µs',
        ],
        r.fanout.map((row) => {
          // Results from before the one-in-flight rows have no window: four.
          const window = row.window ?? 4;
          const suffix = window === 4 ? '' : `-${window}`;
          const base = find(r.fanout, `ws-plain-${row.members}${suffix}`);
          const framed = find(r.fanout, `ws-preframed-${row.members}${suffix}`);
          return [
            fmt(row.members),
            String(window),
            row.label,
            fmt(row.perSecond),
            base ? x(ratio(row.perSecond, base.perSecond)) : '–',
            framed ? x(ratio(row.perSecond, framed.perSecond)) : '–',
            fmt(row.p50Ms),
            fmt(row.p99Ms),
            fmt(row.cpuUs),
          ];
        }),
      ),
    );
    parts.push('');
  }
  if (r.workers) {
    const one = find(r.workers, 'workers-1');
    parts.push('## All cores: `--workers`\n');
    parts.push(
      "`wsgate serve --workers n` as the CLI runs it: handshakes (Authorization header, every token new) and echo round trips (100 clients). Server CPU is the primary's and every worker's together. The cores column says where the server ran: on a machine with fewer cores than workers plus the load generator, the workers share a core with the client that measures them, and the ratio says more about the machine than about wsgate.\n",
    );
    parts.push(
      table(
        [
          'workers',
          'cores',
          'handshakes/s',
          'vs 1',
          'server CPU µs',
          'echo/s',
          'vs 1',
          'echo p99 ms',
        ],
        r.workers.map((row) => [
          row.label,
          row.cores,
          fmt(row.handshakesPerSecond),
          one ? x(ratio(row.handshakesPerSecond, one.handshakesPerSecond)) : '–',
          fmt(row.handshakeCpuUs),
          fmt(row.echo.perSecond),
          one ? x(ratio(row.echo.perSecond, one.echo.perSecond)) : '–',
          fmt(row.echo.p99Ms),
        ]),
        'llrrrrrr',
      ),
    );
    parts.push('');
  }
  if (r.memory) {
    const plain = find(r.memory, 'ws-plain');
    parts.push('## Memory per idle authenticated connection\n');
    parts.push(
      table(
        ['server', 'connections', 'RSS KiB each', 'vs ws', 'JS heap KiB each'],
        r.memory.map((row) => [
          row.label,
          fmt(row.connections),
          kib(row.rssPerConnection),
          plain ? x(ratio(row.rssPerConnection, plain.rssPerConnection)) : '–',
          kib(row.heapPerConnection),
        ]),
      ),
    );
    parts.push('');
  }
  if (r.proxy) {
    const direct = find(r.proxy.echo, 'direct');
    parts.push('## Proxy mode: `wsgate --proxy` against a direct connection\n');
    parts.push(
      "The same plain `ws` echo server is the upstream of both rows; proxied, clients send `Authorization: Bearer` to wsgate's `/app`, which pipes each socket to it. wsgate and the upstream share the server core. Server CPU is per round trip: both processes, then each.\n",
    );
    parts.push(
      table(
        [
          'path',
          'round trips/s',
          'vs direct',
          'p50 ms',
          'p99 ms',
          'server CPU µs',
          'upstream µs',
          'wsgate µs',
        ],
        r.proxy.echo.map((row) => [
          row.label,
          fmt(row.perSecond),
          direct ? x(ratio(row.perSecond, direct.perSecond)) : '–',
          fmt(row.p50Ms),
          fmt(row.p99Ms),
          fmt(row.cpuUs),
          fmt(row.upstreamCpuUs),
          row.key === 'direct' ? '–' : fmt(row.gatewayCpuUs),
        ]),
      ),
    );
    parts.push('');
    const directMemory = find(r.proxy.memory, 'direct');
    parts.push(
      'Idle sockets, RSS after a full collection, per socket, each case in fresh processes: in the upstream, and in wsgate (both legs of a proxied socket, each with its own session and token).\n',
    );
    parts.push(
      table(
        [
          'path',
          'connections',
          'upstream RSS KiB each',
          'wsgate RSS KiB each',
          'wsgate vs direct',
          'upstream heap KiB',
          'wsgate heap KiB',
        ],
        r.proxy.memory.map((row) => [
          row.label,
          fmt(row.connections),
          kib(row.upstreamRss),
          row.key === 'direct' ? '–' : kib(row.gatewayRss),
          row.key === 'direct' || !directMemory
            ? '–'
            : x(ratio(row.gatewayRss, directMemory.upstreamRss)),
          kib(row.upstreamHeap),
          row.key === 'direct' ? '–' : kib(row.gatewayHeap),
        ]),
      ),
    );
    parts.push('');
  }
  if (r.kick) {
    parts.push('## Revocation kick latency\n');
    parts.push(
      table(
        ['where', 'kicks', 'p50 ms', 'p99 ms', 'max ms'],
        r.kick.map((row) =>
          row.skipped === undefined
            ? [row.label, String(row.kicks), fmt(row.p50Ms), fmt(row.p99Ms), fmt(row.maxMs)]
            : [row.label, `skipped: ${row.skipped}`, '–', '–', '–'],
        ),
      ),
    );
    parts.push('');
  }
  return `${parts.join('\n')}\n`;
}

const escape = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A bar per goal: the measured value, a mark at the goal, green when met. */
export function svg(r: Results): string {
  const g = goals(r);
  const rowHeight = 34;
  const labelWidth = 430;
  const barWidth = 360;
  // Every bar is the value over its goal: the goal is one line at the same place in every row.
  const mark = labelWidth + barWidth * 0.6;
  const height = 60 + g.length * rowHeight;
  const bars = g.map((item, i) => {
    const y = 40 + i * rowHeight;
    const share = Number.isFinite(item.value) ? item.value / item.bound : 0;
    const width = Math.max(1, Math.min(barWidth, share * (mark - labelWidth)));
    const text = item.unit === 'ratio' ? x(item.value) : `${fmt(item.value)} ms`;
    const bound = `${item.direction === 'at least' ? '≥' : item.direction === 'below' ? '<' : '≤'} ${
      item.unit === 'ratio' ? x(item.bound) : `${fmt(item.bound)} ms`
    }`;
    const textX = Math.max(labelWidth + width, mark) + 8;
    return [
      `<text x="${labelWidth - 10}" y="${y + 15}" text-anchor="end">${escape(item.scenario)}</text>`,
      `<rect x="${labelWidth}" y="${y}" width="${width.toFixed(1)}" height="20" fill="${item.met ? '#2f855a' : '#c53030'}"/>`,
      `<text x="${textX.toFixed(1)}" y="${y + 15}">${escape(text)} (goal ${escape(bound)})</text>`,
    ].join('\n  ');
  });
  const bottom = 40 + g.length * rowHeight;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + barWidth + 200}" height="${height}" font-family="sans-serif" font-size="13">
  <rect width="100%" height="100%" fill="#ffffff"/>
  <text x="10" y="22" font-size="15" font-weight="bold">wsgate against its goals (${escape(r.date)}${r.quick ? ', quick run' : ''})</text>
  ${bars.join('\n  ')}
  <line x1="${mark}" x2="${mark}" y1="34" y2="${bottom}" stroke="#1a202c" stroke-width="2" stroke-dasharray="4 3"/>
  <text x="${mark}" y="${bottom + 16}" text-anchor="middle" font-size="12">goal (bars are the measured value over the goal; green = met)</text>
</svg>
`;
}
