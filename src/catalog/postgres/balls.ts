// Balls on PostgreSQL: commit, read, delete, list, count — src/catalog/balls.ts call for call
// (the rules are written there). What differs is how: a commit writes all its chunks in one
// statement and all its replicas in another (unnest of arrays), not one statement per row, since
// each statement here is a round trip to the server.
import type { SQL } from "bun";
import { assert } from "../../lib/assert.ts";
import { BadRequestError, ConflictError } from "../../lib/errors.ts";
import { limits } from "../../lib/limits.ts";
import { ballMetaWireBytes, chunkRecordWireBytes } from "../../lib/wire-size.ts";
import { keyRange, type KeyRange } from "../cursor.ts";
import { ballFromRow, ballParams, blobToHex, type BallRow, type PeerRow } from "../rows.ts";
import { checkPreconditions, repeatedCommit } from "../rules.ts";
import type {
  BallCount,
  BallInput,
  BallRecord,
  BallWithChunks,
  ChunkRecord,
  CommitItem,
  CommitOptions,
  CommitResult,
  DeleteBallsQuery,
  DeleteBallsResult,
  ListBallsQuery,
  RetireTiming,
} from "../types.ts";
import { checkBall, checkBallId, checkBucket, checkChunks, checkKey, checkPage } from "../validate.ts";
import { all, one, type Db } from "./db.ts";
import { noUpload } from "./garbage.ts";
import { namedPeersJson, peersById, registeredPeers } from "./peers.ts";

const ballColumnList = "id, bucket, key, ball_id, object_id, version, size, checksum, content_type, tags, rf, created_ms, chunk_size, num_chunks";
const ballColumns = (db: Db) => db.unsafe(ballColumnList);

export async function ballByKey(db: Db, bucket: string, key: string): Promise<BallRow | undefined> {
  return one<BallRow>(db`SELECT ${ballColumns(db)} FROM balls WHERE bucket = ${bucket} AND key = ${key}`);
}

export async function ballByObject(db: Db, objectId: string): Promise<BallRow | undefined> {
  return one<BallRow>(db`SELECT ${ballColumns(db)} FROM balls WHERE object_id = ${objectId}`);
}

export async function ballById(db: Db, id: number): Promise<BallRow | undefined> {
  return one<BallRow>(db`SELECT ${ballColumns(db)} FROM balls WHERE id = ${id}`);
}

/** What an object id is known as, in one statement: each a round trip of its own otherwise. */
type ObjectFacts = {
  under_way: boolean;
  request_id: string | null;
  owner: { bucket: string; key: string } | null;
  retired: { reason: string; retired_ms: number } | null;
  in_garbage: boolean;
};

type CommitFacts = ObjectFacts & {
  current: BallRow | undefined;
  unplaced: { idx: number; peer_id: string } | null;
  /** The registered ones among the peers the commit names (resolvePeers' answer, read in the same statement). */
  peers: PeerRow[];
};

/**
 * Everything a commit checks before it writes, in one statement (each a round trip under the
 * writer lock otherwise): the ball the key holds now, what the object id is known as, the peers
 * the commit names as the registry has them, and, when the commit must use the SPM's
 * placements, the first replica it names that was never placed.
 */
async function commitFacts(db: Db, ball: BallInput, chunks: ChunkRecord[], requirePlacements: boolean): Promise<CommitFacts> {
  const objectId = ball.objectId;
  const idx = requirePlacements ? chunks.flatMap((chunk) => chunk.peers.map(() => chunk.index)) : [];
  const peerIds = requirePlacements ? chunks.flatMap((chunk) => chunk.peers) : [];
  const named = [...new Set(chunks.flatMap((chunk) => chunk.peers))];
  const row = await one<ObjectFacts & Partial<BallRow> & { unplaced: { idx: number; peer_id: string } | null; peers: PeerRow[] | null }>(db`SELECT ${db.unsafe(ballColumnList.split(", ").map((column) => `b.${column}`).join(", "))},
      ${namedPeersJson(db, named)} AS peers,
      EXISTS (SELECT 1 FROM intents WHERE object_id = ${objectId}) AS under_way,
      (SELECT request_id FROM intents WHERE object_id = ${objectId}) AS request_id,
      (SELECT json_build_object('bucket', bucket, 'key', key) FROM balls WHERE object_id = ${objectId}) AS owner,
      (SELECT json_build_object('reason', reason, 'retired_ms', retired_ms) FROM retired WHERE object_id = ${objectId}) AS retired,
      EXISTS (SELECT 1 FROM garbage WHERE object_id = ${objectId}) AS in_garbage,
      (SELECT json_build_object('idx', w.idx, 'peer_id', w.peer_id) FROM unnest(${db.array(idx, "INT")}::int[], ${db.array(peerIds, "TEXT")}::text[]) WITH ORDINALITY AS w (idx, peer_id, position)
        WHERE NOT EXISTS (SELECT 1 FROM intent_placements AS p WHERE p.object_id = ${objectId} AND p.idx = w.idx AND p.peer_id = w.peer_id) ORDER BY w.position LIMIT 1) AS unplaced
    FROM (SELECT 1) AS one_row LEFT JOIN balls AS b ON b.bucket = ${ball.bucket} AND b.key = ${ball.key}`);
  assert(row !== undefined, `no facts about object ${objectId}`);
  const { under_way, request_id, owner, retired, in_garbage, unplaced } = row;
  const current = row.id === null || row.id === undefined ? undefined : (row as BallRow);
  return { under_way, request_id, owner, retired, in_garbage, unplaced, current, peers: row.peers ?? [] };
}

