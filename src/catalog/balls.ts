// Balls: commit (insert or overwrite), read, delete and list. Callers run each in a transaction.
import type { Database, Statement } from "bun:sqlite";
import { assert } from "../lib/assert.ts";
import { BadRequestError, ConflictError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { ballMetaWireBytes, chunkRecordWireBytes } from "../lib/wire-size.ts";
import { noUpload, rememberRequest } from "./garbage.ts";
import { dropStaged } from "./staging.ts";
import { ballColumns, ballFromRow, ballParams, blobToHex, byIndex, hexToBlob, sortHolders, type BallRow } from "./rows.ts";
import { checkPreconditions, repeatedCommit } from "./rules.ts";
import { resolvePeer } from "./peers.ts";
import { keyRange, type KeyRange } from "./cursor.ts";
import type { Statements } from "./statements.ts";
import type {
  BallCount,
  BallInput,
  BallRecord,
  BallWithChunks,
  ChunkRecord,
  CommitOptions,
  CommitResult,
  DeleteBallsQuery,
  DeleteBallsResult,
  ListBallsQuery,
  RetireTiming,
} from "./types.ts";
import { checkBallId, checkBucket, checkKey, checkPage } from "./validate.ts";

/** The whole commit; the caller has validated `ball` and `chunks` and opened a transaction. */
export function commitBall(s: Statements, ball: BallInput, chunks: ChunkRecord[], options: CommitOptions): CommitResult {
  const current = s.ballByKey.get({ bucket: ball.bucket, key: ball.key });
  if (current !== null && current.object_id === ball.objectId) return repeatedCommit(current, ball);
  checkPreconditions(current ?? undefined, options, ball);
  // An upload under way holds its object id: addIntent checked it was free, and while the
  // intent lives nothing else can take, retire or collect it. Without one, check here.
  const underWay = s.intentGet.get({ object_id: ball.objectId }) !== null;
  if (options.requirePlacements === true) {
    if (!underWay) throw noUpload(s, ball.objectId);
    checkPlaced(s, ball.objectId, chunks);
  }
  if (options.replicasMin !== undefined) checkReplicas(chunks, options.replicasMin);
  if (!underWay) checkObjectIdFree(s, ball.objectId);
  const peers = resolveChunkPeers(s, chunks);
  if (current !== null) retireBall(s, current, "overwritten", options.retire);
  s.bucketEnsure.run({ name: ball.bucket, created_ms: ball.createdMs });
  const version = current === null ? (options.restoredVersion ?? 1) : current.version + 1;
  assert(Number.isSafeInteger(version) && version >= 1, `version ${version} for ${ball.bucket}/${ball.key}`);
  const id = Number(s.ballInsert.run(ballParams(ball, version)).lastInsertRowid);
  insertChunks(s, id, ball.rf, chunks, peers);
  if (underWay) settleIntent(s, ball, chunks, version);
  return current === null ? { version } : { version, replacedObjectId: current.object_id };
}

/** Each chunk is on at least `min` distinct peers (the peer lists hold no repeats: validate.ts). */
function checkReplicas(chunks: ChunkRecord[], min: number): void {
  for (const chunk of chunks) {
    if (chunk.peers.length < min) throw new BadRequestError(`chunk ${chunk.index} is on ${chunk.peers.length} peers, fewer than the ${min} the put needs`);
  }
}

/** Every replica a commit names is one the SPM placed for that chunk of that upload. */
function checkPlaced(s: Statements, objectId: string, chunks: ChunkRecord[]): void {
  for (const chunk of chunks) {
    for (const peerId of chunk.peers) {
      if (s.placementGet.get({ object_id: objectId, idx: chunk.index, peer_id: peerId }) === null) {
        throw new BadRequestError(`the commit says chunk ${chunk.index} of object ${objectId} is on ${peerId}, which was never placed there; nothing was committed`);
      }
    }
  }
}


/** An object id is used once: not by another ball, not retired, not by pending garbage. */
export function checkObjectIdFree(s: Statements, objectId: string): void {
  const owner = s.ballByObject.get({ object_id: objectId });
  if (owner !== null) throw new ConflictError(`object id ${objectId} is already used by ${owner.bucket}/${owner.key}`);
  const retired = s.retiredGet.get({ object_id: objectId });
  if (retired?.reason === "abandoned") {
    throw new ConflictError(`the upload of object ${objectId} was given up at ${retired.retired_ms} ms (its client abandoned it, or it expired) and its replicas are being deleted; upload again`);
  }
  if (retired !== null) throw new ConflictError(`object id ${objectId} was ${retired.reason} at ${retired.retired_ms} ms; it cannot come back`);
  if (s.garbageOfObject.get({ object_id: objectId }) !== null) {
    throw new ConflictError(`object id ${objectId} belongs to replicas being deleted; upload again with a new object id`);
  }
}

type PeerRef = { num: number; live: boolean };

function resolveChunkPeers(s: Statements, chunks: ChunkRecord[]): Map<string, PeerRef> {
  const peers = new Map<string, PeerRef>();
  for (const chunk of chunks) {
    for (const id of chunk.peers) if (!peers.has(id)) peers.set(id, resolvePeer(s, id));
  }
  return peers;
}

function insertChunks(s: Statements, ball: number, rf: number, chunks: ChunkRecord[], peers: Map<string, PeerRef>): void {
  for (const chunk of chunks) {
    const refs = chunk.peers.map((id) => peers.get(id)!);
    const live = refs.filter((ref) => ref.live).length;
    s.chunkInsert.run({ ball, idx: chunk.index, size: chunk.size, checksum: hexToBlob(chunk.checksum), rf, live });
    for (const ref of refs) s.replicaInsert.run({ ball, idx: chunk.index, peer: ref.num });
  }
}

export type RetireReason = "overwritten" | "deleted" | "abandoned";

/**
 * Every replica of the ball becomes garbage, kept until the readers' grace is over; the ball,
 * its chunks and replicas go; its id is retired.
 */
export function retireBall(s: Statements, ball: BallRow, reason: RetireReason, when: RetireTiming = {}): void {
  const atMs = when.atMs ?? Date.now();
  s.garbageOfBall.run({ ball: ball.id, object_id: ball.object_id, bucket: ball.bucket, not_before_ms: atMs + (when.readerGraceMs ?? 0) });
  s.retiredInsert.run({ object_id: ball.object_id, bucket: ball.bucket, retired_ms: atMs, reason });
  s.replicasDeleteOfBall.run({ ball: ball.id });
  s.chunksDeleteOfBall.run({ ball: ball.id });
  s.ballDelete.run({ id: ball.id });
}

/** The commit ends the upload's intent; placements it did not use are orphans -> garbage. */
function settleIntent(s: Statements, ball: BallInput, chunks: ChunkRecord[], version: number): void {
  const requestId = s.intentGet.get({ object_id: ball.objectId })?.request_id;
  if (requestId) rememberRequest(s, requestId, ball.objectId, version, ball.createdMs);
  // One statement reads and removes the placements (they are only needed to find orphans).
  for (const row of s.placementsTake.all({ object_id: ball.objectId })) {
    assert(Number.isSafeInteger(row.idx) && row.idx >= 0, `intent ${ball.objectId} has placement index ${row.idx}`);
    if (chunks[row.idx]?.peers.includes(row.peer_id)) continue;
    if (s.peerById.get({ id: row.peer_id }) === null) continue; // a removed peer holds nothing to collect
    s.garbageInsert.run({ object_id: ball.objectId, idx: row.idx, peer_id: row.peer_id, bucket: ball.bucket });
  }
  dropStaged(s, ball.objectId);
  s.intentDelete.run({ object_id: ball.objectId });
}

export function getBall(s: Statements, bucket: string, key: string): BallWithChunks | undefined {
  const found = lookUp(s, bucket, key);
  return found && { ...found.ball, chunks: readChunks(s, found.row) };
}

/** A ball's metadata alone (no chunks): existence and version checks. */
export function getBallMeta(s: Statements, bucket: string, key: string): BallRecord | undefined {
  return lookUp(s, bucket, key)?.ball;
}

/**
 * A ball and the first page of its chunks (see chunkPage): what a read starts from. A ball of
 * many chunks has the rest read page by page with `chunksPage`.
 */
export function getBallHead(s: Statements, bucket: string, key: string): { ball: BallRecord; chunks: ChunkRecord[]; next?: number } | undefined {
  const found = lookUp(s, bucket, key);
  return found && { ball: found.ball, ...chunkPage(s, found.row, 0, limits.chunkRecordsPageMax) };
}

/** The ball at (bucket, key), its row and its record, checked as read. */
function lookUp(s: Statements, bucket: string, key: string): { row: BallRow; ball: BallRecord } | undefined {
  checkBucket(bucket);
  checkKey(key);
  const row = s.ballByKey.get({ bucket, key });
  if (row === null) return undefined;
  const ball = ballFromRow(row);
  assert(ball.bucket === bucket && ball.key === key, `lookup of ${bucket}/${key} returned ${ball.bucket}/${ball.key}`);
  return { row, ball };
}

/** A page of the chunks of the live version `objectId` from `fromIndex`; undefined if it is not one. */
export function chunksPage(s: Statements, objectId: string, fromIndex: number, limit: number): { chunks: ChunkRecord[]; next?: number } | undefined {
  const row = s.ballByObject.get({ object_id: objectId });
  if (row === null) return undefined;
  return chunkPage(s, row, fromIndex, limit);
}

/**
 * Chunks from `from` with their holders, at most `limit` and at most metadataPageBytesMax of
 * records (at least one); `next` is the index the next page starts at, when there is more.
 */
function chunkPage(s: Statements, row: BallRow, from: number, limit: number): { chunks: ChunkRecord[]; next?: number } {
  const count = Math.min(limit, limits.chunkRecordsPageMax);
  const rows = byIndex(s.chunksOfBallRange.all({ ball: row.id, from, to: from + count }));
  const chunks = rows.map((chunk) => ({ index: chunk.idx, size: chunk.size, checksum: blobToHex(chunk.checksum, 8), peers: [] as string[] }));
  if (chunks.length > 0) {
    for (const holder of sortHolders(s.holdersOfBallRange.all({ ball: row.id, from, to: from + chunks.length }))) chunks[holder.idx - from]!.peers.push(holder.id);
  }
  let bytes = 0;
  let kept = 0;
  for (const [position, chunk] of chunks.entries()) {
    assert(chunk.index === from + position && chunk.peers.length >= 1, `ball ${row.bucket}/${row.key} chunk ${from + position} read back wrong`);
    bytes += chunkRecordWireBytes(chunk);
    if (kept > 0 && bytes > limits.metadataPageBytesMax) break;
    kept += 1;
  }
  const page = chunks.slice(0, kept);
  const end = from + page.length;
  return end < row.num_chunks ? { chunks: page, next: end } : { chunks: page };
}

/** The ball's chunks with their holders, checked against the ball. */
export function readChunks(s: Statements, row: BallRow): ChunkRecord[] {
  const chunks = byIndex(s.chunksOfBall.all({ ball: row.id })).map((chunk) => ({
    index: chunk.idx,
    size: chunk.size,
    checksum: blobToHex(chunk.checksum, 8),
    peers: [] as string[],
  }));
  for (const holder of sortHolders(s.holdersOfBall.all({ ball: row.id }))) chunks[holder.idx]!.peers.push(holder.id);
  checkReadChunks(row, chunks);
  return chunks;
}

function checkReadChunks(row: BallRow, chunks: ChunkRecord[]): void {
  const where = `ball ${row.bucket}/${row.key}`;
  assert(chunks.length === row.num_chunks, `${where} has ${chunks.length} chunks, expected ${row.num_chunks}`);
  let total = 0;
  chunks.forEach((chunk, position) => {
    assert(chunk.index === position, `${where} chunk ${position} has index ${chunk.index}`);
    assert(chunk.peers.length >= 1, `${where} chunk ${position} has no replica`);
    total += chunk.size;
  });
  const tags = JSON.parse(row.tags) as Record<string, string>;
  const transformed = tags.compression !== undefined || tags.encryption !== undefined;
  assert(transformed || total === row.size, `${where} chunks add up to ${total} bytes, expected ${row.size}`);
}

export function deleteBall(s: Statements, bucket: string, key: string, when: RetireTiming = {}): BallRecord | undefined {
  checkBucket(bucket);
  checkKey(key);
  const row = s.ballByKey.get({ bucket, key });
  if (row === null) return undefined;
  const ball = ballFromRow(row);
  retireBall(s, row, "deleted", when);
  return ball;
}

/**
 * One batch of a bulk delete: the balls under `prefix` after `after`, in key order, each
 * retired as deleteBall retires one; at most `limit` balls, and no more once their chunks pass
 * `chunksMax` (at least one ball, however many chunks it has). `next`, the last key deleted,
 * when more may follow.
 */
export function deleteBalls(s: Statements, lister: BallLister, q: DeleteBallsQuery, when: RetireTiming = {}): DeleteBallsResult {
  const rows = lister.rows({ bucket: q.bucket, ...(q.prefix === undefined ? {} : { prefix: q.prefix }), ...(q.after === undefined ? {} : { after: q.after }) }, q.limit + 1);
  let deleted = 0;
  let bytes = 0;
  let chunks = 0;
  for (const row of rows.slice(0, q.limit)) {
    if (deleted > 0 && chunks + row.num_chunks > q.chunksMax) break;
    assert(row.bucket === q.bucket && (q.prefix === undefined || row.key.startsWith(q.prefix)), `bulk delete of ${q.bucket}/${q.prefix ?? ""} reached ${row.bucket}/${row.key}`);
    retireBall(s, row, "deleted", when);
    deleted += 1;
    bytes += row.size;
    chunks += row.num_chunks;
  }
  const last = rows[deleted - 1];
  return rows.length > deleted && last !== undefined ? { deleted, bytes, next: last.key } : { deleted, bytes };
}

/** Statements over a range of keys (listing, counting, bulk delete), one per shape of range, prepared on first use. */
export class BallLister {
  private readonly statements = new Map<string, Statement<unknown, [Record<string, string | number>]>>();

  constructor(private readonly db: Database) {}

  list(q: ListBallsQuery): { balls: BallRecord[]; next?: string } {
    checkQuery(q);
    return pageOfBalls(this.rows(q, q.limit + 1), q);
  }

  /** Up to `limit` rows of the balls `q` names, in key order (for a caller that has checked `q`). */
  rows(q: Omit<ListBallsQuery, "limit">, limit: number): BallRow[] {
    const range = keyRange(q.prefix ?? "", q.after);
    const params = rangeParams(q.bucket, range, limit);
    if (q.ballId !== undefined) params.ball_id = q.ballId;
    return this.statement<BallRow>(listSql(q.ballId !== undefined, range)).all(params);
  }

  /**
   * The balls under a non-empty `prefix`, counted up to `max`: `more` when there are more than
   * that. Runs on balls_key; costs O(log n + min(count, max)).
   */
  count(bucket: string, prefix: string, max: number): BallCount {
    const range = keyRange(prefix, undefined);
    const counted = this.statement<{ balls: number }>(countSql(range)).get(rangeParams(bucket, range, max));
    assert(counted !== null && counted.balls <= max, `count under ${bucket}/${prefix} returned ${JSON.stringify(counted)}`);
    if (counted.balls < max) return { balls: counted.balls, more: false };
    const beyond = this.statement<{ one: number }>(beyondSql(range)).get({ ...rangeParams(bucket, range, 1), offset: max });
    return { balls: counted.balls, more: beyond !== null };
  }

  private statement<Row>(sql: string): Statement<Row, [Record<string, string | number>]> {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement as Statement<Row, [Record<string, string | number>]>;
  }
}

function rangeParams(bucket: string, range: KeyRange, limit: number): Record<string, string | number> {
  const params: Record<string, string | number> = { bucket, lower: range.lower, limit };
  if (range.upper !== undefined) params.upper = range.upper;
  return params;
}

function checkQuery(q: ListBallsQuery): void {
  checkBucket(q.bucket);
  checkPage(q);
  if (q.prefix !== undefined && q.prefix !== "") checkKey(q.prefix);
  if (q.ballId !== undefined) checkBallId(q.ballId);
}

/** balls_key (bucket, key) or balls_group (bucket, ball_id, key): a range scan, never LIKE. */
export function listSql(group: boolean, range: KeyRange): string {
  const index = group ? "balls_group" : "balls_key";
  return `SELECT ${ballColumns} FROM balls INDEXED BY ${index} WHERE ${rangeConditions(group, range)} ORDER BY key LIMIT $limit`;
}

/**
 * balls_key: how many balls a range holds, reading at most $limit index entries and nothing
 * else (the index covers it; summing their sizes would read every row: 5x slower, measured).
 */
function countSql(range: KeyRange): string {
  return `SELECT count(*) AS balls FROM (SELECT 1 FROM balls INDEXED BY balls_key WHERE ${rangeConditions(false, range)} ORDER BY key LIMIT $limit)`;
}

/** balls_key: whether the range holds a ball past the first $offset. */
function beyondSql(range: KeyRange): string {
  return `SELECT 1 AS one FROM balls INDEXED BY balls_key WHERE ${rangeConditions(false, range)} ORDER BY key LIMIT $limit OFFSET $offset`;
}

function rangeConditions(group: boolean, range: KeyRange): string {
  const conditions = ["bucket = $bucket"];
  if (group) conditions.push("ball_id = $ball_id");
  conditions.push(range.inclusive ? "key >= $lower" : "key > $lower");
  if (range.upper !== undefined) conditions.push("key < $upper");
  return conditions.join(" AND ");
}

/** At most `limit` balls and metadataPageBytesMax of their metadata (at least one); `next` when there are more. */
function pageOfBalls(rows: BallRow[], q: ListBallsQuery): { balls: BallRecord[]; next?: string } {
  const balls: BallRecord[] = [];
  let bytes = 0;
  for (const row of rows.slice(0, q.limit)) {
    const ball = ballFromRow(row);
    assert(ball.bucket === q.bucket, `listing of ${q.bucket} returned a ball of ${ball.bucket}`);
    bytes += ballMetaWireBytes(ball);
    if (balls.length > 0 && bytes > limits.metadataPageBytesMax) break;
    balls.push(ball);
  }
  const more = rows.length > balls.length;
  if (!more) return { balls };
  return { balls, next: balls[balls.length - 1]!.key };
}
