// Compaction: rewrite read-only shards whose garbage passed the threshold, then delete them.
//
// For one shard S:
// 1. Page through the index rows that point into S (current chunks, current tombstones) in file
//    order. Read each record, check it against its row, and hand batches of them to the writer
//    as moves: byte-for-byte copies that keep their seq. The writer appends them to the active
//    shard, fsyncs, and re-points the rows in its usual transaction. A record overwritten or
//    deleted meanwhile loses to the newer one by seq, so a move never undoes a write.
// 2. One transaction forgets S: no chunk may still point into it; its dead rows go; S is marked
//    deleted. Then its file is removed and the directory fsynced. A crash in between leaves a
//    file the index calls deleted; open() removes it.
// Readers racing a move still get the right bytes: a read pins S's fd before its first await,
// and retiring S only closes the fd once the last reader lets go.
//
// The tombstone rule: a tombstone is copied forward only while some put of its ref that it
// shadows is still on disk in another shard (a `dead` row outside S). Puts inside S vanish with
// S, so a tombstone can only be dropped together with, or after, everything it shadows, and a
// rebuild from the shard files alone can never resurrect a deleted chunk. When S goes, a
// tombstone elsewhere whose ref has no dead put left is released too (it shadows nothing).
import * as fs from "node:fs";
import { MictlanxError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { refLabel } from "./refs.ts";
import type { IndexDb, LocatedRow } from "./index-db.ts";
import { decodeRecord, RecordKind, type DecodedHeader } from "./record.ts";
import { fsyncDir, shardsDir } from "./shard-file.ts";
import type { ShardFile } from "./shard-file.ts";
import type { ShardSet } from "./shard-set.ts";
import type { CompactionResult, ShardInfo } from "./types.ts";
import type { Writer, WriteRequest } from "./writer.ts";

export interface CompactorContext {
  dir: string;
  index: IndexDb;
  shards: ShardSet;
  writer: Writer;
  garbageRatio: number;
  bytesPerSecond: number | undefined;
  isClosing: () => boolean;
  log: (message: string) => void;
  /** Shards left alone until the store reopens: one of their live records is damaged. */
  damaged: Set<number>;
  /**
   * Files of shards the index already calls deleted but that could not be removed. No shard
   * is compacted until they are gone: a tombstone released when they were forgotten must not
   * be dropped while their old puts are still on disk for a rebuild to find.
   */
  unremoved: Map<number, string>;
}

/** Keeps copying at or under a byte rate by sleeping between batches. */
class Throttle {
  private readonly startMs = performance.now();
  private bytes = 0;
  constructor(private readonly bytesPerSecond: number | undefined) {}

  async pace(bytes: number): Promise<void> {
    if (!this.bytesPerSecond) return;
    this.bytes += bytes;
    const dueMs = this.startMs + (this.bytes / this.bytesPerSecond) * 1000;
    const waitMs = dueMs - performance.now();
    if (waitMs > 0) await Bun.sleep(waitMs);
  }
}

export function garbageRatio(s: ShardInfo): number {
  return s.bytes === 0 ? 0 : 1 - s.liveBytes / s.bytes;
}

export function compactionCandidates(ctx: CompactorContext, force: boolean): ShardInfo[] {
  return ctx.index
    .shards()
    .filter((s) => s.state === "read_only" && s.bytes > 0 && s.liveBytes < s.bytes && !ctx.damaged.has(s.id))
    .filter((s) => force || garbageRatio(s) >= ctx.garbageRatio)
    .sort((a, b) => garbageRatio(b) - garbageRatio(a));
}

export async function compactOnce(ctx: CompactorContext, force: boolean): Promise<CompactionResult> {
  const result: CompactionResult = { shardsCompacted: 0, bytesReclaimed: 0, recordsMoved: 0 };
  // Yield once even when there is nothing to do, so a caller looping on compact() cannot
  // starve the event loop (and with it every write's fsync callback).
  await new Promise<void>((resolve) => setImmediate(resolve));
  removeLeftovers(ctx);
  const throttle = new Throttle(ctx.bytesPerSecond);
  for (const shard of compactionCandidates(ctx, force)) {
    if (ctx.isClosing()) break;
    const done = await compactShard(ctx, shard, throttle);
    if (!done) continue;
    result.shardsCompacted += 1;
    result.bytesReclaimed += done.bytesReclaimed;
    result.recordsMoved += done.recordsMoved;
  }
  return result;
}

async function compactShard(
  ctx: CompactorContext,
  shard: ShardInfo,
  throttle: Throttle,
): Promise<{ bytesReclaimed: number; recordsMoved: number } | undefined> {
  const file = ctx.shards.get(shard.id);
  if (!file?.acquire()) return undefined;
  let moved: { records: number; bytes: number } | undefined;
  try {
    moved = await moveLiveRecords(ctx, file, throttle);
  } finally {
    file.release();
  }
  if (!moved) return undefined;
  if (!ctx.index.finishCompaction(shard.id)) {
    ctx.log(`compaction of shard ${shard.id}: chunks still point into it after the moves; left it`);
    return undefined;
  }
  ctx.shards.retire(shard.id);
  ctx.unremoved.set(shard.id, file.path);
  removeLeftovers(ctx);
  return { bytesReclaimed: Math.max(0, shard.bytes - moved.bytes), recordsMoved: moved.records };
}

function removeLeftovers(ctx: CompactorContext): void {
  if (ctx.unremoved.size === 0) return;
  for (const [id, filePath] of ctx.unremoved) {
    try {
      fs.rmSync(filePath, { force: true });
      ctx.unremoved.delete(id);
    } catch (error) {
      throw new MictlanxError("internal", `compaction cannot remove ${filePath} (${String(error)}); it stops until then`);
    }
  }
  fsyncDir(shardsDir(ctx.dir));
}

/** Copy every live record out of `file`; undefined when stopped (closing) or a record is unreadable. */
async function moveLiveRecords(ctx: CompactorContext, file: ShardFile, throttle: Throttle) {
  const moved = { records: 0, bytes: 0 };
  let batch: WriteRequest[] = [];
  let batchBytes = 0;
  const submit = async () => {
    if (batch.length === 0) return;
    await ctx.writer.submit(batch);
    moved.records += batch.length;
    moved.bytes += batchBytes;
    await throttle.pace(batchBytes);
    batch = [];
    batchBytes = 0;
  };
  let after = -1;
  for (;;) {
    const rows = ctx.index.liveRowsInShard(file.id, after, limits.compactionRowsPerPageMax);
    if (rows.length === 0) break;
    for (const row of rows) {
      after = row.offset;
      if (row.kind === RecordKind.tombstone && !ctx.index.tombstoneNeededOutside(row, file.id)) continue;
      if (ctx.isClosing()) return undefined;
      const raw = await file.read(row.offset, row.recordBytes);
      const header = checkRecord(ctx, file.id, row, raw);
      if (!header) return undefined;
      batch.push({ kind: "move", raw, header });
      batchBytes += raw.byteLength;
      if (batchBytes >= limits.compactionBatchBytesMax) await submit();
    }
  }
  await submit();
  return moved;
}

/**
 * A record about to be moved must be the one its row names. Bad data is copied as is (reads
 * keep saying CorruptError; dropping it would make an old version or nothing reappear); a bad
 * header is never copied, and the shard stays until that chunk is overwritten or deleted.
 */
function checkRecord(ctx: CompactorContext, shardId: number, row: LocatedRow, raw: Uint8Array): DecodedHeader | undefined {
  const label = refLabel(row);
  const decoded = decodeRecord(raw);
  const h = decoded.header;
  const matches =
    h !== undefined &&
    h.recordBytes === raw.byteLength &&
    h.kind === row.kind &&
    h.seq === row.seq &&
    h.bucket === row.bucket &&
    h.ball === row.ball &&
    (row.key === undefined || h.key === row.key) &&
    h.index === row.index;
  if (!matches) {
    ctx.damaged.add(shardId);
    ctx.log(
      `compaction of shard ${shardId}: the record of ${label} at byte ${row.offset} is damaged; ` +
        "left the shard until the chunk is rewritten and the store reopens",
    );
    return undefined;
  }
  if (!decoded.ok) ctx.log(`compaction of shard ${shardId}: chunk ${label} failed its checksum; moved it as is`);
  return h;
}