/** The whole commit; the caller has validated `ball` and `chunks` and opened a transaction. */
export async function commitBall(db: Db, ball: BallInput, chunks: ChunkRecord[], options: CommitOptions): Promise<CommitResult> {
  const facts = await commitFacts(db, ball, chunks, options.requirePlacements === true);
  const current = facts.current;
  if (current !== undefined && current.object_id === ball.objectId) return repeatedCommit(current, ball);
  checkPreconditions(current, options, ball);
  if (options.requirePlacements === true) {
    if (!facts.under_way) throw await noUpload(db, ball.objectId);
    checkPlaced(ball.objectId, facts.unplaced);
  }
  if (options.replicasMin !== undefined) checkReplicas(chunks, options.replicasMin);
  if (!facts.under_way) checkObjectIdFree(ball.objectId, facts);
  const peers = registeredPeers(chunks.flatMap((chunk) => chunk.peers), facts.peers);
  if (current !== undefined) await retireBall(db, current, "overwritten", options.retire);
  const version = current === undefined ? 1 : current.version + 1;
  await insertBallWithChunks(db, ball, version, chunks, peers, facts.under_way ? facts.request_id : null);
  return current === undefined ? { version } : { version, replacedObjectId: current.object_id };
}

function checkReplicas(chunks: ChunkRecord[], min: number): void {
  for (const chunk of chunks) {
    if (chunk.peers.length < min) throw new BadRequestError(`chunk ${chunk.index} is on ${chunk.peers.length} peers, fewer than the ${min} the put needs`);
  }
}

/** Every replica a commit names is one the SPM placed for that chunk of that upload (commitFacts found the first that is not). */
function checkPlaced(objectId: string, unplaced: { idx: number; peer_id: string } | null): void {
  if (unplaced !== null) {
    throw new BadRequestError(`the commit says chunk ${unplaced.idx} of object ${objectId} is on ${unplaced.peer_id}, which was never placed there; nothing was committed`);
  }
}


/** An object id is used once: not by another ball, not retired, not by pending garbage. */
function checkObjectIdFree(objectId: string, { owner, retired, in_garbage }: ObjectFacts): void {
  if (owner !== null) throw new ConflictError(`object id ${objectId} is already used by ${owner.bucket}/${owner.key}`);
  if (retired?.reason === "abandoned") {
    throw new ConflictError(`the upload of object ${objectId} was given up at ${retired.retired_ms} ms (its client abandoned it, or it expired) and its replicas are being deleted; upload again`);
  }
  if (retired !== null) throw new ConflictError(`object id ${objectId} was ${retired.reason} at ${retired.retired_ms} ms; it cannot come back`);
  if (in_garbage) throw new ConflictError(`object id ${objectId} belongs to replicas being deleted; upload again with a new object id`);
}

/**
 * The ball (and its bucket when it is the bucket's first), all its chunks and all their replicas,
 * and the end of the upload's intent, in one statement: a data-modifying WITH, whose parts all
 * run, read one snapshot and touch different tables, and whose references (replicas to chunks to
 * the ball to its bucket; placements and staged records to the intent) are checked at its end,
 * when everything is in and the intent is gone. Ending the intent: its placements go, the ones
 * the commit did not use (on peers still registered) becoming garbage in the primary key's
 * order; its staged records and the intent go; the put's request id is remembered. A commit
 * without an intent (a copy, a rebuild) has none of those rows, so those parts change nothing.
 */
