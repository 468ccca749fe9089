// The chunk index: bun:sqlite in WAL mode at `dir/index.sqlite`. It is a cache of what the shard
// files say and can always be rebuilt from them (see store.ts, rebuildIndex).
//
// Tables
//   chunks      current put per ref: where its record is and what it says.
//   tombstones  current tombstone per deleted ref, while some older put of that ref may still
//               sit in a shard file (the tombstone rule, below).
//   dead        every put record still on disk that is not current: (ref, seq, shard). Bounded
//               by the garbage on disk; rows go when their shard is deleted.
//   manifests   current manifest records (docs/recovery.md): per (bucket, key) at most one
//               tombstone (dead = 1, the highest generation seen) and the live manifests of
//               higher generations, one per object id. A record covered by the key's tombstone
//               (generation at or below it) or beaten by a newer copy is garbage. The rule only
//               ever raises a key's tombstone, so a record dropped as covered stays covered
//               whatever order the records are applied in, and compaction (which copies every
//               current row, tombstones included) can never let a rebuild resurrect one.
//   shards      id, state, file bytes, live bytes (current chunks + tombstones in it).
//   meta        checkpoint (shard, offset): every record before it is reflected in the rows;
//               max_seq. Written in the same transaction as the rows it describes.
//
// Rows are written only after the fsync of their records, so the index never points at bytes
// that could vanish. synchronous=NORMAL is enough: a power cut may lose the last transactions
// but never tears one, and open() rescans the shards from the checkpoint to redo them.
//
// Commits are batched: one write transaction stays open and each group commit applies its rows
// in a savepoint inside it (visible at once to this connection, which serves every read), and
// the transaction commits every limits.indexCommitIntervalMs or indexCommitRowsMax rows. Why:
// committing per group commit rewrote every touched B-tree page into the WAL each time (about
// 5 KiB of WAL per 4 KiB chunk at 64 writers); batching amortizes that. Durability does not
// depend on it: acknowledged records are fsynced in the shards, the checkpoint commits with the
// rows it covers, and anything after it is rescanned on open. Compaction commits before it
// deletes a file, so the index never names a shard that is gone.
//
// Which record wins for a ref: the higher seq; on equal seq (a copy made by compaction) the one
// at the later position (shard id, then offset). Apply is idempotent and order-independent, so
// recovery and rebuild use the same code as live writes.
import { Database, type Statement } from "bun:sqlite";
import { assert } from "../lib/assert.ts";
import { ConflictError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { RecordKind, type RecordHeader } from "./record.ts";
import type { ChunkMeta, ChunkRef, ShardInfo, ShardState } from "./types.ts";

/** 2 added `manifests` (record version 2); a version 1 index is taken up as it is (it has none). */
const schemaVersion = 2;
const schemaVersionsUpgraded = [1];

const schema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shards (
  id INTEGER PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('active', 'read_only', 'deleted')),
  bytes INTEGER NOT NULL,
  live_bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
  bucket TEXT NOT NULL, ball TEXT NOT NULL, idx INTEGER NOT NULL,
  shard INTEGER NOT NULL, offset INTEGER NOT NULL, record_bytes INTEGER NOT NULL,
  length INTEGER NOT NULL, checksum INTEGER NOT NULL, seq INTEGER NOT NULL, created INTEGER NOT NULL,
  PRIMARY KEY (bucket, ball, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_by_shard ON chunks (shard, offset);
CREATE TABLE IF NOT EXISTS tombstones (
  bucket TEXT NOT NULL, ball TEXT NOT NULL, idx INTEGER NOT NULL,
  shard INTEGER NOT NULL, offset INTEGER NOT NULL, record_bytes INTEGER NOT NULL,
  seq INTEGER NOT NULL, created INTEGER NOT NULL,
  PRIMARY KEY (bucket, ball, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tombstones_by_shard ON tombstones (shard, offset);
CREATE TABLE IF NOT EXISTS dead (
  bucket TEXT NOT NULL, ball TEXT NOT NULL, idx INTEGER NOT NULL, seq INTEGER NOT NULL, shard INTEGER NOT NULL,
  PRIMARY KEY (bucket, ball, idx, seq, shard)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dead_by_shard ON dead (shard, bucket, ball, idx);
CREATE TABLE IF NOT EXISTS manifests (
  bucket TEXT NOT NULL, key TEXT NOT NULL, ball TEXT NOT NULL,
  generation INTEGER NOT NULL, dead INTEGER NOT NULL CHECK (dead IN (0, 1)),
  shard INTEGER NOT NULL, offset INTEGER NOT NULL, record_bytes INTEGER NOT NULL,
  seq INTEGER NOT NULL, created INTEGER NOT NULL,
  PRIMARY KEY (bucket, key, ball)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS manifests_by_shard ON manifests (shard, offset);
CREATE INDEX IF NOT EXISTS manifests_dead ON manifests (bucket, key) WHERE dead = 1;
CREATE INDEX IF NOT EXISTS manifests_by_object ON manifests (bucket, ball);
`;

/** A record as the index sees it: what it says (its header) and where it sits. */
export interface IndexedRecord extends RecordHeader {
  shard: number;
  offset: number;
  recordBytes: number;
  /** A manifest's generation, read from its data (manifest.ts); only for the manifest kinds. */
  generation?: number;
}

/** A current manifest row: what it says and where its record is. */
export interface ManifestRow {
  bucket: string;
  key: string;
  ball: string;
  generation: number;
  dead: boolean;
  shard: number;
  offset: number;
  recordBytes: number;
  seq: number;
  createdMs: number;
}

/** Where a live record sits; what compaction moves. */
export interface LocatedRow {
  kind: RecordKind;
  bucket: string;
  ball: string;
  /** A manifest's key (chunk rows and tombstones have none in the index). */
  key?: string;
  index: number;
  seq: number;
  offset: number;
  recordBytes: number;
}

export interface ChunkRow extends ChunkMeta {
  recordBytes: number;
}

interface Place {
  shard: number;
  offset: number;
  recordBytes: number;
  seq: number;
}

export interface Checkpoint {
  shard: number;
  offset: number;
}

/** What a transaction changed, mirrored into memory only once it committed. */
class Effects {
  chunks = 0;
  tombstones = 0;
  readonly live = new Map<number, number>();
  addLive(shard: number, bytes: number): void {
    this.live.set(shard, (this.live.get(shard) ?? 0) + bytes);
  }
}

type Row = Record<string, unknown>;
const num = (v: unknown): number => {
  const n = typeof v === "bigint" ? Number(v) : (v as number);
  assert(typeof n === "number" && Number.isSafeInteger(n), `index value ${String(v)} is not a safe integer`);
  return n;
};

/** Winner between two copies of a ref's records: higher seq, then later position. */
function beats(a: Place, b: Place): boolean {
  if (a.seq !== b.seq) return a.seq > b.seq;
  if (a.shard !== b.shard) return a.shard > b.shard;
  return a.offset > b.offset;
}

export class IndexDb {
  private readonly db: Database;
  private readonly s: ReturnType<typeof prepareStatements>;
  private readonly listStatements = new Map<string, Statement>();
  private readonly shardMirror = new Map<number, ShardInfo>();
  private chunkCount = 0;
  /** Rows in `tombstones`; when zero a put can skip looking one up (most stores, most of the time). */
  private tombstoneCount = 0;
  /** When the open write transaction began; undefined when none is open. */
  private openSinceMs: number | undefined;
  private rowsSinceCommit = 0;
  /** Set when a commit failed: the mirrors may be ahead of the file, so no more writes. */
  private broken: Error | undefined;

  constructor(file: string) {
    this.db = new Database(file, { create: true, strict: true });
    try {
      this.lock();
    } catch (error) {
      this.db.close(true);
      throw error;
    }
    this.db.run("PRAGMA synchronous = NORMAL");
    // Negative cache_size is KiB: keep the hot part of a large index in memory, bounded.
    this.db.run(`PRAGMA cache_size = -${Math.floor(limits.indexCacheBytes / 1024)}`);
    this.db.run(schema);
    this.s = prepareStatements(this.db);
    this.initMeta();
    for (const row of this.db.query("SELECT id, state, bytes, live_bytes FROM shards ORDER BY id").all() as Row[]) {
      const info = { id: num(row.id), state: row.state as ShardState, bytes: num(row.bytes), liveBytes: num(row.live_bytes) };
      this.shardMirror.set(info.id, info);
    }
    this.chunkCount = num((this.db.query("SELECT count(*) AS n FROM chunks").get() as Row).n);
    this.tombstoneCount = num((this.db.query("SELECT count(*) AS n FROM tombstones").get() as Row).n);
  }

  /**
   * Exclusive locking: this connection holds the database's lock from now until close, so a
   * second opener (another process, or a second ChunkStore on the same dir) fails at once
   * instead of two writers appending to the same shards. It also means WAL without shared
   * memory (no -shm file) and no outside readers while the store is open.
   */
  private lock(): void {
    this.db.run(`PRAGMA busy_timeout = ${limits.indexLockWaitMs}`);
    this.db.run("PRAGMA locking_mode = EXCLUSIVE");
    try {
      this.db.run("PRAGMA journal_mode = WAL");
      this.db.run("BEGIN IMMEDIATE");
      this.db.run("COMMIT");
    } catch (error) {
      if (!String(error).includes("locked") && !String(error).includes("busy")) throw error;
      throw new ConflictError(
        `the chunk store's index ${this.db.filename} is open elsewhere (another process or ChunkStore); close that first`,
      );
    }
  }

  private initMeta(): void {
    const version = this.metaValue("schema_version");
    if (version === undefined || schemaVersionsUpgraded.includes(version)) this.s.setMeta.run("schema_version", schemaVersion);
    else assert(version === schemaVersion, `index schema ${version}; this build reads ${schemaVersion}`);
  }

  private metaValue(key: string): number | undefined {
    const row = this.s.getMeta.get(key) as Row | null;
    return row ? num(row.value) : undefined;
  }

  checkpoint(): Checkpoint {
    return { shard: this.metaValue("checkpoint_shard") ?? 0, offset: this.metaValue("checkpoint_offset") ?? 0 };
  }

  maxSeq(): number {
    return this.metaValue("max_seq") ?? 0;
  }

  /** Commit the open transaction and close. */
  close(): void {
    if (!this.broken) this.commit();
    this.db.close(true); // finalize statements now: a lazy close would keep holding the lock
  }

  /** Run `body` in a savepoint of the open write transaction (beginning one if needed). */
  private write<T>(body: () => T): T {
    if (this.broken) throw this.broken;
    if (this.openSinceMs === undefined) {
      this.db.run("BEGIN IMMEDIATE");
      this.openSinceMs = performance.now();
    }
    return this.db.transaction(body)();
  }

  /** Make everything applied so far durable in SQLite. A failure here stops further writes. */
  commit(): void {
    if (this.openSinceMs === undefined) return;
    try {
      this.db.run("COMMIT");
    } catch (error) {
      this.broken = new Error(`committing the chunk index failed: ${String(error)}; reopen the store`, { cause: error });
      try {
        if (this.db.inTransaction) this.db.run("ROLLBACK");
      } catch {
        // Already failing; the file is rebuilt from the shards on reopen if it has to be.
      }
      throw this.broken;
    } finally {
      this.openSinceMs = undefined;
      this.rowsSinceCommit = 0;
    }
  }

  /** Commit if the open transaction is old or big enough. */
  commitIfDue(): void {
    if (this.openSinceMs === undefined) return;
    const due =
      performance.now() - this.openSinceMs >= limits.indexCommitIntervalMs || this.rowsSinceCommit >= limits.indexCommitRowsMax;
    if (due) this.commit();
  }

  // --- shards ---------------------------------------------------------------------------------

  shards(): ShardInfo[] {
    return [...this.shardMirror.values()].sort((a, b) => a.id - b.id).map((s) => ({ ...s }));
  }

  shard(id: number): ShardInfo | undefined {
    const s = this.shardMirror.get(id);
    return s ? { ...s } : undefined;
  }

  chunks(): number {
    return this.chunkCount;
  }

  /** Add shard rows or set their state and size (live bytes kept), with the checkpoint, in one transaction. */
  saveShards(shards: { id: number; state: ShardState; bytes: number }[], checkpoint?: Checkpoint): void {
    this.write(() => {
      for (const s of shards) this.s.saveShard.run(s.id, s.state, s.bytes);
      if (checkpoint) this.writeCheckpoint(checkpoint);
    });
    for (const s of shards) {
      const liveBytes = this.shardMirror.get(s.id)?.liveBytes ?? 0;
      this.shardMirror.set(s.id, { id: s.id, state: s.state, bytes: s.bytes, liveBytes });
    }
  }

  /** The writer moves on: `oldId` takes no more appends, `newId` (empty) does. One transaction. */
  rollShard(oldId: number, oldBytes: number, newId: number): void {
    this.write(() => {
      this.s.setShardState.run("read_only", oldBytes, oldId);
      this.s.upsertShard.run(newId, "active", 0, 0);
      this.writeCheckpoint({ shard: newId, offset: 0 });
    });
    const old = this.shardMirror.get(oldId);
    assert(old, `rolling shard ${oldId}, which has no row`);
    old.state = "read_only";
    old.bytes = oldBytes;
    this.shardMirror.set(newId, { id: newId, state: "active", bytes: 0, liveBytes: 0 });
  }

  // --- lookups --------------------------------------------------------------------------------

  getChunk(ref: ChunkRef): ChunkRow | undefined {
    const row = this.s.getChunk.get(ref.bucket, ref.ball, ref.index) as Row | null;
    return row ? toChunkRow(ref.bucket, ref.ball, ref.index, row) : undefined;
  }

  list(q: { bucket?: string; prefixLow?: string; prefixHigh?: string; after?: ChunkRef; limit: number }): ChunkRow[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.bucket !== undefined) {
      where.push("bucket = ?");
      params.push(q.bucket);
    }
    if (q.prefixLow !== undefined) {
      where.push("ball >= ?");
      params.push(q.prefixLow);
    }
    if (q.prefixHigh !== undefined) {
      where.push("ball < ?");
      params.push(q.prefixHigh);
    }
    if (q.after !== undefined) {
      where.push("(bucket, ball, idx) > (?, ?, ?)");
      params.push(q.after.bucket, q.after.ball, q.after.index);
    }
    const sql =
      `SELECT bucket, ball, idx, shard, offset, record_bytes, length, checksum, seq, created FROM chunks` +
      (where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "") +
      ` ORDER BY bucket, ball, idx LIMIT ?`;
    let statement = this.listStatements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql).safeIntegers(true);
      this.listStatements.set(sql, statement);
    }
    const rows = statement.all(...params, q.limit) as Row[];
    return rows.map((r) => toChunkRow(r.bucket as string, r.ball as string, num(r.idx), r));
  }

  // --- applying records -----------------------------------------------------------------------

  /**
   * Reflect fsynced records in the index, in one transaction with the shard's new size, the
   * checkpoint (when the records are the newest in the shard sequence) and max_seq.
   */
  applyRecords(records: IndexedRecord[], shardBytes: { id: number; bytes: number }, checkpoint?: Checkpoint): void {
    const fx = new Effects();
    let maxSeq = this.maxSeq();
    this.write(() => {
      for (const r of records) {
        if (r.kind === RecordKind.put) this.applyPut(r, fx);
        else if (r.kind === RecordKind.tombstone) this.applyTombstone(r, fx);
        else this.applyManifest(r, fx);
        if (r.seq > maxSeq) maxSeq = r.seq;
      }
      this.s.setShardBytes.run(shardBytes.bytes, shardBytes.id);
      this.writeLive(fx);
      if (checkpoint) this.writeCheckpoint(checkpoint);
      this.s.setMeta.run("max_seq", maxSeq);
    });
    this.mirror(fx);
    this.rowsSinceCommit += records.length;
    const info = this.shardMirror.get(shardBytes.id);
    assert(info, `shard ${shardBytes.id} has no row`);
    info.bytes = shardBytes.bytes;
  }

  /** Insert first: a new ref (the common case) then costs one statement, not a lookup and a write. */
  private applyPut(r: IndexedRecord, fx: Effects): void {
    const here: Place = { shard: r.shard, offset: r.offset, recordBytes: r.recordBytes, seq: r.seq };
    const noTombstones = this.tombstoneCount + fx.tombstones === 0; // counting this transaction's own
    const tomb = noTombstones ? undefined : this.place(this.s.getTomb.get(r.bucket, r.ball, r.index) as Row | null);
    if (tomb && beats(tomb, here)) {
      this.s.insertDead.run(r.bucket, r.ball, r.index, r.seq, r.shard);
      return;
    }
    const row = [r.bucket, r.ball, r.index, r.shard, r.offset, r.recordBytes, r.dataBytes, BigInt.asIntN(64, r.dataChecksum), r.seq, r.createdMs] as const;
    if (this.s.insertChunk.run(...row).changes === 1) {
      fx.chunks += 1;
    } else {
      const cur = this.place(this.s.getChunkPlace.get(r.bucket, r.ball, r.index) as Row | null);
      assert(cur, "a chunk row vanished inside a transaction");
      if (cur.shard === r.shard && cur.offset === r.offset) return; // applied already
      if (beats(cur, here)) {
        this.s.insertDead.run(r.bucket, r.ball, r.index, r.seq, r.shard);
        return;
      }
      this.s.insertDead.run(r.bucket, r.ball, r.index, cur.seq, cur.shard);
      fx.addLive(cur.shard, -cur.recordBytes);
      this.s.replaceChunk.run(...row);
    }
    if (tomb) {
      fx.tombstones -= this.s.deleteTomb.run(r.bucket, r.ball, r.index).changes; // superseded: an older put can no longer win
      fx.addLive(tomb.shard, -tomb.recordBytes);
    }
    fx.addLive(r.shard, r.recordBytes);
  }

  private applyTombstone(r: IndexedRecord, fx: Effects): void {
    const here: Place = { shard: r.shard, offset: r.offset, recordBytes: r.recordBytes, seq: r.seq };
    const tomb = this.place(this.s.getTomb.get(r.bucket, r.ball, r.index) as Row | null);
    if (tomb && tomb.shard === r.shard && tomb.offset === r.offset) return; // applied already
    const cur = this.place(this.s.getChunkPlace.get(r.bucket, r.ball, r.index) as Row | null);
    if ((cur && beats(cur, here)) || (tomb && beats(tomb, here))) return; // superseded: garbage
    if (tomb) fx.addLive(tomb.shard, -tomb.recordBytes);
    else fx.tombstones += 1;
    if (cur) {
      this.s.insertDead.run(r.bucket, r.ball, r.index, cur.seq, cur.shard);
      this.s.deleteChunk.run(r.bucket, r.ball, r.index);
      fx.addLive(cur.shard, -cur.recordBytes);
      fx.chunks -= 1;
    }
    this.s.upsertTomb.run(r.bucket, r.ball, r.index, r.shard, r.offset, r.recordBytes, r.seq, r.createdMs);
    fx.addLive(r.shard, r.recordBytes);
  }

  /** The manifest rule (top of this file): a key's tombstone only rises; what it covers is garbage. */
  private applyManifest(r: IndexedRecord, fx: Effects): void {
    const key = r.key;
    const generation = r.generation;
    assert(key !== undefined && generation !== undefined, "a manifest record reached the index without its key or generation");
    const here: Place = { shard: r.shard, offset: r.offset, recordBytes: r.recordBytes, seq: r.seq };
    const tombRow = this.s.manifestTombOf.get(r.bucket, key) as Row | null;
    const tomb = this.place(tombRow);
    if (tomb && tomb.shard === r.shard && tomb.offset === r.offset) return; // applied already
    const tombGeneration = tombRow ? num(tombRow.generation) : 0;
    if (r.kind === RecordKind.manifestTombstone) {
      if (tomb && (tombGeneration > generation || (tombGeneration === generation && beats(tomb, here)))) return;
      for (const covered of this.s.manifestsOfKeyUpTo.all(r.bucket, key, generation, r.ball) as Row[]) {
        const place = this.place(covered);
        assert(place, "a covered manifest row has no place");
        fx.addLive(place.shard, -place.recordBytes);
      }
      this.s.deleteManifestsOfKeyUpTo.run(r.bucket, key, generation, r.ball);
    } else {
      if (tombRow && (tombGeneration >= generation || tombRow.ball === r.ball)) return; // covered: garbage
      const cur = this.place(this.s.manifestGet.get(r.bucket, key, r.ball) as Row | null);
      if (cur && cur.shard === r.shard && cur.offset === r.offset) return;
      if (cur && beats(cur, here)) return;
      if (cur) fx.addLive(cur.shard, -cur.recordBytes);
    }
    const dead = r.kind === RecordKind.manifestTombstone ? 1 : 0;
    this.s.upsertManifest.run(r.bucket, key, r.ball, generation, dead, r.shard, r.offset, r.recordBytes, r.seq, r.createdMs);
    fx.addLive(r.shard, r.recordBytes);
  }

  /** The current manifest row of (bucket, key, object id), if any. */
  manifest(at: { bucket: string; key: string; ball: string }): ManifestRow | undefined {
    const row = this.s.manifestRow.get(at.bucket, at.key, at.ball) as Row | null;
    return row ? toManifestRow(row) : undefined;
  }

  /** The current manifest rows naming an object id (an object belongs to one key: normally one). */
  manifestsOfObject(bucket: string, ball: string, limit: number): ManifestRow[] {
    return (this.s.manifestsOfObject.all(bucket, ball, limit) as Row[]).map(toManifestRow);
  }

  /** A page of current manifests in (bucket, key, object id) order, after `after`. */
  manifests(q: { after?: { bucket: string; key: string; ball: string }; limit: number }): ManifestRow[] {
    const after = q.after ?? { bucket: "", key: "", ball: "" };
    const rows = this.s.manifestPage.all(after.bucket, after.key, after.ball, q.limit) as Row[];
    return rows.map(toManifestRow);
  }

  private place(row: Row | null): Place | undefined {
    if (!row) return undefined;
    return { shard: num(row.shard), offset: num(row.offset), recordBytes: num(row.record_bytes), seq: num(row.seq) };
  }

  private writeLive(fx: Effects): void {
    for (const [shard, delta] of fx.live) if (delta !== 0) this.s.addShardLive.run(delta, shard);
  }

  private writeCheckpoint(c: Checkpoint): void {
    this.s.setMeta.run("checkpoint_shard", c.shard);
    this.s.setMeta.run("checkpoint_offset", c.offset);
  }

  private mirror(fx: Effects): void {
    this.chunkCount += fx.chunks;
    this.tombstoneCount += fx.tombstones;
    assert(this.tombstoneCount >= 0 && this.chunkCount >= 0, "index row counts went negative");
    for (const [shard, delta] of fx.live) {
      const info = this.shardMirror.get(shard);
      assert(info, `live bytes moved in shard ${shard}, which has no row`);
      info.liveBytes += delta;
      assert(info.liveBytes >= 0, `shard ${shard} live bytes went negative`);
    }
  }

  // --- compaction -----------------------------------------------------------------------------

  /** Current chunks and tombstones in a shard after `afterOffset`, in file order. */
  liveRowsInShard(shard: number, afterOffset: number, limit: number): LocatedRow[] {
    const rows = [
      ...(this.s.chunksInShard.all(shard, afterOffset, limit) as Row[]).map((r) => toLocated(RecordKind.put, r)),
      ...(this.s.tombsInShard.all(shard, afterOffset, limit) as Row[]).map((r) => toLocated(RecordKind.tombstone, r)),
      ...(this.s.manifestsInShard.all(shard, afterOffset, limit) as Row[]).map(toLocatedManifest),
    ];
    return rows.sort((a, b) => a.offset - b.offset).slice(0, limit);
  }

  /** Current chunks in a shard after `afterOffset`, in file order, whole rows (for the scrub). */
  chunkRowsInShard(shard: number, afterOffset: number, limit: number): ChunkRow[] {
    const rows = this.s.chunkRowsInShard.all(shard, afterOffset, limit) as Row[];
    return rows.map((r) => toChunkRow(r.bucket as string, r.ball as string, num(r.idx), r));
  }

  /**
   * The tombstone rule: a tombstone must be kept while some put of its ref that it shadows is
   * still on disk outside the shard being rewritten (puts inside that shard vanish with it).
   */
  tombstoneNeededOutside(ref: ChunkRef, shard: number): boolean {
    return this.s.deadOutside.get(ref.bucket, ref.ball, ref.index, shard) !== null;
  }

  /**
   * After compaction moved a shard's live records: forget the shard in one transaction. Its dead
   * rows go; a tombstone whose ref has no dead put left anywhere is released (it shadows
   * nothing now). Commits, so the caller may remove the file. Returns false, changing nothing,
   * if a chunk still points into the shard.
   */
  finishCompaction(shard: number): boolean {
    if (this.s.anyChunkInShard.get(shard) !== null || this.s.anyManifestInShard.get(shard) !== null) return false;
    const fx = new Effects();
    this.write(() => {
      fx.tombstones -= this.s.deleteTombsInShard.run(shard).changes; // the ones compaction did not need to keep
      this.releaseTombstones(shard, fx);
      this.s.deleteDeadInShard.run(shard);
      this.s.upsertShard.run(shard, "deleted", 0, 0);
    });
    this.mirror(fx);
    this.shardMirror.set(shard, { id: shard, state: "deleted", bytes: 0, liveBytes: 0 });
    this.commit(); // durable before the caller removes the file
    return true;
  }

  private releaseTombstones(shard: number, fx: Effects): void {
    let after = { bucket: "", ball: "", idx: -1 };
    for (;;) {
      const page = this.s.deadRefsInShard.all(shard, after.bucket, after.ball, after.idx, limits.compactionRowsPerPageMax) as Row[];
      for (const r of page) {
        const [bucket, ball, idx] = [r.bucket as string, r.ball as string, num(r.idx)];
        if (this.s.deadOutside.get(bucket, ball, idx, shard) !== null) continue;
        const tomb = this.place(this.s.getTomb.get(bucket, ball, idx) as Row | null);
        if (!tomb) continue;
        fx.tombstones -= this.s.deleteTomb.run(bucket, ball, idx).changes;
        fx.addLive(tomb.shard, -tomb.recordBytes);
      }
      const last = page.at(-1);
      if (!last || page.length < limits.compactionRowsPerPageMax) return;
      after = { bucket: last.bucket as string, ball: last.ball as string, idx: num(last.idx) };
    }
  }
}

