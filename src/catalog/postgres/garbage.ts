// Garbage and put intents on PostgreSQL: src/catalog/garbage.ts call for call (the rules —
// readers' grace, what an expired or abandoned upload leaves, request ids — are written there).
import { assert } from "../../lib/assert.ts";
import { BadRequestError, ConflictError, MictlanxError, NotFoundError } from "../../lib/errors.ts";
import { limits } from "../../lib/limits.ts";
import { blobToHex } from "../rows.ts";
import { retiredPageOf } from "../rules.ts";
import type { ChunkRecord, GarbageEntry, GarbageInput, GarbageItem, IntentOutcome, Placement, PutIntent, RetiredChunk } from "../types.ts";
import { checkBucket, checkGarbageItem, checkInt, checkIntent, checkObjectId, checkPeerId, checkPlacements } from "../validate.ts";
import { all, one, run, type Db } from "./db.ts";
import { peerRow } from "./peers.ts";

export type IntentRow = { object_id: string; bucket: string; key: string; created_ms: number; expires_ms: number; request_id: string | null; chunk_bytes: number };
type GarbageRow = { seq: number; object_id: string; idx: number; peer_id: string; bucket: string };

const intentColumns = (db: Db) => db.unsafe("object_id, bucket, key, created_ms, expires_ms, request_id, chunk_bytes");

export async function intentRow(db: Db, objectId: string): Promise<IntentRow | undefined> {
  return one<IntentRow>(db`SELECT ${intentColumns(db)} FROM intents WHERE object_id = ${objectId}`);
}

export async function retiredRow(db: Db, objectId: string): Promise<{ bucket: string; retired_ms: number; reason: string } | undefined> {
  return one(db`SELECT bucket, retired_ms, reason FROM retired WHERE object_id = ${objectId}`);
}

async function liveBall(db: Db, objectId: string): Promise<{ id: number; bucket: string; key: string } | undefined> {
  return one(db`SELECT id, bucket, key FROM balls WHERE object_id = ${objectId}`);
}

export async function insertGarbage(db: Db, item: GarbageItem, bucket: string): Promise<void> {
  await db`INSERT INTO garbage (object_id, idx, peer_id, bucket) VALUES (${item.objectId}, ${item.index}, ${item.peerId}, ${bucket}) ON CONFLICT DO NOTHING`;
}

export async function addGarbage(db: Db, items: GarbageInput[]): Promise<void> {
  for (const item of items) {
    checkGarbageItem(item);
    if ((await peerRow(db, item.peerId)) === undefined) throw new BadRequestError(`peer ${item.peerId} is not registered`);
    if (await isRecordedReplica(db, item)) {
      throw new ConflictError(`chunk ${item.index} of object ${item.objectId} on ${item.peerId} is a recorded replica; remove it first`);
    }
    const bucket = item.bucket ?? (await bucketOfObject(db, item.objectId));
    if (bucket === undefined) throw new BadRequestError(`the bucket of object ${item.objectId} is not known; pass it with the item`);
    await insertGarbage(db, item, checkBucket(bucket));
  }
}

/** The bucket an object id lives (or lived) in: its ball's, its retired record's, its garbage's. */
export async function bucketOfObject(db: Db, objectId: string): Promise<string | undefined> {
  const row = await one<{ bucket: string | null }>(db`SELECT coalesce(
      (SELECT bucket FROM balls WHERE object_id = ${objectId}),
      (SELECT bucket FROM retired WHERE object_id = ${objectId}),
      (SELECT bucket FROM garbage WHERE object_id = ${objectId} LIMIT 1)) AS bucket`);
  return row?.bucket ?? undefined;
}

async function isRecordedReplica(db: Db, item: GarbageItem): Promise<boolean> {
  const found = await one(db`SELECT 1 AS one FROM replicas AS r JOIN balls AS b ON b.id = r.ball JOIN peers AS p ON p.num = r.peer
    WHERE b.object_id = ${item.objectId} AND r.idx = ${item.index} AND p.id = ${item.peerId}`);
  return found !== undefined;
}

