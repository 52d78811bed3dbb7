/**
 * Resource checks on the handshake itself: a flood of handshakes, and an upgrade request that is
 * never finished (half-open, slowloris-style: a header line now and then, never the blank line).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';
import { result, type ScanContext } from './context.js';
import { seconds, statusText } from './probe.js';
import type { CheckResult } from './types.js';

export const handshakeFloodCount = 400;
export const handshakeFloodConcurrency = 50;

type Outcome = number | 'upgraded' | 'silent' | 'failed';

/** One handshake without a credential; resolves with what came back, dropping any socket at once. */
function handshake(ctx: ScanContext): Promise<Outcome> {
  return new Promise((resolve) => {
    const ws = new WebSocket(ctx.target, {
      headers: { ...ctx.base().headers },
      followRedirects: false,
      perMessageDeflate: false,
      handshakeTimeout: ctx.timeoutMs,
    });
    let done = false;
    const finish = (outcome: Outcome) => {
      if (done) return;
      done = true;
      ws.terminate();
      resolve(outcome);
    };
    ws.on('upgrade', () => finish('upgraded'));
    ws.on('unexpected-response', (req, res) => {
      res.resume();
      req.destroy();
      finish(res.statusCode ?? 0);
    });
    ws.on('error', (err: Error) => finish(/timed out/i.test(err.message) ? 'silent' : 'failed'));
  });
}

export async function checkHandshakeFlood(ctx: ScanContext): Promise<CheckResult> {
  const id = 'handshake-flood';
  const started = performance.now();
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async () => {
    while (next < handshakeFloodCount) {
      next++;
      outcomes.push(await handshake(ctx));
    }
  };
  await Promise.all(Array.from({ length: handshakeFloodConcurrency }, worker));
  const elapsed = performance.now() - started;
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = typeof o === 'number' ? statusText(o) : o === 'upgraded' ? '101' : o;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const got = `${[...counts].map(([k, n]) => `${n}× ${k}`).join(', ')} in ${seconds(Math.round(elapsed / 100) * 100)}`;
  const sent = `${handshakeFloodCount} upgrades without a credential, ${handshakeFloodConcurrency} at a time`;
  const throttled = outcomes.filter((o) => o === 429 || o === 503).length;
  if (throttled > 0) return result(id, 'held', sent, got);
  return result(
    id,
    'info',
    sent,
    got,
    'no handshake rate limit seen: limit handshakes per client address (or at the proxy)',
  );
}

/** Connects over TCP or TLS to the target's host and port. */
function openTransport(target: URL): Socket {
  const secure = target.protocol === 'wss:';
  const port = Number(target.port || (secure ? 443 : 80));
  const host = target.hostname.replace(/^\[|\]$/g, '');
  return secure
    ? tlsConnect({
        host,
        port,
        servername: host.includes(':') ? '' : host,
        ALPNProtocols: ['http/1.1'],
      })
    : netConnect({ host, port });
}

export async function checkHalfOpen(ctx: ScanContext): Promise<CheckResult> {
  const id = 'half-open';
  const limit = ctx.halfOpenMs;
  const sent = `an upgrade request that never ends: a header line every ${seconds(trickleMs(limit))}, never the blank line`;
  return new Promise((resolve) => {
    const socket = openTransport(ctx.target);
    const secure = ctx.target.protocol === 'wss:';
    let answer = '';
    let connectedAt: number | undefined;
    let trickle: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (outcome: CheckResult) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      clearInterval(trickle);
      socket.destroy();
      resolve(outcome);
    };
    const deadline = setTimeout(() => {
      finish(
        connectedAt === undefined
          ? result(
              id,
              'n/a',
              sent,
              `could not connect within ${seconds(limit)}`,
              'the check did not run',
            )
          : result(
              id,
              'WEAK',
              sent,
              `still held after ${seconds(limit)}`,
              'a client can hold a connection open with a few bytes: drop upgrade requests not complete within about 10 s',
            ),
      );
    }, limit);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      if (answer.length < 200) answer += chunk;
    });
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      connectedAt = performance.now();
      const path = `${ctx.target.pathname}${ctx.target.search}`;
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${ctx.target.host}\r\nUpgrade: websocket\r\n` +
          'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n',
      );
      let n = 0;
      trickle = setInterval(() => socket.write(`X-Scan-${++n}: 1\r\n`), trickleMs(limit));
    });
    const onGone = () => {
      if (connectedAt === undefined) {
        return finish(result(id, 'n/a', sent, 'could not connect', 'the check did not run'));
      }
      const after = seconds(Math.round((performance.now() - connectedAt) / 100) * 100);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1];
      finish(
        result(
          id,
          'held',
          sent,
          status === undefined
            ? `dropped after ${after}`
            : `${statusText(Number(status))}, dropped after ${after}`,
        ),
      );
    };
    socket.on('end', onGone);
    socket.on('close', onGone);
    socket.on('error', () => undefined);
  });
}

function trickleMs(limit: number): number {
  return Math.min(2000, Math.max(50, Math.floor(limit / 5)));
}