function toChunkRow(bucket: string, ball: string, index: number, r: Row): ChunkRow {
  return {
    bucket,
    ball,
    index,
    size: num(r.length),
    checksum: BigInt.asUintN(64, BigInt(r.checksum as bigint)),
    shardId: num(r.shard),
    offset: num(r.offset),
    seq: num(r.seq),
    createdMs: num(r.created),
    recordBytes: num(r.record_bytes),
  };
}

function toManifestRow(r: Row): ManifestRow {
  return {
    bucket: r.bucket as string,
    key: r.key as string,
    ball: r.ball as string,
    generation: num(r.generation),
    dead: num(r.dead) === 1,
    shard: num(r.shard),
    offset: num(r.offset),
    recordBytes: num(r.record_bytes),
    seq: num(r.seq),
    createdMs: num(r.created),
  };
}

function toLocatedManifest(r: Row): LocatedRow {
  const kind = num(r.dead) === 1 ? RecordKind.manifestTombstone : RecordKind.manifest;
  return { kind, bucket: r.bucket as string, ball: r.ball as string, key: r.key as string, index: 0, seq: num(r.seq), offset: num(r.offset), recordBytes: num(r.record_bytes) };
}

function toLocated(kind: RecordKind, r: Row): LocatedRow {
  return {
    kind,
    bucket: r.bucket as string,
    ball: r.ball as string,
    index: num(r.idx),
    seq: num(r.seq),
    offset: num(r.offset),
    recordBytes: num(r.record_bytes),
  };
}

