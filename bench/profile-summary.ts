import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/**
 * Prints where a `--cpu-prof` profile spent its time: the functions with the most self time and
 * the share of each.
 *
 *     node --import tsx bench/profile-summary.ts <file.cpuprofile> [top] [--from=<function>] [--to=<function>] [--cpu-us=<n>]
 *
 * `--from` counts only the samples from the first one whose stack holds that function on (e.g.
 * `handleUpgrade`: the first handshake), leaving out the start-up and the tokens minted for the
 * run; `--to` stops at the first one after that whose stack holds another (e.g. `socketOnClose`:
 * the first socket closed, where a fan-out run ends). `--cpu-us` is the server CPU per operation the bench measured: each function's share of
 * the busy time (idle left out) is then also given in microseconds per operation.
 */

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
  readonly children?: number[];
}
interface Profile {
  readonly nodes: ProfileNode[];
  readonly samples: number[];
  readonly timeDeltas: number[];
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { from: { type: 'string' }, to: { type: 'string' }, 'cpu-us': { type: 'string' } },
});
const [file, topArg] = positionals;
if (!file)
  throw new Error('usage: profile-summary <file.cpuprofile> [top] [--from=fn] [--cpu-us=n]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes)
  for (const child of node.children ?? []) parent.set(child, node.id);
/** Whether the stack of `id` holds a function named `name`. */
function holds(id: number, name: string): boolean {
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    if (nodes.get(at)?.callFrame.functionName === name) return true;
  }
  return false;
}

let first = 0;
if (values.from !== undefined) {
  first = profile.samples.findIndex((id) => holds(id, values.from as string));
  if (first === -1) throw new Error(`no sample under ${values.from}`);
}
let end = profile.samples.length;
if (values.to !== undefined) {
  const to = profile.samples.findIndex((id, i) => i > first && holds(id, values.to as string));
  if (to !== -1) end = to;
}
const self = new Map<number, number>();
for (let i = first; i < end; i++) {
  const id = profile.samples[i] as number;
  // A sample's time is the delta to the next one.
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
}
const byFunction = new Map<string, number>();
let busy = 0;
for (const node of profile.nodes) {
  const time = self.get(node.id) ?? 0;
  const { functionName, url, lineNumber } = node.callFrame;
  if (functionName !== '(idle)') busy += time;
  const where = url
    .replace(/^.*node_modules\//, '')
    .replace(/^file:\/\/.*\/(src|bench|dist)\//, '$1/');
  const key = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + time);
}
const cpuUs = values['cpu-us'] === undefined ? undefined : Number(values['cpu-us']);
console.log(
  `busy ${(busy / 1000).toFixed(0)} ms${values.from === undefined ? '' : ` from the first ${values.from}`}; shares of the busy time${cpuUs === undefined ? '' : `, and of ${cpuUs} µs per operation`}`,
);
const rows = [...byFunction]
  .filter(([name]) => !name.startsWith('(idle)'))
  .sort((a, b) => b[1] - a[1])
  .slice(0, Number(topArg ?? 30));
for (const [name, time] of rows) {
  const share = time / busy;
  const perOp = cpuUs === undefined ? '' : `${(share * cpuUs).toFixed(2).padStart(7)} µs  `;
  console.log(
    `${(share * 100).toFixed(1).padStart(5)}%  ${(time / 1000).toFixed(0).padStart(6)} ms  ${perOp}${name}`,
  );
}
