import WebSocket from 'ws';
import type { ServerFrame } from '../../src/chat/protocol.js';

export type ChatSocket = Awaited<ReturnType<typeof chatSocket>>;

/**
 * A `/chat` socket on `url` (`ws://…/chat`) that records frames and can wait for one matching a
 * predicate; resolves once the welcome frame has arrived.
 */
export async function chatSocket(url: string, token: string) {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  const frames: ServerFrame[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data: Buffer) => {
    frames.push(JSON.parse(data.toString('utf8')) as ServerFrame);
    for (const wake of [...waiters]) wake();
  });
  const closed = new Promise<{ code: number; at: number }>((resolve) =>
    ws.once('close', (code) => resolve({ code, at: performance.now() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  function next(match: (f: ServerFrame) => boolean, timeoutMs = 3000): Promise<ServerFrame> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = frames.findIndex(match);
        if (i < 0) return false;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(frames.splice(i, 1)[0] as ServerFrame);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching frame; got ${JSON.stringify(frames)}`));
      }, timeoutMs);
      if (!check()) waiters.add(check);
    });
  }
  await next((f) => f.type === 'welcome');
  const send = (frame: object) => ws.send(JSON.stringify(frame));
  /** After a ping round trip: the frames received and not yet taken by `next`. */
  async function unclaimed(): Promise<ServerFrame[]> {
    send({ type: 'ping' });
    await next((f) => f.type === 'pong');
    return [...frames];
  }
  return { ws, next, closed, send, unclaimed };
}
