import { STATUS_CODES } from 'node:http';
import WebSocket from 'ws';
import { CloseCode } from '../protocol/close-codes.js';

/**
 * One handshake as the scanner sends it: extra headers, offered subprotocols, query parameters.
 * Probes never follow redirects and never compress.
 */
export interface Attempt {
  readonly headers?: Readonly<Record<string, string>>;
  readonly protocols?: readonly string[];
  readonly query?: Readonly<Record<string, string>>;
}

/** Merges attempts; later ones win header by header and parameter by parameter. */
export function mergeAttempts(...attempts: Attempt[]): Attempt {
  const headers: Record<string, string> = {};
  const query: Record<string, string> = {};
  let protocols: readonly string[] = [];
  for (const a of attempts) {
    Object.assign(headers, a.headers);
    Object.assign(query, a.query);
    if (a.protocols) protocols = a.protocols;
  }
  return { headers, protocols, query };
}

/**
 * What came back, in the terms any server can be judged by: "accepted" is a 101 whose socket
 * delivers data or stays open for the whole wait; "refused" is any other HTTP answer, or a close
 * before any data. Throttling (429, 503, close 1013 or 4429), silence and failures say that the
 * probe could not be judged. "unselected" is a 101 that selects none of the offered subprotocols
 * (or one where none was offered): browsers, like `ws`, fail that handshake, so it is never
 * accepted, and nothing after it can be seen.
 */
export type Answer =
  | { readonly kind: 'accepted'; readonly by: 'data' | 'open' }
  | { readonly kind: 'refused'; readonly status: number }
  | { readonly kind: 'closed'; readonly code: number; readonly reason: string }
  | { readonly kind: 'throttled'; readonly status?: number; readonly code?: number }
  | { readonly kind: 'silent' }
  | { readonly kind: 'unselected'; readonly selected: string | undefined }
  | { readonly kind: 'failed'; readonly error: string };

export interface ProbeOptions {
  /** Hand back the socket of an accepted probe instead of dropping it. */
  readonly keep?: boolean;
  /** Let invalid UTF-8 from the server through, so that a reply does not look like a close. */
  readonly skipUTF8Validation?: boolean;
}

export interface ProbeResult {
  readonly answer: Answer;
  /** The open socket, when accepted and `keep` was asked for. */
  readonly socket?: WebSocket;
}

const throttleCloseCodes = new Set<number>([CloseCode.tryAgainLater, CloseCode.rateLimited]);
const throttleStatuses = new Set([429, 503]);

/** Opens one WebSocket and waits, at most `timeoutMs` for the answer and `timeoutMs` after the 101. */
export function probe(
  target: URL,
  attempt: Attempt,
  timeoutMs: number,
  options: ProbeOptions = {},
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const url = new URL(target);
    for (const [name, value] of Object.entries(attempt.query ?? {})) {
      url.searchParams.set(name, value);
    }
    const ws = new WebSocket(url, [...(attempt.protocols ?? [])], {
      headers: { ...attempt.headers },
      followRedirects: false,
      perMessageDeflate: false,
      // Larger than anything the scanner sends, so that an echo is not mistaken for a close.
      maxPayload: 64 * 1024 * 1024,
      skipUTF8Validation: options.skipUTF8Validation ?? false,
    });
    const offered = attempt.protocols ?? [];
    let unselected: Answer | undefined;
    let settled = false;
    let timer = setTimeout(() => settle({ kind: 'silent' }), timeoutMs);
    const settle = (answer: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (answer.kind === 'accepted' && options.keep) return resolve({ answer, socket: ws });
      ws.terminate();
      resolve({ answer });
    };
    // ws fails such a 101 itself, as a browser does; the answer says which subprotocol came back.
    ws.on('upgrade', (res) => {
      const selected = res.headers['sec-websocket-protocol'];
      const fits = selected === undefined ? offered.length === 0 : offered.includes(selected);
      if (!fits) unselected = { kind: 'unselected', selected };
    });
    // Errors after the answer (a reset while terminating, EPIPE) change nothing.
    ws.on('error', (err: Error) => settle(unselected ?? { kind: 'failed', error: err.message }));
    ws.on('unexpected-response', (req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      req.destroy();
      settle(
        throttleStatuses.has(status) ? { kind: 'throttled', status } : { kind: 'refused', status },
      );
    });
    ws.on('open', () => {
      clearTimeout(timer);
      timer = setTimeout(() => settle({ kind: 'accepted', by: 'open' }), timeoutMs);
    });
    ws.on('message', () => settle({ kind: 'accepted', by: 'data' }));
    ws.on('close', (code: number, reason: Buffer) =>
      settle(
        throttleCloseCodes.has(code)
          ? { kind: 'throttled', code }
          : { kind: 'closed', code, reason: reason.toString('utf8') },
      ),
    );
  });
}

/** True for the answers a judgement can rest on (accepted or refused). */
export function isDecisive(answer: Answer): boolean {
  return answer.kind === 'accepted' || answer.kind === 'refused' || answer.kind === 'closed';
}

/**
 * Removes what might be a credential from text a server chose (close reasons, error messages):
 * long runs of token characters. The scanner's own secrets are removed again from the whole report.
 */
export function scrubServerText(text: string, max = 80): string {
  const clean = text.replace(/[A-Za-z0-9_\-+/=.~]{24,}/g, '[redacted]').replace(/[\r\n\t]/g, ' ');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

export function statusText(status: number): string {
  const text = STATUS_CODES[status];
  return text === undefined ? String(status) : `${status} ${text}`;
}

/** The close frame in words; the reason is the server's text, scrubbed. */
export function closeText(code: number, reason: string): string {
  if (code === 1005) return 'closed without a code';
  if (code === 1006) return 'dropped without a close frame';
  return reason ? `closed ${code} "${scrubServerText(reason)}"` : `closed ${code}`;
}

/** What came back, in words. */
export function describe(answer: Answer, timeoutMs: number): string {
  switch (answer.kind) {
    case 'accepted':
      return answer.by === 'data'
        ? '101, then data'
        : `101, still open after ${seconds(timeoutMs)}`;
    case 'refused':
      return statusText(answer.status);
    case 'closed':
      return `101, then ${closeText(answer.code, answer.reason)} before any data`;
    case 'throttled':
      return answer.status !== undefined
        ? `${statusText(answer.status)} (throttled)`
        : `101, then closed ${answer.code ?? ''} (throttled)`;
    case 'silent':
      return `no answer within ${seconds(timeoutMs)}`;
    case 'unselected':
      return answer.selected === undefined
        ? '101 selecting none of the offered subprotocols (a browser fails this handshake)'
        : `101 selecting "${scrubServerText(answer.selected)}", which was not offered (a browser fails this handshake)`;
    case 'failed':
      return `no WebSocket: ${scrubServerText(answer.error)}`;
  }
}

export function seconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}
