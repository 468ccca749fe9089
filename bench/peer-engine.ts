// The peer's storage engine against the raw disk it sits on, in one run:
//   bun bench/peer-engine.ts [seconds-per-case] [rounds]
// Raw baselines: fsync'd 1 MiB appends; 4 KiB records written with one writev + one fdatasync
// per batch, batches as large as the engine formed at 64 writers. Engine: 1 MiB puts at 4 and 8
// writers, 4 KiB puts at 64 writers (and, for context, 4 KiB verified gets). Prints a table
// with engine/raw ratios. Uses a temp dir and removes it.
// Cases are interleaved over several rounds and summed, because a VM's disk drifts by 2x over
// seconds; comparing a raw run with an engine run minutes apart would measure the drift.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChunkStore } from "../src/storage/index.ts";
import { nodeFileIo } from "../src/storage/shard-file.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const secondsPerCase = Number(process.argv[2] ?? 6);
const rounds = Number(process.argv[3] ?? 3);
const secondsPerRound = secondsPerCase / rounds;
const settleMs = 500;
/** Header + names of the engine's 4 KiB records, so the raw baseline writes the same bytes. */
const engineRecordOverheadBytes = 56 + "bench".length + "small-00".length;

const root = fs.mkdtempSync(path.join(os.tmpdir(), "mx-bench-"));
const randomBytes = (n: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
  return b;
};
const oneMiB = randomBytes(MiB);
const fourKiB = randomBytes(4 * KiB);

interface Row {
  name: string;
  ops: number;
  seconds: number;
  bytes: number;
  note?: string;
}

async function forSeconds(body: () => Promise<number>): Promise<{ ops: number; seconds: number; bytes: number }> {
  const t0 = performance.now();
  let ops = 0;
  let bytes = 0;
  while (performance.now() - t0 < secondsPerRound * 1000) {
    bytes += await body();
    ops += 1;
  }
  return { ops, seconds: (performance.now() - t0) / 1000, bytes };
}

async function rawOneMiB(): Promise<Row> {
  const fd = fs.openSync(path.join(root, "raw-1m"), "w");
  let at = 0;
  const r = await forSeconds(async () => {
    await nodeFileIo.writev(fd, [oneMiB], at);
    await nodeFileIo.datasync(fd);
    at += MiB;
    return MiB;
  });
  fs.closeSync(fd);
  fs.rmSync(path.join(root, "raw-1m"));
  return { name: "raw: 1 MiB append + fdatasync", ...r };
}

async function rawSmallBatches(batch: number): Promise<Row> {
  const fd = fs.openSync(path.join(root, "raw-4k"), "w");
  const header = new Uint8Array(engineRecordOverheadBytes);
  const buffers = Array.from({ length: batch }, () => [header, fourKiB]).flat();
  const batchBytes = batch * (4 * KiB + engineRecordOverheadBytes);
  let at = 0;
  const r = await forSeconds(async () => {
    await nodeFileIo.writev(fd, buffers, at);
    await nodeFileIo.datasync(fd);
    at += batchBytes;
    return batchBytes;
  });
  fs.closeSync(fd);
  fs.rmSync(path.join(root, "raw-4k"));
  return { name: `raw: 4 KiB records, ${batch} per fdatasync`, ops: r.ops * batch, seconds: r.seconds, bytes: r.bytes };
}

async function enginePuts(name: string, writers: number, data: Uint8Array): Promise<Row & { perFsync: number }> {
  const dir = path.join(root, name.replace(/\W+/g, "-"));
  const store = await ChunkStore.open({ dir, log: () => undefined });
  const deadline = performance.now() + secondsPerRound * 1000;
  let ops = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; performance.now() < deadline; i += 1) {
        await store.put({ bucket: "bench", ball: `small-${String(w).padStart(2, "0")}`, index: i }, data);
        ops += 1;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const { fsyncs, fsyncBatchWritesTotal } = store.stats();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const perFsync = fsyncBatchWritesTotal / Math.max(1, fsyncs);
  return { name, ops, seconds, bytes: ops * data.length, perFsync, note: `${perFsync.toFixed(1)} writes/fsync` };
}

