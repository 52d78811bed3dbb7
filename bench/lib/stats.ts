/** Small statistics for the report: percentiles of latency samples and tidy numbers. */

/** The `p`-th percentile (0–100) of `samples`, nearest rank; NaN when there are none. */
export function percentile(samples: readonly number[] | Float64Array, p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Samples in a growable typed array: millions of latencies without millions of boxed numbers. */
export class Samples {
  #data = new Float64Array(1024);
  length = 0;

  push(value: number): void {
    if (this.length === this.#data.length) {
      const grown = new Float64Array(this.#data.length * 2);
      grown.set(this.#data);
      this.#data = grown;
    }
    this.#data[this.length++] = value;
  }

  values(): Float64Array {
    return this.#data.subarray(0, this.length);
  }
}

/** A number with about three significant digits, thousands grouped: 12,300 · 45.6 · 0.78. */
export function fmt(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

export function ratio(value: number, baseline: number): number {
  return baseline > 0 ? value / baseline : Number.NaN;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What a timed window of operations comes to: throughput, latency and server CPU per operation. */
export interface WindowSummary {
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server CPU time per operation, in microseconds. */
  readonly cpuUs: number;
}

/** Summarises one window: its latency samples, how long it lasted, and the server CPU it used. */
export function summarise(
  latencies: Float64Array,
  elapsedMs: number,
  cpuUs: number,
): WindowSummary {
  return {
    perSecond: (latencies.length / elapsedMs) * 1000,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuUs: cpuUs / Math.max(1, latencies.length),
  };
}

/** The median of each figure over several rounds of the same window. */
export function medianSummary(rounds: readonly WindowSummary[]): WindowSummary {
  return {
    perSecond: median(rounds.map((r) => r.perSecond)),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    cpuUs: median(rounds.map((r) => r.cpuUs)),
  };
}

/** The cases of a round, reversed every other round, so that no case always runs first or last. */
export function inTurn<T>(cases: readonly T[], round: number): readonly T[] {
  return round % 2 === 0 ? cases : [...cases].reverse();
}