function prepareStatements(db: Database) {
  const ref = "bucket = ? AND ball = ? AND idx = ?";
  return {
    getMeta: db.prepare("SELECT value FROM meta WHERE key = ?"),
    setMeta: db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    upsertShard: db.prepare(
      "INSERT INTO shards (id, state, bytes, live_bytes) VALUES (?, ?, ?, ?) " +
        "ON CONFLICT (id) DO UPDATE SET state = excluded.state, bytes = excluded.bytes, live_bytes = excluded.live_bytes",
    ),
    saveShard: db.prepare(
      "INSERT INTO shards (id, state, bytes, live_bytes) VALUES (?, ?, ?, 0) " +
        "ON CONFLICT (id) DO UPDATE SET state = excluded.state, bytes = excluded.bytes",
    ),
    setShardBytes: db.prepare("UPDATE shards SET bytes = ? WHERE id = ?"),
    setShardState: db.prepare("UPDATE shards SET state = ?, bytes = ? WHERE id = ?"),
    addShardLive: db.prepare("UPDATE shards SET live_bytes = live_bytes + ? WHERE id = ?"),
    getChunk: db
      .prepare(`SELECT shard, offset, record_bytes, length, checksum, seq, created FROM chunks WHERE ${ref}`)
      .safeIntegers(true),
    // SQLite integers are signed: checksums are stored as BigInt.asIntN(64, checksum).
    insertChunk: db.prepare(
      "INSERT OR IGNORE INTO chunks (bucket, ball, idx, shard, offset, record_bytes, length, checksum, seq, created) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    replaceChunk: db.prepare(
      "INSERT INTO chunks (bucket, ball, idx, shard, offset, record_bytes, length, checksum, seq, created) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (bucket, ball, idx) DO UPDATE SET " +
        "shard = excluded.shard, offset = excluded.offset, record_bytes = excluded.record_bytes, " +
        "length = excluded.length, checksum = excluded.checksum, seq = excluded.seq, created = excluded.created",
    ),
    deleteChunk: db.prepare(`DELETE FROM chunks WHERE ${ref}`),
    getChunkPlace: db.prepare(`SELECT shard, offset, record_bytes, seq FROM chunks WHERE ${ref}`),
    getTomb: db.prepare(`SELECT shard, offset, record_bytes, seq FROM tombstones WHERE ${ref}`),
    upsertTomb: db.prepare(
      "INSERT INTO tombstones (bucket, ball, idx, shard, offset, record_bytes, seq, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?) " +
        "ON CONFLICT (bucket, ball, idx) DO UPDATE SET shard = excluded.shard, offset = excluded.offset, " +
        "record_bytes = excluded.record_bytes, seq = excluded.seq, created = excluded.created",
    ),
    deleteTomb: db.prepare(`DELETE FROM tombstones WHERE ${ref}`),
    insertDead: db.prepare("INSERT OR IGNORE INTO dead (bucket, ball, idx, seq, shard) VALUES (?, ?, ?, ?, ?)"),
    deadOutside: db.prepare(`SELECT 1 FROM dead WHERE ${ref} AND shard != ? LIMIT 1`),
    chunksInShard: db.prepare(
      "SELECT bucket, ball, idx, seq, offset, record_bytes FROM chunks WHERE shard = ? AND offset > ? ORDER BY offset LIMIT ?",
    ),
    tombsInShard: db.prepare(
      "SELECT bucket, ball, idx, seq, offset, record_bytes FROM tombstones WHERE shard = ? AND offset > ? ORDER BY offset LIMIT ?",
    ),
    chunkRowsInShard: db
      .prepare(
        "SELECT bucket, ball, idx, shard, offset, record_bytes, length, checksum, seq, created FROM chunks " +
          "WHERE shard = ? AND offset > ? ORDER BY offset LIMIT ?",
      )
      .safeIntegers(true),
    anyChunkInShard: db.prepare("SELECT 1 FROM chunks WHERE shard = ? LIMIT 1"),
    deleteTombsInShard: db.prepare("DELETE FROM tombstones WHERE shard = ?"),
    deadRefsInShard: db.prepare(
      "SELECT DISTINCT bucket, ball, idx FROM dead WHERE shard = ? AND (bucket, ball, idx) > (?, ?, ?) " +
        "ORDER BY bucket, ball, idx LIMIT ?",
    ),
    deleteDeadInShard: db.prepare("DELETE FROM dead WHERE shard = ?"),
    manifestTombOf: db.prepare("SELECT ball, generation, shard, offset, record_bytes, seq FROM manifests WHERE bucket = ? AND key = ? AND dead = 1"),
    manifestGet: db.prepare("SELECT shard, offset, record_bytes, seq FROM manifests WHERE bucket = ? AND key = ? AND ball = ?"),
    // What a key's new tombstone covers: every row at or below its generation, and its own object's row.
    manifestsOfKeyUpTo: db.prepare("SELECT shard, offset, record_bytes, seq FROM manifests WHERE bucket = ?1 AND key = ?2 AND (generation <= ?3 OR ball = ?4)"),
    deleteManifestsOfKeyUpTo: db.prepare("DELETE FROM manifests WHERE bucket = ?1 AND key = ?2 AND (generation <= ?3 OR ball = ?4)"),
    upsertManifest: db.prepare(
      "INSERT INTO manifests (bucket, key, ball, generation, dead, shard, offset, record_bytes, seq, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " +
        "ON CONFLICT (bucket, key, ball) DO UPDATE SET generation = excluded.generation, dead = excluded.dead, shard = excluded.shard, " +
        "offset = excluded.offset, record_bytes = excluded.record_bytes, seq = excluded.seq, created = excluded.created",
    ),
    manifestRow: db.prepare(
      "SELECT bucket, key, ball, generation, dead, shard, offset, record_bytes, seq, created FROM manifests WHERE bucket = ? AND key = ? AND ball = ?",
    ),
    manifestsOfObject: db.prepare(
      "SELECT bucket, key, ball, generation, dead, shard, offset, record_bytes, seq, created FROM manifests WHERE bucket = ? AND ball = ? LIMIT ?",
    ),
    manifestPage: db.prepare(
      "SELECT bucket, key, ball, generation, dead, shard, offset, record_bytes, seq, created FROM manifests " +
        "WHERE (bucket, key, ball) > (?, ?, ?) ORDER BY bucket, key, ball LIMIT ?",
    ),
    manifestsInShard: db.prepare(
      "SELECT bucket, key, ball, dead, seq, offset, record_bytes FROM manifests WHERE shard = ? AND offset > ? ORDER BY offset LIMIT ?",
    ),
    anyManifestInShard: db.prepare("SELECT 1 FROM manifests WHERE shard = ? LIMIT 1"),
  };
}
