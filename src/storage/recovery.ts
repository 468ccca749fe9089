// Opening a store: make the index agree with the shard files again after whatever happened
// (a clean close, kill -9, a power cut, a deleted index).
//
// 1. Finish what compaction started: a shard the index marks deleted but whose file is still
//    there is removed. A shard the index knows as live whose file is gone is refused: that is
//    data loss from outside, and silently dropping its chunks would hide it.
// 2. Rescan from the checkpoint: the rest of the checkpoint's shard, every newer shard, and any
//    shard file the index has never seen (all of them when the index is new). Each record is
//    validated and applied; a torn tail is cut off the file (and fsynced) so no half-written
//    record is ever visible and new appends start at a clean end.
// 3. Pick the active shard: the newest, unless it is already full; then start a new one.
import * as fs from "node:fs";
import { CorruptError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import type { IndexDb, IndexedRecord } from "./index-db.ts";
import { scanShard } from "./scan.ts";
import { manifestGeneration } from "./manifest.ts";
import { isManifestKind } from "./record.ts";
import { fsyncDir, listShardFiles, ShardFile, shardPath, shardsDir } from "./shard-file.ts";
import { ShardSet } from "./shard-set.ts";
import type { FileIo, ShardState } from "./types.ts";

export interface RecoveryContext {
  dir: string;
  io: FileIo;
  index: IndexDb;
  shardBytes: number;
  log: (message: string) => void;
}

export interface RecoveryReport {
  shards: ShardSet;
  recordsScanned: number;
  tornBytesCut: number;
}

export async function recover(ctx: RecoveryContext): Promise<RecoveryReport> {
  const onDisk = removeDeletedShards(ctx, listShardFiles(ctx.dir, ctx.log));
  const shards = openLiveShards(ctx, onDisk);
  const report: RecoveryReport = { shards, recordsScanned: 0, tornBytesCut: 0 };
  try {
    for (const step of scanPlan(ctx, shards)) await scanOne(ctx, shards, step, report);
    chooseActive(ctx, shards);
  } catch (error) {
    shards.closeAll();
    throw error;
  }
  return report;
}

/** Returns the shard ids still on disk. */
function removeDeletedShards(ctx: RecoveryContext, onDisk: number[]): number[] {
  const present = new Set(onDisk);
  let removed = false;
  for (const s of ctx.index.shards()) {
    if (s.state !== "deleted" || !present.has(s.id)) continue;
    fs.rmSync(shardPath(ctx.dir, s.id));
    present.delete(s.id);
    removed = true;
    ctx.log(`removed shard ${s.id}: compaction had finished with it before the last stop`);
  }
  if (removed) fsyncDir(shardsDir(ctx.dir));
  return onDisk.filter((id) => present.has(id));
}

function openLiveShards(ctx: RecoveryContext, onDisk: number[]): ShardSet {
  const present = new Set(onDisk);
  for (const s of ctx.index.shards()) {
    if (s.state === "deleted" || present.has(s.id)) continue;
    throw new CorruptError(
      `shard ${s.id} is in the index but ${shardPath(ctx.dir, s.id)} is missing; ` +
        "restore the file, or rebuild the index to keep only what the shard files hold",
    );
  }
  const shards = new ShardSet();
  for (const id of onDisk) shards.add(ShardFile.open(ctx.dir, id, ctx.io));
  return shards;
}

interface ScanStep {
  id: number;
  from: number;
  /** Whether finishing this step may move the checkpoint (only in shard order past it). */
  advancesCheckpoint: boolean;
}

function scanPlan(ctx: RecoveryContext, shards: ShardSet): ScanStep[] {
  const checkpoint = ctx.index.checkpoint();
  const known = new Set(ctx.index.shards().map((s) => s.id));
  const steps: ScanStep[] = [];
  const ids = ctx.index
    .shards()
    .map((s) => s.id)
    .concat(shards.ids())
    .filter((id, i, all) => all.indexOf(id) === i && shards.get(id) !== undefined)
    .sort((a, b) => a - b);
  for (const id of ids) {
    if (id < checkpoint.shard && !known.has(id)) steps.push({ id, from: 0, advancesCheckpoint: false });
    if (id === checkpoint.shard) steps.push({ id, from: checkpoint.offset, advancesCheckpoint: true });
    if (id > checkpoint.shard) steps.push({ id, from: 0, advancesCheckpoint: true });
  }
  return steps;
}

async function scanOne(ctx: RecoveryContext, shards: ShardSet, step: ScanStep, report: RecoveryReport): Promise<void> {
  const file = shards.get(step.id);
  if (!file) return;
  const fileBytes = file.fileBytes();
  if (fileBytes < step.from) {
    throw new CorruptError(
      `shard ${step.id} is ${fileBytes} bytes but the index has records up to byte ${step.from}; ` +
        "restore the file, or rebuild the index to keep only what the shard files hold",
    );
  }
  if (!ctx.index.shard(step.id)) ctx.index.saveShards([{ id: step.id, state: "read_only", bytes: fileBytes }]);
  let pending: IndexedRecord[] = [];
  let pendingEnd = step.from;
  const flush = () => {
    if (pending.length === 0) return;
    const checkpoint = step.advancesCheckpoint ? { shard: step.id, offset: pendingEnd } : undefined;
    ctx.index.applyRecords(pending, { id: step.id, bytes: fileBytes }, checkpoint);
    report.recordsScanned += pending.length;
    pending = [];
  };
  const result = await scanShard(file, step.from, ({ header, offset, manifestData }) => {
    const generation = manifestData === undefined ? undefined : manifestGeneration(manifestData);
    if (isManifestKind(header.kind) && generation === undefined) {
      // Its checksums hold but its data is not a manifest this build wrote: never indexed, like a corrupt record.
      ctx.log(`shard ${step.id}: the manifest record at byte ${offset} holds no generation; it was not indexed`);
      return;
    }
    pending.push({ ...header, shard: step.id, offset, recordBytes: header.recordBytes, ...(generation === undefined ? {} : { generation }) });
    pendingEnd = offset + header.recordBytes;
    if (pending.length >= limits.recoveryRecordsPerTransactionMax) flush();
  });
  flush();
  for (const at of result.corruptRecords) {
    ctx.log(`shard ${step.id}: the record at byte ${at} failed its data checksum; it was not indexed`);
  }
  for (const r of result.skippedRegions) {
    ctx.log(`shard ${step.id}: bytes ${r.from}..${r.to} hold no valid record (damaged); skipped them`);
  }
  if (result.tailStart < fileBytes) {
    await file.truncateTo(result.tailStart);
    report.tornBytesCut += fileBytes - result.tailStart;
    ctx.log(`shard ${step.id}: cut a torn tail of ${fileBytes - result.tailStart} bytes at byte ${result.tailStart}`);
  }
  file.size = result.tailStart;
  const checkpoint = step.advancesCheckpoint ? { shard: step.id, offset: file.size } : undefined;
  const state: ShardState = ctx.index.shard(step.id)?.state ?? "read_only";
  ctx.index.saveShards([{ id: step.id, state, bytes: file.size }], checkpoint);
}

/** Exactly one active shard: the newest if it has room, else a new one after it. */
function chooseActive(ctx: RecoveryContext, shards: ShardSet): void {
  const live = ctx.index.shards().filter((s) => s.state !== "deleted" && shards.get(s.id));
  const newest = live.at(-1);
  const updates = live
    .filter((s) => s !== newest && s.state === "active")
    .map((s) => ({ id: s.id, state: "read_only" as const, bytes: shards.get(s.id)?.size ?? s.bytes }));
  if (newest && (shards.get(newest.id)?.size ?? 0) < ctx.shardBytes) {
    const file = shards.get(newest.id);
    if (!file) throw new CorruptError(`shard ${newest.id} vanished during open`);
    ctx.index.saveShards([...updates, { id: newest.id, state: "active", bytes: file.size }]);
    shards.setActive(file);
    return;
  }
  if (newest) updates.push({ id: newest.id, state: "read_only", bytes: shards.get(newest.id)?.size ?? newest.bytes });
  const nextId = Math.max(0, ...ctx.index.shards().map((s) => s.id), shards.maxId()) + 1;
  const file = ShardFile.create(ctx.dir, nextId, ctx.io);
  shards.add(file);
  ctx.index.saveShards([...updates, { id: nextId, state: "active", bytes: 0 }], { shard: nextId, offset: 0 });
  shards.setActive(file);
}
