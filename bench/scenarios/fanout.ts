import { wsPlain, wsgateConnectors, type Connector, type Minted } from '../lib/connectors.js';
import { startBaseline, startWsgate, type BenchContext } from '../lib/context.js';
import type { RawWs } from '../lib/raw-ws.js';
import { Samples, medianSummary, summarise, type WindowSummary, inTurn } from '../lib/stats.js';

/**
 * Chat fan-out: `members` sockets join one room on `/chat`, and one more sends to it, keeping a
 * few messages in flight, for a fixed time. Measures deliveries per second (messages received by
 * members), the p99 time from send to delivery, and the server's CPU time per delivery. wsgate
 * stores each message and checks scopes; the baselines are a plain `ws` server that encodes each
 * message once and sends the same buffer to every member (`ws.send`, which frames it per member),
 * and one that frames it once too and writes that one frame buffer to every member's socket.
 */

export interface FanoutRow extends WindowSummary {
  readonly key: string;
  readonly label: string;
  readonly members: number;
  /** Messages the sender keeps in flight. */
  readonly window: number;
}

/**
 * Messages in flight at once: four keep the server busy while members read; one is a chat whose
 * sender waits for every member to have each message, where every delay shows.
 */
const windows = { 1000: [4], 5000: [4, 1] } as const;
const textPattern = /"text":"m(\d+)"/;

/** Opens `/chat` and joins `room`; resolves once the server has answered `joined`. */
async function joinRoom(
  connector: Connector,
  port: number,
  credential: Minted,
  room: string,
): Promise<RawWs> {
  const ws = await connector.open(port, credential, '/chat');
  ws.send(JSON.stringify({ type: 'join', room }));
  for (;;) {
    const frame = await ws.nextText();
    if (frame.startsWith('{"type":"joined"')) return ws;
  }
}

async function run(
  ctx: BenchContext,
  connector: Connector,
  port: number,
  credential: Minted,
  members: number,
  room: string,
  stats: () => Promise<{ cpuUs: number }>,
  window: number,
) {
  const sockets: RawWs[] = [];
  for (let i = 0; i < members; i += 100) {
    const batch = Math.min(100, members - i);
    sockets.push(
      ...(await Promise.all(
        Array.from({ length: batch }, () => joinRoom(connector, port, credential, room)),
      )),
    );
  }
  const sender = await joinRoom(connector, port, credential, room);
  const sentAt: number[] = [];
  const remaining: number[] = [];
  const samples = new Samples();
  let deadline = 0;
  let sent = 0;
  let inFlight = 0;
  let finish: () => void = () => undefined;
  const send = () => {
    if (performance.now() >= deadline) return inFlight === 0 ? finish() : undefined;
    const seq = sent++;
    sentAt[seq] = performance.now();
    remaining[seq] = members;
    inFlight++;
    sender.send(JSON.stringify({ type: 'send', room, text: `m${seq}` }));
  };
  const delivered = (text: string) => {
    const match = textPattern.exec(text);
    if (!match) return;
    const seq = Number(match[1]);
    samples.push(performance.now() - (sentAt[seq] as number));
    const left = (remaining[seq] as number) - 1;
    remaining[seq] = left;
    if (left === 0) {
      inFlight--;
      send();
    }
  };
  for (const ws of sockets) ws.onText = delivered;
  sender.onText = () => undefined;

  const measure = async (durationMs: number) => {
    samples.length = 0;
    const before = await stats();
    const started = performance.now();
    deadline = started + durationMs;
    await new Promise<void>((resolve, reject) => {
      // A lost delivery would leave its message in flight for ever: fail instead of hanging.
      let seen = samples.length;
      const watchdog = setInterval(() => {
        if (samples.length > seen) return void (seen = samples.length);
        clearInterval(watchdog);
        reject(new Error(`deliveries stopped with ${inFlight} messages in flight`));
      }, 10_000);
      finish = () => {
        clearInterval(watchdog);
        resolve();
      };
      for (let i = 0; i < window; i++) send();
    });
    const elapsed = performance.now() - started;
    const after = await stats();
    return summarise(samples.values(), elapsed, after.cpuUs - before.cpuUs);
  };
  await measure(ctx.seconds(0.5, 1)); // warm-up
  const result = await measure(ctx.seconds(2, 5));
  for (const ws of [...sockets, sender]) ws.close();
  return result;
}

export async function fanout(ctx: BenchContext): Promise<FanoutRow[]> {
  const rows: FanoutRow[] = [];
  for (const members of [1000, 5000] as const) {
    for (const window of windows[members]) {
      const suffix = window === 4 ? '' : `-${window}`;
      const cases = (
        [
          ['ws-plain', { ...wsPlain, label: 'ws, one pre-encoded buffer' }],
          [
            'ws-preframed',
            { ...wsPlain, server: 'ws-preframed', label: 'ws, one pre-framed buffer' },
          ],
          ['wsgate', { ...wsgateConnectors.header, label: 'wsgate /chat' }],
        ] as [string, Connector][]
      ).filter(([key]) => ctx.includes(key));
      const runs = new Map<string, WindowSummary[]>();
      for (let round = 0; round < ctx.count(1, 3); round++) {
        for (const [key, connector] of inTurn(cases, round)) {
          // Fresh servers for each run: an empty room, no history, nothing left from before.
          const wsgate = await startWsgate(ctx);
          const [credential] = await wsgate.mint(1);
          if (!credential) throw new Error('no credential minted');
          const server =
            connector.server === 'wsgate'
              ? wsgate.server
              : await startBaseline(
                  ctx,
                  connector.server === 'ws-preframed' ? 'ws-preframed' : 'ws-plain',
                  wsgate.info,
                );
          try {
            const m = await run(
              ctx,
              connector,
              server.port,
              credential,
              members,
              'bench',
              () => server.stats(),
              window,
            );
            ctx.log(
              `  fan-out ${members}×${window} in flight ${key}: ${Math.round(m.perSecond)}/s, p99 ${m.p99Ms.toFixed(1)} ms`,
            );
            runs.set(key, [...(runs.get(key) ?? []), m]);
          } finally {
            await server.stop();
            await wsgate.server.stop();
          }
        }
      }
      for (const [key, connector] of cases) {
        rows.push({
          key: `${key}-${members}${suffix}`,
          label: connector.label,
          members,
          window,
          ...medianSummary(runs.get(key) ?? []),
        });
      }
    }
  }
  return rows;
}
