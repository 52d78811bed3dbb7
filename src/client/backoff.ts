/** Reconnect delays: `baseMs` doubles per failed attempt up to `maxMs`. */
export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
}

/** Defaults for {@link BackoffOptions}. */
export const defaultBackoff: Readonly<Required<BackoffOptions>> = { baseMs: 500, maxMs: 30_000 };

/** A source of uniform numbers in [0, 1), like `Math.random`. */
export type Random = () => number;

/**
 * Full-jitter backoff ("Exponential Backoff and Jitter", AWS): a uniform delay in
 * [0, min(maxMs, baseMs · 2^attempt)), so clients dropped together do not return together.
 * `attempt` counts failures since the last good connection, from 0.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: Random = Math.random,
): number {
  const { baseMs, maxMs } = resolveBackoff(options);
  // Past 2^31 the ceiling is maxMs anyway; capping the exponent keeps 0 · Infinity out.
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 31);
  const ceiling = Math.min(maxMs, baseMs * 2 ** exponent);
  return Math.floor(clampUnit(random()) * ceiling);
}

/** Fills in defaults and checks that both values are finite and not negative. */
export function resolveBackoff(options: BackoffOptions = {}): Required<BackoffOptions> {
  const baseMs = options.baseMs ?? defaultBackoff.baseMs;
  const maxMs = options.maxMs ?? defaultBackoff.maxMs;
  for (const [name, value] of [
    ['baseMs', baseMs],
    ['maxMs', maxMs],
  ] as const) {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`backoff.${name} must be a finite number ≥ 0, got ${value}`);
    }
  }
  return { baseMs, maxMs };
}

/** An injected random source that strays out of [0, 1] must not produce negative delays. */
function clampUnit(value: number): number {
  if (!(value > 0)) return 0;
  return value > 1 ? 1 : value;
}
