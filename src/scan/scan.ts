import { createContext, notApplicable, type ScanContext } from './context.js';
import { checkForgery, checkGarbageToken, checkNoCredential, checkQueryToken } from './auth.js';
import {
  checkForeignOrigin,
  checkHostRebinding,
  checkMissingOrigin,
  checkNullOrigin,
} from './origin.js';
import { checkInvalidUtf8, checkMessageFlood, checkMessageSize } from './frames.js';
import { checkHalfOpen, checkHandshakeFlood } from './limits.js';
import { checkTokenExpiry } from './expiry.js';
import { secretsOf } from './jwt.js';
import { describe } from './probe.js';
import { checkIds, type CheckResult, type ScanOptions, type ScanReport } from './types.js';

/** A scan target that is not a ws:// or wss:// URL. */
export class ScanUsageError extends Error {
  override name = 'ScanUsageError';
}

/** Parses the endpoint; `http(s)://` is read as `ws(s)://`. */
export function parseTarget(url: string): URL {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    // Not echoed: a URL may carry a token in its query.
    throw new ScanUsageError('the endpoint is not a URL; give ws://host/path or wss://host/path');
  }
  if (target.protocol === 'http:') target.protocol = 'ws:';
  else if (target.protocol === 'https:') target.protocol = 'wss:';
  if (target.protocol !== 'ws:' && target.protocol !== 'wss:') {
    throw new ScanUsageError(`the URL must start with ws:// or wss:// (got ${target.protocol}//)`);
  }
  target.hash = '';
  return target;
}

/** The URL as a report shows it: no user info, no query (either may hold a secret). */
export function publicUrl(target: URL): string {
  return `${target.protocol}//${target.host}${target.pathname}`;
}

/**
 * Probes a WebSocket endpoint the way an attacker would and reports, check by check, whether its
 * defences held. For servers you own or are authorised to test.
 */
export async function scan(options: ScanOptions): Promise<ScanReport> {
  const target = parseTarget(options.url);
  const ctx = createContext(options, target);
  const report = await run(ctx);
  return options.token === undefined ? report : scrubReport(report, secretsOf(options.token));
}

async function run(ctx: ScanContext): Promise<ScanReport> {
  const url = publicUrl(ctx.target);
  const transport = ctx.token === undefined ? 'none' : ctx.transport;
  const baseline = await runBaseline(ctx);
  if (!baseline.ok) {
    const checks = checkIds.map((id) =>
      notApplicable(id, 'the baseline failed, so nothing else was tried'),
    );
    return { url, transport, timeoutMs: ctx.timeoutMs, baseline, checks, exitCode: 3 };
  }
  // Long waits run beside everything else.
  const halfOpen = checkHalfOpen(ctx);
  const expiry = checkTokenExpiry(ctx);
  const noCredential = await checkNoCredential(ctx);
  const handshakes = await Promise.all([
    checkGarbageToken(ctx),
    checkForgery(ctx, 'alg-none'),
    checkForgery(ctx, 'signature-altered'),
    checkForgery(ctx, 'payload-altered'),
    checkQueryToken(ctx),
    checkForeignOrigin(ctx),
    checkNullOrigin(ctx),
    checkMissingOrigin(ctx),
    checkHostRebinding(ctx),
  ]);
  const messages = await Promise.all([
    checkMessageSize(ctx),
    checkMessageFlood(ctx),
    checkInvalidUtf8(ctx),
  ]);
  // Last: a server that throttles the flood would throttle every check after it.
  const flood = await checkHandshakeFlood(ctx);
  const all = [noCredential, ...handshakes, ...messages, flood, await halfOpen, await expiry];
  const byId = new Map(all.map((c) => [c.id, c]));
  const checks = checkIds.map((id) => byId.get(id) ?? notApplicable(id, 'not run'));
  const exitCode = checks.some((c) => c.verdict === 'WEAK') ? 1 : 0;
  return { url, transport, timeoutMs: ctx.timeoutMs, baseline, checks, exitCode };
}

async function runBaseline(ctx: ScanContext): Promise<ScanReport['baseline']> {
  if (ctx.token !== undefined) {
    const sent = `the credential ${ctx.how}`;
    const { answer } = await ctx.probe(ctx.presenting(ctx.token));
    const got = describe(answer, ctx.timeoutMs);
    return { ok: answer.kind === 'accepted', sent, got };
  }
  const sent = 'an upgrade without a credential (no --token)';
  const { answer } = await ctx.probe(ctx.base());
  const got = describe(answer, ctx.timeoutMs);
  const ok =
    answer.kind === 'accepted' ||
    answer.kind === 'closed' ||
    (answer.kind === 'refused' && (answer.status === 401 || answer.status === 403));
  return { ok, sent, got };
}

/** Replaces every occurrence of a secret in the report's texts. */
function scrubReport(report: ScanReport, secrets: readonly string[]): ScanReport {
  const longestFirst = [...secrets].sort((a, b) => b.length - a.length);
  const scrub = (text: string) =>
    longestFirst.reduce((t, secret) => t.replaceAll(secret, '[redacted]'), text);
  const scrubCheck = (c: CheckResult): CheckResult => ({
    ...c,
    sent: scrub(c.sent),
    got: scrub(c.got),
    ...(c.note === undefined ? {} : { note: scrub(c.note) }),
  });
  return {
    ...report,
    url: scrub(report.url),
    baseline: {
      ...report.baseline,
      sent: scrub(report.baseline.sent),
      got: scrub(report.baseline.got),
    },
    checks: report.checks.map(scrubCheck),
  };
}
