import { seconds } from './probe.js';
import type { ScanReport, Verdict } from './types.js';

const verdicts: readonly Verdict[] = ['held', 'WEAK', 'info', 'n/a'];

/** The report as text: a header, the baseline, one line per check, and a summary. */
export function formatReport(report: ScanReport): string {
  const width = Math.max(...report.checks.map((c) => c.id.length), 'baseline'.length) + 2;
  const lines = [
    `wsgate scan ${report.url} (credential: ${report.transport}, timeout ${seconds(report.timeoutMs)})`,
    'For servers you own or are authorised to test.',
    '',
    `${'baseline'.padEnd(width)}${(report.baseline.ok ? 'ok' : 'FAILED').padEnd(7)}${report.baseline.sent} → ${report.baseline.got}`,
  ];
  for (const c of report.checks) {
    const note = c.note === undefined ? '' : ` — ${c.note}`;
    const probe = c.sent === '' ? 'not run' : `${c.sent} → ${c.got}`;
    lines.push(`${c.id.padEnd(width)}${c.verdict.padEnd(7)}${probe}${note}`);
  }
  lines.push('');
  if (!report.baseline.ok) {
    lines.push(
      'The baseline failed: the endpoint did not accept the credential (or, without --token, did not',
      'answer the upgrade with 101, 401 or 403). Nothing else was tried. Exit 3.',
    );
    // A Host check (wsgate's, against DNS rebinding) refuses a node scanned by its address.
    if (/^421\b/.test(report.baseline.got)) {
      lines.push(
        '421: the server does not answer to the host name in the URL. Scan the URL its clients',
        'use; a wsgate node reached by another name needs that name in --allowed-host.',
      );
    }
  } else {
    const counts = verdicts.map(
      (v) => `${report.checks.filter((c) => c.verdict === v).length} ${v}`,
    );
    lines.push(`${counts.join(', ')}. Exit ${report.exitCode}.`);
  }
  return `${lines.join('\n')}\n`;
}

/** The report as JSON (one object; the same texts as the text form). */
export function formatReportJson(report: ScanReport): string {
  const counts = Object.fromEntries(
    verdicts.map((v) => [v, report.checks.filter((c) => c.verdict === v).length]),
  );
  return `${JSON.stringify({ ...report, counts }, null, 2)}\n`;
}
