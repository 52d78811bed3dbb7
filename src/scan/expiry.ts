/**
 * Whether a socket outlives its token: with a token that expires within two minutes, the scanner
 * keeps a socket open past `exp` and watches for the server to close it.
 */
import { notApplicable, result, type ScanContext } from './context.js';
import { expiryOf } from './jwt.js';
import { describe, closeText, seconds } from './probe.js';
import { undecided } from './auth.js';
import type { CheckResult } from './types.js';
import { Watch } from './watch.js';

export const expiryHorizonMs = 2 * 60_000;

export async function checkTokenExpiry(ctx: ScanContext): Promise<CheckResult> {
  const id = 'token-expiry';
  if (ctx.token === undefined) return notApplicable(id, 'needs a credential (--token)');
  const exp = expiryOf(ctx.jwt);
  if (exp === undefined) return notApplicable(id, 'the credential is not a JWT with an exp claim');
  const expMs = exp * 1000;
  const left = expMs - ctx.now();
  if (left > expiryHorizonMs) {
    return notApplicable(
      id,
      `the token expires in ${Math.round(left / 60_000)} min; give one that expires within 2 minutes to test this`,
    );
  }
  if (left <= 0) return notApplicable(id, 'the token has already expired');
  const sent = `the credential ${ctx.how}, then waited past its exp (in ${seconds(Math.round(left / 100) * 100)})`;
  const { answer, socket } = await ctx.probe(ctx.presenting(ctx.token), { keep: true });
  if (!socket) {
    return result(
      id,
      'n/a',
      sent,
      describe(answer, ctx.timeoutMs),
      undecided(answer) ?? 'the credential was not accepted',
    );
  }
  const watch = new Watch(socket);
  // Clocks differ: the server gets the scan's timeout past exp to act.
  const closed = await watch.closes(Math.max(0, expMs + ctx.timeoutMs - ctx.now()));
  const at = ctx.now() - expMs;
  socket.terminate();
  if (!closed) {
    return result(
      id,
      'WEAK',
      sent,
      `still open ${seconds(Math.round(at / 100) * 100)} after exp`,
      'the socket outlives its token: close it at exp (or take a new token in band)',
    );
  }
  const when =
    at >= 0
      ? `${seconds(Math.round(at / 100) * 100)} after exp`
      : `${seconds(Math.round(-at / 100) * 100)} before exp`;
  const got = `${closeText(closed.code, closed.reason)} ${when}`;
  if (at < -ctx.timeoutMs) {
    return result(
      id,
      'n/a',
      sent,
      got,
      'the server closed the socket well before exp, for its own reasons',
    );
  }
  return result(id, 'held', sent, got);
}