async function insertBallWithChunks(
  db: Db,
  ball: BallInput,
  version: number,
  chunks: ChunkRecord[],
  peers: Map<string, { num: number; live: boolean }>,
  requestId: string | null,
): Promise<number> {
  const p = ballParams(ball, version);
  const live = chunks.map((chunk) => chunk.peers.filter((id) => peers.get(id)!.live).length);
  const idx = chunks.flatMap((chunk) => chunk.peers.map(() => chunk.index));
  const usedPeers = chunks.flatMap((chunk) => chunk.peers);
  const nums = usedPeers.map((id) => peers.get(id)!.num);
  const row = await one<{ id: number }>(db`WITH made AS (INSERT INTO buckets (name, created_ms) VALUES (${ball.bucket}, ${ball.createdMs}) ON CONFLICT DO NOTHING),
    b AS (INSERT INTO balls (bucket, key, ball_id, object_id, version, size, checksum, content_type, tags, rf, created_ms, chunk_size, num_chunks)
      VALUES (${p.bucket}, ${p.key}, ${p.ball_id}, ${p.object_id}, ${p.version}, ${p.size}, ${p.checksum}, ${p.content_type}, ${p.tags}, ${p.rf}, ${p.created_ms}, ${p.chunk_size}, ${p.num_chunks})
      RETURNING id),
    c AS (INSERT INTO chunks (ball, idx, size, checksum, rf, live)
      SELECT b.id, c.idx, c.size, decode(c.checksum, 'hex'), ${ball.rf}, c.live
      FROM b, unnest(${db.array(chunks.map((chunk) => chunk.index), "INT")}::int[], ${db.array(chunks.map((chunk) => chunk.size), "BIGINT")}::bigint[],
                     ${db.array(chunks.map((chunk) => chunk.checksum), "TEXT")}::text[], ${db.array(live, "INT")}::int[]) AS c (idx, size, checksum, live)),
    r AS (INSERT INTO replicas (ball, idx, peer) SELECT b.id, r.idx, r.peer FROM b, unnest(${db.array(idx, "INT")}::int[], ${db.array(nums, "BIGINT")}::bigint[]) AS r (idx, peer)
      ON CONFLICT DO NOTHING),
    taken AS (DELETE FROM intent_placements WHERE object_id = ${ball.objectId} RETURNING idx, peer_id),
    orphans AS (INSERT INTO garbage (object_id, idx, peer_id, bucket)
      SELECT ${ball.objectId}, t.idx, t.peer_id, ${ball.bucket} FROM taken AS t
      WHERE EXISTS (SELECT 1 FROM peers WHERE id = t.peer_id)
        AND NOT EXISTS (SELECT 1 FROM unnest(${db.array(idx, "INT")}::int[], ${db.array(usedPeers, "TEXT")}::text[]) AS u (idx, peer_id) WHERE u.idx = t.idx AND u.peer_id = t.peer_id)
      ORDER BY t.idx, t.peer_id ON CONFLICT DO NOTHING),
    staged_gone AS (DELETE FROM intent_chunks WHERE object_id = ${ball.objectId}),
    remembered AS (INSERT INTO requests (request_id, object_id, version, created_ms)
      SELECT ${requestId}::text, ${ball.objectId}, ${version}, ${ball.createdMs} WHERE ${requestId}::text IS NOT NULL ON CONFLICT DO NOTHING),
    intent_gone AS (DELETE FROM intents WHERE object_id = ${ball.objectId})
    SELECT id FROM b`);
  assert(row !== undefined && Number.isSafeInteger(row.id), `the insert of ${ball.bucket}/${ball.key} returned no id`);
  return row.id;
}

export type RetireReason = "overwritten" | "deleted" | "abandoned";

/**
 * Every replica of the ball becomes garbage (kept for the readers' grace); the ball, its chunks
 * and replicas go; its id is retired. One statement: its parts read one snapshot (the garbage is
 * made from the replicas as they were), and the references are checked at its end.
 */
export async function retireBall(db: Db, ball: BallRow, reason: RetireReason, when: RetireTiming = {}): Promise<void> {
  const atMs = when.atMs ?? Date.now();
  await db`WITH kept AS (INSERT INTO garbage (object_id, idx, peer_id, bucket, not_before_ms, size, checksum)
        SELECT ${ball.object_id}, r.idx, p.id, ${ball.bucket}, ${atMs + (when.readerGraceMs ?? 0)}, c.size, c.checksum
        FROM replicas AS r JOIN peers AS p ON p.num = r.peer JOIN chunks AS c ON c.ball = r.ball AND c.idx = r.idx
        WHERE r.ball = ${ball.id} ORDER BY r.idx, p.id ON CONFLICT DO NOTHING),
      remembered AS (INSERT INTO retired (object_id, bucket, retired_ms, reason) VALUES (${ball.object_id}, ${ball.bucket}, ${atMs}, ${reason})
        ON CONFLICT (object_id) DO UPDATE SET bucket = excluded.bucket, retired_ms = excluded.retired_ms, reason = excluded.reason),
      replicas_gone AS (DELETE FROM replicas WHERE ball = ${ball.id}),
      chunks_gone AS (DELETE FROM chunks WHERE ball = ${ball.id})
    DELETE FROM balls WHERE id = ${ball.id}`;
}

