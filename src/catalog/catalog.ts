// The SPM's catalog: the one source of truth of a VSS, on bun:sqlite.
//
// Durability: WAL with synchronous=FULL, so a transaction is on disk (the WAL fsynced) before
// its method returns; a kill -9 or a power loss after that keeps it. busy_timeout lets a second
// connection (an inspection tool) wait for the lock instead of failing. Every write method is
// one BEGIN IMMEDIATE transaction; `commitBalls` puts many commits in one (each in a savepoint),
// so the SPM can group-commit concurrent puts behind one fsync.
//
// Schema (DDL in schema.ts) and why each index exists:
//
//   peers(num INTEGER PK, id UNIQUE, address, capacity/used/free bytes, chunks, state,
//         last_heartbeat_ms, registered_ms, draining)
//     num    internal number replicas point at (4-8 bytes instead of the id text, per replica).
//     UNIQUE id   every lookup by peer id (heartbeats, placements, replica changes).
//
//   buckets(name PK, created_ms, balls, bytes)  WITHOUT ROWID
//     PK name     listBuckets pages in name order (`name > after`); balls/bytes are kept by
//                 triggers on balls, so a bucket page never counts balls. A bucket is made by
//                 its first commit or by createBucket, and stays (0 balls) until deleteBucket.
//
//   balls(id INTEGER PK, bucket, key, ball_id, object_id, version, size, checksum BLOB(32),
//         content_type, tags JSON, rf, created_ms, chunk_size, num_chunks)
//     id                    internal number chunks and replicas point at.
//     balls_key (bucket, key) UNIQUE   getBall/commit/delete; listBalls in key order, and a
//                           prefix is the range [prefix, prefixEnd(prefix)) on it (cursor.ts),
//                           never LIKE, so a page costs O(log n + page) however deep it is.
//                           countBalls reads the same range from the index alone (bounded by
//                           its `max`), deleteBalls a batch of it after a cursor.
//     balls_object (object_id) UNIQUE  chunks are named (objectId, index) outside the catalog:
//                           addReplica/removeReplica/findChunk/garbage checks; also enforces
//                           that an object id names one version only.
//     balls_group (bucket, ball_id, key)  listBalls by ball group, in key order, same paging.
//
//   chunks(ball, idx, size, checksum BLOB(8), rf, live, PK (ball, idx))  WITHOUT ROWID
//     PK (ball, idx)    a ball's chunks in order; one chunk by position.
//     rf                copied from the ball so the partial indexes can compare with it.
//     live              replicas of this chunk on peers not down and not draining. Kept by
//                       commit, add/removeReplica, and by a peer's liveness flip (peers.ts).
//     chunks_under (ball, idx) WHERE live < rf   holds only under-replicated chunks:
//                       underReplicated pages read O(page), the count lives in `totals`.
//     chunks_over  (ball, idx) WHERE live > rf   holds only over-replicated chunks.
//
//   replicas(ball, idx, peer, PK (ball, idx, peer))  WITHOUT ROWID
//     PK                a chunk's holders; idempotent add (INSERT OR IGNORE).
//     replicas_peer (peer, ball, idx)  chunksOnPeer (drain, rebalance) pages; removePeer's
//                       "holds anything?" check; the liveness flip's update set.
//     Pages of chunks carry each chunk's holders from a correlated subquery on the PK
//     (json_group_array), so a page is one statement, not one per chunk.
//
//   intents(object_id PK, bucket, key, created_ms, expires_ms, request_id, chunk_bytes,
//           placed_bytes)  WITHOUT ROWID
//     PK                commit and abandon remove their intent; intents_expiry (expires_ms):
//                       expireIntents reads only the expired ones. placed_bytes = chunk_bytes ×
//                       placements, kept as placements are added; totals.intent_bytes sums it.
//   intent_placements(object_id, idx, peer_id, PK all three)  WITHOUT ROWID
//     PK                placements arrive a batch at a time (addIntentPlacements) and are read
//                       back per object at commit (unused ones -> garbage) or at expiry (all
//                       -> garbage); a row each, so adding a batch never rewrites the others.
//   retired(object_id PK, bucket, retired_ms, reason)  WITHOUT ROWID  object ids of overwritten
//                       and deleted versions and of expired uploads, kept
//                       limits.retiredObjectRetainMs: a late commit of one is refused, and a
//                       replica copied for one meanwhile becomes garbage (under its bucket).
//                       retired_age (retired_ms) prunes them (expireIntents does).
//
//   garbage(seq INTEGER PK, object_id, idx, peer_id, bucket)
//     seq               insertion order: takeGarbage is oldest first.
//     garbage_replica (object_id, idx, peer_id) UNIQUE  dedupes, ack deletes by it, and the
//                       commit checks "is this object id being deleted?" on its prefix.
//     garbage_peer (peer_id, seq)  takeGarbage for the peers that are up, oldest first.
//
//   totals(single row)  balls, bytes, buckets, chunks, replicas, under, garbage, intents,
//                       intent_bytes, kept exact by triggers in the same transaction: stats() and
//                       countUnderReplicated() are O(1), so heartbeats can ask every time.
//
//   meta(key PK, value)  WITHOUT ROWID  schema_version and the SPM's own durable state.
//
//   access_keys(access_key PK, secret_sealed BLOB, grants JSON, admin, created_ms, revoked_ms)
//                       WITHOUT ROWID
//     PK access_key     every lookup (a router verifying a client's proof) and key.list pages
//                       in id order (`access_key > after`). secret_sealed is the secret under
//                       AES-256-GCM with the master key in secrets.key beside the catalog, the
//                       id as associated data (secrets.ts); revoked_ms is NULL while valid.
//
//   bucket_settings(bucket, name, value)  per-bucket settings (the S3 ACL and lifecycle
//                       configuration): see bucket-settings.ts.
//
//   audit_log(seq INTEGER PK, at_ms, access_key, remote, action, target, outcome)
//     seq               append order; pages read newest first (`seq < before` DESC). Only the
//                       oldest rows are ever deleted (trimmed to auditRecordsMax by the append),
//                       so the rowid SQLite picks (max + 1) never reuses a seq.
//
// Costs: lookups O(log n); listing pages O(log n + page); a peer changing between live and not
// live updates every chunk it holds, O(replicas on the peer) in one transaction (measured in
// bench/catalog-scale.ts) — a transition, not a heartbeat, pays it.
import { Database, SQLiteError } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { BadRequestError, ConflictError, FullError, MictlanxError, UnavailableError } from "../lib/errors.ts";
import { assert } from "../lib/assert.ts";
import { secretsKeyFile } from "../lib/data-dir.ts";
import { limits } from "../lib/limits.ts";
import * as accessKeys from "./access-keys.ts";
import * as auditLog from "./audit-log.ts";
import * as balls from "./balls.ts";
import { BucketSettings, type BucketSettingName } from "./bucket-settings.ts";
import * as garbage from "./garbage.ts";
import * as peers from "./peers.ts";
import * as replication from "./replication.ts";
import * as staging from "./staging.ts";
import { checkCounterTake, counterValue, statsOf } from "./rules.ts";
import { applySchema } from "./schema.ts";
import { loadMasterKey, masterKeyBytes, masterKeyCheck, matchesCheck } from "./secrets.ts";
import { prepareStatements, type Statements } from "./statements.ts";
import type {
  AccessKeyRecord,
  AccessKeySummary,
  AuditInput,
  AuditRecord,
  BallCount,
  BallInput,
  BallRecord,
  BallWithChunks,
  BucketSummary,
  CatalogStats,
  ChunkRecord,
  CommitItem,
  CommitOptions,
  CommitResult,
  DeleteBallsQuery,
  DeleteBallsResult,
  FoundChunk,
  GarbageEntry,
  GarbageInput,
  GarbageItem,
  IntentOutcome,
  ListBallsQuery,
  OverReplicatedChunk,
  Page,
  PeerChunk,
  PeerRecord,
  PeerState,
  Placement,
  PutIntent,
  RetiredChunk,
  RetireTiming,
  UnderReplicatedChunk,
} from "./types.ts";
import { checkBall, checkBucket, checkChunks, checkDeleteBallsQuery, checkInt, checkKey, checkName, checkObjectId, checkPage } from "./validate.ts";
import { auditCatalog } from "./audit.ts";

