/**
 * Cross-site WebSocket hijacking checks: a foreign, a `null` and a missing Origin, and a Host of
 * another name (DNS rebinding). Browsers attach cookies on their own, so these matter with the
 * cookie transport or where no credential is needed at all; with a bearer token, which a page on
 * another site does not have, an accepted foreign Origin is reported as `info`.
 */
import { notApplicable, type ScanContext } from './context.js';
import { expectRefusal } from './auth.js';
import type { Attempt } from './probe.js';
import type { CheckId, CheckResult, Verdict } from './types.js';

export const foreignOrigin = 'https://wsgate-scan.invalid';
export const rebindingHost = 'rebind.wsgate-scan.invalid';

/** The credential (or none, on a credential-free endpoint) with these Origin and Host headers. */
function credentialWith(ctx: ScanContext, headers: { origin?: string; host?: string }): Attempt {
  const attempt = ctx.token === undefined ? ctx.base() : ctx.presenting(ctx.token);
  const rest = Object.fromEntries(
    Object.entries(attempt.headers ?? {}).filter(([name]) => name !== 'origin'),
  );
  return { ...attempt, headers: { ...rest, ...headers } };
}

/** Whether a browser would attach the credential by itself: a cookie, or no credential at all. */
function ambient(ctx: ScanContext): boolean {
  return ctx.credentialFree || (ctx.transport === 'cookie' && ctx.token !== undefined);
}

function onAccept(ctx: ScanContext, id: CheckId): { verdict: Verdict; note: string } {
  if (id === 'origin-missing') {
    return ctx.transport === 'cookie' && ctx.token !== undefined
      ? {
          verdict: 'WEAK',
          note: 'a cookie was accepted without any Origin: check Origin fail-closed for cookies',
        }
      : { verdict: 'info', note: 'non-browser clients send no Origin; browsers always do' };
  }
  if (ambient(ctx)) {
    return {
      verdict: 'WEAK',
      note: ctx.credentialFree
        ? "any site's pages can open this endpoint from their visitors' browsers: check Origin"
        : "a page on another site can open this socket with its visitor's cookie: check Origin " +
          'against an allow-list (cross-site WebSocket hijacking)',
    };
  }
  return {
    verdict: 'info',
    note: `accepted, but harmless here: a page on another site cannot present a credential sent ${ctx.how}`,
  };
}

async function originCheck(
  ctx: ScanContext,
  id: CheckId,
  sent: string,
  headers: { origin?: string; host?: string },
): Promise<CheckResult> {
  if (ctx.token === undefined && !ctx.credentialFree) {
    return notApplicable(id, 'needs a credential (--token)');
  }
  const { answer } = await ctx.probe(credentialWith(ctx, headers));
  return expectRefusal(ctx, id, sent, answer, onAccept(ctx, id));
}

export function checkForeignOrigin(ctx: ScanContext): Promise<CheckResult> {
  return originCheck(ctx, 'origin-foreign', `the credential with Origin: ${foreignOrigin}`, {
    origin: foreignOrigin,
  });
}

export function checkNullOrigin(ctx: ScanContext): Promise<CheckResult> {
  return originCheck(ctx, 'origin-null', 'the credential with Origin: null (sandboxed frames)', {
    origin: 'null',
  });
}

export function checkMissingOrigin(ctx: ScanContext): Promise<CheckResult> {
  return originCheck(ctx, 'origin-missing', 'the credential without an Origin header', {});
}

/** A page on a name that resolves to the server: Host and Origin agree, and neither is the server's. */
export function checkHostRebinding(ctx: ScanContext): Promise<CheckResult> {
  const host = ctx.target.port === '' ? rebindingHost : `${rebindingHost}:${ctx.target.port}`;
  const origin = `${ctx.target.protocol === 'wss:' ? 'https' : 'http'}://${host}`;
  return originCheck(
    ctx,
    'host-rebinding',
    `the credential with Host: ${host} and Origin: ${origin}`,
    {
      host,
      origin,
    },
  );
}