export async function getBall(db: Db, bucket: string, key: string): Promise<BallWithChunks | undefined> {
  checkBucket(bucket);
  checkKey(key);
  const found = await withChunks(db, db`b.bucket = ${bucket} AND b.key = ${key}`, 0, limits.ballChunksMax);
  if (found === undefined) return undefined;
  checkLookup(found.ball, bucket, key);
  return { ...found.ball, chunks: checkWhole(found.row, found.chunks) };
}

export async function getBallMeta(db: Db, bucket: string, key: string): Promise<BallRecord | undefined> {
  checkBucket(bucket);
  checkKey(key);
  const row = await ballByKey(db, bucket, key);
  if (row === undefined) return undefined;
  const ball = ballFromRow(row);
  checkLookup(ball, bucket, key);
  return ball;
}

/** A ball and the first page of its chunks: what a read starts from, in one statement. */
export async function getBallHead(db: Db, bucket: string, key: string): Promise<{ ball: BallRecord; chunks: ChunkRecord[]; next?: number } | undefined> {
  checkBucket(bucket);
  checkKey(key);
  const found = await withChunks(db, db`b.bucket = ${bucket} AND b.key = ${key}`, 0, limits.chunkRecordsPageMax);
  if (found === undefined) return undefined;
  checkLookup(found.ball, bucket, key);
  return { ball: found.ball, ...chunkPage(found.row, found.chunks, 0) };
}

function checkLookup(ball: BallRecord, bucket: string, key: string): void {
  assert(ball.bucket === bucket && ball.key === key, `lookup of ${bucket}/${key} returned ${ball.bucket}/${ball.key}`);
}

export async function chunksPage(db: Db, objectId: string, fromIndex: number, limit: number): Promise<{ chunks: ChunkRecord[]; next?: number } | undefined> {
  const found = await withChunks(db, db`b.object_id = ${objectId}`, fromIndex, Math.min(limit, limits.chunkRecordsPageMax));
  return found && chunkPage(found.row, found.chunks, fromIndex);
}

/** Chunks as withChunks carries them: [index, size, checksum hex, holders sorted by peer id]. */
type ChunkTuple = [number, number, string, string[]];
type BallWithChunkList = BallRow & { chunk_list: ChunkTuple[] };

/**
 * The ball `where` names and its chunks [from, from + limit) with their holders, in one
 * statement: one round trip, and one snapshot without a transaction around two reads.
 */
async function withChunks(db: Db, where: SQL.Query<unknown>, from: number, limit: number): Promise<{ row: BallRow; ball: BallRecord; chunks: ChunkRecord[] } | undefined> {
  const row = await one<BallWithChunkList>(db`SELECT ${ballColumns(db)},
      (SELECT coalesce(json_agg(json_build_array(c.idx, c.size, encode(c.checksum, 'hex'),
          (SELECT coalesce(json_agg(p.id ORDER BY p.id), '[]'::json) FROM replicas AS r JOIN peers AS p ON p.num = r.peer WHERE r.ball = c.ball AND r.idx = c.idx)) ORDER BY c.idx), '[]'::json)
        FROM (SELECT ball, idx, size, checksum FROM chunks WHERE ball = b.id AND idx >= ${from} ORDER BY idx LIMIT ${limit}) AS c) AS chunk_list
    FROM balls AS b WHERE ${where}`);
  if (row === undefined) return undefined;
  const chunks = row.chunk_list.map(([index, size, checksum, peers]) => {
    assert(Number.isSafeInteger(index) && Number.isSafeInteger(size) && checksum.length === 16, `ball ${row.bucket}/${row.key} has a malformed chunk ${index}`);
    return { index, size, checksum, peers };
  });
  return { row, ball: ballFromRow(row), chunks };
}

/** At most metadataPageBytesMax of records (at least one); `next` is the index the next page starts at, when there is more. */
function chunkPage(row: BallRow, chunks: ChunkRecord[], from: number): { chunks: ChunkRecord[]; next?: number } {
  const page: ChunkRecord[] = [];
  let bytes = 0;
  for (const [position, record] of chunks.entries()) {
    assert(record.index === from + position && record.peers.length >= 1, `ball ${row.bucket}/${row.key} chunk ${from + position} read back wrong`);
    bytes += chunkRecordWireBytes(record);
    if (page.length > 0 && bytes > limits.metadataPageBytesMax) break;
    page.push(record);
  }
  const end = from + page.length;
  return end < row.num_chunks ? { chunks: page, next: end } : { chunks: page };
}

