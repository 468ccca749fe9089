// What TLS and key checks cost: the same `mictlanx bench` (4 KiB and 64 MiB balls, put then
// get, rf 2) against two fresh local VSSs of 3 peers and 1 router started in the same run, one
// with TLS and access keys (the default), one with --insecure, alternated (secure, insecure,
// secure, insecure) so a noisy machine's drift falls on both. Reports each figure and the
// secure/insecure ratio, against the issue's aims (≤ 15 % on 4 KiB ops, ≤ 25 % on 64 MiB).
//
//   npm run build && bun bench/tls.ts            (about 3–5 minutes on 2 cores)
//   bun bench/tls.ts --quick                     (smaller counts, for a smoke run)
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startLocalVss, type LocalVss } from "../src/local/vss.ts";
import type { PhaseResult } from "../src/bench/stats.ts";
import pkg from "../package.json" with { type: "json" };

const quick = process.argv.includes("--quick");
const rounds = quick ? 1 : 2;
const root = resolve(import.meta.dir, "..");
const binary = process.env.MICTLANX_BIN ?? join(root, "dist", "mictlanx");

/** One line of `mictlanx bench --json`. */
type Phase = PhaseResult;

const workloads = [
  { name: "4 KiB", args: ["--size", "4KiB", "--count", String(quick ? 3_000 : 20_000), "--concurrency", "16", "--rf", "2"], metric: "opsPerSec" as const, unit: "balls/s", aimPct: 15 },
  { name: "64 MiB", args: ["--size", "64MiB", "--count", String(quick ? 4 : 12), "--concurrency", "2", "--rf", "2"], metric: "mbPerSec" as const, unit: "MB/s", aimPct: 25 },
];

async function runBench(vss: LocalVss, args: string[]): Promise<Phase[]> {
  const env = { ...process.env, MICTLANX_CREDENTIALS: vss.security.insecure ? "" : vss.security.credentialsPath };
  const proc = Bun.spawn([binary, "bench", "--router", vss.routers[0]!.address, "--json", ...args], { stdout: "pipe", stderr: "inherit", env });
  const text = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`mictlanx bench ${args.join(" ")} failed`);
  return text.trim().split("\n").filter((line) => line.length > 0).map((line) => JSON.parse(line) as Phase);
}

/** Every figure of one VSS kind, summed over its rounds (averaged at the end). */
type Totals = Map<string, { sum: number; p99Sum: number; n: number; errors: number }>;

async function measure(insecure: boolean, work: string, round: number, totals: Totals): Promise<void> {
  const dir = join(work, `${insecure ? "insecure" : "tls"}-${round}`);
  process.stderr.write(`round ${round + 1}: a VSS ${insecure ? "with --insecure" : "with TLS and keys"}…\n`);
  const vss = await startLocalVss({ dir, peers: 3, routers: 1, basePort: 0, command: [binary], insecure });
  try {
    for (const workload of workloads) {
      for (const phase of await runBench(vss, workload.args)) {
        const key = `${workload.name} ${phase.op}`;
        const entry = totals.get(key) ?? { sum: 0, p99Sum: 0, n: 0, errors: 0 };
        entry.sum += phase[workload.metric];
        entry.p99Sum += phase.p99Ms;
        entry.n += 1;
        entry.errors += phase.errors;
        totals.set(key, entry);
      }
    }
  } finally {
    await vss.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "mictlanx-bench-tls-"));
  const secure: Totals = new Map();
  const plain: Totals = new Map();
  try {
    for (let round = 0; round < rounds; round += 1) {
      await measure(false, work, round, secure);
      await measure(true, work, round, plain);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const lines = [
    `mictlanx ${pkg.version}, ${cpus().length} cores, ${rounds} round(s) of each, alternated${quick ? " (--quick)" : ""}`,
    "",
    "workload          TLS + keys        --insecure        TLS/insecure   cost    aim      p99 TLS / insecure",
  ];
  for (const workload of workloads) {
    for (const op of ["put", "get"]) {
      const key = `${workload.name} ${op}`;
      const a = secure.get(key);
      const b = plain.get(key);
      if (!a || !b) continue;
      const tls = a.sum / a.n;
      const insecure = b.sum / b.n;
      const ratio = tls / insecure;
      const costPct = (1 - ratio) * 100;
      const verdict = costPct <= workload.aimPct ? "met" : "MISSED";
      lines.push(
        `${key.padEnd(17)} ${`${tls.toFixed(0)} ${workload.unit}`.padEnd(17)} ${`${insecure.toFixed(0)} ${workload.unit}`.padEnd(17)} ${ratio.toFixed(2).padEnd(14)} ${`${costPct.toFixed(0)} %`.padEnd(7)} ≤${workload.aimPct} % ${verdict.padEnd(6)} ${(a.p99Sum / a.n).toFixed(1)} / ${(b.p99Sum / b.n).toFixed(1)} ms${a.errors + b.errors > 0 ? `  (${a.errors + b.errors} errors)` : ""}`,
      );
    }
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

await main();
