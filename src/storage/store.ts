// ChunkStore: the peer's durable chunk store. A library the peer's server calls; it knows
// nothing of the network or the cluster.
//
//   dir/shards/NNNNNNNN.shard   append-only records (record.ts), ids only grow
//   dir/index.sqlite (+ -wal)   the index (index-db.ts), rebuildable from the shards
//
// Writes go through one group-committing writer (writer.ts); reads go straight to the shard
// file the index names and verify the whole chunk's checksum every time; compaction
// (compactor.ts) moves live records out of garbage-heavy read-only shards and deletes them.
// open() recovers (recovery.ts). One ChunkStore per dir: the index is opened with an exclusive
// lock, so a second opener gets ConflictError.
//
// Capacity: usedBytes is the bytes of shard files on disk. A put that would pass capacityBytes
// fails whole with FullError before anything is written; deletes and compaction copies are let
// through, because they are how space comes back (compaction needs room for one shard's live
// records). ENOSPC from the disk is FullError too, after the shard is cut back.
import * as fs from "node:fs";
import * as path from "node:path";
import { chunkChecksum, checksumHex } from "../lib/checksum.ts";
import { BadRequestError, ConflictError, CorruptError, MictlanxError, NotFoundError, toMictlanxError, UnavailableError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { compactOnce, type CompactorContext } from "./compactor.ts";
import { IndexDb, type ChunkRow, type ManifestRow } from "./index-db.ts";
import { chunkBallBytesMax, decodeRecord } from "./record.ts";
import { encodeManifestData, manifestBody, manifestBodyBytesMax, manifestGeneration } from "./manifest.ts";
import { recover } from "./recovery.ts";
import {
  decodeCursor,
  decodeManifestCursor,
  encodeCursor,
  encodeManifestCursor,
  prefixUpperBound,
  refLabel,
  refMapKey,
  validateBucket,
  validateChunkBytes,
  validateKey,
  validateRef,
} from "./refs.ts";
import { Scrubber, scrubOff } from "./scrub.ts";
import { listShardFiles, nodeFileIo, shardsDir, fsyncDir } from "./shard-file.ts";
import type { ShardSet } from "./shard-set.ts";
import type {
  ChunkMeta,
  ChunkRef,
  CompactionResult,
  GetManyResult,
  ListPage,
  ListQuery,
  ScrubOptions,
  StoreOptions,
  StoreStats,
} from "./types.ts";
import { verifiedRecord } from "./verify.ts";
import { Writer } from "./writer.ts";

export const indexFileName = "index.sqlite";
const indexFileSuffixes = ["", "-wal", "-shm"] as const;
const groupCommitWaitMsMax = 1_000;

interface Resolved {
  dir: string;
  capacityBytes: number;
  shardBytes: number;
  groupCommitWaitMs: number;
  compactionGarbageRatio: number;
  compactionBytesPerSecond: number | undefined;
  log: (message: string) => void;
  onFsync: ((writes: number) => void) | undefined;
  io: NonNullable<StoreOptions["io"]>;
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new BadRequestError(`${name} must be a positive integer, got ${String(v)}`);
  return v;
}

function resolveOptions(o: StoreOptions): Resolved {
  if (typeof o.dir !== "string" || o.dir.length === 0) throw new BadRequestError("store dir must be a non-empty path");
  const wait = o.groupCommitWaitMs ?? limits.groupCommitWaitMs;
  if (!Number.isFinite(wait) || wait < 0 || wait > groupCommitWaitMsMax) {
    throw new BadRequestError(`groupCommitWaitMs must be in 0..${groupCommitWaitMsMax}, got ${wait}`);
  }
  const ratio = o.compactionGarbageRatio ?? limits.compactionGarbageRatioDefault;
  if (!(ratio > 0 && ratio <= 1)) throw new BadRequestError(`compactionGarbageRatio must be in (0, 1], got ${ratio}`);
  const rate = o.compactionBytesPerSecond;
  if (rate !== undefined && !(Number.isFinite(rate) && rate > 0)) {
    throw new BadRequestError(`compactionBytesPerSecond must be positive, got ${rate}`);
  }
  return {
    dir: path.resolve(o.dir),
    capacityBytes: positiveInt("capacityBytes", o.capacityBytes, limits.capacityBytesDefault),
    shardBytes: positiveInt("shardBytes", o.shardBytes, limits.shardBytesDefault),
    groupCommitWaitMs: wait,
    compactionGarbageRatio: ratio,
    compactionBytesPerSecond: rate,
    log: o.log ?? ((m) => console.warn(`[mictlanx storage] ${m}`)),
    onFsync: o.onFsync,
    io: o.io ?? nodeFileIo,
  };
}

function toMeta(row: ChunkRow): ChunkMeta {
  const { recordBytes: _recordBytes, ...meta } = row;
  return meta;
}

export class ChunkStore {
  private readonly o: Resolved;
  private readonly index: IndexDb;
  private readonly shards: ShardSet;
  private readonly writer: Writer;
  /** Latest queued write per ref, so delete knows about puts not yet committed. */
  private readonly pending = new Map<string, { kind: "put" | "delete"; count: number }>();
  private compactionChain: Promise<unknown> = Promise.resolve();
  private readonly damagedShards = new Set<number>();
  private readonly unremovedShards = new Map<number, string>();
  private backgroundTimer: ReturnType<typeof setTimeout> | undefined;
  private scrubber: Scrubber | undefined;
  private readsInFlight = 0;
  private readsDrained: (() => void) | undefined;
  private closing = false;
  private closed = false;

  private constructor(o: Resolved, index: IndexDb, shards: ShardSet, writer: Writer) {
    this.o = o;
    this.index = index;
    this.shards = shards;
    this.writer = writer;
  }

  /** Open (creating if needed) and recover: rescan from the checkpoint, cut a torn tail. */
  static async open(options: StoreOptions): Promise<ChunkStore> {
    const o = resolveOptions(options);
    fs.mkdirSync(shardsDir(o.dir), { recursive: true });
    fsyncDir(o.dir);
    const index = new IndexDb(path.join(o.dir, indexFileName));
    try {
      const { shards } = await recover({ dir: o.dir, io: o.io, index, shardBytes: o.shardBytes, log: o.log });
      index.commit(); // what recovery found is durable before new writes start
      const writer = new Writer(
        {
          dir: o.dir,
          io: o.io,
          index,
          shards,
          shardBytes: o.shardBytes,
          capacityBytes: o.capacityBytes,
          groupCommitWaitMs: o.groupCommitWaitMs,
          log: o.log,
          onFsync: o.onFsync,
        },
        index.maxSeq(),
      );
      return new ChunkStore(o, index, shards, writer);
    } catch (error) {
      index.close();
      throw error;
    }
  }

  /**
   * Drop the index and build it again from the shard files alone (the store must not be open).
   * The record with the higher seq wins per ref; a tombstone deletes it.
   */
  static async rebuildIndex(options: StoreOptions): Promise<{ chunks: number; shards: number }> {
    const dir = path.resolve(options.dir);
    // Nothing to rebuild from (a wrong --data, a typo): an empty index would "succeed" and the
    // peer would then say it holds nothing. Checked before anything is created or removed.
    if (!holdsShards(dir)) {
      throw new ConflictError(
        `not rebuilding the index of ${dir}: it holds no shard files (${shardsDir(dir)} is missing or has no NNNNNNNN.shard), so the index would be empty; ` +
          `check that --data names a peer's data directory (one with shards/ and ${indexFileName})`,
      );
    }
    const indexFile = path.join(dir, indexFileName);
    // Refuse while the store is open: the existing index's lock says so (ConflictError).
    if (fs.existsSync(indexFile)) new IndexDb(indexFile).close();
    for (const suffix of indexFileSuffixes) fs.rmSync(indexFile + suffix, { force: true });
    const store = await ChunkStore.open(options);
    try {
      const stats = store.stats();
      return { chunks: stats.chunks, shards: stats.shards.length };
    } finally {
      await store.close();
    }
  }

  // --- writes ---------------------------------------------------------------------------------

  /**
   * Store a chunk; resolves once an fsync covers it and the index has it. A put to an existing
   * ref replaces it. `bytes` must not change until the promise settles.
   */
  async put(ref: ChunkRef, bytes: Uint8Array, expectedChecksum?: bigint): Promise<ChunkMeta> {
    this.checkOpen();
    const [meta] = await this.putMany([{ ref, bytes, checksum: expectedChecksum }]);
    if (!meta) throw new MictlanxError("internal", "put returned no meta");
    return meta;
  }

  /**
   * Several chunks in one group commit: validated as a whole first, so a bad one stores none.
   * An item's `key` (its ball's key) goes into the record, so the shards alone name the ball.
   */
  async putMany(items: { ref: ChunkRef; bytes: Uint8Array; checksum?: bigint; key?: string }[]): Promise<ChunkMeta[]> {
    this.checkOpen();
    if (!Array.isArray(items) || items.length === 0 || items.length > limits.batchChunksMax) {
      throw new BadRequestError(`a batch put takes 1..${limits.batchChunksMax} chunks`);
    }
    const requests = items.map((item) => this.putRequest(item));
    const total = requests.reduce((sum, r) => sum + r.data.byteLength, 0);
    if (items.length > 1 && total > limits.batchBytesMax) {
      throw new BadRequestError(`a batch put carries ${total} bytes; the limit is ${limits.batchBytesMax}`);
    }
    for (const r of requests) this.notePending(r.ref, "put");
    try {
      const results = await this.writer.submit(requests);
      return results.map((res, i) => {
        const r = requests[i];
        if (!r) throw new MictlanxError("internal", "batch put results out of step");
        const { bucket, ball, index } = r.ref;
        const meta = { bucket, ball, index, size: r.data.byteLength, checksum: r.checksum };
        return { ...meta, shardId: res.shard, offset: res.offset, seq: res.seq, createdMs: r.createdMs };
      });
    } finally {
      for (const r of requests) this.donePending(r.ref);
    }
  }

  private putRequest(item: { ref: ChunkRef; bytes: Uint8Array; checksum?: bigint; key?: string }) {
    if (typeof item !== "object" || item === null) throw new BadRequestError("a batch put item must be an object");
    const ref = validateRef(item.ref);
    const key = item.key === undefined ? {} : { key: validateKey(item.key) };
    const data = validateChunkBytes(ref, item.bytes);
    const checksum = chunkChecksum(data);
    if (item.checksum !== undefined && item.checksum !== checksum) {
      throw new CorruptError(
        `chunk ${refLabel(ref)} arrived with checksum ${checksumHex(BigInt.asUintN(64, BigInt(item.checksum)))} ` +
          `but its bytes hash to ${checksumHex(checksum)}; nothing was stored`,
      );
    }
    return { kind: "put" as const, ref, ...key, data, checksum, createdMs: Date.now() };
  }

  /**
   * Store ball manifests (docs/recovery.md) in one group commit, durable when this resolves.
   * A manifest covered by a tombstone this store already holds is stored and counted as garbage.
   */
  async putManifests(items: ManifestWrite[]): Promise<void> {
    this.checkOpen();
    if (!Array.isArray(items) || items.length === 0 || items.length > limits.manifestBatchItemsMax) {
      throw new BadRequestError(`a manifest batch takes 1..${limits.manifestBatchItemsMax} manifests`);
    }
    const requests = items.map((item) => manifestRequest(item));
    await this.writer.submit(requests);
  }

  /** A page of the current manifests (live ones and each key's tombstone), in (bucket, key, object id) order. */
  async listManifests(q: { after?: string; limit: number }): Promise<{ manifests: StoredManifest[]; next?: string }> {
    this.checkOpen();
    if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > limits.manifestListPageMax) {
      throw new BadRequestError(`manifest list limit must be an integer in 1..${limits.manifestListPageMax}, got ${String(q.limit)}`);
    }
    const after = q.after === undefined ? undefined : decodeManifestCursor(q.after);
    const rows = this.index.manifests({ ...(after ? { after } : {}), limit: q.limit });
    const manifests: StoredManifest[] = [];
    let bytes = 0;
    let consumed = 0;
    for (const row of rows) {
      if (consumed > 0 && bytes + row.recordBytes > limits.manifestListPageBytesMax) break;
      const stored = await this.readManifest(row);
      if (stored) manifests.push(stored);
      bytes += row.recordBytes;
      consumed += 1;
    }
    const last = rows[consumed - 1];
    const more = last !== undefined && (consumed < rows.length || rows.length === q.limit);
    return more ? { manifests, next: encodeManifestCursor(last) } : { manifests };
  }

  /** The current manifests naming this object id (its key's live one, or the key's tombstone): healing copies them with chunk 0. */
  async manifestsOfObject(bucket: string, objectId: string): Promise<StoredManifest[]> {
    this.checkOpen();
    const ref = validateRef({ bucket, ball: objectId, index: 0 });
    const rows = this.index.manifestsOfObject(ref.bucket, ref.ball, limits.manifestsOfObjectMax);
    const out: StoredManifest[] = [];
    for (const row of rows) {
      const stored = await this.readManifest(row);
      if (stored) out.push(stored);
    }
    return out;
  }

  /** A manifest's record, read and verified; undefined (and logged) when it is damaged. */
  private async readManifest(row: ManifestRow): Promise<StoredManifest | undefined> {
    for (let attempt = 0; ; attempt += 1) {
      const current = this.index.manifest(row);
      if (!current) return undefined; // covered meanwhile
      const file = this.shards.get(current.shard);
      if (!file?.acquire()) {
        if (attempt < limits.readRetriesMax) continue;
        throw new MictlanxError("internal", `manifest of ${row.bucket}/${row.key}: shard ${current.shard} is not open`);
      }
      let raw: Uint8Array;
      try {
        raw = await file.read(current.offset, current.recordBytes);
      } finally {
        file.release();
      }
      const decoded = decodeRecord(raw);
      const generation = decoded.ok ? manifestGeneration(decoded.data) : undefined;
      if (!decoded.ok || generation !== current.generation || decoded.header.seq !== current.seq || decoded.header.key !== current.key) {
        this.o.log(`the manifest of ${row.bucket}/${row.key} (object ${row.ball}) in shard ${current.shard} at byte ${current.offset} is damaged; left out of the listing`);
        return undefined;
      }
      return {
        bucket: current.bucket,
        key: current.key,
        objectId: current.ball,
        dead: current.dead,
        generation,
        createdMs: current.createdMs,
        body: manifestBody(decoded.data).slice(),
      };
    }
  }

  /** Append a tombstone (durable before this resolves); false if the chunk is not there. */
  async delete(ref: ChunkRef): Promise<boolean> {
    this.checkOpen();
    const r = validateRef(ref);
    const latest = this.pending.get(refMapKey(r))?.kind;
    const exists = latest !== undefined ? latest === "put" : this.index.getChunk(r) !== undefined;
    if (!exists) return false;
    this.notePending(r, "delete");
    try {
      await this.writer.submit([{ kind: "tombstone", ref: r, createdMs: Date.now() }]);
      return true;
    } finally {
      this.donePending(r);
    }
  }

  private notePending(ref: ChunkRef, kind: "put" | "delete"): void {
    const key = refMapKey(ref);
    const entry = this.pending.get(key);
    if (entry) {
      entry.kind = kind;
      entry.count += 1;
    } else {
      this.pending.set(key, { kind, count: 1 });
    }
  }

  private donePending(ref: ChunkRef): void {
    const key = refMapKey(ref);
    const entry = this.pending.get(key);
    if (!entry) return;
    entry.count -= 1;
    if (entry.count === 0) this.pending.delete(key);
  }

  // --- reads ----------------------------------------------------------------------------------

  /** The chunk's bytes, verified against its checksum on every read; `range` slices after that. */
  async get(ref: ChunkRef, range?: { offset: number; length: number }): Promise<Uint8Array> {
    const { bytes } = await this.read(ref, range);
    return bytes;
  }

  /** The whole chunk, verified, and its ball's key when its record carries one (a copy keeps it). */
  async getWithKey(ref: ChunkRef): Promise<{ bytes: Uint8Array; key?: string }> {
    const { bytes, key } = await this.read(ref);
    return key === undefined ? { bytes } : { bytes, key };
  }

  private async read(ref: ChunkRef, range?: { offset: number; length: number }): Promise<{ bytes: Uint8Array; meta: ChunkMeta; key?: string }> {
    this.checkOpen();
    const r = validateRef(ref);
    if (range !== undefined) checkRangeShape(range);
    this.readsInFlight += 1;
    try {
      for (let attempt = 0; ; attempt += 1) {
        const row = this.index.getChunk(r);
        if (!row) throw new NotFoundError(`chunk ${refLabel(r)} not found`);
        if (range !== undefined) checkRangeBounds(r, range, row.size);
        const file = this.shards.get(row.shardId);
        // Lookup and pin happen in one turn of the event loop, so compaction cannot retire the
        // shard in between; the retry only guards against that assumption breaking.
        if (!file?.acquire()) {
          if (attempt < limits.readRetriesMax) continue;
          throw new MictlanxError("internal", `chunk ${refLabel(r)}: shard ${row.shardId} is not open`);
        }
        let raw: Uint8Array;
        try {
          raw = await file.read(row.offset, row.recordBytes);
        } finally {
          file.release();
        }
        const { data, key } = verifiedRecord(r, row, raw);
        const bytes = range === undefined ? data : data.subarray(range.offset, range.offset + range.length);
        return { bytes, meta: toMeta(row), ...(key === undefined ? {} : { key }) };
      }
    } finally {
      this.readsInFlight -= 1;
      if (this.readsInFlight === 0) this.readsDrained?.();
    }
  }

  /** Per-chunk results in order; a failure of one is reported in its slot, not thrown. */
  async getMany(refs: ChunkRef[]): Promise<GetManyResult[]> {
    this.checkOpen();
    if (!Array.isArray(refs) || refs.length > limits.batchChunksMax) {
      throw new BadRequestError(`a batch get takes 0..${limits.batchChunksMax} chunks`);
    }
    const results: GetManyResult[] = new Array(refs.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < refs.length; i = next++) {
        try {
          const { bytes, meta } = await this.read(refs[i] as ChunkRef);
          results[i] = { ok: true, bytes, meta };
        } catch (error) {
          const e = toMictlanxError(error);
          results[i] = { ok: false, code: e.code, message: e.message };
        }
      }
    };
    const workers = Math.min(limits.getManyConcurrencyMax, refs.length);
    await Promise.all(Array.from({ length: workers }, worker));
    return results;
  }

  stat(ref: ChunkRef): ChunkMeta {
    this.checkOpen();
    const r = validateRef(ref);
    const row = this.index.getChunk(r);
    if (!row) throw new NotFoundError(`chunk ${refLabel(r)} not found`);
    return toMeta(row);
  }

  /** One page in (bucket, ball, index) order, UTF-8 byte order; `next` is the cursor for the rest. */
  list(q: ListQuery): ListPage {
    this.checkOpen();
    if (typeof q !== "object" || q === null) throw new BadRequestError("list query must be an object");
    if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > limits.listPageMax) {
      throw new BadRequestError(`list limit must be an integer in 1..${limits.listPageMax}, got ${String(q.limit)}`);
    }
    const bucket = q.bucket === undefined ? undefined : validateBucket(q.bucket);
    const prefix = q.ballPrefix === undefined || q.ballPrefix === "" ? undefined : checkPrefix(q.ballPrefix);
    const after = q.after === undefined ? undefined : decodeCursor(q.after);
    const rows = this.index.list({
      bucket,
      prefixLow: prefix,
      prefixHigh: prefix === undefined ? undefined : prefixUpperBound(prefix),
      after,
      limit: q.limit + 1,
    });
    const page = rows.slice(0, q.limit).map(toMeta);
    const last = page.at(-1);
    return rows.length > q.limit && last ? { chunks: page, next: encodeCursor(last) } : { chunks: page };
  }

  stats(): StoreStats {
    this.checkOpen();
    const shards = this.index.shards().filter((s) => s.state !== "deleted");
    const usedBytes = this.shards.usedBytes();
    return {
      capacityBytes: this.o.capacityBytes,
      usedBytes,
      freeBytes: Math.max(0, this.o.capacityBytes - usedBytes),
      chunks: this.index.chunks(),
      liveBytes: shards.reduce((sum, s) => sum + s.liveBytes, 0),
      shards,
      fsyncs: this.writer.stats.fsyncs,
      fsyncBatchWritesTotal: this.writer.stats.fsyncBatchWritesTotal,
      scrub: this.scrubber?.progress() ?? scrubOff,
    };
  }

  // --- compaction -----------------------------------------------------------------------------

  /** One compaction pass now (runs after any pass already under way). */
  compact(options?: { force?: boolean }): Promise<CompactionResult> {
    this.checkOpen();
    const force = options?.force === true;
    const run = this.compactionChain.then(() => compactOnce(this.compactorContext(), force));
    this.compactionChain = run.catch(() => undefined);
    return run;
  }

  /** Compact every `intervalMs` in the background, throttled by compactionBytesPerSecond. */
  startBackgroundCompaction(intervalMs: number): void {
    this.checkOpen();
    if (!Number.isFinite(intervalMs) || intervalMs <= 0) {
      throw new BadRequestError(`compaction interval must be positive, got ${intervalMs}`);
    }
    this.stopBackgroundCompaction();
    const tick = async () => {
      try {
        const r = await this.compact();
        if (r.shardsCompacted > 0) {
          this.o.log(`compacted ${r.shardsCompacted} shards: moved ${r.recordsMoved} records, reclaimed ${r.bytesReclaimed} bytes`);
        }
      } catch (error) {
        this.o.log(`background compaction failed: ${String(error)}`);
      }
      if (!this.closing) this.backgroundTimer = setTimeout(tick, intervalMs).unref();
    };
    // unref: background upkeep alone should not keep a process alive (a server's sockets do).
    this.backgroundTimer = setTimeout(tick, intervalMs).unref();
  }

  private stopBackgroundCompaction(): void {
    if (this.backgroundTimer) clearTimeout(this.backgroundTimer);
    this.backgroundTimer = undefined;
  }

  // --- scrub ----------------------------------------------------------------------------------

  /** Verify every chunk on disk in the background, pass after pass, at a byte rate (scrub.ts). */
  startScrub(options: ScrubOptions): void {
    this.checkOpen();
    if (this.scrubber) throw new BadRequestError("the scrub is already running");
    if (!(Number.isFinite(options.bytesPerSec) && options.bytesPerSec > 0)) {
      throw new BadRequestError(`the scrub rate must be a positive number of bytes per second, got ${options.bytesPerSec}`);
    }
    const interval = options.passIntervalMs;
    if (interval !== undefined && !(Number.isFinite(interval) && interval >= limits.scrubPassIntervalMsMin)) {
      throw new BadRequestError(`the scrub pass interval must be at least ${limits.scrubPassIntervalMsMin} ms, got ${interval}`);
    }
    const context = { index: this.index, shards: this.shards, isClosing: () => this.closing, log: this.o.log };
    this.scrubber = new Scrubber(context, options);
    this.scrubber.start();
  }

  private compactorContext(): CompactorContext {
    return {
      dir: this.o.dir,
      index: this.index,
      shards: this.shards,
      writer: this.writer,
      garbageRatio: this.o.compactionGarbageRatio,
      bytesPerSecond: this.o.compactionBytesPerSecond,
      isClosing: () => this.closing,
      log: this.o.log,
      damaged: this.damagedShards,
      unremoved: this.unremovedShards,
    };
  }

  /** Stop compaction, let queued writes and reads finish, close files and the index. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.stopBackgroundCompaction();
    await this.scrubber?.stop(); // its read under way holds a shard's fd
    await this.compactionChain;
    await this.writer.drain();
    this.writer.stop();
    if (this.readsInFlight > 0) await new Promise<void>((resolve) => (this.readsDrained = resolve));
    this.shards.closeAll();
    this.index.close(); // commits what the writer applied
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closing || this.closed) throw new UnavailableError("the chunk store is closed");
  }
}

function checkRangeShape(range: { offset: number; length: number }): void {
  const ok =
    typeof range === "object" &&
    range !== null &&
    Number.isSafeInteger(range.offset) &&
    Number.isSafeInteger(range.length) &&
    range.offset >= 0 &&
    range.length >= 0;
  if (!ok) throw new BadRequestError("a range needs a non-negative integer offset and length");
}

function checkRangeBounds(ref: ChunkRef, range: { offset: number; length: number }, size: number): void {
  if (range.offset + range.length > size) {
    throw new BadRequestError(
      `range ${range.offset}+${range.length} runs past the end of chunk ${refLabel(ref)} (${size} bytes)`,
    );
  }
}

/** What a caller hands putManifests: a ball's manifest, or (dead) a tombstone for its key. */
export interface ManifestWrite {
  bucket: string;
  key: string;
  objectId: string;
  dead: boolean;
  /** The SPM's commit order: higher is later (manifest.ts). */
  generation: number;
  /** The ball's metadata, opaque to the engine (the peer role's MessagePack). */
  body: Uint8Array;
}

