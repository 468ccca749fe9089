// One client process of the soak: put / overwrite / get / delete / ball-group ops on its own
// small key space (keys are reused on purpose), from a few lanes with their own client and
// seeded randomness. Every read is judged against the ledger (ledger.ts) as it happens; at its
// deadline the worker writes what each key may now be to its ledger file and exits.
// Run by soak.ts: bun test/soak/worker.ts --index N --seed S --routers A,B --bucket B …
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Client } from "../../src/client/client.ts";
import { MictlanxError } from "../../src/lib/errors.ts";
import { mulberry32 } from "../support/random.ts";
import { firstDifference, payload, stateOf } from "./content.ts";
import { absent, describeAcceptable, describeState, KeyLedger, matchState, type Attempt, type BallState } from "./ledger.ts";
import { derivedSeed, soakPlan, type OpKind } from "./plan.ts";
import { workerArgs, zeroCounts, type FailureKind, type LedgerFile, type WorkerLine } from "./protocol.ts";
import { findCredentials } from "../../src/client/credentials.ts";

const { values } = parseArgs({
  options: Object.fromEntries(["index", "seed", "routers", "bucket", "duration-ms", "ledger", "parent-pid"].map((name) => [name, { type: "string" as const }])),
});
const args = workerArgs.parse({
  index: values.index,
  seed: values.seed,
  routers: values.routers,
  bucket: values.bucket,
  durationMs: values["duration-ms"],
  ledger: values.ledger,
  parentPid: values["parent-pid"],
});
const worker = args.index;
const bucket = args.bucket;
const startedMs = Date.now();
const deadlineMs = startedMs + args.durationMs;
const ops = zeroCounts();
const errors = zeroCounts();
/** Every payload written, by sha256: which write it was, and how to make its bytes again. */
const writes = new Map<string, { label: string; contentSeed: number; size: number }>();

const emit = (line: WorkerLine) => process.stdout.write(`${JSON.stringify(line)}\n`);
const fail = (kind: FailureKind, message: string) => emit({ type: "failure", worker, kind, message: `${elapsed()} ${message}` });
const elapsed = () => `[w${worker} ${((Date.now() - startedMs) / 1000).toFixed(1)}s]`;

const keys = Array.from({ length: soakPlan.keysPerWorker }, (_, i) => {
  const ballId = i < soakPlan.groupKeysPerWorker ? groupName(i % soakPlan.groupsPerWorker) : undefined;
  return new KeyLedger(`w${worker}/k${String(i).padStart(2, "0")}`, ballId, soakPlan.unknownOutcomeSettleMs);
});
const archive = Array.from({ length: soakPlan.archiveKeysPerWorker }, (_, i) => new KeyLedger(`w${worker}/archive/a${String(i).padStart(2, "0")}`, undefined, soakPlan.unknownOutcomeSettleMs));
const groups = Array.from({ length: soakPlan.groupsPerWorker }, (_, g) => ({ id: groupName(g), members: keys.filter((key) => key.ballId === groupName(g)) }));

function groupName(group: number): string {
  return `w${worker}-group-${group}`;
}

// Stop with the soak, even after a kill -9 of it (the same rule as the roles' MICTLANX_PARENT_PID).
setInterval(() => {
  if (process.ppid !== args.parentPid) process.exit(3);
}, 1_000).unref();

/** When a read overlapped a write of its key, the likely cause of a "not found" (issue 10, point 3). */
function raceHint(acceptable: Attempt[]): string {
  return acceptable.length > 1 ? " (a write of this key ran during the read: the version being read was retired under the reader?)" : "";
}

/** What a read saw, said against what it could have seen; the wrong bytes' write is named when known. */
function judgeRead(what: string, key: KeyLedger, observed: BallState, acceptable: Attempt[], bytes?: Uint8Array): void {
  if (matchState(observed, acceptable)) return;
  if (observed.kind === "absent") {
    // Unmatched, so no acceptable state is absent: a ball that must exist was not there.
    fail("missing", `${what} ${key.key}: not found, but it may only be: ${describeAcceptable(acceptable)}${raceHint(acceptable)}`);
    return;
  }
  const known = writes.get(observed.sha256);
  const whose = known ? `the bytes of write ${known.label}` : `bytes of no write made by w${worker}`;
  const latest = [...acceptable].reverse().find((attempt) => attempt.state.kind === "present");
  const latestWrite = latest && latest.state.kind === "present" ? writes.get(latest.state.sha256) : undefined;
  const diff = bytes && latestWrite && !known ? `; against ${latestWrite.label}: ${firstDifference(payload(latestWrite.contentSeed, latestWrite.size), bytes)}` : "";
  fail("wrong-bytes", `${what} ${key.key}: got ${describeState(observed)}, ${whose}${diff}; acceptable: ${describeAcceptable(acceptable)}`);
}

function isNotFound(error: unknown): boolean {
  return error instanceof MictlanxError && error.code === "not_found";
}

interface Drawn {
  data: Uint8Array;
  contentSeed: number;
  chunkSize: number;
}

class Lane {
  private readonly random: () => number;
  private readonly client: Client;
  private opNumber = 0;

