// CPU per 4 KiB ball, every process, against the round-1 commit built and benchmarked in the
// same run (issue 15: "CPU per 4 KiB put, all processes ≤ 45 % of the round-1 commit's, same
// run", get ≤ 40 %). CPU per operation moves with the machine and with whatever else runs on
// it, so a figure from another day is no baseline: this builds the round-1 tree once (cached in
// bench/.round1/) and measures it beside the current tree, interleaved, round after round.
//
//   npm run build && bun bench/round1.ts [--rounds 2] [--count 20000]
//
// Each measurement is a fresh local VSS (3 peers, 1 router, rf 2) started by the measured
// tree's own src/local/vss.ts, as that tree's bench/run.ts starts it, then
// `BINARY bench --size 4KiB --count N --concurrency 16 --rf 2 --json` against it. CPU is
// user + system of every thread, read from /proc/PID/stat when each phase's line arrives, as
// bench/run.ts's bench() reads it.
//
// Why import the tree's vss.ts rather than run its `mictlanx up`: round 1's `up` draws a TUI
// and has no --json, and importing is what each tree's bench/run.ts does, so the roles get the
// flags that tree gives them (round 1: no TLS, no --metrics-port; today: TLS certificates and an
// admin key unless insecure). The two copies of the modules load side by side without sharing
// state: each resolves its own imports inside its own tree (bench/.round1/node_modules).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { fmt, type Row } from "./compare.ts";
import { cpuSeconds, linesWithCpu } from "./phase-cpu.ts";

export { cpuSecondsOfStat } from "./phase-cpu.ts";

/** The round-1 commit every figure here is judged against. */
export const round1Commit = "8b521ea";
/** Issue 15's targets: all processes' CPU per 4 KiB ball, current ÷ round 1. */
export const putRatioMax = 0.45;
export const getRatioMax = 0.4;

const root = resolve(import.meta.dir, "..");
/** Where the round-1 tree is unpacked, installed and built, once (in .gitignore). */
export const round1CacheDir = join(root, "bench", ".round1");

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

// --- pure parts (test/unit/bench-round1.test.ts) ----------------------------------------------

/** What one bench phase cost: CPU seconds per process, and how many balls it moved. */
export interface PhaseCost {
  op: string;
  count: number;
  opsPerSec: number;
  errors: number;
  /** How long the phase ran, by the bench client's clock. */
  wallSeconds: number;
  /** CPU seconds (user + system) each process spent in it. */
  cpuSeconds: Record<string, number>;
}

/** µs of CPU per ball, per process, plus "total" (the sum of every process). */
export function microsPerBall(phase: Pick<PhaseCost, "count" | "cpuSeconds">): Record<string, number> {
  const micros: Record<string, number> = {};
  let total = 0;
  for (const [name, seconds] of Object.entries(phase.cpuSeconds)) {
    micros[name] = phase.count > 0 ? (seconds / phase.count) * 1e6 : 0;
    total += micros[name];
  }
  micros.total = total;
  return micros;
}

export function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** A phase's CPU µs per ball by process (with "total"), its rate and its length. */
export interface PhaseFigures {
  micros: Record<string, number>;
  opsPerSec: number;
  seconds: number;
}

/** One VSS, one `mictlanx bench`: its put and get phases. */
export interface SmallBallCpu {
  put: PhaseFigures;
  get: PhaseFigures;
  count: number;
  /** Failed operations in both phases (each is also printed by the bench client). */
  errors: number;
  /**
   * Each role's CPU µs per second of wall time with no client, just after the bench: the
   * background (heartbeats, maintenance) that a slower phase pays more of per ball; its share
   * of a phase is idle × phase seconds ÷ count, and "total" is their sum.
   */
  idleMicrosPerSecond: Record<string, number>;
}

export const variants = ["round-1", "current TLS", "current --insecure"] as const;
export type Variant = (typeof variants)[number];
export type Round = Record<Variant, SmallBallCpu>;

/**
 * What runRound1Comparison returns (and bench/run.ts may add to its table):
 *   commit        the round-1 commit ("8b521ea")
 *   count         balls per phase
 *   rounds        every round's three measurements, in the order they ran
 *   medians       per variant and phase: each process's µs per ball (and "total"), median over
 *                 rounds, and the median ops/s
 *   ratios        per current variant and phase: the median over rounds of that round's
 *                 total ÷ round 1's total (each round's pair ran minutes apart, not hours)
 *   rows          bench/run.ts rows: "CPU per 4 KiB put, all processes (µs)" and the get's, with
 *                 baseline "round-1 commit, same run" and the issue's target as a value
 *                 (45 % / 40 % of that baseline); the same for --insecure, without a target
 */
