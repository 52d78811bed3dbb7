export { scan, parseTarget, publicUrl, ScanUsageError } from './scan.js';
export { formatReport, formatReportJson } from './report.js';
export { checkIds, scanTransports } from './types.js';
export type {
  CheckId,
  CheckResult,
  ScanOptions,
  ScanReport,
  ScanTransport,
  Verdict,
} from './types.js';
