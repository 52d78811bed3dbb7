import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type MetricObjectWithValues,
  type MetricValue,
  type MetricValueWithName,
} from 'prom-client';

let processRegistry: Registry | undefined;

/**
 * A Prometheus histogram counted as plain numbers on the hot path: one slot and a sum per
 * observation, where prom-client's `observe` allocates a label object, a pair and a hash each
 * call. A scrape reads it into the same samples a prom-client `Histogram` gives (`_bucket` with
 * `le`, `_sum`, `_count`), and the registry takes it as one (it reads `get()`).
 */
export class CountedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly #bounds: readonly number[];
  /** Observations per bucket, not cumulative; the last slot is above every bound. */
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  /** Reset and not observed since: no samples at all, as prom-client's histogram after `reset()`. */
  #cleared = false;

  constructor(options: {
    name: string;
    help: string;
    buckets: readonly number[];
    registers: Registry[];
  }) {
    this.name = options.name;
    this.help = options.help;
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
    this.#counts = new Array<number>(this.#bounds.length + 1).fill(0);
    // prom-client's registry only calls get() and reset(): the Histogram type is its signature.
    for (const registry of options.registers) registry.registerMetric(this as unknown as Histogram);
  }

  /** One observation: a bucket counted and the sum added to, nothing allocated. */
  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.#counts[i] = (this.#counts[i] as number) + 1;
    this.#sum += value;
    this.#count += 1;
    this.#cleared = false;
  }

  get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const bucket = `${this.name}_bucket`;
    // Bucket samples carry `exemplar: null` as prom-client's do, so the JSON the primary adds up is the same.
    const values: (MetricValueWithName<string> & { exemplar?: null })[] = [];
    let cumulative = 0;
    this.#bounds.forEach((le, i) => {
      cumulative += this.#counts[i] as number;
      values.push({ value: cumulative, metricName: bucket, exemplar: null, labels: { le } });
    });
    values.push(
      { value: this.#count, metricName: bucket, exemplar: null, labels: { le: '+Inf' } },
      { value: this.#sum, labels: {}, metricName: `${this.name}_sum` },
      { value: this.#count, labels: {}, metricName: `${this.name}_count` },
    );
    // prom-client types `type` as an enum, but its metrics carry (and its registry reads) the name.
    const metric = {
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.#cleared ? [] : values,
      aggregator: this.aggregator,
    };
    return Promise.resolve(
      metric as unknown as MetricObjectWithValues<MetricValueWithName<string>>,
    );
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
    this.#cleared = true;
  }
}

/** Process metrics (CPU, memory, event-loop lag, GC), collected once however many nodes run here. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 10 });
  }
  return processRegistry;
}

/** wsgate's Prometheus metrics, one set per node, served at `/metrics`. */
export class Metrics {
  readonly #registry = new Registry();
  readonly handshakes: Counter<'transport' | 'outcome'>;
  readonly messagesIn: Counter;
  readonly messagesOut: Counter;
  readonly kicks: Counter<'reason'>;
  readonly handshakeSeconds: CountedHistogram;
  readonly kickSeconds: Histogram;
  readonly proxiedOpen: Gauge;
  readonly proxyFrames: Counter<'direction'>;
  readonly proxyBytes: Counter<'direction'>;
  readonly upstreamConnectSeconds: Histogram;
  readonly upstreamFailures: Counter<'reason'>;

  #openConnections: () => number = () => 0;
  /** Messages in and out, counted as plain numbers on the hot path; the counters read them at each scrape. */
  #messagesIn = 0;
  #messagesOut = 0;
  /** Accepted handshakes per credential transport, counted the same way. */
  readonly #accepted = new Map<string, number>();
  /** Under `--workers`: where the sum over every worker comes from (the primary gathers it). */
  #aggregate: (() => Promise<string>) | undefined;

  constructor() {
    const registers = [this.#registry];
    const open: Gauge = new Gauge({
      name: 'wsgate_connections_open',
      help: 'Open, authenticated WebSocket connections',
      registers,
      collect: (): void => open.set(this.#openConnections()),
    });
    const accepted = this.#accepted;
    const reportedAccepted = new Map<string, number>();
    this.handshakes = new Counter({
      name: 'wsgate_handshakes_total',
      help: 'WebSocket handshakes by credential transport and outcome (accepted, or the error code)',
      labelNames: ['transport', 'outcome'],
      registers,
      collect(): void {
        for (const [transport, now] of accepted) {
          const delta = now - (reportedAccepted.get(transport) ?? 0);
          if (delta > 0) this.inc({ transport, outcome: 'accepted' }, delta);
          reportedAccepted.set(transport, now);
        }
      },
    });
    const counted = (read: () => number) => {
      let reported = 0;
      return function collect(this: Counter): void {
        const now = read();
        if (now > reported) this.inc(now - reported);
        reported = now;
      };
    };
    this.messagesIn = new Counter({
      name: 'wsgate_messages_in_total',
      help: 'Messages received',
      registers,
      collect: counted(() => this.#messagesIn),
    });
    this.messagesOut = new Counter({
      name: 'wsgate_messages_out_total',
      help: 'Messages sent',
      registers,
      collect: counted(() => this.#messagesOut),
    });
    this.kicks = new Counter({
      name: 'wsgate_kicks_total',
      help: 'Sockets closed by the server on purpose, by reason',
      labelNames: ['reason'],
      registers,
    });
    // Observed once per handshake: counted as plain numbers (see CountedHistogram).
    this.handshakeSeconds = new CountedHistogram({
      name: 'wsgate_handshake_duration_seconds',
      help: 'Time from upgrade request to accepted socket',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    });
    this.kickSeconds = new Histogram({
      name: 'wsgate_kick_duration_seconds',
      help: 'Time from a revocation reaching this node to its sockets being closed',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers,
    });
    this.proxiedOpen = new Gauge({
      name: 'wsgate_proxied_sockets_open',
      help: 'Open proxied sockets (client and upstream leg both open or closing)',
      registers,
    });
    this.proxyFrames = new Counter({
      name: 'wsgate_proxy_frames_total',
      help: 'Frames passed through proxied sockets: up (client to upstream) or down',
      labelNames: ['direction'],
      registers,
    });
    this.proxyBytes = new Counter({
      name: 'wsgate_proxy_bytes_total',
      help: 'Payload bytes passed through proxied sockets: up (client to upstream) or down',
      labelNames: ['direction'],
      registers,
    });
    this.upstreamConnectSeconds = new Histogram({
      name: 'wsgate_upstream_connect_duration_seconds',
      help: 'Time to open an upstream WebSocket, from dial to 101',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.upstreamFailures = new Counter({
      name: 'wsgate_upstream_failures_total',
      help: 'Upstream dials that failed: unreachable, refused, timeout, tls or aborted (client left)',
      labelNames: ['reason'],
      registers,
    });
  }

  /** One message received: a number incremented, no allocation (once per message). */
  countIn(): void {
    this.#messagesIn += 1;
  }

  /** One accepted handshake (`outcome="accepted"` of `wsgate_handshakes_total`), counted as {@link countIn}. */
  countAccepted(transport: string): void {
    this.#accepted.set(transport, (this.#accepted.get(transport) ?? 0) + 1);
  }

  /** `count` messages sent (see {@link countIn}). */
  countOut(count = 1): void {
    this.#messagesOut += count;
  }

  /** Where the open-connection gauge reads its value at each scrape. */
  countConnections(count: () => number): void {
    this.#openConnections = count;
  }

  /** The Prometheus text exposition of this node's and the process's metrics. */
  async text(): Promise<{ contentType: string; body: string }> {
    if (this.#aggregate) {
      return { contentType: this.#registry.contentType, body: await this.#aggregate() };
    }
    const merged = Registry.merge([processMetrics(), this.#registry]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }

  /** This process's metrics as prom-client JSON, for the primary to add up (`--workers`). */
  json(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return Registry.merge([processMetrics(), this.#registry]).getMetricsAsJSON();
  }

  /** Serves, from now on, what `source` gives: the metrics of every worker added up. */
  aggregateWith(source: () => Promise<string>): void {
    this.#aggregate = source;
  }
}