export async function takeGarbage(db: Db, q: { peerIds?: string[]; limit: number; nowMs?: number }): Promise<GarbageEntry[]> {
  checkInt("limit", q.limit, 1, limits.listPageMax);
  const now = q.nowMs === undefined ? Number.MAX_SAFE_INTEGER : checkInt("nowMs", q.nowMs);
  if (q.peerIds === undefined) {
    return (await all<GarbageRow>(db`SELECT seq, object_id, idx, peer_id, bucket FROM garbage WHERE not_before_ms <= ${now} ORDER BY seq LIMIT ${q.limit}`)).map(garbageFromRow);
  }
  if (q.peerIds.length > limits.peersMax) throw new BadRequestError(`at most ${limits.peersMax} peer ids`);
  const rows: GarbageRow[] = [];
  for (const peerId of new Set(q.peerIds)) {
    checkPeerId(peerId);
    // garbage_due (peer_id, not_before_ms, seq): what a peer may delete now, soonest due first
    rows.push(...(await all<GarbageRow>(db`SELECT seq, object_id, idx, peer_id, bucket FROM garbage
      WHERE peer_id = ${peerId} AND not_before_ms <= ${now} ORDER BY not_before_ms, seq LIMIT ${q.limit}`)));
  }
  rows.sort((a, b) => a.seq - b.seq);
  return rows.slice(0, q.limit).map(garbageFromRow);
}

export async function findRetiredChunk(db: Db, objectId: string, index: number): Promise<RetiredChunk | undefined> {
  checkObjectId(objectId);
  checkInt("chunk index", index, 0, limits.ballChunksMax - 1);
  const retired = await retiredRow(db, objectId);
  if (retired === undefined) return undefined;
  const rows = await all<{ peer_id: string; size: number; checksum: Uint8Array }>(db`SELECT peer_id, size, checksum FROM garbage
    WHERE object_id = ${objectId} AND idx = ${index} AND size IS NOT NULL AND checksum IS NOT NULL ORDER BY peer_id`);
  const first = rows[0];
  if (first === undefined) return undefined;
  const checksum = blobToHex(first.checksum, 8);
  for (const row of rows) assert(row.size === first.size && blobToHex(row.checksum, 8) === checksum, `retired chunk ${objectId}_${index} has replicas that disagree`);
  return { bucket: retired.bucket, size: first.size, checksum, peers: rows.map((row) => row.peer_id), reason: retired.reason, retiredMs: retired.retired_ms };
}

export async function retiredChunksPage(db: Db, objectId: string, from: number, limit: number): Promise<{ chunks: ChunkRecord[]; next?: number } | undefined> {
  checkObjectId(objectId);
  if ((await retiredRow(db, objectId)) === undefined) return undefined;
  const rows = await all<{ idx: number; peer_id: string; size: number; checksum: Uint8Array }>(db`SELECT idx, peer_id, size, checksum FROM garbage
    WHERE object_id = ${objectId} AND idx >= ${from} AND idx < ${from + limit} AND size IS NOT NULL AND checksum IS NOT NULL ORDER BY idx, peer_id`);
  return retiredPageOf(rows, from, limit);
}

export async function retiredObject(db: Db, objectId: string): Promise<{ bucket: string; reason: string; retiredMs: number } | undefined> {
  checkObjectId(objectId);
  const row = await retiredRow(db, objectId);
  return row === undefined ? undefined : { bucket: row.bucket, reason: row.reason, retiredMs: row.retired_ms };
}

function garbageFromRow(row: GarbageRow): GarbageEntry {
  assert(typeof row.object_id === "string" && Number.isSafeInteger(row.idx) && row.idx >= 0, `garbage row ${row.seq} is malformed`);
  assert(typeof row.bucket === "string" && row.bucket.length > 0, `garbage row ${row.seq} has no bucket`);
  return { objectId: row.object_id, index: row.idx, peerId: row.peer_id, bucket: row.bucket };
}

export async function ackGarbage(db: Db, items: GarbageItem[]): Promise<void> {
  for (const item of items) checkGarbageItem(item);
  if (items.length === 0) return;
  await db`DELETE FROM garbage AS g USING unnest(${db.array(items.map((item) => item.objectId), "TEXT")}::text[], ${db.array(items.map((item) => item.index), "INT")}::int[],
      ${db.array(items.map((item) => item.peerId), "TEXT")}::text[]) AS a (object_id, idx, peer_id)
    WHERE g.object_id = a.object_id AND g.idx = a.idx AND g.peer_id = a.peer_id`;
}

