// The chaos soak (issue 10): the real binary as `mictlanx up` with 4 peers and 2 routers, a
// mixed load that reuses keys from several client processes, and a seeded fault schedule that
// kill -9s every role (up restarts them), wipes a peer's data dir, starts a twin of a peer and
// SIGSTOPs a peer past the grace period. Then: rf restored for every ball, the catalog matches
// the peers' inventories, every key reads back in a state its ledger allows.
//
//   npm run soak -- [--minutes 2] [--seed S] [--faults kill-spm,wipe-peer,…|none] [--keep]
//   (MICTLANX_SEED=S replays too; --faults narrows the schedule to the kinds named, seeded as well)
//
// The seed fixes every choice (the ops, keys, sizes and payloads of each worker lane, the
// faults, their targets and gaps); process timing is not replayed. Exit 0 only when nothing
// was lost and no wrong byte was read; otherwise 1, with every reason.
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureBuilt } from "../../scripts/ensure-built.ts";
import { mulberry32 } from "../support/random.ts";
import { audit, type AuditResult } from "./audit.ts";
import { FaultInjector, type FaultRecord } from "./faults.ts";
import { derivedSeed, faultKinds, faultSchedule, opKinds, soakPlan, type FaultKind } from "./plan.ts";
import { ledgerFile, workerLine, zeroCounts, type LedgerFile, type OpCounts, type WorkerLine } from "./protocol.ts";
import { signal, SystemFailure, UpProcess } from "./up.ts";

const soakStartedMs = performance.now();
const say = (line: string) => console.log(`[soak ${((performance.now() - soakStartedMs) / 1000).toFixed(1)}s] ${line}`);
const liveFailuresPrintedMax = 40;

interface Options {
  minutes: number;
  seed: number;
  faults: FaultKind[];
  keep: boolean;
}

function parseOptions(): Options {
  const { values } = parseArgs({ options: { minutes: { type: "string" }, seed: { type: "string" }, faults: { type: "string" }, keep: { type: "boolean" } } });
  const minutes = Number(values.minutes ?? "2");
  const seedText = values.seed ?? process.env.MICTLANX_SEED;
  const seed = seedText === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
  if (!Number.isFinite(minutes) || minutes <= 0) usage(`--minutes must be a number above 0, got "${values.minutes}"`);
  if (!Number.isInteger(seed) || seed < 0) usage(`--seed must be a whole number ≥ 0, got "${seedText}"`);
  const named = values.faults === undefined ? [...faultKinds] : values.faults === "none" ? [] : values.faults.split(",").map((name) => name.trim());
  const unknown = named.filter((name) => !(faultKinds as readonly string[]).includes(name));
  if (unknown.length > 0) usage(`unknown fault kind ${unknown.join(", ")}; the kinds are ${faultKinds.join(", ")} (or none)`);
  return { minutes, seed, faults: named as FaultKind[], keep: values.keep ?? false };
}

function usage(message: string): never {
  console.error(`soak: ${message}\nusage: npm run soak -- [--minutes 2] [--seed S] [--faults ${faultKinds.join(",")}|none] [--keep]`);
  process.exit(2);
}

/** One client worker process and what it has said. */
class Worker {
  readonly failures: Array<Extract<WorkerLine, { type: "failure" }>> = [];
  ops: OpCounts = zeroCounts();
  errors: OpCounts = zeroCounts();
  finished = false;
  readonly done: Promise<number>;

  constructor(
    readonly index: number,
    readonly proc: Bun.Subprocess<"ignore", "pipe", number>,
    readonly ledgerPath: string,
    onFailure: (line: Extract<WorkerLine, { type: "failure" }>) => void,
  ) {
    this.done = Promise.all([this.readLines(onFailure), proc.exited]).then(([, code]) => code);
  }