export interface Round1Comparison {
  commit: string;
  count: number;
  rounds: Round[];
  medians: Record<Variant, { put: PhaseFigures; get: PhaseFigures; idleMicrosPerSecond: Record<string, number> }>;
  ratios: Record<Exclude<Variant, "round-1">, { put: number; get: number }>;
  rows: Row[];
}

type Op = "put" | "get";

function medianByName(records: Record<string, number>[]): Record<string, number> {
  const names = Object.keys(records[0] ?? {});
  return Object.fromEntries(names.map((name) => [name, median(records.map((record) => record[name] ?? 0))]));
}

function medianOf(rounds: Round[], variant: Variant, op: Op): PhaseFigures {
  const micros = medianByName(rounds.map((round) => round[variant][op].micros));
  return { micros, opsPerSec: median(rounds.map((round) => round[variant][op].opsPerSec)), seconds: median(rounds.map((round) => round[variant][op].seconds)) };
}

function ratioOf(rounds: Round[], variant: Variant, op: Op): number {
  return median(rounds.map((round) => (round[variant][op].micros.total ?? 0) / (round["round-1"][op].micros.total || Number.NaN)));
}

/** Medians, ratios and rows from the rounds measured. */
export function summarizeRounds(rounds: Round[], count: number): Round1Comparison {
  const medians = Object.fromEntries(variants.map((variant) => [variant, { put: medianOf(rounds, variant, "put"), get: medianOf(rounds, variant, "get"), idleMicrosPerSecond: medianByName(rounds.map((round) => round[variant].idleMicrosPerSecond)) }])) as Round1Comparison["medians"];
  const ratios = {
    "current TLS": { put: ratioOf(rounds, "current TLS", "put"), get: ratioOf(rounds, "current TLS", "get") },
    "current --insecure": { put: ratioOf(rounds, "current --insecure", "put"), get: ratioOf(rounds, "current --insecure", "get") },
  };
  const baseline = (op: Op) => ({ what: "round-1 commit, same run", value: medians["round-1"][op].micros.total ?? 0 });
  const row = (op: Op, variant: Exclude<Variant, "round-1">, ratioMax?: number): Row => ({
    what: "CPU per 4 KiB " + op + ", all processes (µs)" + (variant === "current --insecure" ? ", --insecure" : ""),
    value: medians[variant][op].micros.total ?? 0,
    unit: "µs",
    baseline: baseline(op),
    ...(ratioMax === undefined ? {} : { target: { value: ratioMax * baseline(op).value, higherIsBetter: false } }),
  });
  const rows = [row("put", "current TLS", putRatioMax), row("get", "current TLS", getRatioMax), row("put", "current --insecure"), row("get", "current --insecure")];
  return { commit: round1Commit, count, rounds, medians, ratios, rows };
}