export async function addIntent(db: Db, intent: PutIntent): Promise<void> {
  checkIntent(intent);
  // One statement under the writer lock (three round trips otherwise): the three checks, and,
  // only when all pass, the intent with its placements. The intent is new, so what it has placed
  // is known here: its placements' distinct (index, peer) pairs, each chunkBytes.
  const { objectId, bucket, key, createdMs, expiresMs } = intent;
  const idx = intent.placements.flatMap((placement) => placement.peers.map(() => placement.index));
  const peerIds = intent.placements.flatMap((placement) => placement.peers);
  const pairs = new Set(idx.map((index, n) => `${index}/${peerIds[n]}`)).size;
  const chunkBytes = intent.chunkBytes ?? 0;
  const uses = await one<{ under_way: boolean; owner: { bucket: string; key: string } | null; retired_reason: string | null }>(db`WITH facts AS (SELECT
        EXISTS (SELECT 1 FROM intents WHERE object_id = ${objectId}) AS under_way,
        (SELECT json_build_object('bucket', bucket, 'key', key) FROM balls WHERE object_id = ${objectId}) AS owner,
        (SELECT reason FROM retired WHERE object_id = ${objectId}) AS retired_reason),
      made AS (INSERT INTO intents (object_id, bucket, key, created_ms, expires_ms, request_id, chunk_bytes, placed_bytes)
        SELECT ${objectId}, ${bucket}, ${key}, ${createdMs}, ${expiresMs}, ${intent.requestId ?? null}, ${chunkBytes}, ${chunkBytes * pairs}::bigint
        FROM facts WHERE NOT under_way AND owner IS NULL AND retired_reason IS NULL RETURNING 1),
      placed AS (INSERT INTO intent_placements (object_id, idx, peer_id)
        SELECT ${objectId}, p.idx, p.peer_id FROM unnest(${db.array(idx, "INT")}::int[], ${db.array(peerIds, "TEXT")}::text[]) AS p (idx, peer_id)
        WHERE EXISTS (SELECT 1 FROM made) ON CONFLICT DO NOTHING)
    SELECT under_way, owner, retired_reason FROM facts`);
  assert(uses !== undefined, `no answer about object ${objectId}`);
  if (uses.under_way) throw new ConflictError(`an upload of object ${objectId} is already under way`);
  if (uses.owner !== null) throw new ConflictError(`object id ${objectId} is already used by ${uses.owner.bucket}/${uses.owner.key}`);
  if (uses.retired_reason !== null) throw new ConflictError(`object id ${objectId} was ${uses.retired_reason}; use a new one`);
}

/**
 * Each intent of a batch as addIntent takes it, answered in its place (IntentOutcome), in one
 * statement for the whole batch: the facts of every intent, and the inserts guarded by them, so a
 * refused one writes nothing. An intent whose request id the catalog knows is left out
 * ("request_known": the put is a retry). Intents sharing an object id or a request id with an
 * earlier one of the batch go in a later statement, which sees what the earlier ones wrote, so
 * the batch answers as the same intents one by one would.
 */
export async function addIntents(db: Db, intents: readonly PutIntent[]): Promise<IntentOutcome[]> {
  const outcomes: Array<IntentOutcome | undefined> = intents.map(() => undefined);
  let remaining: number[] = [];
  for (const [n, intent] of intents.entries()) {
    try {
      checkIntent(intent);
      remaining.push(n);
    } catch (error) {
      if (!(error instanceof MictlanxError)) throw error;
      outcomes[n] = error;
    }
  }
  while (remaining.length > 0) {
    const names = new Set<string>();
    const now: number[] = [];
    const later: number[] = [];
    for (const n of remaining) {
      const { objectId, requestId } = intents[n]!;
      const taken = names.has(`o:${objectId}`) || (requestId !== undefined && names.has(`r:${requestId}`));
      (taken ? later : now).push(n);
      names.add(`o:${objectId}`);
      if (requestId !== undefined) names.add(`r:${requestId}`);
    }
    const answers = await insertIntents(db, now.map((n) => intents[n]!));
    for (const [k, n] of now.entries()) outcomes[n] = answers[k]!;
    remaining = later;
  }
  return outcomes.map((outcome) => {
    assert(outcome !== undefined, "an intent of a batch lost its outcome");
    return outcome;
  });
}