  private async readLines(onFailure: (line: Extract<WorkerLine, { type: "failure" }>) => void): Promise<void> {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const piece of this.proc.stdout) {
      rest += decoder.decode(piece, { stream: true });
      const lines = rest.split("\n");
      rest = lines.pop() ?? "";
      for (const text of lines) {
        if (text.trim() === "") continue;
        const parsed = workerLine.safeParse(JSON.parse(text));
        if (!parsed.success) {
          onFailure({ type: "failure", worker: this.index, kind: "soak-bug", message: `worker ${this.index} printed a line the soak does not understand: ${text.slice(0, 200)}` });
          continue;
        }
        const line = parsed.data;
        if (line.type === "failure") {
          this.failures.push(line);
          onFailure(line);
        } else {
          this.ops = line.ops;
          this.errors = line.errors;
          if (line.type === "done") this.finished = true;
        }
      }
    }
  }
}

function startWorker(index: number, seed: number, dir: string, routers: string[], durationMs: number, onFailure: (line: Extract<WorkerLine, { type: "failure" }>) => void): Worker {
  const ledgerPath = join(dir, `ledger-${index}.json`);
  const stderr = openSync(join(dir, `worker-${index}.stderr.log`), "a");
  const args = ["--index", index, "--seed", derivedSeed(seed, 1_000 + index), "--routers", routers.join(","), "--bucket", "soak", "--duration-ms", durationMs, "--ledger", ledgerPath, "--parent-pid", process.pid];
  // process.env spelled out: Bun.spawn's default is the environment this process started with,
  // without MICTLANX_CREDENTIALS, which the soak set once up had made the VSS's admin key.
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "worker.ts"), ...args.map(String)], { stdin: "ignore", stdout: "pipe", stderr, env: { ...process.env } });
  return new Worker(index, proc, ledgerPath, onFailure);
}

function sum(counts: OpCounts[]): OpCounts {
  const total = zeroCounts();
  for (const count of counts) for (const kind of opKinds) total[kind] += count[kind];
  return total;
}

const formatCounts = (counts: Record<string, number>) => Object.entries(counts).map(([kind, n]) => `${kind}=${n}`).join(" ");

function listed(title: string, lines: string[], max = 25): string[] {
  if (lines.length === 0) return [];
  return [`${title} (${lines.length}):`, ...lines.slice(0, max).map((line) => `  - ${line}`), ...(lines.length > max ? [`  … and ${lines.length - max} more`] : [])];
}

