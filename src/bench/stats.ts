// Latency percentiles and throughput for one benchmark phase.
export interface PhaseResult {
  op: string;
  size: number;
  count: number;
  concurrency: number;
  rf: number;
  seconds: number;
  opsPerSec: number;
  mbPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  errors: number;
  /** The first few error messages, so an error is shown, never hidden. */
  errorSamples: string[];
}

export function percentile(sortedMs: Float64Array, fraction: number): number {
  if (sortedMs.length === 0) return 0;
  const index = Math.min(sortedMs.length - 1, Math.ceil(fraction * sortedMs.length) - 1);
  return sortedMs[Math.max(0, index)] ?? 0;
}

export function summarize(
  base: { op: string; size: number; concurrency: number; rf: number },
  latenciesMs: number[],
  seconds: number,
  errors: string[],
): PhaseResult {
  const sorted = Float64Array.from(latenciesMs).sort();
  const count = latenciesMs.length;
  const round = (value: number) => Math.round(value * 1000) / 1000;
  return {
    ...base,
    count,
    seconds: round(seconds),
    opsPerSec: round(count / seconds),
    mbPerSec: round((count * base.size) / seconds / 1e6),
    p50Ms: round(percentile(sorted, 0.5)),
    p99Ms: round(percentile(sorted, 0.99)),
    p999Ms: round(percentile(sorted, 0.999)),
    maxMs: round(sorted[sorted.length - 1] ?? 0),
    errors: errors.length,
    errorSamples: errors.slice(0, 5),
  };
}
