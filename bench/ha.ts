// Several SPMs on PostgreSQL beside one SPM on sqlite, in one run on one machine (issue 14,
// "Speed"). Starts two local VSSs as `up` starts them (TLS and access keys on, the same peers
// and routers): A with the embedded sqlite catalog, B with `--ha` (PostgreSQL, etcd, three SPMs).
// Then rounds of `mictlanx bench --size 4KiB --op all` (put, then get of what it put) against A,
// then B, then A, then B…: the box is noisy (two shared cores, a virtual disk), so every round is
// printed and the ratio B/A is the median of the rounds' ratios, with the CPU each kind of
// process (SPMs, peers, routers, PostgreSQL with its backends, etcd) spent per put, read at the
// end of each put phase (bench/phase-cpu.ts). Last, the failover: a put load
// on B, kill -9 of the leader SPM, and the longest gap without a successful put, with the term
// before and after.
//
//   npm run bench:ha                                   (builds dist/mictlanx; ~3 minutes)
//   bun bench/ha.ts [--rounds 3] [--duration 8s] [--concurrency 16] [--peers 3] [--routers 1]
//                   [--lease-ttl 5s] [--failover-seconds 20]
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Client } from "../src/client/client.ts";
import { startLocalVss, type LocalVss } from "../src/local/vss.ts";
import { RpcPool, ServiceClient } from "../src/net/pool.ts";
import { parseAddress } from "../src/net/address.ts";
import { spmOps, type SpmLeadership } from "../src/protocol/spm.ts";
import { toMictlanxError } from "../src/lib/errors.ts";
import type { PhaseResult } from "../src/bench/stats.ts";
import { cpuSeconds, linesWithCpuOf, treeCpuSeconds } from "./phase-cpu.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "8s" },
    concurrency: { type: "string", default: "16" },
    peers: { type: "string", default: "3" },
    routers: { type: "string", default: "1" },
    "lease-ttl": { type: "string", default: "5s" },
    "failover-seconds": { type: "string", default: "20" },
  },
});
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);
const failoverSeconds = Number(values["failover-seconds"]);
const root = resolve(import.meta.dir, "..");
const binary = process.env.MICTLANX_BIN ?? join(root, "dist", "mictlanx");
const rf = 2;
/** Puts go on this long before the leader is killed, so the gap is measured in a steady load. */
const failoverWarmupMs = 3_000;
/** After a new leader is seen, puts must go on this long for the run to count as recovered. */
const failoverSettleMs = 3_000;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

type Engine = "sqlite" | "postgres";

/** Process kinds whose CPU each put phase reports (µs per put): all SPMs, peers, routers; PostgreSQL with its backends; etcd. */
const cpuKinds = ["spms", "peers", "routers", "postgres", "etcd"] as const;
type CpuKind = (typeof cpuKinds)[number];

function cpuReaders(vss: LocalVss): Record<CpuKind, () => number> {
  const sum = (pids: number[]) => () => pids.reduce((total, pid) => total + (cpuSeconds(pid) || 0), 0);
  const { services } = vss;
  return {
    spms: sum(vss.spms.map((spm) => spm.pid)),
    peers: sum(vss.peers.map((peer) => peer.pid)),
    routers: sum(vss.routers.map((router) => router.pid)),
    postgres: services ? () => treeCpuSeconds(services.postgres.pid) : () => 0,
    etcd: services ? sum([services.etcd.pid]) : () => 0,
  };
}

/** One `mictlanx bench --json` against a VSS's routers: its put and get phases, and each process kind's CPU per put. */
async function benchOnce(vss: LocalVss): Promise<{ put: PhaseResult; get: PhaseResult; putCpuUs: Record<CpuKind, number> }> {
  const routers = vss.routers.map((router) => router.address).join(",");
  const env = { ...process.env, MICTLANX_CREDENTIALS: vss.security.insecure ? "" : vss.security.credentialsPath };
  // --keep: deleting the balls would leave the peers collecting garbage during the next round.
  const args = ["bench", "--router", routers, "--json", "--keep", "--size", "4KiB", "--op", "all", "--duration", values.duration, "--concurrency", String(concurrency), "--rf", String(rf)];
  const proc = Bun.spawn([binary, ...args], { stdout: "pipe", stderr: "pipe", env });
  const stderr = new Response(proc.stderr).text();
  const phases: Array<{ phase: PhaseResult; cpuSeconds: Record<string, number> }> = [];
  for await (const { line, cpuSeconds: spent } of linesWithCpuOf(proc.stdout, cpuReaders(vss))) phases.push({ phase: JSON.parse(line) as PhaseResult, cpuSeconds: spent });
  const [err, code] = await Promise.all([stderr, proc.exited]);
  const put = phases.find(({ phase }) => phase.op === "put");
  const get = phases.find(({ phase }) => phase.op === "get");
  if (code !== 0 || put === undefined || get === undefined) throw new Error(`mictlanx bench exited ${code}: ${err.trim().split("\n").slice(-5).join(" | ")}`);
  const putCpuUs = Object.fromEntries(cpuKinds.map((kind) => [kind, ((put.cpuSeconds[kind] ?? 0) * 1e6) / Math.max(1, put.phase.count)])) as Record<CpuKind, number>;
  return { put: put.phase, get: get.phase, putCpuUs };
}

