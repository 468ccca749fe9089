// The fixed runs chunk placements are asked for in: every index in exactly one run, runs growing
// 1, 2, 4, … placeAheadChunksMax and then staying there.
import { expect, test } from "bun:test";
import { runOf } from "../../src/roles/router/placements-ahead.ts";
import { vssLimits } from "../../src/lib/limits.ts";

test("runs tile the indexes without gaps or overlaps, growing to placeAheadChunksMax", () => {
  const max = vssLimits.placeAheadChunksMax;
  const lengths: number[] = [];
  let expectedStart = 0;
  for (let index = 0; index < 40 * max; index += 1) {
    const run = runOf(index);
    expect(index).toBeGreaterThanOrEqual(run.start);
    expect(index).toBeLessThan(run.start + run.length);
    if (index === run.start) {
      expect(run.start).toBe(expectedStart); // each run begins where the previous one ended
      expectedStart = run.start + run.length;
      lengths.push(run.length);
    }
  }
  expect(lengths.slice(0, 6)).toEqual([1, 2, 4, 8, 16, 16].map((length) => Math.min(length, max)));
  expect(Math.max(...lengths)).toBe(max);
});