/** A manifest as listManifests returns it. */
export interface StoredManifest {
  bucket: string;
  key: string;
  objectId: string;
  dead: boolean;
  generation: number;
  createdMs: number;
  body: Uint8Array;
}

function manifestRequest(item: ManifestWrite) {
  if (typeof item !== "object" || item === null) throw new BadRequestError("a manifest must be an object");
  const ref = validateRef({ bucket: item.bucket, ball: item.objectId, index: 0 });
  const key = validateKey(item.key);
  if (!Number.isSafeInteger(item.generation) || item.generation < 1) throw new BadRequestError(`manifest generation must be a positive integer, got ${String(item.generation)}`);
  if (!(item.body instanceof Uint8Array) || item.body.byteLength > manifestBodyBytesMax) {
    throw new BadRequestError(`a manifest body must be bytes, at most ${manifestBodyBytesMax}`);
  }
  const data = encodeManifestData(item.generation, item.body);
  const dead = item.dead === true;
  return { kind: "manifest" as const, ref, key, dead, generation: item.generation, data, checksum: chunkChecksum(data), createdMs: Date.now() };
}

function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== "string" || prefix.includes("\u0000") || !prefix.isWellFormed()) {
    throw new BadRequestError("ballPrefix must be well-formed text without NUL");
  }
  if (Buffer.byteLength(prefix, "utf8") > chunkBallBytesMax) {
    throw new BadRequestError(`ballPrefix is longer than a ball id can be (${chunkBallBytesMax} bytes)`);
  }
  return prefix;
}

/** Whether `dir` has a shards directory with at least one shard file in it. */
function holdsShards(dir: string): boolean {
  try {
    return listShardFiles(dir, () => {}).length > 0;
  } catch {
    return false; // no shards directory (or no dir at all)
  }
}
