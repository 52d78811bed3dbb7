/**
 * What the client does after a socket closes: the table in DESIGN §3 / docs/protocol.md as a pure
 * function, so it is tested without sockets.
 */

/** Close codes a wsgate server uses (DESIGN §3). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  abnormal: 1006,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  upstreamUnavailable: 1014,
  malformed: 4400,
  unauthorized: 4401,
  forbidden: 4403,
  authTimeout: 4408,
  revoked: 4410,
  expired: 4419,
  rateLimited: 4429,
} as const;

/** After this many 4401s in a row (no good connection between them) the client stops. */
export const maxConsecutiveUnauthorized = 3;

/** Codes after which retrying with the same request cannot help: the client stops. */
const stopCodes: ReadonlySet<number> = new Set([
  CloseCode.revoked,
  CloseCode.forbidden,
  CloseCode.malformed,
  CloseCode.policyViolation,
  CloseCode.messageTooBig,
]);

/** Credential failures since the last good connection, not counting the close being decided. */
export interface CloseStreak {
  /** 4401 closes. */
  unauthorized: number;
  /** 4419 closes. */
  expired: number;
}

/** The decision for one close. */
export type CloseDecision =
  | { reconnect: false }
  | {
      reconnect: true;
      /** Fetch a new credential (call `getToken`) before reconnecting. */
      refresh: boolean;
      /** `now`, full-jitter `backoff`, or at least this many milliseconds (a server's retry-after). */
      delay: 'now' | 'backoff' | number;
    };

/**
 * Decides whether and how to reconnect after a close with `code` and `reason`.
 *
 * - 4410, 4403, 4400, 1008, 1009: stop.
 * - 4419: new credential, reconnect at once — but with backoff if the previous attempt also ended
 *   in 4419, so a `getToken` that keeps returning an expired token cannot spin.
 * - 4401: new credential, backoff; stop at the {@link maxConsecutiveUnauthorized}th in a row.
 * - 4429: wait for the reason's "retry after Ns", else backoff.
 * - anything else (1001, 1006, 1011, 1013, 1014, 4408, …): backoff.
 */
export function decideClose(code: number, reason: string, streak: CloseStreak): CloseDecision {
  if (stopCodes.has(code)) return { reconnect: false };
  switch (code) {
    case CloseCode.expired:
      return { reconnect: true, refresh: true, delay: streak.expired === 0 ? 'now' : 'backoff' };
    case CloseCode.unauthorized:
      if (streak.unauthorized + 1 >= maxConsecutiveUnauthorized) return { reconnect: false };
      return { reconnect: true, refresh: true, delay: 'backoff' };
    case CloseCode.rateLimited:
      return { reconnect: true, refresh: false, delay: retryAfterMs(reason) ?? 'backoff' };
    default:
      return { reconnect: true, refresh: false, delay: 'backoff' };
  }
}

/** The delay in a close reason such as `Too many requests; retry after 3s`, in milliseconds. */
export function retryAfterMs(reason: string): number | undefined {
  const match = /retry after (\d+(?:\.\d+)?)\s*s\b/i.exec(reason);
  if (!match?.[1]) return undefined;
  const seconds = Number(match[1]);
  return Number.isFinite(seconds) ? Math.round(seconds * 1000) : undefined;
}