async function main(): Promise<number> {
  const options = parseOptions();
  const { seed, minutes } = options;
  const narrowed = options.faults.length === faultKinds.length ? "" : ` --faults ${options.faults.join(",") || "none"}`;
  console.log(`[soak] seed ${seed} (replay with MICTLANX_SEED=${seed} or --seed ${seed}${narrowed}), ${minutes} minute(s), faults: ${options.faults.join(", ") || "none"}`);
  const binary = ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), `mictlanx-soak-${seed}-`));
  say(`working in ${dir}`);
  const durationMs = Math.round(minutes * 60_000);
  const reasons: string[] = [];
  const faults: FaultRecord[] = [];
  const workers: Worker[] = [];
  let up: UpProcess | undefined;
  let injector: FaultInjector | undefined;
  let printed = 0;
  const onWorkerFailure = (line: Extract<WorkerLine, { type: "failure" }>) => {
    printed += 1;
    if (printed <= liveFailuresPrintedMax) say(`FAILURE ${line.kind}: ${line.message}`);
    else if (printed === liveFailuresPrintedMax + 1) say(`(more failures: listed at the end)`);
  };
  const watchdog = setTimeout(() => {
    say(`the soak passed its time bound (${minutes} min + ${soakPlan.overheadMs / 60_000} min); stopping everything`);
    void cleanup().then(() => process.exit(1));
  }, durationMs + soakPlan.overheadMs);
  const cleanup = async () => {
    await injector?.release().catch(() => {});
    for (const worker of workers) signal(worker.proc.pid, "SIGKILL");
    await Promise.all(workers.map((worker) => worker.proc.exited));
    const leftovers = (await up?.stop()) ?? [];
    reasons.push(...leftovers.map((line) => `cleanup: ${line}`));
  };
  for (const name of ["SIGINT", "SIGTERM"] as const) {
    process.on(name, () => {
      say(`${name}: stopping everything`);
      void cleanup().then(() => process.exit(1));
    });
  }

  let result: AuditResult | undefined;
  try {
    up = await UpProcess.start(binary, dir, say);
    const routers = up.read().routers;
    say(`VSS up: spm ${up.read().spm}, routers ${routers.join(", ")}, peers ${up.read().peers.map((peer) => `${peer.id}@${peer.address}`).join(", ")}`);
    for (let index = 0; index < soakPlan.workers; index += 1) workers.push(startWorker(index, seed, dir, routers, durationMs, onWorkerFailure));
    injector = new FaultInjector(up, dir, binary);
    const deadline = performance.now() + durationMs;
    const progress = setInterval(() => say(`progress: ops ${formatCounts(sum(workers.map((worker) => worker.ops)))}; failed ops ${formatCounts(sum(workers.map((worker) => worker.errors)))}`), 30_000);
    try {
      await runSchedule(injector, seed, options.faults, deadline, faults, reasons, up);
      await injector.release();
      say(`schedule over: ${faults.length} faults; waiting for the workers to finish`);
      await waitWorkers(workers, durationMs, deadline, reasons);
    } finally {
      clearInterval(progress);
    }
    const ledgers = readLedgers(workers, reasons);
    say(`auditing ${ledgers.reduce((n, ledger) => n + ledger.keys.length, 0)} keys`);
    result = await audit(up, ledgers, "soak", say);
  } catch (error) {
    reasons.push(error instanceof SystemFailure ? error.message : `the soak itself failed (a bug in the soak, not necessarily the system): ${(error as Error).stack ?? String(error)}`);
  } finally {
    clearTimeout(watchdog);
    await cleanup();
  }

  const workerFailures = workers.flatMap((worker) => worker.failures);
  const wrongDuringRun = workerFailures.filter((line) => line.kind === "wrong-bytes").map((line) => line.message);
  const missingDuringRun = workerFailures.filter((line) => line.kind === "missing").map((line) => line.message);
  const soakBugs = workerFailures.filter((line) => line.kind === "soak-bug").map((line) => line.message);
  const lost = result?.lost ?? [];
  const wrong = [...wrongDuringRun, ...(result?.wrong ?? [])];
  const twins = faults.filter((fault) => fault.step.kind === "twin-peer");
  const twinsAccepted = twins.filter((fault) => fault.twinAccepted);
  const faultCounts = Object.fromEntries(faultKinds.map((kind) => [kind, faults.filter((fault) => fault.step.kind === kind).length])) as Record<FaultKind, number>;
  const failed = reasons.length + lost.length + wrong.length + missingDuringRun.length + soakBugs.length + (result?.unreadable.length ?? 0) + (result?.inventory.count ?? 0) > 0 || result === undefined;
  const report = [
    ...listed("reasons", reasons),
    ...listed("wrong bytes (read a state the ledger does not allow)", wrong),
    ...listed("lost (acknowledged data that did not read back)", lost),
    ...listed("missing during the run (not found for a ball that must exist)", missingDuringRun),
    ...listed("unreadable at the end", result?.unreadable ?? []),
    ...(result && result.inventory.count > 0 ? [`rf, catalog and inventory (${result.inventory.count}):`, ...result.inventory.lines(6).map((line) => `  ${line}`)] : []),
    ...listed("soak bugs", soakBugs),
    ...listed("notes: twins the SPM registered in place of the real peer (it takes a peer silent past --suspect-after for a replaced disk)", twinsAccepted.map((fault) => `at ${fault.atS} s: ${fault.outcome}`)),
  ];
  for (const line of report) console.log(line);
  const ops = sum(workers.map((worker) => worker.ops));
  const opErrors = sum(workers.map((worker) => worker.errors));
  console.log(
    `soak: seed ${seed}, minutes ${minutes}, ops ${formatCounts(ops)} (failed ${formatCounts(opErrors)}), faults ${formatCounts(faultCounts)} (twins accepted ${twinsAccepted.length}/${twins.length}), ` +
      `keys checked ${result?.keysChecked ?? 0}, balls checked ${result?.ballsChecked ?? 0} (chunks ${result?.chunksChecked ?? 0}, replicas ${result?.replicasChecked ?? 0}, ` +
      `orphan chunks ${result?.orphanChunks ?? 0}, garbage pending ${result?.garbagePending ?? 0}), lost ${lost.length}, wrong bytes ${wrong.length}, missing ${missingDuringRun.length}, ` +
      `inventory problems ${result?.inventory.count ?? 0}: ${failed ? "FAIL" : "PASS"}`,
  );
  if (failed || options.keep) say(`kept ${dir} (logs in ${join(dir, "vss", "logs")}, up.log, worker-*.stderr.log, ledger-*.json)`);
  else rmSync(dir, { recursive: true, force: true });
  return failed ? 1 : 0;
}

