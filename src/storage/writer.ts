// The one writer of a store: appends records to the active shard with group commit.
//
// Requests arrive in groups (a put, a putMany, a delete, a compaction batch). A flush takes
// whole groups from the queue in order, writes them with writev at the end of the active shard,
// fdatasyncs once (in the thread pool), then applies them to the index (one savepoint, with the
// checkpoint; see index-db.ts for how commits are batched), and only then resolves them. So no
// promise resolves before the fsync that covers its record, and a get after a resolved put
// finds it.
//
// Waiting for company: when the writer is idle and fewer writes are queued than the last flush
// carried, it waits up to groupCommitWaitMs for that many to arrive; a lone writer (last flush
// of one) never waits, and 64 writers settle into flushes of 64. A flush carries at most
// groupCommitWritesMax writes and groupCommitBytesMax bytes, and never spans two shards.
import { assert } from "../lib/assert.ts";
import { FullError, MictlanxError, OverloadedError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { formatBytes } from "../lib/size.ts";
import type { IndexDb, IndexedRecord } from "./index-db.ts";
import { encodeHeader, headerBytesFor, isManifestKind, RecordKind, tombstoneChecksum, type DecodedHeader } from "./record.ts";
import { manifestGeneration } from "./manifest.ts";
import { ShardFile } from "./shard-file.ts";
import type { ShardSet } from "./shard-set.ts";
import type { ChunkRef, FileIo } from "./types.ts";

export type WriteRequest =
  /** `key`: the ball's key, carried in the record when the writer was told it. */
  | { kind: "put"; ref: ChunkRef; key?: string; data: Uint8Array; checksum: bigint; createdMs: number }
  | { kind: "tombstone"; ref: ChunkRef; createdMs: number }
  /** A ball's manifest (ref.ball is its object id, ref.index 0); `data` is manifest.ts's. */
  | { kind: "manifest"; ref: ChunkRef; key: string; dead: boolean; generation: number; data: Uint8Array; checksum: bigint; createdMs: number }
  /** A compaction copy: the record's bytes as they are, original seq and all. */
  | { kind: "move"; raw: Uint8Array; header: DecodedHeader };

/** A flush bypasses the page cache (ShardFile.writeAll) when its records average this size or more. */
export const directRecordBytesMin = 64 * 1024;

export interface WriteResult {
  seq: number;
  shard: number;
  offset: number;
  recordBytes: number;
}

interface Group {
  requests: WriteRequest[];
  bytes: number;
  /** Capacity held for the group's puts until it lands or fails. */
  reserved: number;
  resolve: (results: WriteResult[]) => void;
  reject: (error: unknown) => void;
  done: boolean;
}

export interface WriterOptions {
  dir: string;
  io: FileIo;
  index: IndexDb;
  shards: ShardSet;
  shardBytes: number;
  capacityBytes: number;
  groupCommitWaitMs: number;
  log: (message: string) => void;
  onFsync?: ((writes: number) => void) | undefined;
}

function nameBytes(ref: ChunkRef, key: string | undefined): number {
  return headerBytesFor(Buffer.byteLength(ref.bucket, "utf8"), Buffer.byteLength(ref.ball, "utf8"), key === undefined ? 0 : Buffer.byteLength(key, "utf8"));
}

export function requestBytes(r: WriteRequest): number {
  if (r.kind === "move") return r.raw.byteLength;
  if (r.kind === "tombstone") return nameBytes(r.ref, undefined);
  return nameBytes(r.ref, r.key) + r.data.byteLength;
}

export class Writer {
  readonly stats = { fsyncs: 0, fsyncBatchWritesTotal: 0 };
  private readonly o: WriterOptions;
  private readonly queue: Group[] = [];
  private queuedWrites = 0;
  private queuedBytes = 0;
  private reservedBytes = 0;
  private lastFlushWrites = 1;
  private seq: number;
  private flushing = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private commitTimer: ReturnType<typeof setTimeout> | undefined;
  private wakeCompany: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];
  /** Set when a failed append could not be undone: the shard's end is unknown, so stop. */
  private failed: MictlanxError | undefined;

  constructor(options: WriterOptions, lastSeq: number) {
    this.o = options;
    this.seq = lastSeq;
  }

  /** Queue writes as one group; resolves after their fsync and index commit. */
  submit(requests: WriteRequest[]): Promise<WriteResult[]> {
    if (this.failed) return Promise.reject(this.failed);
    const bytes = requests.reduce((sum, r) => sum + requestBytes(r), 0);
    if (this.queuedBytes > 0 && this.queuedBytes + bytes > limits.engineQueueBytesMax) {
      return Promise.reject(
        new OverloadedError(`the peer's write queue holds ${formatBytes(this.queuedBytes)}; retry later`),
      );
    }
    const putBytes = requests.reduce((sum, r) => sum + (r.kind === "put" ? requestBytes(r) : 0), 0);
    const full = this.capacityError(putBytes);
    if (full) return Promise.reject(full);
    this.reservedBytes += putBytes;
    return new Promise((resolve, reject) => {
      this.queue.push({ requests, bytes, reserved: putBytes, resolve, reject, done: false });
      this.queuedWrites += requests.length;
      this.queuedBytes += bytes;
      this.kick();
    });
  }

  /** Puts past capacity fail whole; deletes and compaction copies are let through (they free space). */
  private capacityError(putBytes: number): FullError | undefined {
    if (putBytes === 0) return undefined;
    const used = this.o.shards.usedBytes() + this.reservedBytes;
    if (used + putBytes <= this.o.capacityBytes) return undefined;
    return new FullError(
      `peer is full: ${formatBytes(used)} of ${formatBytes(this.o.capacityBytes)} used; free space or add a peer`,
    );
  }

  /** Resolves when nothing is queued or being written. */
  drain(): Promise<void> {
    if (!this.flushing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private companyArrived(): boolean {
    return this.queuedWrites >= this.lastFlushWrites || this.queuedBytes >= limits.groupCommitBytesMax;
  }

  private kick(): void {
    if (this.flushing) {
      if (this.wakeCompany && this.companyArrived()) this.wakeCompany();
      return;
    }
    if (this.companyArrived()) {
      this.clearTimer();
      void this.run();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, this.o.groupCommitWaitMs);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async run(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    this.clearTimer();
    try {
      while (this.queue.length > 0) {
        await this.flushOnce();
        if (this.queue.length > 0 && !this.companyArrived()) await this.waitForCompany();
      }
    } finally {
      this.flushing = false;
      this.scheduleIdleCommit();
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  /** When writes stop, the index still commits within indexCommitIntervalMs. */
  private scheduleIdleCommit(): void {
    if (this.commitTimer) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      if (this.flushing) return; // the running loop commits when due
      try {
        this.o.index.commit();
      } catch (error) {
        this.failed = new MictlanxError("internal", String(error), { cause: error });
        this.rejectQueued(this.failed);
      }
    }, limits.indexCommitIntervalMs);
    this.commitTimer.unref();
  }

  /** Stop timers (the store commits the index itself when it closes). */
  stop(): void {
    if (this.commitTimer) clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    this.clearTimer();
  }

  private waitForCompany(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeCompany = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.o.groupCommitWaitMs);
      this.wakeCompany = done;
    });
  }

  /** Take whole groups that fit one flush and the active shard's room; roll the shard first if needed. */
  private takeBatch(): Group[] {
    const first = this.queue[0];
    assert(first, "takeBatch on an empty queue");
    const active = this.o.shards.active;
    if (active.size > 0 && active.size + first.bytes > this.o.shardBytes) this.roll();
    const room = this.o.shardBytes - this.o.shards.active.size;
    const batch: Group[] = [];
    let writes = 0;
    let bytes = 0;
    for (const g of this.queue) {
      const fits =
        writes + g.requests.length <= limits.groupCommitWritesMax &&
        bytes + g.bytes <= Math.min(limits.groupCommitBytesMax, room);
      if (batch.length > 0 && !fits) break;
      batch.push(g); // the first group always goes, even alone past the limits
      writes += g.requests.length;
      bytes += g.bytes;
    }
    this.queue.splice(0, batch.length);
    this.queuedWrites -= writes;
    this.queuedBytes -= bytes;
    return batch;
  }

  private async flushOnce(): Promise<void> {
    const batch = this.takeBatch();
    try {
      await this.writeBatch(batch);
    } catch (error) {
      // Not a disk error (those are handled inside): a bug. Stop taking writes rather than guess.
      this.failed = new MictlanxError("internal", `the shard writer stopped: ${String(error)}`, { cause: error });
      for (const g of batch) this.finish(g, this.failed);
      this.rejectQueued(this.failed);
    }
  }

  /** Settle a group once: resolve with results or reject with an error, releasing its capacity. */
  private finish(g: Group, outcome: WriteResult[] | MictlanxError): void {
    if (g.done) return;
    g.done = true;
    this.reservedBytes -= g.reserved;
    if (outcome instanceof MictlanxError) g.reject(outcome);
    else g.resolve(outcome);
  }

  private async writeBatch(batch: Group[]): Promise<void> {
    const shard = this.o.shards.active;
    const start = shard.size;
    const { buffers, records, end } = this.encode(batch, shard.id, start);
    try {
      await shard.writeAll(buffers, start, { direct: end - start >= records.length * directRecordBytesMin });
      await shard.datasync();
    } catch (error) {
      await this.fail(batch, shard, start, error, "writing");
      return;
    }
    this.stats.fsyncs += 1;
    this.stats.fsyncBatchWritesTotal += records.length;
    this.o.onFsync?.(records.length);
    try {
      this.o.index.applyRecords(records, { id: shard.id, bytes: end }, { shard: shard.id, offset: end });
    } catch (error) {
      await this.fail(batch, shard, start, error, "indexing");
      return;
    }
    shard.size = end;
    this.lastFlushWrites = Math.max(1, records.length);
    this.settle(batch, records);
    if (shard.size >= this.o.shardBytes) this.roll();
    this.o.index.commitIfDue(); // a failure here is a stop: flushOnce turns it into `failed`
  }

  /** Headers get their seq here, in file order, so seq grows along each shard. */
  private encode(batch: Group[], shardId: number, start: number) {
    const buffers: Uint8Array[] = [];
    const records: IndexedRecord[] = [];
    let at = start;
    for (const g of batch) {
      for (const r of g.requests) {
        const record = this.toRecord(r, shardId, at);
        if (r.kind === "move") buffers.push(r.raw);
        else buffers.push(encodeHeader(record), ...(r.kind !== "tombstone" && r.data.byteLength > 0 ? [r.data] : []));
        records.push(record);
        at += record.recordBytes;
      }
    }
    return { buffers, records, end: at };
  }

  private toRecord(r: WriteRequest, shard: number, offset: number): IndexedRecord {
    const recordBytes = requestBytes(r);
    if (r.kind === "move") {
      assert(r.header.recordBytes === recordBytes, "a moved record's length differs from its header");
      if (!isManifestKind(r.header.kind)) return { ...r.header, shard, offset, recordBytes };
      const generation = manifestGeneration(r.raw.subarray(r.header.headerBytes));
      assert(generation !== undefined, "a moved manifest has no generation");
      return { ...r.header, shard, offset, recordBytes, generation };
    }
    this.seq += 1;
    const base = { bucket: r.ref.bucket, ball: r.ref.ball, index: r.ref.index, seq: this.seq, createdMs: r.createdMs };
    if (r.kind === "put") {
      const key = r.key === undefined ? {} : { key: r.key };
      return { ...base, ...key, kind: RecordKind.put, dataBytes: r.data.byteLength, dataChecksum: r.checksum, shard, offset, recordBytes };
    }
    if (r.kind === "manifest") {
      const kind = r.dead ? RecordKind.manifestTombstone : RecordKind.manifest;
      return { ...base, key: r.key, kind, dataBytes: r.data.byteLength, dataChecksum: r.checksum, generation: r.generation, shard, offset, recordBytes };
    }
    return { ...base, kind: RecordKind.tombstone, dataBytes: 0, dataChecksum: tombstoneChecksum(), shard, offset, recordBytes };
  }

  private settle(batch: Group[], records: IndexedRecord[]): void {
    let i = 0;
    for (const g of batch) {
      const results = g.requests.map(() => {
        const r = records[i++];
        assert(r, "fewer records than requests");
        return { seq: r.seq, shard: r.shard, offset: r.offset, recordBytes: r.recordBytes };
      });
      this.finish(g, results);
    }
  }

  /**
   * A write, fsync or index commit failed: nothing of the batch may stay visible, so cut the
   * shard back to its last good record. If even that fails the shard's end is unknown and the
   * writer stops for good (reopening the store rescans from the checkpoint).
   */
  private async fail(batch: Group[], shard: ShardFile, start: number, error: unknown, what: string): Promise<void> {
    const reported = this.toError(error, shard.id, what);
    try {
      await shard.truncateTo(start);
    } catch (undoError) {
      this.failed = new MictlanxError(
        "internal",
        `shard ${shard.id} could not be cut back after ${what} failed (${String(undoError)}); ` +
          "the store takes no more writes until it is reopened",
      );
    }
    for (const g of batch) this.finish(g, reported);
    if (this.failed) this.rejectQueued(this.failed);
  }

  private toError(error: unknown, shardId: number, what: string): MictlanxError {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === "ENOSPC" || code === "EDQUOT") {
      return new FullError(`peer is full: the disk has no space left for shard ${shardId} (${String(code)}); free space or add a peer`);
    }
    if (error instanceof MictlanxError) return error;
    return new MictlanxError("internal", `${what} shard ${shardId} failed: ${String(error)}`, { cause: error });
  }

  private rejectQueued(error: MictlanxError): void {
    for (const g of this.queue.splice(0)) this.finish(g, error);
    this.queuedWrites = 0;
    this.queuedBytes = 0;
  }

  /**
   * The active shard becomes read-only; a new, empty one (next id, fsynced dir) takes appends.
   * If that fails (no space, no fds) the current shard keeps growing past shardBytes and the
   * next flush tries again; a write that then fails gets its own error.
   */
  private roll(): void {
    const old = this.o.shards.active;
    let next: ShardFile | undefined;
    try {
      next = ShardFile.create(this.o.dir, old.id + 1, this.o.io);
      this.o.index.rollShard(old.id, old.size, next.id);
    } catch (error) {
      if (next) next.removeFile(this.o.dir);
      this.o.log(`could not start shard ${old.id + 1}, shard ${old.id} keeps taking writes: ${String(error)}`);
      return;
    }
    this.o.shards.add(next);
    this.o.shards.setActive(next);
    old.endWrites();
  }
}
