// The engine's public shapes. The wire layer maps these onto messages; nothing here knows of
// sockets or of the cluster.
import type { BucketClock } from "../lib/token-bucket.ts";

/** One chunk of one ball. Its string form is `${ball}_${index}` (see refs.ts). */
export interface ChunkRef {
  bucket: string;
  ball: string;
  index: number;
}

export interface ChunkMeta {
  bucket: string;
  ball: string;
  index: number;
  /** Bytes of chunk data. */
  size: number;
  /** xxHash3-64 of the data (src/lib/checksum.ts). */
  checksum: bigint;
  /** The shard that holds the record now (compaction may move it). */
  shardId: number;
  /** Byte offset of the record (not of the data) inside that shard file. */
  offset: number;
  /** Write sequence number; a higher seq wins for the same ref. Kept when compaction moves it. */
  seq: number;
  createdMs: number;
}

export type ShardState = "active" | "read_only" | "deleted";

export interface ShardInfo {
  id: number;
  state: ShardState;
  /** Bytes of the file on disk. */
  bytes: number;
  /** Bytes of records still needed: current chunks and tombstones that still shadow something. */
  liveBytes: number;
}

export interface StoreStats {
  capacityBytes: number;
  usedBytes: number;
  freeBytes: number;
  chunks: number;
  liveBytes: number;
  /** Shards with a file on disk (active and read-only); deleted ones are gone from the list. */
  shards: ShardInfo[];
  /** fdatasync calls that acknowledged writes. */
  fsyncs: number;
  /** Writes (puts, tombstones, compaction moves) those fsyncs covered; / fsyncs = mean batch. */
  fsyncBatchWritesTotal: number;
  /** The background scrub's counters and progress (state "off" until startScrub). */
  scrub: ScrubProgress;
}

/** File operations the engine performs on shard files; swappable so tests can inject faults. */
export interface FileIo {
  writev(fd: number, buffers: Uint8Array[], position: number): Promise<number>;
  datasync(fd: number): Promise<void>;
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  truncate(fd: number, length: number): Promise<void>;
  /**
   * A second descriptor of `path` for appends that bypass the page cache (O_DIRECT), or
   * undefined where the file system cannot do that. Optional: without it every write is buffered.
   */
  openDirect?(path: string): number | undefined;
}

export interface StoreOptions {
  dir: string;
  capacityBytes?: number;
  shardBytes?: number;
  groupCommitWaitMs?: number;
  /** Share of a read-only shard that must be garbage before compaction rewrites it (0..1). */
  compactionGarbageRatio?: number;
  /** Throttle for compaction's copying; unset means as fast as the disk allows. */
  compactionBytesPerSecond?: number;
  /** Where the engine reports what it repaired or found corrupt. Defaults to console.warn. */
  log?: (message: string) => void;
  /** Called after each group commit's fdatasync with how many writes it covered (for metrics). */
  onFsync?: (writes: number) => void;
  /** @internal Fault injection for tests; production leaves it unset. */
  io?: FileIo;
}

export interface ListQuery {
  bucket?: string;
  ballPrefix?: string;
  /** Opaque cursor from a previous page's `next`. */
  after?: string;
  limit: number;
}

export interface ListPage {
  chunks: ChunkMeta[];
  next?: string;
}

export type GetManyResult =
  | { ok: true; bytes: Uint8Array; meta: ChunkMeta }
  | { ok: false; code: string; message: string };

export interface CompactionResult {
  shardsCompacted: number;
  bytesReclaimed: number;
  recordsMoved: number;
}

/** Monotonic time for pacing and pass spacing; tests inject a stepped one. */
export type ScrubClock = BucketClock;

export interface ScrubOptions {
  /** Bytes per second the scrub may read (positive). */
  bytesPerSec: number;
  /** A pass starts at most this often (default limits.scrubPassIntervalMsDefault). */
  passIntervalMs?: number;
  /** Called once per pass for each chunk found corrupt. */
  onCorrupt?: (finding: ScrubFinding) => void;
  /** @internal Time for tests; production uses performance.now and unref'd timers. */
  clock?: ScrubClock;
}

export interface ScrubFinding {
  ref: ChunkRef;
  shardId: number;
  offset: number;
  seq: number;
  /** What failed, for a person (the read path's CorruptError message). */
  detail: string;
  /** The pass that found it (1 = the first). */
  pass: number;
}

export interface ScrubProgress {
  state: "off" | "scanning" | "waiting";
  /** Full passes finished since the store opened. */
  passes: number;
  /** Bytes read from shard files, all passes. */
  bytesScanned: number;
  /** Chunks read and verified, all passes. */
  chunksScanned: number;
  /** Corrupt chunks found, all passes (a chunk still bad on a later pass counts again). */
  corruptFound: number;
  /** How far the pass under way is through the shards it set out to read (0..1; 1 between passes). */
  passProgress: number;
  /** Wall-clock time the last full pass ended; absent before the first. */
  lastPassMs?: number;
  /** The scrub's byte rate; 0 when it is off. */
  ratePerSec: number;
}
