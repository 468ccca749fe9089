// bench/round1.ts's pure parts: reading /proc/PID/stat, µs per ball, and the rounds' medians,
// ratios and rows that bench/run.ts may add to its table.
import { expect, test } from "bun:test";
import { cpuSecondsOfStat, idleTable, median, microsPerBall, processTable, summarizeRounds, type Round, type SmallBallCpu } from "../../bench/round1.ts";

test("CPU seconds are utime + stime, counted after the last parenthesis of the command name", () => {
  // Fields 14 and 15 (utime 250, stime 50 ticks); the name holds ") " to trip a naive split.
  const stat = "4242 (mic) tlanx) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 7 0 100 1000000 500";
  expect(cpuSecondsOfStat(stat)).toBe(3);
});

test("µs per ball per process, with their total", () => {
  const micros = microsPerBall({ count: 1000, cpuSeconds: { client: 0.1, spm: 0.25 } });
  expect(micros.client).toBeCloseTo(100, 6);
  expect(micros.spm).toBeCloseTo(250, 6);
  expect(micros.total).toBeCloseTo(350, 6);
  expect(microsPerBall({ count: 0, cpuSeconds: { client: 1 } }).total).toBe(0);
});

test("median of odd and even counts, and of nothing", () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
  expect(median([])).toBe(0);
});

function measured(putTotal: number, getTotal: number): SmallBallCpu {
  return {
    put: { micros: { client: putTotal / 2, spm: putTotal / 2, total: putTotal }, opsPerSec: 1000, seconds: 0.1 },
    get: { micros: { client: getTotal, total: getTotal }, opsPerSec: 2000, seconds: 0.05 },
    count: 100,
    errors: 0,
    idleMicrosPerSecond: { spm: 1000, total: 1000 },
  };
}

test("ratios are the median of each round's current ÷ round-1; rows carry the targets as values", () => {
  const rounds: Round[] = [
    { "round-1": measured(1000, 500), "current TLS": measured(400, 250), "current --insecure": measured(300, 150) },
    { "round-1": measured(2000, 1000), "current TLS": measured(1000, 300), "current --insecure": measured(800, 200) },
  ];
  const summary = summarizeRounds(rounds, 100);
  expect(summary.ratios["current TLS"].put).toBeCloseTo((0.4 + 0.5) / 2, 6);
  expect(summary.ratios["current --insecure"].get).toBeCloseTo((0.3 + 0.2) / 2, 6);
  expect(summary.medians["round-1"].put.micros.total).toBe(1500);
  const put = summary.rows.find((row) => row.what === "CPU per 4 KiB put, all processes (µs)");
  expect(put?.value).toBe(700);
  expect(put?.baseline).toEqual({ what: "round-1 commit, same run", value: 1500 });
  expect(put?.target).toEqual({ value: 0.45 * 1500, higherIsBetter: false });
  const get = summary.rows.find((row) => row.what === "CPU per 4 KiB get, all processes (µs)");
  expect(get?.target?.value).toBeCloseTo(0.4 * 750, 6);
  // The --insecure rows are there for reading, not judged.
  expect(summary.rows.filter((row) => row.what.endsWith("--insecure")).every((row) => row.target === undefined)).toBe(true);
  const table = processTable(summary, "put").split("\n");
  expect(table.map((line) => line.split(" | ")[0])).toEqual(["| 4 KiB PUT, CPU µs per ball (median of 2)", "|---|---:|---:|---:|---:|---:|", "| client", "| spm", "| total", "| ops/s"]);
  // Background at 1 ms per s over a 0.1 s put of 100 balls: 1 µs per ball.
  expect(idleTable(summary).split("\n").find((line) => line.startsWith("| of which in each put"))).toBe("| of which in each put (µs per ball) | 1 | 1 | 1 |");
});
