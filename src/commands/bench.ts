// `mictlanx bench`: parse flags, run the workload, print a table or one JSON object per phase.
import { resolveRouters, parsePositiveInt } from "../lib/defaults.ts";
import { parseChunkSizeFlag, parseDuration, parseSize } from "../lib/size.ts";
import { UsageError } from "../lib/errors.ts";
import type { Verify } from "../lib/verify.ts";
import { findCredentials, type CredentialFlags } from "../client/credentials.ts";
import type { BenchCleanup, BenchOp, BenchProgress } from "../bench/bench.ts";
import type { PhaseResult } from "../bench/stats.ts";

export interface BenchFlags extends CredentialFlags {
  router?: string;
  size: string;
  count?: string;
  duration?: string;
  concurrency: string;
  rf: string;
  op: string;
  chunkSize?: string;
  keep?: boolean;
  json?: boolean;
  /** What each read checks (commander checks the choice; the Client again). */
  verify?: Verify;
}

const ops: BenchOp[] = ["put", "get", "mixed", "all"];

export async function benchCommand(flags: BenchFlags): Promise<void> {
  const op = flags.op as BenchOp;
  if (!ops.includes(op)) throw new UsageError(`--op must be one of ${ops.join(", ")}`);
  if (flags.count === undefined && flags.duration === undefined) throw new UsageError("give --count N or --duration T (e.g. --count 20000 or --duration 10s)");
  const { runBench } = await import("../bench/bench.ts");
  const { benchProgressLine } = await import("../bench/progress-line.ts");
  // A progress line on a terminal only: --json and any pipe or file get the rows alone.
  const drawing = !flags.json && process.stderr.isTTY === true;
  const drawProgress = (progress: BenchProgress): void => {
    process.stderr.write(`\r${benchProgressLine(progress, (process.stderr.columns || 80) - 1)}\u001b[K`);
  };
  const clearProgress = (): void => {
    if (drawing) process.stderr.write("\r\u001b[K");
  };
  const size = parseSize(flags.size);
  const chunkSize = flags.chunkSize === undefined ? undefined : parseChunkSizeFlag(flags.chunkSize);
  if (!flags.json) process.stdout.write(`${header()}\n`);
  const credentials = findCredentials(flags);
  const results = await runBench({
    routers: resolveRouters(flags.router),
    ...(credentials ? { credentials } : {}),
    size,
    concurrency: parsePositiveInt(flags.concurrency, "--concurrency"),
    rf: parsePositiveInt(flags.rf, "--rf"),
    op,
    ...(flags.count === undefined ? {} : { count: parsePositiveInt(flags.count, "--count") }),
    ...(flags.duration === undefined ? {} : { durationMs: parseDuration(flags.duration) }),
    ...(chunkSize === undefined ? {} : { chunkSize }),
    ...(flags.keep ? { keep: true } : {}),
    ...(flags.verify === undefined ? {} : { verify: flags.verify }),
    ...(drawing ? { onProgress: drawProgress } : {}),
    onPhase: (result) => {
      clearProgress();
      process.stdout.write(`${flags.json ? JSON.stringify(result) : row(result)}\n`);
    },
    onCleanup: reportCleanup,
  });
  const errors = results.reduce((sum, result) => sum + result.errors, 0);
  if (!flags.json) for (const result of results) for (const sample of result.errorSamples) process.stderr.write(`error: ${sample}\n`);
  if (errors > 0) {
    process.stderr.write(`mictlanx bench: ${errors} operation(s) failed\n`);
    process.exitCode = 1;
  }
}

/** On stderr, so stdout stays one line per phase. A bucket left behind fails the run. */
function reportCleanup(outcome: BenchCleanup): void {
  if ("deleted" in outcome) process.stderr.write(`mictlanx bench: deleted the ${outcome.deleted} ball(s) it wrote and bucket ${outcome.bucket} (--keep keeps them)\n`);
  else if ("kept" in outcome) process.stderr.write(`mictlanx bench: kept the balls it wrote in bucket ${outcome.bucket}\n`);
  else {
    process.stderr.write(`mictlanx bench: could not delete bucket ${outcome.bucket}: ${outcome.error}; delete it with: mictlanx rb ${outcome.bucket} --force\n`);
    process.exitCode = 1;
  }
}

function header(): string {
  return ["op", "size", "count", "conc", "rf", "seconds", "ops/s", "MB/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors"].map((cell) => cell.padStart(9)).join(" ");
}

function row(result: PhaseResult): string {
  const cells = [result.op, String(result.size), String(result.count), String(result.concurrency), String(result.rf), result.seconds.toFixed(2), result.opsPerSec.toFixed(0), result.mbPerSec.toFixed(1), result.p50Ms.toFixed(2), result.p99Ms.toFixed(2), result.p999Ms.toFixed(2), result.maxMs.toFixed(2), String(result.errors)];
  return cells.map((cell) => cell.padStart(9)).join(" ");
}
