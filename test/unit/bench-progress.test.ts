// The bench's progress line, the bench script's --compare table, and the entry's --version fast path.
import { expect, test } from "bun:test";
import { benchProgressLine, phaseFraction } from "../../src/bench/progress-line.ts";
import { compareRow, comparisonTable, higherIsBetter } from "../../bench/compare.ts";
import { isVersionOnly } from "../../src/main.ts";

test("progress follows the count, the duration, or whichever is further along", () => {
  expect(phaseFraction({ phase: "put", done: 50, errors: 0, total: 200, elapsedMs: 1_000 })).toBe(0.25);
  expect(phaseFraction({ phase: "put", done: 50, errors: 0, elapsedMs: 2_500, durationMs: 10_000 })).toBe(0.25);
  expect(phaseFraction({ phase: "get", done: 150, errors: 0, total: 200, elapsedMs: 2_500, durationMs: 10_000 })).toBe(0.75);
  expect(phaseFraction({ phase: "put", done: 9, errors: 0, elapsedMs: 20_000, durationMs: 10_000 })).toBe(1);
  expect(phaseFraction({ phase: "put", done: 9, errors: 0, elapsedMs: 10 })).toBeUndefined();
});

test("the progress line shows the bar, counts, rate and errors, and drops the bar when narrow", () => {
  const progress = { phase: "put", done: 1_000, errors: 1, total: 4_000, elapsedMs: 2_000 };
  expect(benchProgressLine(progress, 120)).toBe(`put   [######..................]  25 %  1,000/4,000  500 ops/s  1 error  2.0 s`);
  expect(benchProgressLine(progress, 50)).toBe("put   1,000/4,000  500 ops/s  1 error  2.0 s");
  expect(benchProgressLine(progress, 10)).toHaveLength(10);
  expect(benchProgressLine({ phase: "get", done: 7, errors: 2, elapsedMs: 0 }, 80)).toBe("get   7  0 ops/s  2 errors  0.0 s");
});

test("--compare: ratios against an earlier run, judged by which way each figure should go", () => {
  expect(higherIsBetter({ unit: "balls/s" })).toBe(true);
  expect(higherIsBetter({ unit: "ms" })).toBe(false);
  expect(higherIsBetter({ unit: "MiB", target: { value: 256, higherIsBetter: false } })).toBe(false);
  expect(compareRow({ what: "put", value: 3_000, unit: "balls/s" }, 2_000)).toEqual({ ratio: 1.5, verdict: "better" });
  expect(compareRow({ what: "p99", value: 30, unit: "ms" }, 20)).toEqual({ ratio: 1.5, verdict: "worse" });
  expect(compareRow({ what: "put", value: 2_040, unit: "balls/s" }, 2_000).verdict).toBe("same");
  const table = comparisonTable(
    [
      { what: "4 KiB PUT", value: 3_000, unit: "balls/s" },
      { what: "new row", value: 5, unit: "ms" },
    ],
    { machine: "the earlier box", rows: [{ what: "4 KiB PUT", value: 2_000, unit: "balls/s" }] },
  );
  expect(table).toContain("Against the earlier box:");
  expect(table).toContain("| 4 KiB PUT | 2,000 balls/s | 3,000 balls/s | 1.50 | better |");
  expect(table).toContain("| new row | (not measured) | 5.00 ms | | |");
});

test("only a lone --version or -V takes the entry's fast path", () => {
  expect(isVersionOnly(["--version"])).toBe(true);
  expect(isVersionOnly(["-V"])).toBe(true);
  expect(isVersionOnly([])).toBe(false);
  expect(isVersionOnly(["put", "--version"])).toBe(false);
  expect(isVersionOnly(["--version", "extra"])).toBe(false);
});