/** One phase's table: a row per process, a column per variant's median, and current ÷ round 1. */
export function processTable(summary: Round1Comparison, op: Op): string {
  const names = Object.keys(summary.medians["round-1"][op].micros);
  const m = (variant: Variant, name: string) => summary.medians[variant][op].micros[name] ?? 0;
  const ratio = (variant: Variant, name: string) => (m("round-1", name) > 0 ? ((100 * m(variant, name)) / m("round-1", name)).toFixed(0) + " %" : "");
  const lines = [
    "| 4 KiB " + op.toUpperCase() + ", CPU µs per ball (median of " + summary.rounds.length + ") | round-1 | current TLS | ÷ round-1 | current --insecure | ÷ round-1 |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const name of names) lines.push("| " + name + " | " + [m("round-1", name).toFixed(0), m("current TLS", name).toFixed(0), ratio("current TLS", name), m("current --insecure", name).toFixed(0), ratio("current --insecure", name)].join(" | ") + " |");
  const rate = (variant: Variant) => fmt(summary.medians[variant][op].opsPerSec) + "/s";
  lines.push("| ops/s | " + [rate("round-1"), rate("current TLS"), "", rate("current --insecure"), ""].join(" | ") + " |");
  return lines.join("\n");
}

/** Each role's background CPU with no client (median over rounds), and its share of each phase's µs per ball. */
export function idleTable(summary: Round1Comparison): string {
  const names = Object.keys(summary.medians["round-1"].idleMicrosPerSecond);
  const lines = ["| idle after the run, CPU ms per s | " + variants.join(" | ") + " |", "|---|" + variants.map(() => "---:").join("|") + "|"];
  for (const name of names) lines.push("| " + name + " | " + variants.map((variant) => ((summary.medians[variant].idleMicrosPerSecond[name] ?? 0) / 1000).toFixed(1)).join(" | ") + " |");
  for (const op of ["put", "get"] as const) {
    const share = (variant: Variant) => {
      const { seconds } = summary.medians[variant][op];
      return ((summary.medians[variant].idleMicrosPerSecond.total ?? 0) * seconds) / summary.count;
    };
    lines.push("| of which in each " + op + " (µs per ball) | " + variants.map((variant) => share(variant).toFixed(0)).join(" | ") + " |");
  }
  return lines.join("\n");
}

/** Every round's totals, so the noise between rounds is in plain sight. */
export function roundsTable(summary: Round1Comparison): string {
  const lines = ["| round | " + variants.map((variant) => variant + " put µs | get µs").join(" | ") + " |", "|---:|" + variants.map(() => "---:|---:").join("|") + "|"];
  for (const [i, round] of summary.rounds.entries()) {
    lines.push("| " + (i + 1) + " | " + variants.map((variant) => (round[variant].put.micros.total ?? 0).toFixed(0) + " | " + (round[variant].get.micros.total ?? 0).toFixed(0)).join(" | ") + " |");
  }
  return lines.join("\n");
}

function percent(ratio: number): string {
  return (100 * ratio).toFixed(0) + " %";
}

/** The verdict lines: median of the rounds' ratios against the issue's targets. */
export function verdictLines(summary: Round1Comparison): string[] {
  return (["current TLS", "current --insecure"] as const).map((variant) => {
    const { put, get } = summary.ratios[variant];
    const met = (ratio: number, max: number) => (ratio <= max ? "met" : "not met");
    return variant + " ÷ round-1 (median of the rounds' ratios): put " + percent(put) + " (target ≤ " + percent(putRatioMax) + ": " + met(put, putRatioMax) + "), get " + percent(get) + " (target ≤ " + percent(getRatioMax) + ": " + met(get, getRatioMax) + ")";
  });
}

// --- the round-1 tree ---------------------------------------------------------------------------

function run(command: string[], cwd: string): void {
  const done = Bun.spawnSync(command, { cwd, stdout: "inherit", stderr: "inherit" });
  if (done.exitCode !== 0) throw new Error(command.join(" ") + " in " + cwd + " exited " + done.exitCode);
}

/**
 * The round-1 tree, unpacked from the repo, installed and built: DIR/dist/mictlanx. Reused when
 * that binary is there (delete DIR to build again); a half-made DIR is wiped first.
 */
export function prepareRound1Tree(repo = root, dir = round1CacheDir): { tree: string; binary: string } {
  const binary = join(dir, "dist", "mictlanx");
  if (existsSync(binary)) return { tree: dir, binary };
  log("preparing the round-1 tree (" + round1Commit + ") in " + dir + "…");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // pipefail: a git that fails must not leave a tar that read nothing look like success.
  run(["bash", "-o", "pipefail", "-c", "git -C \"$0\" archive \"$1\" | tar -x -C \"$2\"", repo, round1Commit, dir], dir);
  run(["npm", "ci", "--no-audit", "--no-fund"], dir);
  // Its own build, with the Bun its lockfile installs (the same 1.4.5 as today's, as it happens).
  const bun = existsSync(join(dir, "node_modules", ".bin", "bun")) ? join(dir, "node_modules", ".bin", "bun") : process.execPath;
  run([bun, "run", "scripts/build.ts"], dir);
  if (!existsSync(binary)) throw new Error("the round-1 build made no " + binary);
  return { tree: dir, binary };
}

// --- one measurement ------------------------------------------------------------------------------

/** What both trees' startLocalVss return that is used here; checked where it comes in. */
const startedVssSchema = z.object({
  spm: z.object({ pid: z.number().int() }),
  routers: z.array(z.object({ pid: z.number().int(), address: z.string() })).min(1),
  peers: z.array(z.object({ id: z.string(), pid: z.number().int() })),
  /** Absent in round 1 (no TLS, no access keys). */
  security: z.union([z.object({ insecure: z.literal(true) }), z.object({ insecure: z.literal(false), credentialsPath: z.string() })]).optional(),
});
type StartedVss = z.infer<typeof startedVssSchema> & { stop(): Promise<void> };
type StartVss = (options: Record<string, unknown>) => Promise<unknown>;

async function startVssOf(tree: string, options: Record<string, unknown>): Promise<StartedVss> {
  const module: { startLocalVss?: unknown } = await import(join(tree, "src", "local", "vss.ts"));
  if (typeof module.startLocalVss !== "function") throw new Error(tree + "/src/local/vss.ts has no startLocalVss");
  const started = await (module.startLocalVss as StartVss)(options);
  const stop = (started as { stop?: unknown } | null)?.stop;
  if (typeof stop !== "function") throw new Error(tree + "'s startLocalVss returned no stop()");
  const stopStarted = () => (stop as () => Promise<void>).call(started);
  const parsed = startedVssSchema.safeParse(started);
  if (!parsed.success) {
    await stopStarted(); // its roles would otherwise run until this process exits
    throw new Error(tree + "'s startLocalVss returned another shape: " + (parsed.error.issues[0]?.message ?? "?"));
  }
  return { ...parsed.data, stop: stopStarted };
}

/** Whether BINARY's bench has --keep (today's deletes its bucket at the end without it; round 1 never deletes). */
function benchHasKeep(binary: string): boolean {
  return Bun.spawnSync([binary, "bench", "--help"]).stdout.toString().includes("--keep");
}

const phaseLineSchema = z.object({ op: z.string(), count: z.number(), opsPerSec: z.number(), seconds: z.number(), errors: z.number() });

/** Each of PIDS's CPU µs per second of wall time over the next WINDOWMS, with their "total". */
export async function idleMicrosPerSecond(pids: Record<string, number>, windowMs: number): Promise<Record<string, number>> {
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  const started = performance.now();
  await Bun.sleep(windowMs);
  const wallSeconds = (performance.now() - started) / 1000;
  const rates: Record<string, number> = {};
  let total = 0;
  for (const [name, pid] of Object.entries(pids)) {
    rates[name] = ((cpuSeconds(pid) - (before[name] ?? 0)) / wallSeconds) * 1e6;
    total += rates[name];
  }
  rates.total = total;
  return rates;
}

function rolePids(vss: StartedVss): Record<string, number> {
  return { spm: vss.spm.pid, router: vss.routers[0]?.pid ?? 0, ...Object.fromEntries(vss.peers.map((peer) => [peer.id, peer.pid])) };
}

/** Run `mictlanx bench --json` and take every process's CPU as each phase's line arrives. */
async function benchPhases(binary: string, vss: StartedVss, count: number): Promise<PhaseCost[]> {
  const keep = benchHasKeep(binary) ? ["--keep"] : [];
  // The VSS's admin key, as `mictlanx bench` finds it (none for an insecure or round-1 VSS).
  const credentials = vss.security?.insecure === false ? vss.security.credentialsPath : "";
  const args = [binary, "bench", "--router", vss.routers[0]?.address ?? "", "--json", ...keep, "--size", "4KiB", "--count", String(count), "--concurrency", "16", "--rf", "2"];
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "inherit", env: { ...process.env, MICTLANX_CREDENTIALS: credentials } });
  const pids: Record<string, number> = { client: proc.pid, ...rolePids(vss) };
  const phases: PhaseCost[] = [];
  for await (const { line, cpuSeconds: spent } of linesWithCpu(proc.stdout, pids)) {
    const { seconds: wallSeconds, ...rest } = phaseLineSchema.parse(JSON.parse(line));
    phases.push({ ...rest, wallSeconds, cpuSeconds: spent });
  }
  const code = await proc.exited;
  if (phases.length === 0) throw new Error(binary + " bench exited " + code + " without a phase");
  return phases;
}