async function runSchedule(injector: FaultInjector, seed: number, kinds: FaultKind[], deadline: number, faults: FaultRecord[], reasons: string[], up: UpProcess): Promise<void> {
  // More rounds than can fit; the deadline ends the schedule. No kinds: load only, until the deadline.
  const minutes = (deadline - performance.now()) / 60_000;
  const steps = faultSchedule(mulberry32(derivedSeed(seed, 7)), Math.ceil(minutes * 4) + 1, kinds);
  if (steps.length === 0) await Bun.sleep(Math.max(0, deadline - performance.now()));
  for (const [number, step] of steps.entries()) {
    if (performance.now() + step.gapMs > deadline) return;
    await Bun.sleep(step.gapMs);
    up.checkRunning();
    const name = `fault ${number + 1} ${step.kind}${step.kind === "kill-spm" ? "" : ` ${step.target}`}`;
    try {
      const record = await injector.inject(step, Math.round((performance.now() - soakStartedMs) / 1000));
      faults.push(record);
      say(`${name}: ${record.outcome} (${(record.tookMs / 1000).toFixed(1)} s)`);
    } catch (error) {
      if (!(error instanceof SystemFailure)) throw error;
      // Injecting more faults into a VSS that did not recover could lose data the system is not to blame for.
      reasons.push(`${name}: ${error.message}`);
      say(`${name}: FAILED: ${error.message}; no further faults`);
      return;
    }
  }
}

async function waitWorkers(workers: Worker[], durationMs: number, deadline: number, reasons: string[]): Promise<void> {
  const bound = Math.max(0, deadline - performance.now()) + soakPlan.workerFinishMs;
  const timedOut = Symbol("timeout");
  for (const worker of workers) {
    const code = await Promise.race([worker.done, Bun.sleep(bound).then(() => timedOut)]);
    if (code === timedOut) reasons.push(`worker ${worker.index} did not finish within ${Math.round(bound / 1000)} s of the end of its ${durationMs / 1000} s run`);
    else if (code !== 0 || !worker.finished) reasons.push(`worker ${worker.index} exited with code ${String(code)} (see worker-${worker.index}.stderr.log)`);
  }
}

function readLedgers(workers: Worker[], reasons: string[]): LedgerFile[] {
  const ledgers: LedgerFile[] = [];
  for (const worker of workers) {
    if (!worker.finished) continue;
    const parsed = ledgerFile.safeParse(JSON.parse(readFileSync(worker.ledgerPath, "utf8")));
    if (parsed.success) ledgers.push(parsed.data);
    else reasons.push(`worker ${worker.index}'s ledger does not parse: ${parsed.error.message.slice(0, 300)}`);
  }
  return ledgers;
}

process.exit(await main());