/** Commits in one commitBalls call, and intents expired per transaction. */
const batchMax = limits.listPageMax;
const metaKeyBytesMax = 256;
const metaValueBytesMax = 1 << 20;
const vssIdKey = "vss_id";
const secretsCheckKey = "secrets_key_check";
/** The master key's file, beside the catalog (see secrets.ts). */
export { secretsKeyFile };

export interface CatalogOpenOptions {
  /**
   * Commits are not fsynced inline (they still survive a kill -9); call `syncWal()` and await
   * it before acknowledging anything that must survive power loss. Many commits then share one
   * fsync that does not block the event loop.
   */
  deferredSync?: boolean;
  /** @internal Replaces the WAL's fdatasync, so a test can make it fail. */
  walSync?: (handle: FileHandle) => Promise<void>;
  /** Where the master key that seals access keys' secrets lives; default `secrets.key` beside the catalog. */
  secretsKeyPath?: string;
}

export class Catalog {
  private readonly s: Statements;
  private readonly lister: balls.BallLister;
  private readonly settings: BucketSettings;
  private readonly tx: { immediate: <T>(fn: () => T) => T };
  private readonly deferredSync: boolean;
  private readonly walSync: (handle: FileHandle) => Promise<void>;
  /** This VSS's identity: made with the catalog, never changed (see `vssId`). */
  readonly vssId: string;
  /** Seals and unseals access keys' secrets (secrets.ts); never leaves the catalog. */
  private readonly masterKey: Uint8Array;

