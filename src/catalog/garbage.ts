// Garbage (replicas peers must delete) and put intents (placements handed out for uploads not
// yet committed). An intent that expires, or that its client abandons, has its placements
// become garbage, so an upload given up (by a dead router, a failed or interrupted client)
// leaves no orphans on peers; its object id is remembered for a while so a late commit of it is
// refused instead of pointing at deleted replicas. Each intent counts the bytes placed for it
// (chunk bytes × replicas placed), and the totals sum them for `status`.
import { assert } from "../lib/assert.ts";
import { BadRequestError, ConflictError, MictlanxError, NotFoundError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { getPeerRow } from "./peers.ts";
import type { GarbageRow, IntentRow, Statements } from "./statements.ts";
import type { ChunkRecord, GarbageEntry, GarbageInput, GarbageItem, IntentOutcome, Placement, PutIntent, RetiredChunk } from "./types.ts";
import { blobToHex } from "./rows.ts";
import { retiredPageOf } from "./rules.ts";
import { checkBucket, checkGarbageItem, checkInt, checkIntent, checkObjectId, checkPeerId, checkPlacements } from "./validate.ts";

/**
 * Queue replicas for deletion. The bucket (peers file chunks under it) is the item's, else that
 * of the object's ball or of its retired record. A replica the catalog still records is refused.
 */
export function addGarbage(s: Statements, items: GarbageInput[]): void {
  for (const item of items) {
    checkGarbageItem(item);
    if (getPeerRow(s, item.peerId) === undefined) throw new BadRequestError(`peer ${item.peerId} is not registered`);
    if (isRecordedReplica(s, item)) {
      throw new ConflictError(`chunk ${item.index} of object ${item.objectId} on ${item.peerId} is a recorded replica; remove it first`);
    }
    const bucket = item.bucket ?? bucketOfObject(s, item.objectId);
    if (bucket === undefined) throw new BadRequestError(`the bucket of object ${item.objectId} is not known; pass it with the item`);
    s.garbageInsert.run({ object_id: item.objectId, idx: item.index, peer_id: item.peerId, bucket: checkBucket(bucket) });
  }
}

/** The bucket an object id lives (or lived) in, while the catalog remembers it. */
export function bucketOfObject(s: Statements, objectId: string): string | undefined {
  const ball = s.ballByObject.get({ object_id: objectId });
  if (ball !== null) return ball.bucket;
  const retired = s.retiredGet.get({ object_id: objectId });
  if (retired !== null) return retired.bucket;
  return s.garbageOfObject.get({ object_id: objectId })?.bucket;
}

function isRecordedReplica(s: Statements, item: GarbageItem): boolean {
  const ball = s.ballByObject.get({ object_id: item.objectId });
  const peer = s.peerById.get({ id: item.peerId });
  if (ball === null || peer === null) return false;
  return s.replicaGet.get({ ball: ball.id, idx: item.index, peer: peer.num }) !== null;
}

/**
 * Garbage due by `nowMs` (a retired version's replicas wait out the readers' grace; the rest are
 * due at once), soonest due first; does not remove (ack does, once the peer confirmed the delete).
 */
export function takeGarbage(s: Statements, q: { peerIds?: string[]; limit: number; nowMs?: number }): GarbageEntry[] {
  checkInt("limit", q.limit, 1, limits.listPageMax);
  const now = q.nowMs === undefined ? Number.MAX_SAFE_INTEGER : checkInt("nowMs", q.nowMs);
  if (q.peerIds === undefined) return s.garbageOldest.all({ limit: q.limit, now }).map(garbageFromRow);
  if (q.peerIds.length > limits.peersMax) throw new BadRequestError(`at most ${limits.peersMax} peer ids`);
  const rows: GarbageRow[] = [];
  for (const peerId of new Set(q.peerIds)) {
    checkPeerId(peerId);
    rows.push(...s.garbageDueOfPeer.all({ peer_id: peerId, limit: q.limit, now }));
  }
  rows.sort((a, b) => a.seq - b.seq);
  return rows.slice(0, q.limit).map(garbageFromRow);
}

/** A retired version's chunk whose replicas are still pending deletion (see RetiredChunk). */
export function findRetiredChunk(s: Statements, objectId: string, index: number): RetiredChunk | undefined {
  checkObjectId(objectId);
  checkInt("chunk index", index, 0, limits.ballChunksMax - 1);
  const retired = s.retiredGet.get({ object_id: objectId });
  if (retired === null) return undefined;
  // Only replicas a version had carry a size and checksum: not a placement never written, nor
  // garbage of a version retired before readers' grace existed.
  const rows = s.garbageOfChunk.all({ object_id: objectId, idx: index });
  const first = rows[0];
  if (first === undefined) return undefined;
  const checksum = blobToHex(first.checksum, 8);
  for (const row of rows) assert(row.size === first.size && blobToHex(row.checksum, 8) === checksum, `retired chunk ${objectId}_${index} has replicas that disagree`);
  return { bucket: retired.bucket, size: first.size, checksum, peers: rows.map((row) => row.peer_id), reason: retired.reason, retiredMs: retired.retired_ms };
}

/**
 * A page of a retired version's chunk records from `from`, while its replicas wait out the
 * readers' grace (a reader of a ball of many chunks pages through them). Stops at the first
 * chunk whose replicas are all gone; undefined when none is left at `from`.
 */
export function retiredChunksPage(s: Statements, objectId: string, from: number, limit: number): { chunks: ChunkRecord[]; next?: number } | undefined {
  checkObjectId(objectId);
  const retired = s.retiredGet.get({ object_id: objectId });
  if (retired === null) return undefined;
  return retiredPageOf(s.garbageOfChunkRange.all({ object_id: objectId, from, to: from + limit }), from, limit);
}

/** Why and when an object id was retired, while the catalog remembers it. */
export function retiredObject(s: Statements, objectId: string): { bucket: string; reason: string; retiredMs: number } | undefined {
  checkObjectId(objectId);
  const row = s.retiredGet.get({ object_id: objectId });
  return row === null ? undefined : { bucket: row.bucket, reason: row.reason, retiredMs: row.retired_ms };
}

function garbageFromRow(row: GarbageRow): GarbageEntry {
  assert(typeof row.object_id === "string" && Number.isSafeInteger(row.idx) && row.idx >= 0, `garbage row ${row.seq} is malformed`);
  assert(typeof row.bucket === "string" && row.bucket.length > 0, `garbage row ${row.seq} has no bucket`);
  return { objectId: row.object_id, index: row.idx, peerId: row.peer_id, bucket: row.bucket };
}

export function ackGarbage(s: Statements, items: GarbageItem[]): void {
  for (const item of items) {
    checkGarbageItem(item);
    s.garbageDelete.run({ object_id: item.objectId, idx: item.index, peer_id: item.peerId });
  }
}

export function addIntent(s: Statements, intent: PutIntent): void {
  checkIntent(intent);
  const refused = intentRefusal(s, intent.objectId);
  if (refused) throw refused;
  insertIntent(s, intent);
}

/**
 * Each intent of a batch as addIntent takes it, but answered in its place, having written
 * nothing when refused: the checks come before any write. An intent whose request id the
 * catalog knows (an upload under way, or committed; an earlier intent of this batch too) is
 * left out: the put is a retry.
 */
export function addIntents(s: Statements, intents: PutIntent[]): IntentOutcome[] {
  return intents.map((intent) => {
    try {
      checkIntent(intent);
    } catch (error) {
      if (error instanceof MictlanxError) return error;
      throw error;
    }
    if (intent.requestId !== undefined && (s.intentByRequest.get({ request_id: intent.requestId }) !== null || s.requestGet.get({ request_id: intent.requestId }) !== null)) {
      return "request_known";
    }
    const refused = intentRefusal(s, intent.objectId);
    if (refused) return refused;
    insertIntent(s, intent);
    return "added";
  });
}

/** Why an upload of `objectId` cannot begin (under way, used by a ball, retired), if it cannot. */
function intentRefusal(s: Statements, objectId: string): ConflictError | undefined {
  if (s.intentGet.get({ object_id: objectId }) !== null) return new ConflictError(`an upload of object ${objectId} is already under way`);
  const owner = s.ballByObject.get({ object_id: objectId });
  if (owner !== null) return new ConflictError(`object id ${objectId} is already used by ${owner.bucket}/${owner.key}`);
  const retired = s.retiredGet.get({ object_id: objectId });
  if (retired !== null) return new ConflictError(`object id ${objectId} was ${retired.reason}; use a new one`);
  return undefined;
}

function insertIntent(s: Statements, intent: PutIntent): void {
  const { objectId, bucket, key, createdMs, expiresMs } = intent;
  s.intentInsert.run({ object_id: objectId, bucket, key, created_ms: createdMs, expires_ms: expiresMs, request_id: intent.requestId ?? null, chunk_bytes: intent.chunkBytes ?? 0 });
  insertPlacements(s, objectId, intent.placements);
}

/** More placements for an upload under way (the router asks for them a batch at a time). */
export function addIntentPlacements(s: Statements, objectId: string, placements: Placement[], expiresMs?: number): void {
  checkObjectId(objectId);
  checkPlacements(placements);
  if (s.intentGet.get({ object_id: objectId }) === null) throw noUpload(s, objectId);
  if (expiresMs !== undefined) s.intentExtend.run({ object_id: objectId, expires_ms: checkInt("expiresMs", expiresMs) });
  insertPlacements(s, objectId, placements);
}

/** An upload made progress: its intent lives until `expiresMs` at least. ConflictError when it is gone. */
export function touchIntent(s: Statements, objectId: string, expiresMs: number): void {
  checkObjectId(objectId);
  if (s.intentGet.get({ object_id: objectId }) === null) throw noUpload(s, objectId);
  s.intentExtend.run({ object_id: objectId, expires_ms: checkInt("expiresMs", expiresMs) });
}

/** Every upload under way lives until `expiresMs` at least (an SPM restart gives them a fresh lifetime). */
export function extendAllIntents(s: Statements, expiresMs: number): void {
  s.intentsExtendAll.run({ expires_ms: checkInt("expiresMs", expiresMs) });
}

/** Why an upload's intent is gone, as an error that says what to do. */
export function noUpload(s: Statements, objectId: string): ConflictError {
  if (s.ballByObject.get({ object_id: objectId }) !== null) return new ConflictError(`the upload of object ${objectId} is already committed`);
  const retired = s.retiredGet.get({ object_id: objectId });
  if (retired?.reason === "abandoned") {
    return new ConflictError(
      `the upload of object ${objectId} was given up (its client abandoned it, or it expired after making no progress for too long), and its chunks are being deleted; start the put again`,
    );
  }
  return new ConflictError(`no upload of object ${objectId} is under way (it was committed or it expired); start again`);
}

/** Placements a batch at a time; each one new (not a repeat) adds the intent's chunk bytes to what it has placed. */
function insertPlacements(s: Statements, objectId: string, placements: Placement[]): void {
  let added = 0;
  for (const placement of placements) {
    for (const peerId of placement.peers) added += s.placementInsert.run({ object_id: objectId, idx: placement.index, peer_id: peerId }).changes;
  }
  if (added > 0) s.intentAddPlaced.run({ object_id: objectId, replicas: added });
}

/** Read an intent's placements back, grouped by chunk index. */
export function placementsOf(s: Statements, objectId: string): Placement[] {
  const byIndex = new Map<number, string[]>();
  for (const row of s.placementsOf.all({ object_id: objectId })) {
    assert(Number.isSafeInteger(row.idx) && row.idx >= 0, `intent ${objectId} has placement index ${row.idx}`);
    const peers = byIndex.get(row.idx) ?? [];
    peers.push(row.peer_id);
    byIndex.set(row.idx, peers);
  }
  return [...byIndex].map(([index, peers]) => ({ index, peers }));
}

/** End an intent: its placements, its staged chunk records, its row. */
export function deleteIntent(s: Statements, objectId: string): void {
  s.placementsDelete.run({ object_id: objectId });
  s.stagedDelete.run({ object_id: objectId });
  s.intentDelete.run({ object_id: objectId });
}

/** Expire up to `batch` intents whose time has come; returns how many. */
export function expireIntentBatch(s: Statements, nowMs: number, batch: number): number {
  const rows = s.intentsExpired.all({ now: nowMs, limit: batch });
  for (const row of rows) {
    assert(row.expires_ms <= nowMs, `intent ${row.object_id} expires at ${row.expires_ms}, not by ${nowMs}`);
    giveUpIntent(s, row, nowMs);
  }
  return rows.length;
}

/**
 * Its client gave the upload up (it failed, or was interrupted): end the intent now, as if it
 * had expired. Returns the placements queued for deletion, and the put's request id (the SPM
 * forgets its reservation, so a retry of that put starts afresh). Asking again, or about one
 * that expired, queues nothing; one that committed is a ConflictError, one never known NotFound.
 */
export function abandonIntent(s: Statements, objectId: string, nowMs: number): { replicas: number; requestId?: string } {
  checkObjectId(objectId);
  const row = s.intentGet.get({ object_id: objectId });
  if (row === null) {
    if (s.retiredGet.get({ object_id: objectId })?.reason === "abandoned") return { replicas: 0 };
    if (bucketOfObject(s, objectId) !== undefined) throw new ConflictError(`the upload of object ${objectId} was committed; nothing to abandon (delete the ball if it is not wanted)`);
    throw new NotFoundError(`no upload of object ${objectId} is known`);
  }
  const replicas = giveUpIntent(s, row, nowMs);
  return { replicas, ...(row.request_id === null ? {} : { requestId: row.request_id }) };
}

/**
 * Every placement (on a peer still registered) becomes garbage, due at once (nothing of the
 * upload was ever visible: no reader to wait for); the object id is remembered as abandoned.
 * Returns how many placements became garbage.
 */
function giveUpIntent(s: Statements, row: IntentRow, nowMs: number): number {
  const { changes } = s.placementsToGarbage.run({ object_id: row.object_id, bucket: row.bucket });
  s.retiredInsert.run({ object_id: row.object_id, bucket: row.bucket, retired_ms: nowMs, reason: "abandoned" });
  deleteIntent(s, row.object_id);
  assert(s.intentGet.get({ object_id: row.object_id }) === null, `intent ${row.object_id} is still there after it was given up`);
  return changes;
}

/** Forget object ids retired longer than limits.retiredObjectRetainMs ago, and put request ids past theirs. */
export function pruneRetired(s: Statements, nowMs: number): void {
  s.retiredPrune.run({ before: nowMs - limits.retiredObjectRetainMs });
  s.requestsPrune.run({ before: nowMs - limits.putRequestRetainMs });
}

/**
 * What became of a put by its request id: still uploading (its intent), committed (the object
 * id and version it got), or nothing known (never seen, or forgotten after putRequestRetainMs).
 */
export function findRequest(s: Statements, requestId: string): { uploading: PutIntent } | { committed: { objectId: string; version: number } } | undefined {
  const intent = s.intentByRequest.get({ request_id: requestId });
  if (intent !== null) {
    assert(intent.request_id === requestId, `intent lookup for request ${requestId} returned ${intent.request_id}`);
    return { uploading: getIntent(s, intent.object_id)! };
  }
  const done = s.requestGet.get({ request_id: requestId });
  return done === null ? undefined : { committed: { objectId: done.object_id, version: done.version } };
}

/** A put with a request id committed: remember it, so a retry of it is not a second version. */
export function rememberRequest(s: Statements, requestId: string, objectId: string, version: number, nowMs: number): void {
  s.requestInsert.run({ request_id: requestId, object_id: objectId, version, created_ms: nowMs });
}

export function getIntent(s: Statements, objectId: string): PutIntent | undefined {
  checkObjectId(objectId);
  const row = s.intentGet.get({ object_id: objectId });
  if (row === null) return undefined;
  assert(row.object_id === objectId, `intent lookup for ${objectId} returned ${row.object_id}`);
  return {
    objectId,
    bucket: row.bucket,
    key: row.key,
    createdMs: row.created_ms,
    expiresMs: row.expires_ms,
    placements: placementsOf(s, objectId),
    ...(row.request_id === null ? {} : { requestId: row.request_id }),
    ...(row.chunk_bytes > 0 ? { chunkBytes: row.chunk_bytes } : {}),
  };
}