type Round = Record<Engine, Awaited<ReturnType<typeof benchOnce>>>;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function alternate(vsss: Record<Engine, LocalVss>): Promise<Round[]> {
  const done: Round[] = [];
  for (let round = 1; round <= rounds; round += 1) {
    log(`round ${round}/${rounds}: sqlite…`);
    const sqlite = await benchOnce(vsss.sqlite);
    log(`round ${round}/${rounds}: postgres…`);
    const postgres = await benchOnce(vsss.postgres);
    done.push({ sqlite, postgres });
    log(`  put ${sqlite.put.opsPerSec.toFixed(0)} vs ${postgres.put.opsPerSec.toFixed(0)}/s, get ${sqlite.get.opsPerSec.toFixed(0)} vs ${postgres.get.opsPerSec.toFixed(0)}/s`);
  }
  return done;
}

function roundsTable(done: Round[]): string {
  const lines = [
    "| round | sqlite put/s | postgres put/s | put ratio | sqlite put p99 | postgres put p99 | sqlite get/s | postgres get/s | get ratio | errors |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(0)} %`;
  for (const [i, { sqlite, postgres }] of done.entries()) {
    const errors = sqlite.put.errors + sqlite.get.errors + postgres.put.errors + postgres.get.errors;
    lines.push(
      `| ${i + 1} | ${sqlite.put.opsPerSec.toFixed(0)} | ${postgres.put.opsPerSec.toFixed(0)} | ${pct(postgres.put.opsPerSec, sqlite.put.opsPerSec)} | ${sqlite.put.p99Ms.toFixed(1)} ms | ${postgres.put.p99Ms.toFixed(1)} ms | ${sqlite.get.opsPerSec.toFixed(0)} | ${postgres.get.opsPerSec.toFixed(0)} | ${pct(postgres.get.opsPerSec, sqlite.get.opsPerSec)} | ${errors} |`,
    );
  }
  const putRatio = median(done.map((round) => round.postgres.put.opsPerSec / round.sqlite.put.opsPerSec));
  const getRatio = median(done.map((round) => round.postgres.get.opsPerSec / round.sqlite.get.opsPerSec));
  lines.push("", `median postgres/sqlite: put ${(100 * putRatio).toFixed(0)} % (target ≥ 70 %: ${putRatio >= 0.7 ? "met" : "not met"}), get ${(100 * getRatio).toFixed(0)} %`);
  return lines.join("\n");
}

/** CPU per 4 KiB put by process kind, the median of the rounds: what each engine's VSS spends where. */
function cpuTable(done: Round[]): string {
  const engines: Engine[] = ["sqlite", "postgres"];
  const cell = (engine: Engine, kind: CpuKind | "all") =>
    median(done.map((round) => (kind === "all" ? cpuKinds.reduce((total, k) => total + round[engine].putCpuUs[k], 0) : round[engine].putCpuUs[kind])));
  const lines = ["CPU per 4 KiB put (µs, median of the rounds; user + system of every process of the kind):", "", "| process | sqlite VSS | postgres VSS |", "|---|---:|---:|"];
  for (const kind of [...cpuKinds, "all"] as const) lines.push(`| ${kind} | ${engines.map((engine) => cell(engine, kind).toFixed(0)).join(" | ")} |`);
  return lines.join("\n");
}

// --- failover ------------------------------------------------------------------------------

/** Every SPM's leadership as it says it (undefined: it did not answer). */
async function leaderships(vss: LocalVss, pool: RpcPool): Promise<(SpmLeadership | undefined)[]> {
  return Promise.all(
    vss.spms.map(async (spm) => {
      try {
        return (await new ServiceClient(spmOps, pool, parseAddress(spm.address)).call("vss.status", {}, { timeoutMs: 2_000 })).leadership;
      } catch {
        return undefined;
      }
    }),
  );
}

/** The leading SPM's index and term, once one leads at a term above `above`. */
async function waitForLeader(vss: LocalVss, pool: RpcPool, above: number, timeoutMs: number): Promise<{ index: number; term: number }> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const all = await leaderships(vss, pool);
    const index = all.findIndex((leadership) => leadership?.role === "leader" && (leadership.term ?? 0) > above);
    const term = all[index]?.term;
    if (index >= 0 && term !== undefined) return { index, term };
    await Bun.sleep(50);
  }
  throw new Error(`no SPM led at a term above ${above} within ${timeoutMs} ms`);
}