  private walHandle: Promise<FileHandle | undefined> | undefined;
  /**
   * Set once an fsync of the WAL failed. After a failed fsync the kernel may have dropped the
   * pages it could not write, so what this process believes is on disk may not be: the catalog
   * takes no more writes (reads go on) until the SPM is restarted and SQLite recovers the file.
   */
  private writesStopped: UnavailableError | undefined;

  private constructor(
    private readonly db: Database,
    private readonly path: string,
    options: CatalogOpenOptions,
  ) {
    this.deferredSync = options.deferredSync === true;
    this.walSync = options.walSync ?? ((handle) => handle.datasync());
    applySchema(db, { deferredSync: this.deferredSync, name: path });
    this.s = prepareStatements(db);
    this.lister = new balls.BallLister(db);
    this.settings = new BucketSettings(db);
    const run = db.transaction((fn: () => unknown) => fn());
    this.tx = { immediate: <T>(fn: () => T) => run.immediate(fn) as T };
    this.vssId = this.loadOrMakeVssId();
    this.masterKey = this.loadMasterKey(options.secretsKeyPath);
  }

  /** Open (creating if needed) the catalog at `path`; ":memory:" for a throwaway one. */
  static open(path: string, options: CatalogOpenOptions = {}): Catalog {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    return new Catalog(new Database(path, { create: true, strict: true }), path, options);
  }

  /**
   * The VSS's id is made when its catalog is: peers remember the id of the VSS they joined and
   * refuse orders from an SPM with another one (another VSS's, or an SPM started on an empty or
   * wrong catalog, which must never get to delete what its peers hold).
   */
  private loadOrMakeVssId(): string {
    const found = this.s.metaGet.get({ key: vssIdKey })?.value;
    if (found !== undefined) {
      assert(found.length > 0 && found.length <= limits.vssIdBytesMax, `catalog holds a bad VSS id ${JSON.stringify(found)}`);
      return found;
    }
    const made = crypto.randomUUID();
    this.transaction(() => this.s.metaSet.run({ key: vssIdKey, value: made }));
    return made;
  }

  /**
   * The master key from secrets.key (made with the catalog; see secrets.ts), and its check value
   * recorded in meta so a wrong file is told at open. A catalog in memory gets a key of its own.
   */
  private loadMasterKey(secretsKeyPath: string | undefined): Uint8Array {
    if (this.path === ":memory:") return crypto.getRandomValues(new Uint8Array(masterKeyBytes));
    const check = this.s.metaGet.get({ key: secretsCheckKey })?.value;
    const heldKeys = this.s.accessKeyCount.get()!.n;
    const { key } = loadMasterKey(secretsKeyPath ?? join(dirname(this.path), secretsKeyFile), { heldKeys, check });
    if (check === undefined || !matchesCheck(key, check)) {
      assert(heldKeys === 0 || check === undefined, "a catalog holding keys opened with a master key that fails its check");
      this.transaction(() => this.s.metaSet.run({ key: secretsCheckKey, value: masterKeyCheck(key) }));
    }
    return key;
  }

  /** Make every committed transaction durable: fdatasync the WAL in the thread pool. */
  async syncWal(): Promise<void> {
    if (!this.deferredSync || this.path === ":memory:") return;
    this.checkWritable();
    this.walHandle ??= open(`${this.path}-wal`, "r").catch(() => undefined);
    const handle = await this.walHandle;
    if (!handle) {
      this.walHandle = undefined; // no WAL yet: nothing committed to sync; look again next time
      return;
    }
    try {
      await this.walSync(handle);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      this.writesStopped = new UnavailableError(
        `the catalog stopped taking writes: an fsync of ${this.path}-wal failed (${why}), so writes since the last good one may not be on disk; ` +
          "reads still work; restart the SPM once the disk is healthy",
      );
      throw this.writesStopped;
    }
  }

  /** Whether the catalog takes writes, and why not. */
  health(): { writable: boolean; problem?: string } {
    return this.writesStopped ? { writable: false, problem: this.writesStopped.message } : { writable: true };
  }

