import { expect, test } from "bun:test";
import { percentile, summarize } from "../../src/bench/stats.ts";

test("percentiles are nearest-rank over sorted latencies", () => {
  const sorted = Float64Array.from(Array.from({ length: 1000 }, (_, i) => i + 1));
  expect(percentile(sorted, 0.5)).toBe(500);
  expect(percentile(sorted, 0.99)).toBe(990);
  expect(percentile(sorted, 0.999)).toBe(999);
  expect(percentile(new Float64Array(0), 0.5)).toBe(0);
});

test("a phase summary has the documented fields and counts errors", () => {
  const result = summarize({ op: "put", size: 4096, concurrency: 16, rf: 2 }, [1, 2, 3, 4], 2, ["put #3: boom"]);
  expect(Object.keys(result).sort()).toEqual(
    ["op", "size", "count", "concurrency", "rf", "seconds", "opsPerSec", "mbPerSec", "p50Ms", "p99Ms", "p999Ms", "maxMs", "errors", "errorSamples"].sort(),
  );
  expect(result.count).toBe(4);
  expect(result.opsPerSec).toBe(2);
  expect(result.mbPerSec).toBeCloseTo((4 * 4096) / 2 / 1e6, 3);
  expect(result.maxMs).toBe(4);
  expect(result.errors).toBe(1);
});