/** A ball's every chunk, checked against the ball. */
function checkWhole(row: BallRow, chunks: ChunkRecord[]): ChunkRecord[] {
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
  return chunks;
}

export async function deleteBall(db: Db, bucket: string, key: string, when: RetireTiming = {}): Promise<BallRecord | undefined> {
  checkBucket(bucket);
  checkKey(key);
  const row = await ballByKey(db, bucket, key);
  if (row === undefined) return undefined;
  const ball = ballFromRow(row);
  await retireBall(db, row, "deleted", when);
  return ball;
}

/** One batch of a bulk delete (see balls.ts deleteBalls). */
export async function deleteBalls(db: Db, q: DeleteBallsQuery, when: RetireTiming = {}): Promise<DeleteBallsResult> {
  const rows = await ballRows(db, { bucket: q.bucket, ...(q.prefix === undefined ? {} : { prefix: q.prefix }), ...(q.after === undefined ? {} : { after: q.after }) }, q.limit + 1);
  let deleted = 0;
  let bytes = 0;
  let chunks = 0;
  for (const row of rows.slice(0, q.limit)) {
    if (deleted > 0 && chunks + row.num_chunks > q.chunksMax) break;
    assert(row.bucket === q.bucket && (q.prefix === undefined || row.key.startsWith(q.prefix)), `bulk delete of ${q.bucket}/${q.prefix ?? ""} reached ${row.bucket}/${row.key}`);
    await retireBall(db, row, "deleted", when);
    deleted += 1;
    bytes += row.size;
    chunks += row.num_chunks;
  }
  const last = rows[deleted - 1];
  return rows.length > deleted && last !== undefined ? { deleted, bytes, next: last.key } : { deleted, bytes };
}

export async function listBalls(db: Db, q: ListBallsQuery): Promise<{ balls: BallRecord[]; next?: string }> {
  checkBucket(q.bucket);
  checkPage(q);
  if (q.prefix !== undefined && q.prefix !== "") checkKey(q.prefix);
  if (q.ballId !== undefined) checkBallId(q.ballId);
  return pageOfBalls(await ballRows(db, q, q.limit + 1), q);
}

/** balls_key (bucket, key) or balls_group (bucket, ball_id, key): a range scan in key order, never LIKE. */
async function ballRows(db: Db, q: Omit<ListBallsQuery, "limit">, limit: number): Promise<BallRow[]> {
  const range = keyRange(q.prefix ?? "", q.after);
  const group = q.ballId === undefined ? db`` : db`AND ball_id = ${q.ballId}`;
  return all<BallRow>(db`SELECT ${ballColumns(db)} FROM balls WHERE bucket = ${q.bucket} ${group} ${rangeConditions(db, range)} ORDER BY key LIMIT ${limit}`);
}

function rangeConditions(db: Db, range: KeyRange) {
  const lower = range.inclusive ? db`AND key >= ${range.lower}` : db`AND key > ${range.lower}`;
  return range.upper === undefined ? lower : db`${lower} AND key < ${range.upper}`;
}

/** The balls under a non-empty prefix, counted up to `max` (balls_key only, as on sqlite). */
export async function countUnder(db: Db, bucket: string, prefix: string, max: number): Promise<BallCount> {
  const range = keyRange(prefix, undefined);
  const counted = await one<{ balls: number }>(db`SELECT count(*) AS balls FROM (SELECT 1 FROM balls WHERE bucket = ${bucket} ${rangeConditions(db, range)} ORDER BY key LIMIT ${max}) AS b`);
  assert(counted !== undefined && counted.balls <= max, `count under ${bucket}/${prefix} returned ${JSON.stringify(counted)}`);
  if (counted.balls < max) return { balls: counted.balls, more: false };
  const beyond = await one(db`SELECT 1 AS one FROM balls WHERE bucket = ${bucket} ${rangeConditions(db, range)} ORDER BY key LIMIT 1 OFFSET ${max}`);
  return { balls: counted.balls, more: beyond !== undefined };
}

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
  if (rows.length <= balls.length) return { balls };
  return { balls, next: balls[balls.length - 1]!.key };
}