  private checkWritable(): void {
    if (this.writesStopped) throw this.writesStopped;
  }

  /** One transaction; SQLite's failures come out as errors that say what to do. */
  private transaction<T>(fn: () => T): T {
    this.checkWritable();
    try {
      return this.tx.immediate(fn);
    } catch (error) {
      throw this.storageError(error);
    }
  }

  /** A full disk is `full`, a lock held too long or an I/O error `unavailable`; the rest as thrown. */
  private storageError(error: unknown): unknown {
    if (!(error instanceof SQLiteError)) return error;
    const code = error.code ?? "";
    if (code.startsWith("SQLITE_FULL")) {
      return new FullError(`the catalog's disk is full (${this.path}: ${error.message}); free some space, and the SPM takes writes again as soon as there is room`);
    }
    if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
      return new UnavailableError(`the catalog ${this.path} is locked by another process for more than ${limits.catalogBusyTimeoutMs} ms; close whatever else holds it open, then retry`);
    }
    if (/^SQLITE_(IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|PROTOCOL)/.test(code)) {
      return new UnavailableError(`the catalog ${this.path} could not be written (${code}: ${error.message}); check its disk`);
    }
    return error;
  }

  close(): void {
    void this.walHandle?.then((handle) => handle?.close());
    this.db.run("PRAGMA optimize");
    this.db.close();
  }

  /** Inside batchAllOrNothing: writes run without savepoints of their own. */
  private flatDepth = 0;

  private write<T>(fn: () => T): T {
    return this.flatDepth > 0 ? fn() : this.transaction(fn);
  }

  /**
   * Run several writes as one transaction — one fsync for all (group commit). Each write inside
   * is its own savepoint, so one that throws is rolled back alone and the rest still commit.
   */
  batch<T>(fn: () => T): T {
    return this.transaction(fn);
  }

  /**
   * Several writes as one transaction with no savepoint per write: if any throws, the whole
   * transaction rolls back and the error propagates. Cheaper than `batch` (a savepoint journals
   * every page it touches); the SPM's write batcher uses it first and falls back to `batch`
   * with a savepoint per write only when a write fails.
   */
  batchAllOrNothing<T>(fn: () => T): T {
    assert(this.flatDepth === 0 && !this.db.inTransaction, "batchAllOrNothing does not nest");
    this.flatDepth += 1;
    try {
      return this.transaction(fn);
    } finally {
      this.flatDepth -= 1;
    }
  }

  /**
   * A transaction opened by hand, for a group whose writes are async calls (sqlite-store.ts):
   * writes inside run without transactions of their own until `endGroup`. The store keeps
   * every other call out while it is open.
   */
  beginGroup(): void {
    assert(this.flatDepth === 0 && !this.db.inTransaction, "a group does not nest");
    this.checkWritable();
    try {
      this.db.run("BEGIN IMMEDIATE");
    } catch (error) {
      throw this.storageError(error);
    }
    this.flatDepth += 1;
  }

  /** Commit (or roll back) the group's transaction. */
  endGroup(commit: boolean): void {
    assert(this.flatDepth === 1, "endGroup without beginGroup");
    this.flatDepth -= 1;
    try {
      if (commit) this.db.run("COMMIT");
      else if (this.db.inTransaction) this.db.run("ROLLBACK");
    } catch (error) {
      if (this.db.inTransaction) this.db.run("ROLLBACK");
      throw this.storageError(error);
    }
  }

  /** Inside a group: a savepoint a write runs in, released or rolled back to after it. */
  savepoint(step: "begin" | "release" | "rollback"): void {
    assert(this.flatDepth === 1 && this.db.inTransaction, "a savepoint outside a group");
    if (step === "begin") this.db.run("SAVEPOINT group_write");
    else if (step === "release") this.db.run("RELEASE group_write");
    else {
      this.db.run("ROLLBACK TO group_write");
      this.db.run("RELEASE group_write");
    }
  }

  // --- peers ------------------------------------------------------------------------------
  upsertPeer(peer: PeerRecord): void {
    this.write(() => peers.upsertPeer(this.s, peer));
  }
  getPeer(id: string): PeerRecord | undefined {
    return peers.getPeer(this.s, id);
  }
  listPeers(): PeerRecord[] {
    return peers.listPeers(this.s);
  }
  /** Returns false when the peer is not registered. */
  setPeerState(id: string, state: PeerState): boolean {
    return this.write(() => peers.setPeerState(this.s, id, state));
  }
  setDraining(id: string, draining: boolean): boolean {
    return this.write(() => peers.setDraining(this.s, id, draining));
  }
  /**
   * Forget a peer and its pending garbage; false if unknown. ConflictError while it holds
   * replicas, or with `forgetReplicas` only while it holds a chunk's only replica (its other
   * replicas are then forgotten, and healing restores them elsewhere).
   */
  removePeer(id: string, options: { forgetReplicas?: boolean } = {}): boolean {
    return this.write(() => peers.removePeer(this.s, id, options.forgetReplicas ?? false));
  }
  /** The largest rf among the chunks a peer holds, 0 when none: a drain needs that many other peers. */
  maxRfOnPeer(id: string): number {
    return peers.maxRfOnPeer(this.s, id);
  }
  /** Replicas recorded on a peer (0 for an unknown one). O(replicas on the peer): a drain's progress, not a hot path. */
  countReplicasOnPeer(id: string): number {
    return peers.countReplicasOnPeer(this.s, id);
  }
  /**
   * The peer's disk was replaced (or wiped): record its new instance and forget what the old one
   * held, so healing copies it back from the other replicas. A chunk whose only replica was there
   * keeps its record (the ball stays listed, its reads fail); their number is returned as `kept`.
   */
  replacePeerInstance(peer: PeerRecord): { forgotten: number; kept: number } {
    return this.write(() => peers.replacePeerInstance(this.s, peer));
  }

  // --- balls ------------------------------------------------------------------------------
  /**
   * Make a ball visible. `chunks` are its chunk records, or with `options.stagedChunks` = n the
   * records from index n on, the first n having been staged with `stageChunks`.
   */
  commitBall(ball: BallInput, chunks: ChunkRecord[], options: CommitOptions = {}): CommitResult {
    checkBall(ball);
    const staged = options.stagedChunks ?? 0;
    if (staged === 0) checkChunks(ball, chunks);
    return this.write(() => {
      if (staged === 0) return balls.commitBall(this.s, ball, chunks, options);
      checkInt("staged chunk records", staged, 1, limits.ballChunksMax);
      // No upload under way: a retry of a commit that went in (or one too late); commitBall says which.
      if (this.s.intentGet.get({ object_id: ball.objectId }) === null) return balls.commitBall(this.s, ball, chunks, options);
      const whole = [...staging.takeStaged(this.s, ball.objectId, staged), ...chunks];
      checkChunks(ball, whole);
      return balls.commitBall(this.s, ball, whole, options);
    });
  }

  /** A page of an upload's chunk records ahead of its commit (in order); returns how many are staged. Extends the upload. */
  stageChunks(objectId: string, chunks: ChunkRecord[], expiresMs: number): number {
    return this.write(() => staging.stageChunks(this.s, objectId, chunks, expiresMs));
  }

  /**
   * Many commits in one transaction (one fsync), each in its own savepoint: a commit that fails
   * with a MictlanxError (conflict, bad request) is rolled back alone and returned in its place.
   */
  commitBalls(items: CommitItem[]): Array<CommitResult | MictlanxError> {
    checkInt("batch size", items.length, 0, batchMax);
    return this.write(() => items.map((item) => this.commitInBatch(item)));
  }

  private commitInBatch(item: CommitItem): CommitResult | MictlanxError {
    try {
      return this.commitBall(item.ball, item.chunks, item.options ?? {});
    } catch (error) {
      // Returned in its place only when its savepoint undid it; inside batchAllOrNothing there
      // is none, so the whole transaction must roll back instead.
      if (error instanceof MictlanxError && this.flatDepth === 0) return error;
      throw error;
    }
  }

  getBall(bucket: string, key: string): BallWithChunks | undefined {
    return balls.getBall(this.s, bucket, key);
  }
  /** A ball's metadata without its chunks. */
  getBallMeta(bucket: string, key: string): BallRecord | undefined {
    return balls.getBallMeta(this.s, bucket, key);
  }
  /** A ball and the first page of its chunks (the rest with chunksPage from `next`). */
  getBallHead(bucket: string, key: string): { ball: BallRecord; chunks: ChunkRecord[]; next?: number } | undefined {
    return balls.getBallHead(this.s, bucket, key);
  }
  /** A page of the chunks of live version `objectId` from `fromIndex`; undefined if it is none. */
  chunksPage(objectId: string, fromIndex: number, limit: number = limits.chunkRecordsPageMax): { chunks: ChunkRecord[]; next?: number } | undefined {
    checkObjectId(objectId);
    checkInt("fromIndex", fromIndex, 0, limits.ballChunksMax);
    checkInt("limit", limit, 1, limits.chunkRecordsPageMax);
    return balls.chunksPage(this.s, objectId, fromIndex, limit);
  }
  deleteBall(bucket: string, key: string, when: RetireTiming = {}): BallRecord | undefined {
    return this.write(() => balls.deleteBall(this.s, bucket, key, when));
  }
  listBalls(q: ListBallsQuery): { balls: BallRecord[]; next?: string } {
    return this.lister.list(q);
  }

  listBuckets(q: Page): { buckets: BucketSummary[]; next?: string } {
    checkPage(q);
    const rows = q.after === undefined
      ? this.s.bucketPageFirst.all({ limit: q.limit + 1 })
      : this.s.bucketPage.all({ after: q.after, limit: q.limit + 1 });
    const buckets = rows.slice(0, q.limit).map((row) => ({ name: row.name, balls: row.balls, bytes: row.bytes, createdMs: row.created_ms }));
    return rows.length > q.limit ? { buckets, next: buckets[buckets.length - 1]!.name } : { buckets };
  }

  /** A bucket and its counts (kept by triggers: O(1)), or undefined when there is none. */
  getBucket(name: string): BucketSummary | undefined {
    checkBucket(name);
    const row = this.s.bucketGet.get({ name });
    return row === null ? undefined : { name: row.name, balls: row.balls, bytes: row.bytes, createdMs: row.created_ms };
  }

  /** Make an empty bucket (it stays until deleteBucket); false when one of that name exists. */
  createBucket(name: string, createdMs: number): boolean {
    checkName("bucket name", name, limits.bucketNameBytesMax, "new");
    checkInt("createdMs", createdMs);
    return this.write(() => this.s.bucketEnsure.run({ name, created_ms: createdMs }).changes === 1);
  }

  /**
   * How many balls a bucket holds under `prefix` (the whole bucket when empty or absent: exact,
   * O(1)); under a prefix counted up to `max` (`more` past it). Undefined when there is no bucket.
   */
  countBalls(bucket: string, prefix: string | undefined, max: number): BallCount | undefined {
    const whole = this.getBucket(bucket);
    if (whole === undefined) return undefined;
    if (prefix === undefined || prefix === "") return { balls: whole.balls, bytes: whole.bytes, more: false };
    checkKey(prefix);
    checkInt("max", max, 1, limits.ballCountMax);
    return this.lister.count(bucket, prefix, max);
  }

  /**
   * One batch of a bulk delete, in one transaction: the balls under `q.prefix` after `q.after`
   * (see DeleteBallsQuery), each retired like deleteBall with `when`. Undefined when there is
   * no bucket.
   */
  deleteBalls(q: DeleteBallsQuery, when: RetireTiming = {}): DeleteBallsResult | undefined {
    checkDeleteBallsQuery(q);
    return this.write(() => (this.s.bucketGet.get({ name: q.bucket }) === null ? undefined : balls.deleteBalls(this.s, this.lister, q, when)));
  }

  /** Forget an empty bucket. False if it does not exist; ConflictError if it holds balls. */
  deleteBucket(name: string): boolean {
    checkBucket(name);
    return this.write(() => {
      const row = this.s.bucketGet.get({ name });
      if (row === null) return false;
      if (row.balls > 0) throw new ConflictError(`bucket ${name} holds ${row.balls} balls; delete them first`);
      this.settings.removeBucket(name);
      return this.s.bucketDelete.run({ name }).changes === 1;
    });
  }

  // --- bucket settings (the S3 gateway's ACLs and lifecycle rules; bucket-settings.ts) -----
  /** A bucket's setting, or undefined when it has none (or there is no such bucket). */
  getBucketSetting(bucket: string, name: BucketSettingName): string | undefined {
    return this.settings.read(bucket, name);
  }
  /** Set (a string) or remove (undefined) a bucket's setting; false when there is no such bucket. */
  setBucketSetting(bucket: string, name: BucketSettingName, value: string | undefined): boolean {
    return this.write(() => this.settings.write(bucket, name, value));
  }
  /** A page of the buckets holding setting `name`, in name order from the bucket `from` ("" for the first), itself included. */
  bucketsWithSetting(name: BucketSettingName, from: string, limit: number): Array<{ bucket: string; value: string }> {
    return this.settings.bucketsWith(name, from, limit);
  }
  /**
   * Set or remove (undefined) one tag of a key's live version (of version `objectId` only, when
   * given: ConflictError if the key holds another now). The new tags, or undefined when there is no ball.
   */
  setBallTag(bucket: string, key: string, tag: string, value: string | undefined, objectId?: string): Record<string, string> | undefined {
    return this.write(() => this.settings.setBallTag(bucket, key, tag, value, objectId));
  }

  // --- replicas ---------------------------------------------------------------------------
  /** Idempotent. False if the chunk is gone (the new copy was queued as garbage instead). */
  addReplica(objectId: string, index: number, peerId: string): boolean {
    return this.write(() => replication.addReplica(this.s, objectId, index, peerId));
  }
  /** Idempotent (false if not recorded). Queues the replica as garbage unless `garbage: false`. */
  removeReplica(objectId: string, index: number, peerId: string, options: { garbage?: boolean } = {}): boolean {
    return this.write(() => replication.removeReplica(this.s, objectId, index, peerId, options.garbage ?? true));
  }
  underReplicated(q: Page): { chunks: UnderReplicatedChunk[]; next?: string } {
    return replication.underReplicated(this.s, q);
  }
  /** O(1): kept by triggers. */
  countUnderReplicated(): number {
    return this.s.totals.get()!.under;
  }
  overReplicated(q: Page): { chunks: OverReplicatedChunk[]; next?: string } {
    return replication.overReplicated(this.s, q);
  }
  chunksOnPeer(peerId: string, q: Page): { chunks: PeerChunk[]; next?: string } {
    return replication.chunksOnPeer(this.s, peerId, q);
  }
  findChunk(objectId: string, index: number): FoundChunk | undefined {
    return replication.findChunk(this.s, objectId, index);
  }
  /** What the catalog knows of a chunk `peerId` says it holds (see replication.Holding). */
  classifyHolding(objectId: string, index: number, peerId: string): replication.Holding {
    return replication.classifyHolding(this.s, objectId, index, peerId);
  }

  // --- intents and garbage ----------------------------------------------------------------
  addIntent(intent: PutIntent): void {
    this.write(() => garbage.addIntent(this.s, intent));
  }

  /** Many intents in one transaction, each answered in its place (see IntentOutcome). */
  addIntents(intents: PutIntent[]): IntentOutcome[] {
    checkInt("batch size", intents.length, 0, batchMax);
    return this.write(() => garbage.addIntents(this.s, intents));
  }
  /** More placements for an upload under way; `expiresMs` can push its deadline later. */
  addIntentPlacements(objectId: string, placements: Placement[], expiresMs?: number): void {
    this.write(() => garbage.addIntentPlacements(this.s, objectId, placements, expiresMs));
  }
  /** An upload made progress: it lives until `expiresMs` at least. ConflictError (saying why) when it is gone. */
  touchIntent(objectId: string, expiresMs: number): void {
    this.write(() => garbage.touchIntent(this.s, objectId, expiresMs));
  }
  /** Every upload under way lives until `expiresMs` at least. */
  extendAllIntents(expiresMs: number): void {
    this.write(() => garbage.extendAllIntents(this.s, expiresMs));
  }
  /** What became of a put by its request id: uploading, committed, or unknown (see garbage.findRequest). */
  findRequest(requestId: string): ReturnType<typeof garbage.findRequest> {
    checkName("request id", requestId, limits.requestIdBytesMax);
    return garbage.findRequest(this.s, requestId);
  }
  /** The intent of an upload under way, or undefined. */
  getIntent(objectId: string): PutIntent | undefined {
    return garbage.getIntent(this.s, objectId);
  }
  /**
   * The client gave the upload up: end its intent now, its placements garbage due at once, its
   * object id retired as abandoned (see garbage.abandonIntent).
   */
  abandonIntent(objectId: string, nowMs: number): { replicas: number; requestId?: string } {
    checkInt("nowMs", nowMs);
    return this.write(() => garbage.abandonIntent(this.s, objectId, nowMs));
  }
  /** Turn every intent expired by `nowMs` into garbage; returns how many. Batched transactions. */
  expireIntents(nowMs: number): number {
    checkInt("nowMs", nowMs);
    let total = 0;
    for (;;) {
      const expired = this.write(() => garbage.expireIntentBatch(this.s, nowMs, batchMax));
      total += expired;
      if (expired < batchMax) break;
    }
    this.write(() => garbage.pruneRetired(this.s, nowMs));
    return total;
  }
  addGarbage(items: GarbageInput[]): void {
    this.write(() => garbage.addGarbage(this.s, items));
  }
  /** Garbage due by `nowMs` (all of it when absent), soonest due first. */
  takeGarbage(q: { peerIds?: string[]; limit: number; nowMs?: number }): GarbageEntry[] {
    return garbage.takeGarbage(this.s, q);
  }
  /**
   * A chunk of a retired version whose replicas are still on peers (the readers' grace), for a
   * reader that started on it; undefined once they are deleted or if it was never a chunk.
   */
  findRetiredChunk(objectId: string, index: number): RetiredChunk | undefined {
    return garbage.findRetiredChunk(this.s, objectId, index);
  }
  /** A page of a retired version's chunks still on peers (readers' grace), or undefined. */
  retiredChunksPage(objectId: string, fromIndex: number, limit: number = limits.chunkRecordsPageMax): { chunks: ChunkRecord[]; next?: number } | undefined {
    checkInt("fromIndex", fromIndex, 0, limits.ballChunksMax);
    checkInt("limit", limit, 1, limits.chunkRecordsPageMax);
    return garbage.retiredChunksPage(this.s, objectId, fromIndex, limit);
  }
  /**
   * The bucket of an object id: a live version's, an upload's under way, or a retired one's
   * while it is remembered. Ops that name only an object id check it against the bucket the
   * caller named, so a key granted one bucket cannot reach another's objects by their ids.
   */
  bucketOfObject(objectId: string): string | undefined {
    return this.s.ballByObject.get({ object_id: objectId })?.bucket ?? this.s.intentGet.get({ object_id: objectId })?.bucket ?? garbage.retiredObject(this.s, objectId)?.bucket;
  }
  /** Why and when an object id was retired (overwritten, deleted, abandoned), while it is remembered. */
  retiredObject(objectId: string): { bucket: string; reason: string; retiredMs: number } | undefined {
    return garbage.retiredObject(this.s, objectId);
  }
  ackGarbage(items: GarbageItem[]): void {
    this.write(() => garbage.ackGarbage(this.s, items));
  }
  countGarbage(): number {
    return this.s.totals.get()!.garbage;
  }

  // --- access keys and the audit log -------------------------------------------------------
  /** Store a new access key, its secret sealed; ConflictError when the id is taken. Grants are stored normalized (returned). */
  createAccessKey(key: AccessKeyRecord): AccessKeySummary {
    return this.write(() => accessKeys.createAccessKey(this.s, this.masterKey, key));
  }
  /** A key with its secret (unsealed), or undefined when there is none of that id. */
  getAccessKey(accessKey: string): AccessKeyRecord | undefined {
    return accessKeys.getAccessKey(this.s, this.masterKey, accessKey);
  }
  /** A page of keys in id order, without their secrets. */
  listAccessKeys(q: { after?: string; limit: number }): { keys: AccessKeySummary[]; next?: string } {
    return accessKeys.listAccessKeys(this.s, q);
  }
  /** Revoke a key (idempotent: one already revoked keeps its first time); undefined when there is none of that id. */
  revokeAccessKey(accessKey: string, revokedMs: number): AccessKeySummary | undefined {
    return this.write(() => accessKeys.revokeAccessKey(this.s, accessKey, revokedMs));
  }
  /** Keys in the catalog, revoked ones included. */
  countAccessKeys(): number {
    return this.s.accessKeyCount.get()!.n;
  }
  /** Append to the audit log (trimming the oldest past auditRecordsMax); returns the record's seq. */
  appendAudit(record: AuditInput): number {
    return this.write(() => auditLog.appendAudit(this.s, record));
  }
  /** A page of the audit log, newest first, before the seq `before`. */
  listAudit(q: { before?: number; limit: number }): { records: AuditRecord[]; next?: number } {
    return auditLog.listAudit(this.s, q);
  }

  // --- numbers and meta -------------------------------------------------------------------
  stats(): CatalogStats {
    return statsOf(this.s.totals.get()!);
  }

  getMeta(key: string): string | undefined {
    checkName("meta key", key, metaKeyBytesMax);
    return this.s.metaGet.get({ key })?.value;
  }
  setMeta(key: string, value: string): void {
    checkName("meta key", key, metaKeyBytesMax);
    if (typeof value !== "string" || value.length > metaValueBytesMax) {
      throw new BadRequestError(`meta value must be a string of at most ${metaValueBytesMax} characters`);
    }
    this.write(() => this.s.metaSet.run({ key, value }));
  }

  /**
   * Meta `key` as a counter, `count` (1 by default) values taken at once: the first is the larger
   * of its value + 1 (0 when absent) and `floor`, and the counter ends at the last. One statement
   * (a read and a write otherwise, each a round trip on PostgreSQL); the first value.
   */
  nextMetaCounter(key: string, floor: number, count = 1): number {
    checkName("meta key", key, metaKeyBytesMax);
    checkCounterTake(floor, count);
    return this.write(() => counterValue(key, this.s.metaCounterNext.get({ key, floor, count })?.value, count)); // a bad value rolls back
  }

  /** Recount everything the triggers and live counts keep; O(catalog). Problems, or [] if none. */
  audit(): string[] {
    return auditCatalog(this.db);
  }
}
