// The line `mictlanx bench` redraws on a terminal while a phase runs: a bar (of the count, or
// of the duration), operations done, the rate so far and the errors so far. Pure: the command
// decides whether and where to draw it.
import type { BenchProgress } from "./bench.ts";

const barCellsMax = 24;

/** How far along a phase is, 0..1, or undefined when it has neither a count nor a duration. */
export function phaseFraction(progress: BenchProgress): number | undefined {
  const byCount = progress.total === undefined ? undefined : progress.done / Math.max(1, progress.total);
  const byTime = progress.durationMs === undefined ? undefined : progress.elapsedMs / Math.max(1, progress.durationMs);
  const fraction = byCount === undefined ? byTime : byTime === undefined ? byCount : Math.max(byCount, byTime);
  return fraction === undefined ? undefined : Math.min(1, Math.max(0, fraction));
}

export function benchProgressLine(progress: BenchProgress, columns: number): string {
  const fraction = phaseFraction(progress);
  const seconds = progress.elapsedMs / 1000;
  const rate = seconds > 0 ? progress.done / seconds : 0;
  const count = progress.total === undefined ? `${progress.done.toLocaleString("en-US")}` : `${progress.done.toLocaleString("en-US")}/${progress.total.toLocaleString("en-US")}`;
  const tail = `${count}  ${Math.round(rate).toLocaleString("en-US")} ops/s  ${progress.errors} error${progress.errors === 1 ? "" : "s"}  ${seconds.toFixed(1)} s`;
  const head = progress.phase.padEnd(5);
  if (fraction === undefined) return fit(`${head} ${tail}`, columns);
  const cells = Math.round(fraction * barCellsMax);
  const bar = `[${"#".repeat(cells)}${".".repeat(barCellsMax - cells)}] ${String(Math.floor(fraction * 100)).padStart(3)} %`;
  const line = `${head} ${bar}  ${tail}`;
  // A narrow terminal loses the bar before the figures.
  return line.length <= columns ? line : fit(`${head} ${tail}`, columns);
}

function fit(line: string, columns: number): string {
  return line.length <= columns ? line : line.slice(0, Math.max(0, columns));
}