/**
 * The commits of a batch that are plain new balls, each in far fewer statements than one by one
 * (the puts a router sends in one `ball.commitMany`, a bulk load): `true` at the positions it
 * committed, each at version 1; the caller commits the rest one by one, after, with every check
 * (a batch keeps its order, since no committed item shares a key or an object id with any other
 * item). Plain: no staged chunks, a key that holds no ball, on registered peers, with a valid
 * description, and either an upload's commit (`requirePlacements`: its intent under way, every
 * replica it names placed, its object id used nowhere else) or one that needs no upload (an
 * object id the catalog has never seen) — anything else (and every error) is left to the
 * one-by-one path, which alone decides what to answer. Two statements: the facts of every
 * candidate at once, then every insert (and the end of every intent) at once.
 */
export async function commitNewBalls(db: Db, items: readonly CommitItem[]): Promise<boolean[]> {
  const taken = items.map(() => false);
  const candidates = plainCandidates(items);
  if (candidates.length < bulkCommitMin) return taken;
  const facts = await newBallFacts(db, candidates.map((n) => items[n]!));
  const registered = peersById(facts.peers);
  // A bucket that does not exist yet is made by the first item naming it, as one by one (its
  // createdMs is the bucket's); a later one might otherwise make it first.
  const firstNaming = new Map<string, number>();
  for (const [n, { ball }] of items.entries()) if (!firstNaming.has(ball.bucket)) firstNaming.set(ball.bucket, n);
  const fresh = candidates.filter((n) => {
    const { ball, chunks, options = {} } = items[n]!;
    if (!facts.buckets.has(ball.bucket) && firstNaming.get(ball.bucket) !== n) return false;
    if (facts.busyKeys.has(`${ball.bucket}/${ball.key}`) || facts.owned.has(ball.objectId)) return false;
    const upload = options.requirePlacements === true;
    if (upload ? !facts.underWay.has(ball.objectId) || facts.unplaced.has(ball.objectId) : facts.underWay.has(ball.objectId)) return false;
    return chunks.every((chunk) => chunk.peers.every((id) => registered.has(id)));
  });
  if (fresh.length < bulkCommitMin) return taken;
  await insertNewBalls(db, fresh.map((n) => items[n]!), registered, facts.underWay);
  for (const n of fresh) taken[n] = true;
  return taken;
}

/** Below this many, the two statements save nothing over one by one. */
const bulkCommitMin = 2;

/** Positions of the items that may be plain: valid, nothing staged or placed, no key or object id shared within the batch. */
function plainCandidates(items: readonly CommitItem[]): number[] {
  const uses = new Map<string, number>();
  const count = (name: string) => uses.set(name, (uses.get(name) ?? 0) + 1);
  for (const { ball } of items) {
    count(`k:${ball.bucket}/${ball.key}`);
    count(`o:${ball.objectId}`);
  }
  return items.flatMap(({ ball, chunks, options = {} }, n) => {
    if ((options.stagedChunks ?? 0) !== 0) return [];
    if (uses.get(`k:${ball.bucket}/${ball.key}`) !== 1 || uses.get(`o:${ball.objectId}`) !== 1) return [];
    if (options.replicasMin !== undefined && chunks.some((chunk) => chunk.peers.length < options.replicasMin!)) return [];
    if (options.expectedObjectId !== undefined) return []; // a precondition on a ball that must exist: never a new key
    try {
      checkBall(ball);
      checkChunks(ball, chunks);
    } catch {
      return []; // not lost: the one-by-one path checks it again and answers with this error
    }
    return [n];
  });
}

interface NewBallFacts {
  /** bucket/key of the candidates' keys that hold a ball. */
  busyKeys: Set<string>;
  /** Object ids a ball, a retired record or pending garbage uses. */
  owned: Set<string>;
  /** Object ids with an upload under way, each with its intent's request id. */
  underWay: Map<string, string | null>;
  /** Object ids of upload commits naming a replica that was never placed. */
  unplaced: Set<string>;
  buckets: Set<string>;
  peers: PeerRow[];
}