/** The inserts of addIntents: distinct object ids and request ids, checked; each one's outcome in order. */
async function insertIntents(db: Db, intents: readonly PutIntent[]): Promise<IntentOutcome[]> {
  const column = <T>(pick: (intent: PutIntent) => T) => intents.map(pick);
  const placed = intents.flatMap((intent) => intent.placements.flatMap((placement) => placement.peers.map((peerId) => ({ objectId: intent.objectId, index: placement.index, peerId }))));
  const placedBytes = intents.map((intent) => (intent.chunkBytes ?? 0) * new Set(intent.placements.flatMap((placement) => placement.peers.map((peerId) => `${placement.index}/${peerId}`))).size);
  const rows = await all<{ under_way: boolean; owner: { bucket: string; key: string } | null; retired_reason: string | null; request_known: boolean }>(db`WITH
      n AS (SELECT * FROM unnest(${db.array(column((i) => i.objectId), "TEXT")}::text[], ${db.array(column((i) => i.bucket), "TEXT")}::text[], ${db.array(column((i) => i.key), "TEXT")}::text[],
                                 ${db.array(column((i) => i.createdMs), "BIGINT")}::bigint[], ${db.array(column((i) => i.expiresMs), "BIGINT")}::bigint[], ${db.array(column((i) => i.requestId ?? null), "TEXT")}::text[],
                                 ${db.array(column((i) => i.chunkBytes ?? 0), "BIGINT")}::bigint[], ${db.array(placedBytes, "BIGINT")}::bigint[])
            WITH ORDINALITY AS n (object_id, bucket, key, created_ms, expires_ms, request_id, chunk_bytes, placed_bytes, position)),
      facts AS (SELECT n.*,
          EXISTS (SELECT 1 FROM intents AS i WHERE i.object_id = n.object_id) AS under_way,
          (SELECT json_build_object('bucket', b.bucket, 'key', b.key) FROM balls AS b WHERE b.object_id = n.object_id) AS owner,
          (SELECT r.reason FROM retired AS r WHERE r.object_id = n.object_id) AS retired_reason,
          (n.request_id IS NOT NULL AND (EXISTS (SELECT 1 FROM intents AS i WHERE i.request_id = n.request_id)
                                         OR EXISTS (SELECT 1 FROM requests AS q WHERE q.request_id = n.request_id))) AS request_known
        FROM n),
      made AS (INSERT INTO intents (object_id, bucket, key, created_ms, expires_ms, request_id, chunk_bytes, placed_bytes)
        SELECT object_id, bucket, key, created_ms, expires_ms, request_id, chunk_bytes, placed_bytes FROM facts
        WHERE NOT request_known AND NOT under_way AND owner IS NULL AND retired_reason IS NULL RETURNING object_id),
      placed AS (INSERT INTO intent_placements (object_id, idx, peer_id)
        SELECT p.object_id, p.idx, p.peer_id FROM unnest(${db.array(placed.map((p) => p.objectId), "TEXT")}::text[], ${db.array(placed.map((p) => p.index), "INT")}::int[],
                                                         ${db.array(placed.map((p) => p.peerId), "TEXT")}::text[]) AS p (object_id, idx, peer_id)
        WHERE EXISTS (SELECT 1 FROM made WHERE made.object_id = p.object_id) ON CONFLICT DO NOTHING)
    SELECT under_way, owner, retired_reason, request_known FROM facts ORDER BY position`);
  assert(rows.length === intents.length, `a batch of ${intents.length} intents had ${rows.length} answers`);
  return rows.map((row, k): IntentOutcome => {
    const { objectId } = intents[k]!;
    if (row.request_known) return "request_known";
    if (row.under_way) return new ConflictError(`an upload of object ${objectId} is already under way`);
    if (row.owner !== null) return new ConflictError(`object id ${objectId} is already used by ${row.owner.bucket}/${row.owner.key}`);
    if (row.retired_reason !== null) return new ConflictError(`object id ${objectId} was ${row.retired_reason}; use a new one`);
    return "added";
  });
}

export async function addIntentPlacements(db: Db, objectId: string, placements: Placement[], expiresMs?: number): Promise<void> {
  checkObjectId(objectId);
  checkPlacements(placements);
  if ((await intentRow(db, objectId)) === undefined) throw await noUpload(db, objectId);
  if (expiresMs !== undefined) await extendIntent(db, objectId, checkInt("expiresMs", expiresMs));
  await insertPlacements(db, objectId, placements);
}

export async function extendIntent(db: Db, objectId: string, expiresMs: number): Promise<void> {
  await db`UPDATE intents SET expires_ms = greatest(expires_ms, ${expiresMs}) WHERE object_id = ${objectId}`;
}

