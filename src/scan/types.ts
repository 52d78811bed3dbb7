/** What a check found: the defence held, the server is WEAK, a fact worth knowing, or not applicable. */
export type Verdict = 'held' | 'WEAK' | 'info' | 'n/a';

/** How the credential is presented on every probe that carries it. */
export type ScanTransport = 'bearer' | 'query' | 'subprotocol' | 'cookie';

export const scanTransports: readonly ScanTransport[] = [
  'bearer',
  'query',
  'subprotocol',
  'cookie',
];

/** One line of the report. `sent` and `got` never hold a credential (the report is scrubbed too). */
export interface CheckResult {
  readonly id: CheckId;
  readonly verdict: Verdict;
  /** What the scanner sent, in words. */
  readonly sent: string;
  /** What came back, in words: an HTTP status, a close code, data, silence. */
  readonly got: string;
  /** Why the verdict, when the status alone does not say it. */
  readonly note?: string;
}

export const checkIds = [
  'no-credential',
  'garbage-token',
  'alg-none',
  'signature-altered',
  'payload-altered',
  'query-token',
  'origin-foreign',
  'origin-null',
  'origin-missing',
  'host-rebinding',
  'message-size',
  'message-flood',
  'invalid-utf8',
  'handshake-flood',
  'half-open',
  'token-expiry',
] as const;

export type CheckId = (typeof checkIds)[number];

export interface ScanOptions {
  /** The endpoint, `ws://` or `wss://`. */
  readonly url: string;
  /** A credential the endpoint accepts. Without one, only the checks that need none run. */
  readonly token?: string;
  /** Default `bearer` (`Authorization: Bearer`). */
  readonly transport?: ScanTransport;
  /** Cookie name for the `cookie` transport. Default `access_token_cookie`. */
  readonly cookieName?: string;
  /** An origin the server allows, sent on every probe that is not about Origin. */
  readonly origin?: string;
  /** How long an upgraded socket must stay open to count as accepted, and other waits. Default 10 s. */
  readonly timeoutMs?: number;
  /** A half-open upgrade still held after this long is WEAK. Default 15 s. */
  readonly halfOpenMs?: number;
  /** Default `Date.now`; compared with the token's `exp`. */
  readonly now?: () => number;
}

/** The whole answer: baseline, checks, and the exit code the CLI uses. */
export interface ScanReport {
  /** The endpoint without its query string or user info. */
  readonly url: string;
  readonly transport: ScanTransport | 'none';
  readonly timeoutMs: number;
  readonly baseline: { readonly ok: boolean; readonly sent: string; readonly got: string };
  readonly checks: readonly CheckResult[];
  /** 0 every applicable check held, 1 some check is WEAK, 3 the baseline failed. */
  readonly exitCode: 0 | 1 | 3;
}