/** What the candidates' keys and object ids are known as, which buckets exist, and the named peers: one statement. */
async function newBallFacts(db: Db, items: readonly CommitItem[]): Promise<NewBallFacts> {
  const buckets = items.map(({ ball }) => ball.bucket);
  const keys = items.map(({ ball }) => ball.key);
  const objects = items.map(({ ball }) => ball.objectId);
  const named = [...new Set(items.flatMap(({ chunks }) => chunks.flatMap((chunk) => chunk.peers)))];
  // Every replica an upload's commit names, to be found among its intent's placements.
  const replicas = items.flatMap(({ ball, chunks, options = {} }) =>
    options.requirePlacements === true ? chunks.flatMap((chunk) => chunk.peers.map((peerId) => ({ objectId: ball.objectId, index: chunk.index, peerId }))) : [],
  );
  const row = await one<{ busy: string[] | null; owned: string[] | null; under_way: Array<[string, string | null]> | null; unplaced: string[] | null; buckets: string[] | null; peers: PeerRow[] | null }>(db`SELECT
      (SELECT array_agg(name) FROM buckets WHERE name = ANY(${db.array([...new Set(buckets)], "TEXT")}::text[])) AS buckets,
      (SELECT array_agg(b.bucket || '/' || b.key) FROM unnest(${db.array(buckets, "TEXT")}::text[], ${db.array(keys, "TEXT")}::text[]) AS k (bucket, key)
        JOIN balls AS b ON b.bucket = k.bucket AND b.key = k.key) AS busy,
      (SELECT array_agg(o.id) FROM unnest(${db.array(objects, "TEXT")}::text[]) AS o (id)
        WHERE EXISTS (SELECT 1 FROM balls WHERE object_id = o.id) OR EXISTS (SELECT 1 FROM retired WHERE object_id = o.id)
           OR EXISTS (SELECT 1 FROM garbage WHERE object_id = o.id)) AS owned,
      (SELECT json_agg(json_build_array(object_id, request_id)) FROM intents WHERE object_id = ANY(${db.array(objects, "TEXT")}::text[])) AS under_way,
      (SELECT array_agg(DISTINCT w.object_id) FROM unnest(${db.array(replicas.map((r) => r.objectId), "TEXT")}::text[], ${db.array(replicas.map((r) => r.index), "INT")}::int[],
                                                          ${db.array(replicas.map((r) => r.peerId), "TEXT")}::text[]) AS w (object_id, idx, peer_id)
        WHERE NOT EXISTS (SELECT 1 FROM intent_placements AS p WHERE p.object_id = w.object_id AND p.idx = w.idx AND p.peer_id = w.peer_id)) AS unplaced,
      ${namedPeersJson(db, named)} AS peers`);
  assert(row !== undefined, "no facts about a batch of new balls");
  return {
    busyKeys: new Set(row.busy ?? []),
    owned: new Set(row.owned ?? []),
    underWay: new Map(row.under_way ?? []),
    unplaced: new Set(row.unplaced ?? []),
    buckets: new Set(row.buckets ?? []),
    peers: row.peers ?? [],
  };
}

/**
 * Every ball, chunk and replica of `items` (plain new balls, checked) in one statement, buckets
 * made as their first ball needs them; the uploads among them (their object ids in `underWay`)
 * end as insertBallWithChunks ends one: placements gone, the unused ones (on peers still
 * registered) garbage in item, index and peer order, staged records and intents gone, request
 * ids remembered.
 */