export interface SmallBallOptions {
  /** A mictlanx source tree: its src/local/vss.ts starts the VSS. */
  tree: string;
  /** What the roles and the bench client run (default TREE/dist/mictlanx). */
  binary?: string;
  /** Balls per phase. */
  count: number;
  /** No TLS and no access keys (trees that have them; round 1 has neither and ignores this). */
  insecure?: boolean;
  /** A fresh VSS directory is made under it and removed after (default the system's tmpdir). */
  workDir?: string;
  /** How long to watch the roles with no client after the bench (default 3000 ms; 0: not at all). */
  idleMs?: number;
}

/** A fresh VSS of TREE (3 peers, 1 router), one 4 KiB put and get phase at c16, rf 2, and what every process spent per ball. */
export async function cpuPerSmallBall(opts: SmallBallOptions): Promise<SmallBallCpu> {
  const binary = opts.binary ?? join(opts.tree, "dist", "mictlanx");
  const dir = mkdtempSync(join(opts.workDir ?? tmpdir(), "mictlanx-round1-"));
  try {
    const vss = await startVssOf(opts.tree, { dir, peers: 3, routers: 1, basePort: 0, command: [binary], ...(opts.insecure ? { insecure: true } : {}) });
    try {
      const phases = await benchPhases(binary, vss, opts.count);
      const of = (op: Op) => {
        const phase = phases.find((candidate) => candidate.op === op);
        if (!phase) throw new Error(binary + " bench printed no " + op + " phase");
        return phase;
      };
      const put = of("put");
      const get = of("get");
      const idleMs = opts.idleMs ?? 3_000;
      const idle = idleMs > 0 ? await idleMicrosPerSecond(rolePids(vss), idleMs) : { total: 0 };
      const figures = (phase: PhaseCost): PhaseFigures => ({ micros: microsPerBall(phase), opsPerSec: phase.opsPerSec, seconds: phase.wallSeconds });
      return { put: figures(put), get: figures(get), count: opts.count, errors: put.errors + get.errors, idleMicrosPerSecond: idle };
    } finally {
      await vss.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- the comparison -------------------------------------------------------------------------------

export interface ComparisonOptions {
  rounds?: number;
  count?: number;
  /** Today's binary (default MICTLANX_BIN or dist/mictlanx of this repo). */
  binary?: string;
}

/** Rounds of round-1, current TLS, current --insecure, each on a fresh VSS, interleaved so drift in the machine falls on all three alike. */
export async function runRound1Comparison(opts: ComparisonOptions = {}): Promise<Round1Comparison> {
  const rounds = opts.rounds ?? 2;
  const count = opts.count ?? 20_000;
  const binary = opts.binary ?? process.env.MICTLANX_BIN ?? join(root, "dist", "mictlanx");
  if (!existsSync(binary)) throw new Error(binary + " is missing: npm run build first");
  const round1 = prepareRound1Tree();
  const plans: Record<Variant, SmallBallOptions> = {
    "round-1": { tree: round1.tree, binary: round1.binary, count },
    "current TLS": { tree: root, binary, count },
    "current --insecure": { tree: root, binary, count, insecure: true },
  };
  const done: Round[] = [];
  for (let i = 0; i < rounds; i++) {
    const round: Partial<Round> = {};
    for (const variant of variants) {
      log("round " + (i + 1) + " of " + rounds + ": " + variant + ", 4 KiB × " + count + "…");
      round[variant] = await cpuPerSmallBall(plans[variant]);
      log("  put " + (round[variant].put.micros.total ?? 0).toFixed(0) + " µs/ball at " + fmt(round[variant].put.opsPerSec) + "/s, get " + (round[variant].get.micros.total ?? 0).toFixed(0) + " µs/ball at " + fmt(round[variant].get.opsPerSec) + "/s");
    }
    done.push(round as Round);
  }
  return summarizeRounds(done, count);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: "string", default: "2" }, count: { type: "string", default: "20000" } } });
  const rounds = Number(values.rounds);
  const count = Number(values.count);
  if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(count) || count < 1) {
    console.error("bench/round1.ts: --rounds and --count take positive integers");
    process.exit(2);
  }
  const summary = await runRound1Comparison({ rounds, count });
  const errors = summary.rounds.reduce((sum, round) => sum + variants.reduce((inner, variant) => inner + round[variant].errors, 0), 0);
  const machine = cpus().length + " cores (" + (cpus()[0]?.model ?? "?") + "), Bun " + Bun.version + ", " + new Date().toISOString().slice(0, 10);
  const output = [
    "machine: " + machine + "; 4 KiB × " + count + " per phase, c16, rf 2, " + rounds + " rounds; errors in all phases: " + errors,
    "",
    processTable(summary, "put"),
    "",
    processTable(summary, "get"),
    "",
    "Totals per round (µs of CPU per ball, all processes):",
    "",
    roundsTable(summary),
    "",
    idleTable(summary),
    "",
    ...verdictLines(summary),
  ].join("\n");
  console.log(output);
}

if (import.meta.main) await main();