export async function touchIntent(db: Db, objectId: string, expiresMs: number): Promise<void> {
  checkObjectId(objectId);
  if ((await intentRow(db, objectId)) === undefined) throw await noUpload(db, objectId);
  await extendIntent(db, objectId, checkInt("expiresMs", expiresMs));
}

export async function extendAllIntents(db: Db, expiresMs: number): Promise<void> {
  const at = checkInt("expiresMs", expiresMs);
  await db`UPDATE intents SET expires_ms = ${at} WHERE expires_ms < ${at}`;
}

export async function noUpload(db: Db, objectId: string): Promise<ConflictError> {
  if ((await liveBall(db, objectId)) !== undefined) return new ConflictError(`the upload of object ${objectId} is already committed`);
  const retired = await retiredRow(db, objectId);
  if (retired?.reason === "abandoned") {
    return new ConflictError(
      `the upload of object ${objectId} was given up (its client abandoned it, or it expired after making no progress for too long), and its chunks are being deleted; start the put again`,
    );
  }
  return new ConflictError(`no upload of object ${objectId} is under way (it was committed or it expired); start again`);
}

/** Placements in one statement; each new one (not a repeat) adds the intent's chunk bytes to what it has placed. */
async function insertPlacements(db: Db, objectId: string, placements: Placement[]): Promise<void> {
  const idx = placements.flatMap((placement) => placement.peers.map(() => placement.index));
  const peerIds = placements.flatMap((placement) => placement.peers);
  if (idx.length === 0) return;
  // One statement: the intent (written by an earlier statement) is visible to its UPDATE, which
  // counts what its INSERT added.
  await db`WITH added AS (INSERT INTO intent_placements (object_id, idx, peer_id)
      SELECT ${objectId}, p.idx, p.peer_id FROM unnest(${db.array(idx, "INT")}::int[], ${db.array(peerIds, "TEXT")}::text[]) AS p (idx, peer_id) ON CONFLICT DO NOTHING RETURNING 1)
    UPDATE intents SET placed_bytes = placed_bytes + chunk_bytes * (SELECT count(*) FROM added) WHERE object_id = ${objectId} AND EXISTS (SELECT 1 FROM added)`;
}

export async function placementsOf(db: Db, objectId: string): Promise<Placement[]> {
  const byIndex = new Map<number, string[]>();
  for (const row of await all<{ idx: number; peer_id: string }>(db`SELECT idx, peer_id FROM intent_placements WHERE object_id = ${objectId} ORDER BY idx, peer_id`)) {
    assert(Number.isSafeInteger(row.idx) && row.idx >= 0, `intent ${objectId} has placement index ${row.idx}`);
    const peers = byIndex.get(row.idx) ?? [];
    peers.push(row.peer_id);
    byIndex.set(row.idx, peers);
  }
  return [...byIndex].map(([index, peers]) => ({ index, peers }));
}

async function deleteIntent(db: Db, objectId: string): Promise<void> {
  await db`DELETE FROM intent_placements WHERE object_id = ${objectId}`;
  await db`DELETE FROM intent_chunks WHERE object_id = ${objectId}`;
  await db`DELETE FROM intents WHERE object_id = ${objectId}`;
}

export async function expireIntentBatch(db: Db, nowMs: number, batch: number): Promise<number> {
  const rows = await all<IntentRow>(db`SELECT ${intentColumns(db)} FROM intents WHERE expires_ms <= ${nowMs} ORDER BY expires_ms LIMIT ${batch}`);
  for (const row of rows) {
    assert(row.expires_ms <= nowMs, `intent ${row.object_id} expires at ${row.expires_ms}, not by ${nowMs}`);
    await giveUpIntent(db, row, nowMs);
  }
  return rows.length;
}

export async function abandonIntent(db: Db, objectId: string, nowMs: number): Promise<{ replicas: number; requestId?: string }> {
  checkObjectId(objectId);
  const row = await intentRow(db, objectId);
  if (row === undefined) {
    if ((await retiredRow(db, objectId))?.reason === "abandoned") return { replicas: 0 };
    if ((await bucketOfObject(db, objectId)) !== undefined) throw new ConflictError(`the upload of object ${objectId} was committed; nothing to abandon (delete the ball if it is not wanted)`);
    throw new NotFoundError(`no upload of object ${objectId} is known`);
  }
  const replicas = await giveUpIntent(db, row, nowMs);
  return { replicas, ...(row.request_id === null ? {} : { requestId: row.request_id }) };
}