async function insertNewBalls(db: Db, items: readonly CommitItem[], peers: Map<string, { num: number; live: boolean }>, underWay: Map<string, string | null>): Promise<void> {
  const uploads = items.filter(({ ball }) => underWay.has(ball.objectId));
  const upObjects = db.array(uploads.map(({ ball }) => ball.objectId), "TEXT");
  const used = uploads.flatMap(({ ball, chunks }) => chunks.flatMap((chunk) => chunk.peers.map((peerId) => ({ objectId: ball.objectId, index: chunk.index, peerId }))));
  const requests = uploads.flatMap(({ ball }) => {
    const requestId = underWay.get(ball.objectId) ?? null;
    return requestId === null ? [] : [{ requestId, objectId: ball.objectId, createdMs: ball.createdMs }];
  });
  const params = items.map(({ ball }) => ballParams(ball, 1));
  const column = <K extends keyof (typeof params)[number]>(name: K) => params.map((p) => p[name]);
  const firstOfBucket = new Map<string, number>();
  for (const { ball } of items) if (!firstOfBucket.has(ball.bucket)) firstOfBucket.set(ball.bucket, ball.createdMs);
  const chunkRows = items.flatMap(({ ball, chunks }) => chunks.map((chunk) => ({ objectId: ball.objectId, chunk, rf: ball.rf, live: chunk.peers.filter((id) => peers.get(id)!.live).length })));
  const replicaRows = items.flatMap(({ ball, chunks }) => chunks.flatMap((chunk) => chunk.peers.map((id) => ({ objectId: ball.objectId, index: chunk.index, num: peers.get(id)!.num }))));
  const row = await one<{ made: number }>(db`WITH made AS (INSERT INTO buckets (name, created_ms)
        SELECT * FROM unnest(${db.array([...firstOfBucket.keys()], "TEXT")}::text[], ${db.array([...firstOfBucket.values()], "BIGINT")}::bigint[]) ON CONFLICT DO NOTHING),
      b AS (INSERT INTO balls (bucket, key, ball_id, object_id, version, size, checksum, content_type, tags, rf, created_ms, chunk_size, num_chunks)
        SELECT bucket, key, ball_id, object_id, 1, size, decode(checksum, 'hex'), content_type, tags, rf, created_ms, chunk_size, num_chunks
        FROM unnest(${db.array(column("bucket"), "TEXT")}::text[], ${db.array(column("key"), "TEXT")}::text[], ${db.array(column("ball_id"), "TEXT")}::text[],
                    ${db.array(column("object_id"), "TEXT")}::text[], ${db.array(column("size"), "BIGINT")}::bigint[], ${db.array(items.map(({ ball }) => ball.checksum), "TEXT")}::text[],
                    ${db.array(column("content_type"), "TEXT")}::text[], ${db.array(column("tags"), "TEXT")}::text[], ${db.array(column("rf"), "INT")}::int[],
                    ${db.array(column("created_ms"), "BIGINT")}::bigint[], ${db.array(column("chunk_size"), "INT")}::int[], ${db.array(column("num_chunks"), "INT")}::int[])
          AS n (bucket, key, ball_id, object_id, size, checksum, content_type, tags, rf, created_ms, chunk_size, num_chunks)
        RETURNING id, object_id),
      c AS (INSERT INTO chunks (ball, idx, size, checksum, rf, live)
        SELECT b.id, c.idx, c.size, decode(c.checksum, 'hex'), c.rf, c.live
        FROM unnest(${db.array(chunkRows.map((r) => r.objectId), "TEXT")}::text[], ${db.array(chunkRows.map((r) => r.chunk.index), "INT")}::int[],
                    ${db.array(chunkRows.map((r) => r.chunk.size), "BIGINT")}::bigint[], ${db.array(chunkRows.map((r) => r.chunk.checksum), "TEXT")}::text[],
                    ${db.array(chunkRows.map((r) => r.rf), "INT")}::int[], ${db.array(chunkRows.map((r) => r.live), "INT")}::int[])
          AS c (object_id, idx, size, checksum, rf, live) JOIN b USING (object_id)),
      r AS (INSERT INTO replicas (ball, idx, peer)
        SELECT b.id, r.idx, r.peer FROM unnest(${db.array(replicaRows.map((r) => r.objectId), "TEXT")}::text[], ${db.array(replicaRows.map((r) => r.index), "INT")}::int[],
                                              ${db.array(replicaRows.map((r) => r.num), "BIGINT")}::bigint[]) AS r (object_id, idx, peer) JOIN b USING (object_id)
        ON CONFLICT DO NOTHING),
      taken AS (DELETE FROM intent_placements WHERE object_id = ANY(${upObjects}::text[]) RETURNING object_id, idx, peer_id),
      orphans AS (INSERT INTO garbage (object_id, idx, peer_id, bucket)
        SELECT t.object_id, t.idx, t.peer_id, u.bucket
        FROM taken AS t JOIN unnest(${upObjects}::text[], ${db.array(uploads.map(({ ball }) => ball.bucket), "TEXT")}::text[]) WITH ORDINALITY AS u (object_id, bucket, position) ON u.object_id = t.object_id
        WHERE EXISTS (SELECT 1 FROM peers WHERE id = t.peer_id)
          AND NOT EXISTS (SELECT 1 FROM unnest(${db.array(used.map((r) => r.objectId), "TEXT")}::text[], ${db.array(used.map((r) => r.index), "INT")}::int[],
                                               ${db.array(used.map((r) => r.peerId), "TEXT")}::text[]) AS w (object_id, idx, peer_id)
                          WHERE w.object_id = t.object_id AND w.idx = t.idx AND w.peer_id = t.peer_id)
        ORDER BY u.position, t.idx, t.peer_id ON CONFLICT DO NOTHING),
      staged_gone AS (DELETE FROM intent_chunks WHERE object_id = ANY(${upObjects}::text[])),
      remembered AS (INSERT INTO requests (request_id, object_id, version, created_ms)
        SELECT request_id, object_id, 1, created_ms FROM unnest(${db.array(requests.map((r) => r.requestId), "TEXT")}::text[], ${db.array(requests.map((r) => r.objectId), "TEXT")}::text[],
                                                               ${db.array(requests.map((r) => r.createdMs), "BIGINT")}::bigint[]) AS q (request_id, object_id, created_ms)
        ON CONFLICT DO NOTHING),
      intent_gone AS (DELETE FROM intents WHERE object_id = ANY(${upObjects}::text[]))
    SELECT count(*)::int AS made FROM b`);
  assert(row?.made === items.length, `a bulk commit inserted ${row?.made} of ${items.length} balls`);
}
