/**
 * Authentication checks: the upgrade without a credential, with garbage, with forged copies of
 * the token, and with the token in the query string.
 */
import { heldUnlessExpired, notApplicable, result, type ScanContext } from './context.js';
import { withAlgNone, withAlteredPayload, withAlteredSignature } from './jwt.js';
import { describe, mergeAttempts, type Answer } from './probe.js';
import type { CheckId, CheckResult, Verdict } from './types.js';

/** Why a probe could not be judged, or undefined when it can. */
export function undecided(answer: Answer): string | undefined {
  switch (answer.kind) {
    case 'throttled':
      return 'the server throttled the probe, so the check did not run; scan again later';
    case 'silent':
      return 'the server did not answer in time, so the check did not run';
    case 'unselected':
      return 'the server upgraded without selecting an offered subprotocol, so, as in a browser, the socket could not be used to see whether it was served';
    case 'failed':
      return 'the handshake failed before the server decided anything';
    default:
      return undefined;
  }
}

/** A probe that a safe server refuses: refused is `held`, accepted is `onAccept`. */
export function expectRefusal(
  ctx: ScanContext,
  id: CheckId,
  sent: string,
  answer: Answer,
  onAccept: { verdict: Verdict; note: string },
  carriesToken = true,
): CheckResult {
  const got = describe(answer, ctx.timeoutMs);
  const why = undecided(answer);
  if (why !== undefined) return result(id, 'n/a', sent, got, why);
  if (answer.kind === 'accepted') return result(id, onAccept.verdict, sent, got, onAccept.note);
  return carriesToken ? heldUnlessExpired(ctx, id, sent, got) : result(id, 'held', sent, got);
}

export async function checkNoCredential(ctx: ScanContext): Promise<CheckResult> {
  const { answer } = await ctx.probe(ctx.base());
  ctx.credentialFree = answer.kind === 'accepted';
  return expectRefusal(
    ctx,
    'no-credential',
    'an upgrade without any credential',
    answer,
    {
      verdict: 'WEAK',
      note: 'anyone can open this endpoint: check a credential before the upgrade',
    },
    false,
  );
}

/** Garbage and forged tokens mean something only where a missing credential is refused. */
function forgeryPrecondition(ctx: ScanContext, id: CheckId): CheckResult | undefined {
  if (ctx.credentialFree) {
    return notApplicable(id, 'the endpoint accepts upgrades without a credential (no-credential)');
  }
  return undefined;
}

export async function checkGarbageToken(ctx: ScanContext): Promise<CheckResult> {
  const skip = forgeryPrecondition(ctx, 'garbage-token');
  if (skip) return skip;
  const { answer } = await ctx.probe(ctx.presenting('not-a-token'));
  return expectRefusal(
    ctx,
    'garbage-token',
    `"not-a-token" ${ctx.how}`,
    answer,
    {
      verdict: 'WEAK',
      note: 'a credential that is not a token at all was accepted',
    },
    false,
  );
}

const forgeries = {
  'alg-none': {
    make: withAlgNone,
    sent: 'the token re-encoded with alg "none" and no signature',
    note: 'an unsigned token was accepted: allow only your signing algorithm',
  },
  'signature-altered': {
    make: withAlteredSignature,
    sent: 'the token with its signature altered',
    note: 'the signature is not verified: anyone can mint tokens',
  },
  'payload-altered': {
    make: withAlteredPayload,
    sent: 'the token with its claims altered (exp a day later) under the old signature',
    note: 'the claims are read without verifying the signature',
  },
} as const;

export async function checkForgery(
  ctx: ScanContext,
  id: keyof typeof forgeries,
): Promise<CheckResult> {
  const skip = forgeryPrecondition(ctx, id);
  if (skip) return skip;
  if (ctx.token === undefined) return notApplicable(id, 'needs a credential (--token)');
  if (ctx.jwt === undefined) return notApplicable(id, 'the credential is not a JWT');
  const forgery = forgeries[id];
  const { answer } = await ctx.probe(ctx.presenting(forgery.make(ctx.jwt)));
  return expectRefusal(ctx, id, `${forgery.sent}, ${ctx.how}`, answer, {
    verdict: 'WEAK',
    note: forgery.note,
  });
}

const queryNote =
  'a token in the URL ends up in proxy and access logs and browser history: take it from a ' +
  'header, a subprotocol or a single-use ticket';

export async function checkQueryToken(ctx: ScanContext): Promise<CheckResult> {
  const id = 'query-token';
  const skip = forgeryPrecondition(ctx, id);
  if (skip) return skip;
  if (ctx.token === undefined) return notApplicable(id, 'needs a credential (--token)');
  if (ctx.transport === 'query') {
    return result(
      id,
      'WEAK',
      'the credential in ?token= (the baseline)',
      '101, accepted',
      queryNote,
    );
  }
  const names = ['token', 'access_token'];
  const answers = await Promise.all(
    names.map(async (name) => {
      const attempt = mergeAttempts(ctx.base(), { query: { [name]: ctx.token ?? '' } });
      return { name, answer: (await ctx.probe(attempt)).answer };
    }),
  );
  const sent = 'the credential in ?token= and, separately, in ?access_token=';
  const got = answers.map((a) => `${a.name}: ${describe(a.answer, ctx.timeoutMs)}`).join('; ');
  const accepted = answers.filter((a) => a.answer.kind === 'accepted');
  if (accepted.length > 0) {
    return result(id, 'WEAK', sent, got, `accepted in ?${accepted[0]?.name}=: ${queryNote}`);
  }
  const open = answers.map((a) => undecided(a.answer)).find((why) => why !== undefined);
  if (open !== undefined) return result(id, 'n/a', sent, got, open);
  return result(id, 'held', sent, got);
}