/** For context: verified 4 KiB reads (index lookup + pread + checksum) at 64 readers. */
async function engineGets(): Promise<Row> {
  const dir = path.join(root, "gets");
  const store = await ChunkStore.open({ dir, log: () => undefined });
  const count = 16_384;
  const perBatch = 1024;
  for (let i = 0; i < count; i += perBatch) {
    const items = Array.from({ length: perBatch }, (_, k) => ({ ref: { bucket: "bench", ball: "g", index: i + k }, bytes: fourKiB }));
    await store.putMany(items); // 1024 x 4 KiB: within batchChunksMax and batchBytesMax
  }
  const deadline = performance.now() + secondsPerRound * 1000;
  let ops = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async (_, w) => {
      for (let i = w; performance.now() < deadline; i += 64) {
        await store.get({ bucket: "bench", ball: "g", index: (i * 7919) % count });
        ops += 1;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { name: "engine: 4 KiB gets, 64 readers (page cache)", ops, seconds, bytes: ops * 4 * KiB };
}

function printTable(rows: Row[], ratios: [string, number][]): void {
  const fmt = (r: Row) => [
    r.name.padEnd(44),
    (r.ops / r.seconds).toFixed(0).padStart(9),
    (r.bytes / MiB / r.seconds).toFixed(1).padStart(9),
    r.note ?? "",
  ];
  console.log(`\n${"case".padEnd(44)} ${"ops/s".padStart(9)} ${"MiB/s".padStart(9)}  note`);
  console.log("-".repeat(84));
  for (const r of rows) console.log(fmt(r).join(" "));
  console.log("");
  for (const [name, ratio] of ratios) console.log(`${name.padEnd(44)} ${(ratio * 100).toFixed(0).padStart(6)} %`);
}

/**
 * Let the disk catch up between cases: a case that wrote gigabytes leaves the (virtual) disk
 * busy for a while, which would be charged to whichever case runs next.
 */
async function settle(): Promise<void> {
  Bun.spawnSync(["sync"]);
  await Bun.sleep(settleMs);
}

/** Sum of the rounds of one case. */
function total(rows: Row[]): Row {
  const first = rows[0];
  if (!first) throw new Error("no rounds");
  const sum = (f: (r: Row) => number) => rows.reduce((a, r) => a + f(r), 0);
  return { ...first, ops: sum((r) => r.ops), seconds: sum((r) => r.seconds), bytes: sum((r) => r.bytes) };
}

try {
  console.log(`peer engine bench: ${secondsPerCase} s per case in ${rounds} interleaved rounds, ${os.cpus().length} cores, dir ${root}`);
  const runs: Record<string, Row[]> = { raw1m: [], big4: [], big8: [], rawSmall: [], small: [], gets: [] };
  const perFsync: number[] = [];
  const bigCases: [string, () => Promise<Row>][] = [
    ["raw1m", rawOneMiB],
    ["big4", () => enginePuts("engine: 1 MiB puts, 4 writers", 4, oneMiB)],
    ["big8", () => enginePuts("engine: 1 MiB puts, 8 writers", 8, oneMiB)],
  ];
  for (let round = 0; round < rounds; round += 1) {
    const small = await enginePuts("engine: 4 KiB puts, 64 writers", 64, fourKiB);
    perFsync.push(small.perFsync);
    runs.small?.push(small);
    await settle();
    runs.rawSmall?.push(await rawSmallBatches(Math.max(1, Math.round(small.perFsync))));
    for (let k = 0; k < bigCases.length; k += 1) {
      const [key, run] = bigCases[(k + round) % bigCases.length] ?? bigCases[0]!; // rotate the order
      await settle();
      runs[key]?.push(await run());
    }
    await settle();
    runs.gets?.push(await engineGets());
  }
  const [raw1m, big4, big8, rawSmall, small, gets] = ["raw1m", "big4", "big8", "rawSmall", "small", "gets"].map((k) => total(runs[k] ?? []));
  if (!raw1m || !big4 || !big8 || !rawSmall || !small || !gets) throw new Error("missing case");
  const rate = (r: Row) => r.bytes / r.seconds;
  printTable(
    [raw1m, big4, big8, rawSmall, small, gets],
    [
      ["1 MiB, 4 writers / raw 1 MiB", rate(big4) / rate(raw1m)],
      ["1 MiB, 8 writers / raw 1 MiB", rate(big8) / rate(raw1m)],
      ["4 KiB, 64 writers / raw same-size batches", small.ops / small.seconds / (rawSmall.ops / rawSmall.seconds)],
    ],
  );
  console.log(`\nrecords per fsync at 64 writers, by round: ${perFsync.map((p) => p.toFixed(1)).join(", ")}`);
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