/** A put load on `vss` at `concurrency`: the time each successful put completed, and the failures. */
function putLoad(vss: LocalVss): { stop: () => Promise<void>; successesMs: number[]; errors: string[] } {
  const credentials = vss.security.insecure ? {} : vss.security.credentials;
  const client = new Client({ routers: vss.routers.map((router) => router.address), cacheBytes: 0, ...credentials });
  const data = crypto.getRandomValues(new Uint8Array(4096));
  const successesMs: number[] = [];
  const errors: string[] = [];
  let running = true;
  let next = 0;
  const worker = async () => {
    while (running) {
      const index = next++;
      try {
        await client.put("failover", `f${String(index).padStart(9, "0")}`, data, { rf });
        successesMs.push(performance.now());
      } catch (error) {
        errors.push(toMictlanxError(error).message);
      }
    }
  };
  const workers = Promise.all(Array.from({ length: concurrency }, worker));
  return {
    successesMs,
    errors,
    stop: async () => {
      running = false;
      await workers;
      client.close();
    },
  };
}

/** The longest stretch without a successful put, from the kill on: [ms, from ms after the kill]. */
function longestGap(successesMs: number[], killedMs: number): { gapMs: number; fromMs: number } {
  let previous = killedMs;
  let best = { gapMs: 0, fromMs: 0 };
  for (const at of [...successesMs].sort((a, b) => a - b)) {
    if (at < killedMs) continue;
    if (at - previous > best.gapMs) best = { gapMs: at - previous, fromMs: previous - killedMs };
    previous = at;
  }
  return best;
}

async function failover(vss: LocalVss): Promise<string> {
  const pool = new RpcPool({ role: "spm", expectRole: "spm", ...(vss.clientSecurity() ? { security: vss.clientSecurity()! } : {}) });
  try {
    const before = await waitForLeader(vss, pool, 0, 20_000);
    const load = putLoad(vss);
    try {
      await Bun.sleep(failoverWarmupMs);
      const victim = vss.spms[before.index]!;
      const okBefore = load.successesMs.length;
      const killedMs = performance.now();
      victim.proc.kill(9);
      log(`failover: killed the leader ${victim.name} (pid ${victim.pid}, term ${before.term}) after ${okBefore} puts`);
      const after = await waitForLeader(vss, pool, before.term, failoverSeconds * 1000);
      const electedMs = performance.now() - killedMs;
      const settledFrom = performance.now();
      await waitUntil(() => load.successesMs.some((at) => at > settledFrom + failoverSettleMs), failoverSeconds * 1000);
      const { gapMs, fromMs } = longestGap(load.successesMs, killedMs);
      const firstAfter = load.successesMs.find((at) => at > killedMs);
      return [
        `failover: kill -9 of the leader SPM (${victim.name}) under a 4 KiB put load, concurrency ${concurrency}, lease TTL ${values["lease-ttl"]}`,
        `  term before ${before.term} (${victim.name}), after ${after.term} (${vss.spms[after.index]!.name}), new leader seen ${electedMs.toFixed(0)} ms after the kill`,
        `  longest gap without a successful put: ${gapMs.toFixed(0)} ms (from ${fromMs.toFixed(0)} ms after the kill); first put after the kill ${firstAfter === undefined ? "none" : `${(firstAfter - killedMs).toFixed(0)} ms`}`,
        `  puts ok ${load.successesMs.length}, failed ${load.errors.length}${load.errors.length > 0 ? ` (first: ${load.errors[0]})` : ""}`,
      ].join("\n");
    } finally {
      await load.stop();
    }
  } finally {
    pool.close();
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`puts did not resume within ${timeoutMs} ms`);
    await Bun.sleep(50);
  }
}

// --- main ----------------------------------------------------------------------------------

async function startBoth(work: string): Promise<Record<Engine, LocalVss>> {
  const shape = { peers: Number(values.peers), routers: Number(values.routers), basePort: 0, command: [binary] };
  mkdirSync(join(work, "sqlite"), { recursive: true });
  mkdirSync(join(work, "postgres"), { recursive: true });
  log(`starting VSS A: sqlite catalog, ${shape.peers} peers, ${shape.routers} router(s), TLS on…`);
  const sqlite = await startLocalVss({ ...shape, dir: join(work, "sqlite") });
  try {
    log("starting VSS B: --ha (PostgreSQL, etcd, 3 SPMs), the same shape…");
    const postgres = await startLocalVss({ ...shape, dir: join(work, "postgres"), ha: true, spmArgs: ["--lease-ttl", values["lease-ttl"]] });
    return { sqlite, postgres };
  } catch (error) {
    await sqlite.stop();
    throw error;
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "mictlanx-bench-ha-"));
  // PostgreSQL runs as an unprivileged user when this is root: it must pass through (not list) the dir.
  chmodSync(work, 0o711);
  try {
    const vsss = await startBoth(work);
    try {
      const done = await alternate(vsss);
      const report = await failover(vsss.postgres);
      const machine = `${cpus().length} cores (${cpus()[0]?.model ?? "?"}), Bun ${Bun.version}, ${new Date().toISOString().slice(0, 10)}`;
      console.log([`machine: ${machine}`, `4 KiB, --op all --duration ${values.duration} --concurrency ${concurrency} --rf ${rf}, ${values.peers} peers, ${values.routers} router(s), TLS on`, "", roundsTable(done), "", cpuTable(done), "", report].join("\n"));
    } finally {
      await Promise.all([vsss.sqlite.stop(), vsss.postgres.stop()]);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