  constructor(readonly lane: number) {
    this.random = mulberry32(derivedSeed(args.seed, worker, lane));
    // One client per lane and one op at a time on it: its retry counter says whether this op was retried.
    this.client = new Client({ ...findCredentials(), routers: args.routers, cacheBytes: 0, rf: soakPlan.rf });
  }

  async run(): Promise<void> {
    try {
      while (Date.now() < deadlineMs) await this.step();
    } finally {
      this.client.close();
    }
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)] as T;
  }

  private async step(): Promise<void> {
    this.opNumber += 1;
    // First this lane's share of the archive: written once (again after a failure), then only read.
    const unwritten = archive.find((key, i) => i % soakPlan.lanesPerWorker === this.lane && key.mark() === 0 && key.canWrite(Date.now()));
    if (unwritten) return this.put(unwritten, this.drawArchivePayload());
    const shares = soakPlan.opShares;
    const r = this.random();
    const key = this.pick(keys);
    const group = this.pick(groups);
    if (r < shares.get) return this.get(this.random() < soakPlan.archiveReadShare ? this.pick(archive) : key);
    if (r < shares.get + shares.put) return key.canWrite(Date.now()) ? this.put(key) : this.get(key);
    if (r < shares.get + shares.put + shares.delete) return key.canWrite(Date.now()) ? this.delete(key) : this.get(key);
    if (r < shares.get + shares.put + shares.delete + shares.groupGet) return this.groupGet(group);
    return group.members.every((member) => member.canWrite(Date.now())) ? this.groupDelete(group) : this.groupGet(group);
  }

  private label(kind: OpKind, detail = ""): string {
    return `w${worker}.${this.lane}#${this.opNumber} ${kind}${detail} at ${((Date.now() - startedMs) / 1000).toFixed(1)}s`;
  }

  private retries(): number {
    return this.client.stats().retries;
  }

  private async get(key: KeyLedger): Promise<void> {
    const mark = key.mark();
    const attemptsBefore = key.attempts();
    const quietBefore = !key.busy();
    let observed: BallState;
    let bytes: Uint8Array | undefined;
    try {
      bytes = await this.client.get(bucket, key.key);
      observed = stateOf(bytes);
    } catch (error) {
      if (!isNotFound(error)) {
        errors.get += 1;
        return;
      }
      // Not found is "absent" only if the catalog agrees: a version retired under the reader,
      // or a chunk no peer has, also says not found.
      const stat = await this.statNow(key);
      const quiet = quietBefore && !key.busy() && key.attempts() === attemptsBefore;
      const acceptable = key.since(mark);
      const why = `not found (${(error as Error).message}); stat says ${stat.detail}`;
      if (acceptable.every((attempt) => attempt.state.kind === "present")) {
        ops.get += 1;
        fail("missing", `get ${key.key}: ${why}; it may only be: ${describeAcceptable(acceptable)}${raceHint(acceptable)}`);
        return;
      }
      if (stat.exists === true && quiet) {
        ops.get += 1;
        fail("missing", `get ${key.key}: ${why}, and no write of it ran meanwhile`);
        return;
      }
      if (stat.exists !== false) {
        errors.get += 1; // a delete raced the read, or the stat failed: absent or not, nothing can be concluded
        return;
      }
      observed = absent;
    }
    ops.get += 1;
    judgeRead("get", key, observed, key.since(mark), bytes);
  }

  private async statNow(key: KeyLedger): Promise<{ exists: boolean | undefined; detail: string }> {
    try {
      const located = await this.client.stat(bucket, key.key);
      return { exists: true, detail: `stat: v${located.version}, ${located.size} B, object ${located.objectId}` };
    } catch (error) {
      return { exists: isNotFound(error) ? false : undefined, detail: (error as Error).message };
    }
  }

  /** A churning key's payload: a size class, a size in it, a chunk size. */
  private drawPayload(): Drawn {
    const classes = soakPlan.sizeClasses;
    let r = this.random();
    let chosen = classes[classes.length - 1] as (typeof classes)[number];
    for (const sizeClass of classes) {
      if (r < sizeClass.share) {
        chosen = sizeClass;
        break;
      }
      r -= sizeClass.share;
    }
    return this.draw(chosen, soakPlan.chunkSizes);
  }

  /** An archived key's payload: always several chunks. */
  private drawArchivePayload(): Drawn {
    return this.draw(soakPlan.archiveSize, soakPlan.archiveChunkSizes);
  }

  private draw(range: { min: number; max: number }, chunkSizes: readonly number[]): Drawn {
    const size = range.min + Math.floor(this.random() * (range.max - range.min + 1));
    const contentSeed = Math.floor(this.random() * 2 ** 32);
    return { data: payload(contentSeed, size), contentSeed, chunkSize: this.pick(chunkSizes) };
  }

  private async put(key: KeyLedger, drawn = this.drawPayload()): Promise<void> {
    const { data, contentSeed, chunkSize } = drawn;
    const mayExist = key.current().some((attempt) => attempt.state.kind === "present");
    const kind: OpKind = key.ballId !== undefined ? "group-put" : mayExist ? "overwrite" : "put";
    const state = stateOf(data);
    const label = this.label(kind, ` ${data.byteLength} B/${chunkSize / 1024} KiB chunks`);
    if (state.kind === "present") writes.set(state.sha256, { label, contentSeed, size: data.byteLength });
    const index = key.begin(state, label);
    try {
      await this.client.put(bucket, key.key, data, { chunkSize, ...(key.ballId === undefined ? {} : { ballId: key.ballId }) });
    } catch {
      key.fail(index, Date.now());
      errors[kind] += 1;
      return;
    }
    key.ack(index);
    ops[kind] += 1;
  }

  private async delete(key: KeyLedger): Promise<void> {
    const mark = key.mark();
    const index = key.begin(absent, this.label("delete"));
    const retriesBefore = this.retries();
    try {
      const meta = await this.client.delete(bucket, key.key);
      const removed: BallState = { kind: "present", size: meta.size, sha256: meta.checksum };
      const before = key.before(index, mark);
      if (!matchState(removed, before)) fail("wrong-bytes", `delete ${key.key}: removed a version of ${describeState(removed)}, which it could not hold; it may only have been: ${describeAcceptable(before)}`);
    } catch (error) {
      if (!isNotFound(error)) {
        key.fail(index, Date.now());
        errors.delete += 1;
        return;
      }
      // Not found: the key was absent, unless a retry of this delete met its own first attempt's work.
      const before = key.before(index, mark);
      if (this.retries() === retriesBefore && !matchState(absent, before)) {
        fail("missing", `delete ${key.key}: not found (first attempt, no retry), but it may only have been: ${describeAcceptable(before)}`);
      }
    }
    key.ack(index);
    ops.delete += 1;
  }

  private async groupGet(group: { id: string; members: KeyLedger[] }): Promise<void> {
    const marks = group.members.map((member) => member.mark());
    const got = new Map<string, { state: BallState; bytes: Uint8Array }>();
    let complete = true;
    try {
      for await (const { meta, data } of this.client.getGroup(bucket, group.id)) got.set(meta.key, { state: stateOf(data), bytes: data });
    } catch (error) {
      complete = isNotFound(error) && got.size === 0; // not found: the group is empty
      if (!complete) errors["group-get"] += 1;
    }
    if (complete) ops["group-get"] += 1;
    for (const key of got.keys()) {
      if (!group.members.some((member) => member.key === key)) fail("wrong-bytes", `group-get ${group.id}: returned ${key}, which was never put in this group`);
    }
    group.members.forEach((member, i) => {
      const seen = got.get(member.key);
      // A member the listing did not return was absent; that is known only if the read completed.
      if (seen === undefined && !complete) return;
      judgeRead(`group-get ${group.id}`, member, seen?.state ?? absent, member.since(marks[i] as number), seen?.bytes);
    });
  }

  private async groupDelete(group: { id: string; members: KeyLedger[] }): Promise<void> {
    const marks = group.members.map((member) => member.mark());
    const label = this.label("group-delete", ` ${group.id}`);
    const indexes = group.members.map((member) => member.begin(absent, label));
    const retriesBefore = this.retries();
    let deleted: string[] = [];
    try {
      deleted = await this.client.deleteGroup(bucket, group.id);
    } catch (error) {
      if (!isNotFound(error)) {
        group.members.forEach((member, i) => member.fail(indexes[i] as number, Date.now()));
        errors["group-delete"] += 1;
        return;
      }
    }
    for (const key of deleted) {
      if (!group.members.some((member) => member.key === key)) fail("wrong-bytes", `group-delete ${group.id}: deleted ${key}, which was never put in this group`);
    }
    const retried = this.retries() !== retriesBefore;
    group.members.forEach((member, i) => {
      const before = member.before(indexes[i] as number, marks[i] as number);
      if (!retried && !deleted.includes(member.key) && !matchState(absent, before)) {
        fail("missing", `group-delete ${group.id}: did not find ${member.key} (no retry), but it may only have been: ${describeAcceptable(before)}`);
      }
      member.ack(indexes[i] as number);
    });
    ops["group-delete"] += 1;
  }
}

function writeLedger(): void {
  const file: LedgerFile = {
    worker,
    seed: args.seed,
    keys: [...keys, ...archive].map((key) => ({ key: key.key, ...(key.ballId === undefined ? {} : { ballId: key.ballId }), acceptable: key.current() })),
    writes: Object.fromEntries([...writes].map(([sha, write]) => [sha, write.label])),
  };
  writeFileSync(args.ledger, JSON.stringify(file));
}

const progress = setInterval(() => emit({ type: "progress", worker, ops, errors }), soakPlan.progressIntervalMs);
try {
  await Promise.all(Array.from({ length: soakPlan.lanesPerWorker }, (_, lane) => new Lane(lane).run()));
  clearInterval(progress);
  writeLedger();
  emit({ type: "done", worker, ops, errors });
  process.exit(0);
} catch (error) {
  // Anything thrown here is the soak's own bug (the client's errors are all caught above).
  fail("soak-bug", `the worker itself failed: ${(error as Error).stack ?? String(error)}`);
  process.exit(2);
}
