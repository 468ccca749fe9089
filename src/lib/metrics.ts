// Prometheus text exposition, without a dependency: counters, gauges and histograms with
// labels, rendered in the text format (version 0.0.4). Gauges that mirror other state are
// read through callbacks at scrape time, so nothing has to be kept in step.
import { assert } from "./assert.ts";

type Labels = Record<string, string>;

const nameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}="${escapeLabel(labels[key] ?? "")}"`)
    .join(",");
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function sample(name: string, key: string, value: number): string {
  const rendered = Number.isFinite(value) ? String(value) : value > 0 ? "+Inf" : value < 0 ? "-Inf" : "NaN";
  return key ? `${name}{${key}} ${rendered}` : `${name} ${rendered}`;
}

interface Metric {
  render(): string[];
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    assert(by >= 0, "a counter only goes up");
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`, ...[...this.values].map(([key, value]) => sample(this.name, key, value))];
  }
}

/** A value read at scrape time: a gauge, or a counter kept elsewhere (type "counter"). */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => Array<[Labels, number]> | number,
    private readonly type: "gauge" | "counter" = "gauge",
  ) {}
  render(): string[] {
    const value = this.read();
    const samples = typeof value === "number" ? [sample(this.name, "", value)] : value.map(([labels, v]) => sample(this.name, labelKey(labels), v));
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`, ...samples];
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: number[],
  ) {
    assert(buckets.every((bound, i) => i === 0 || bound > (buckets[i - 1] ?? -Infinity)), "histogram buckets must increase");
  }
  observe(value: number, labels: Labels = {}): void {
    const key = labelKey(labels);
    let series = this.series.get(key);
    if (!series) {
      series = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, series);
    }
    for (let i = 0; i < this.buckets.length; i += 1) if (value <= (this.buckets[i] ?? Infinity)) series.counts[i] = (series.counts[i] ?? 0) + 1;
    series.sum += value;
    series.count += 1;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [key, series] of this.series) {
      const prefix = key ? `${key},` : "";
      this.buckets.forEach((bound, i) => lines.push(`${this.name}_bucket{${prefix}le="${bound}"} ${series.counts[i] ?? 0}`));
      lines.push(`${this.name}_bucket{${prefix}le="+Inf"} ${series.count}`);
      lines.push(sample(`${this.name}_sum`, key, series.sum));
      lines.push(sample(`${this.name}_count`, key, series.count));
    }
    return lines;
  }
}

/** Latency buckets in seconds: 0.1 ms to 10 s. */
export const latencyBucketsSeconds = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];
  private readonly names = new Set<string>();

  counter(name: string, help: string): Counter {
    return this.add(name, new Counter(name, help));
  }
  gauge(name: string, help: string, read: () => Array<[Labels, number]> | number): Gauge {
    return this.add(name, new Gauge(name, help, read));
  }
  /** A counter whose total lives elsewhere (e.g. in the storage engine), read at scrape time. */
  counterFrom(name: string, help: string, read: () => Array<[Labels, number]> | number): Gauge {
    return this.add(name, new Gauge(name, help, read, "counter"));
  }
  histogram(name: string, help: string, buckets: number[]): Histogram {
    return this.add(name, new Histogram(name, help, buckets));
  }
  render(): string {
    return `${this.metrics.flatMap((metric) => metric.render()).join("\n")}\n`;
  }
  private add<M extends Metric>(name: string, metric: M): M {
    assert(nameRe.test(name), `bad metric name ${name}`);
    assert(!this.names.has(name), `metric ${name} registered twice`);
    this.names.add(name);
    this.metrics.push(metric);
    return metric;
  }
}

/** Requests by op and outcome, and their latency: the same two series on every role. */
export function requestMetrics(registry: MetricsRegistry, role: string) {
  const requests = registry.counter(`mictlanx_${role}_requests_total`, `Requests served by this ${role}, by operation and outcome (ok or an error code).`);
  const latency = registry.histogram(`mictlanx_${role}_request_seconds`, `Time to serve a request, by operation.`, latencyBucketsSeconds);
  return (op: string, outcome: string, seconds: number) => {
    requests.inc({ op, outcome });
    latency.observe(seconds, { op });
  };
}
