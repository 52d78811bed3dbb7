/**
 * Message checks on an accepted socket: a 16 MiB message, a flood of 300 messages a second, and a
 * text frame of invalid UTF-8. Each first sends an ordinary small text message and goes on only if
 * the socket survives it, so a server that closes on any text it does not understand is reported
 * `n/a`, not credited with a limit it may not have.
 */
import { heldUnlessExpired, notApplicable, result, type ScanContext } from './context.js';
import { closeText, describe, seconds } from './probe.js';
import { undecided } from './auth.js';
import type { CheckId, CheckResult } from './types.js';
import { Watch } from './watch.js';

export const bigMessageBytes = 16 * 1024 * 1024;
/** The big message goes out in fragments of this size, and stops once the server has closed. */
const fragmentBytes = 1024 * 1024;
let fragment: Buffer | undefined;
export const floodMessages = 300;
/** The flood is sent in this many bursts over one second. */
const floodTicks = 10;
const controlMessage = 'wsgate scan: an ordinary message';
/** "κόσμε" with a UTF-16 surrogate (U+D800) encoded as UTF-8, which no valid text contains. */
const invalidUtf8 = Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xed, 0xa0, 0x80, 0x65]);

/**
 * Opens an accepted socket and checks that it survives an ordinary message; otherwise the result
 * that says why the check cannot run.
 */
async function openControlled(
  ctx: ScanContext,
  id: CheckId,
  options: { skipUTF8Validation?: boolean } = {},
): Promise<Watch | CheckResult> {
  if (ctx.token === undefined && !ctx.credentialFree) {
    return notApplicable(id, 'needs a credential (--token)');
  }
  const attempt = ctx.token === undefined ? ctx.base() : ctx.presenting(ctx.token);
  const { answer, socket } = await ctx.probe(attempt, { keep: true, ...options });
  if (!socket) {
    return result(
      id,
      'n/a',
      `the credential ${ctx.how}`,
      describe(answer, ctx.timeoutMs),
      undecided(answer) ?? 'the credential was not accepted on this socket',
    );
  }
  const watch = new Watch(socket);
  await watch.send(controlMessage);
  if (!(await watch.survives(ctx.timeoutMs))) {
    socket.terminate();
    const closed = watch.closed;
    return result(
      id,
      'n/a',
      'an ordinary 31-byte text message',
      closed ? closeText(closed.code, closed.reason) : 'dropped',
      'the server closes on an ordinary message, so a limit cannot be told apart',
    );
  }
  return watch;
}

/** After the probe: a close is `held`; a socket still open after the wait is `onOpen`. */
async function judgeClose(
  ctx: ScanContext,
  id: CheckId,
  watch: Watch,
  sent: string,
  onOpen: { verdict: 'WEAK' | 'info'; note: string },
): Promise<CheckResult> {
  const closed = await watch.closes(ctx.timeoutMs);
  watch.ws.terminate();
  if (closed) return heldUnlessExpired(ctx, id, sent, closeText(closed.code, closed.reason));
  return result(
    id,
    onOpen.verdict,
    sent,
    `still open after ${seconds(ctx.timeoutMs)}`,
    onOpen.note,
  );
}

export async function checkMessageSize(ctx: ScanContext): Promise<CheckResult> {
  const id = 'message-size';
  const watch = await openControlled(ctx, id);
  if (!(watch instanceof Watch)) return watch;
  fragment ??= Buffer.alloc(fragmentBytes, 0x61);
  for (let sent = 0; sent < bigMessageBytes && watch.closed === undefined; sent += fragmentBytes) {
    await watch.send(fragment, false, sent + fragmentBytes >= bigMessageBytes);
  }
  return judgeClose(ctx, id, watch, 'a 16 MiB text message (in 1 MiB fragments)', {
    verdict: 'WEAK',
    note: 'no message size limit: cap messages (most need a few KiB) and close with 1009',
  });
}

export async function checkMessageFlood(ctx: ScanContext): Promise<CheckResult> {
  const id = 'message-flood';
  const watch = await openControlled(ctx, id);
  if (!(watch instanceof Watch)) return watch;
  let sent = 0;
  const started = performance.now();
  for (let tick = 0; tick < floodTicks && watch.closed === undefined; tick++) {
    const burst: Promise<void>[] = [];
    for (let i = 0; i < floodMessages / floodTicks; i++) {
      burst.push(watch.send(`wsgate scan ${++sent}`));
    }
    await Promise.all(burst);
    if (tick < floodTicks - 1)
      await watch.until(() => watch.closed !== undefined, 1000 / floodTicks);
  }
  // A busy machine may take longer than the second asked for: say what was really sent.
  const took = seconds(Math.max(1000, Math.round((performance.now() - started) / 100) * 100));
  return judgeClose(ctx, id, watch, `${sent} small text messages in ${took}`, {
    verdict: 'info',
    note: 'no message rate limit seen (the server may still drop or queue messages)',
  });
}

export async function checkInvalidUtf8(ctx: ScanContext): Promise<CheckResult> {
  const id = 'invalid-utf8';
  const watch = await openControlled(ctx, id, { skipUTF8Validation: true });
  if (!(watch instanceof Watch)) return watch;
  await watch.send(invalidUtf8, false);
  return judgeClose(ctx, id, watch, 'a text frame of invalid UTF-8', {
    verdict: 'WEAK',
    note: 'invalid UTF-8 was not refused: RFC 6455 requires closing with 1007',
  });
}