/** Every placement on a registered peer becomes garbage due at once; the object id is remembered as abandoned. */
async function giveUpIntent(db: Db, row: IntentRow, nowMs: number): Promise<number> {
  const changes = await run(db`INSERT INTO garbage (object_id, idx, peer_id, bucket)
    SELECT i.object_id, i.idx, i.peer_id, ${row.bucket} FROM intent_placements AS i
    WHERE i.object_id = ${row.object_id} AND EXISTS (SELECT 1 FROM peers WHERE id = i.peer_id) ORDER BY i.idx, i.peer_id ON CONFLICT DO NOTHING`);
  await db`INSERT INTO retired (object_id, bucket, retired_ms, reason) VALUES (${row.object_id}, ${row.bucket}, ${nowMs}, 'abandoned')
    ON CONFLICT (object_id) DO UPDATE SET bucket = excluded.bucket, retired_ms = excluded.retired_ms, reason = excluded.reason`;
  await deleteIntent(db, row.object_id);
  return changes;
}

export async function pruneRetired(db: Db, nowMs: number): Promise<void> {
  await db`DELETE FROM retired WHERE retired_ms < ${nowMs - limits.retiredObjectRetainMs}`;
  await db`DELETE FROM requests WHERE created_ms < ${nowMs - limits.putRequestRetainMs}`;
}

type RequestFound = { uploading: PutIntent } | { committed: { objectId: string; version: number } } | undefined;

/**
 * What a put's request id names, in one statement: nothing (almost every put: a new request),
 * a committed ball, or an upload under way (then `uploading` is true, and findRequest reads the
 * intent whole). One statement is one snapshot, so it needs no transaction: a put's first call
 * to the catalog costs one round trip instead of BEGIN, two reads and COMMIT.
 */
export async function probeRequest(db: Db, requestId: string): Promise<{ uploading: true } | Exclude<RequestFound, { uploading: PutIntent }>> {
  const row = await one<{ uploading: boolean; object_id: string | null; version: number | null }>(db`SELECT
      EXISTS (SELECT 1 FROM intents WHERE request_id = ${requestId}) AS uploading,
      r.object_id, r.version
    FROM (SELECT 1) AS one_row LEFT JOIN requests AS r ON r.request_id = ${requestId}`);
  assert(row !== undefined, `no answer about request ${requestId}`);
  if (row.uploading) return { uploading: true };
  return row.object_id === null || row.version === null ? undefined : { committed: { objectId: row.object_id, version: row.version } };
}

export async function findRequest(db: Db, requestId: string): Promise<RequestFound> {
  const intent = await one<IntentRow>(db`SELECT ${intentColumns(db)} FROM intents WHERE request_id = ${requestId}`);
  if (intent !== undefined) {
    assert(intent.request_id === requestId, `intent lookup for request ${requestId} returned ${intent.request_id}`);
    return { uploading: (await getIntent(db, intent.object_id))! };
  }
  const done = await one<{ object_id: string; version: number }>(db`SELECT object_id, version FROM requests WHERE request_id = ${requestId}`);
  return done === undefined ? undefined : { committed: { objectId: done.object_id, version: done.version } };
}

export async function rememberRequest(db: Db, requestId: string, objectId: string, version: number, nowMs: number): Promise<void> {
  await db`INSERT INTO requests (request_id, object_id, version, created_ms) VALUES (${requestId}, ${objectId}, ${version}, ${nowMs}) ON CONFLICT DO NOTHING`;
}

export async function getIntent(db: Db, objectId: string): Promise<PutIntent | undefined> {
  checkObjectId(objectId);
  const row = await intentRow(db, objectId);
  if (row === undefined) return undefined;
  assert(row.object_id === objectId, `intent lookup for ${objectId} returned ${row.object_id}`);
  return {
    objectId,
    bucket: row.bucket,
    key: row.key,
    createdMs: row.created_ms,
    expiresMs: row.expires_ms,
    placements: await placementsOf(db, objectId),
    ...(row.request_id === null ? {} : { requestId: row.request_id }),
    ...(row.chunk_bytes > 0 ? { chunkBytes: row.chunk_bytes } : {}),
  };
}
