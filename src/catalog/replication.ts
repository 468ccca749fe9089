// Replica bookkeeping for healing, trimming, rebalance and drain. Chunks are addressed by
// (objectId, index) outside the catalog and by (ball, idx) inside it.
import { assert } from "../lib/assert.ts";
import { ConflictError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { decodeChunkCursor } from "./cursor.ts";
import { bucketOfObject } from "./garbage.ts";
import { resolvePeer } from "./peers.ts";
import { blobToHex, sortHolders, type ChunkRow } from "./rows.ts";
import type { ChunkPageRow, Statements } from "./statements.ts";
import { checkLive, nextCursor } from "./rules.ts";
import type { FoundChunk, OverReplicatedChunk, Page, PeerChunk, UnderReplicatedChunk } from "./types.ts";
import { checkInt, checkObjectId, checkPage, checkPeerId } from "./validate.ts";

type ChunkRef = { ball: number; idx: number; objectId: string; bucket: string; key: string; row: ChunkRow };

/** The chunk (objectId, index) as it stands now, or undefined if no ball holds it. */
function locate(s: Statements, objectId: string, index: number): ChunkRef | undefined {
  checkObjectId(objectId);
  checkInt("chunk index", index, 0, limits.ballChunksMax - 1);
  const ball = s.ballByObject.get({ object_id: objectId });
  if (ball === null || index >= ball.num_chunks) return undefined;
  assert(ball.object_id === objectId, `object ${objectId} read back as ${ball.object_id}`);
  const row = s.chunkGet.get({ ball: ball.id, idx: index });
  assert(row !== null && row.ball === ball.id && row.idx === index, `ball ${ball.bucket}/${ball.key} lacks chunk ${index}`);
  return { ball: ball.id, idx: index, objectId, bucket: ball.bucket, key: ball.key, row };
}

/**
 * Record a new replica. Idempotent. Returns false when the chunk no longer exists (its ball was
 * overwritten or deleted while the copy was made): the copy is an orphan and goes to garbage
 * (while the catalog remembers the object's bucket; see the retired table).
 */
export function addReplica(s: Statements, objectId: string, index: number, peerId: string): boolean {
  checkPeerId(peerId);
  const peer = resolvePeer(s, peerId);
  const chunk = locate(s, objectId, index);
  if (chunk === undefined) {
    const bucket = bucketOfObject(s, objectId);
    if (bucket !== undefined) s.garbageInsert.run({ object_id: objectId, idx: index, peer_id: peerId, bucket });
    return false;
  }
  s.garbageDelete.run({ object_id: objectId, idx: index, peer_id: peerId });
  const added = s.replicaInsert.run({ ball: chunk.ball, idx: index, peer: peer.num }).changes === 1;
  if (added && peer.live) s.chunkAddLive.run({ ball: chunk.ball, idx: index, delta: 1 });
  return true;
}

/**
 * Forget a replica. Idempotent: returns false if it was not recorded. With `garbage` (the
 * default) the replica is queued for deletion from the peer. Refuses to forget a chunk's last
 * replica: that would lose acknowledged data silently; delete the ball instead.
 */
export function removeReplica(s: Statements, objectId: string, index: number, peerId: string, garbage: boolean): boolean {
  checkPeerId(peerId);
  const peer = resolvePeer(s, peerId);
  const chunk = locate(s, objectId, index);
  if (chunk === undefined) return false;
  const key = { ball: chunk.ball, idx: index, peer: peer.num };
  if (s.replicaGet.get(key) === null) return false;
  if (s.replicaCount.get({ ball: chunk.ball, idx: index })!.n === 1) {
    throw new ConflictError(`chunk ${index} of object ${objectId} has no replica but the one on ${peerId}; it cannot be removed`);
  }
  s.replicaDelete.run(key);
  if (peer.live) s.chunkAddLive.run({ ball: chunk.ball, idx: index, delta: -1 });
  if (garbage) s.garbageInsert.run({ object_id: objectId, idx: index, peer_id: peerId, bucket: chunk.bucket });
  return true;
}

function holders(s: Statements, ball: number, idx: number): { all: string[]; live: string[] } {
  const rows = sortHolders(s.holdersOfChunk.all({ ball, idx }));
  return { all: rows.map((row) => row.id), live: rows.filter((row) => row.live === 1).map((row) => row.id) };
}

/** The holders a page row carries (see holdersJson in statements.ts), checked as read. */
function pageHolders(row: ChunkPageRow): { all: string[]; live: string[] } {
  const pairs: unknown = JSON.parse(row.holders);
  assert(Array.isArray(pairs) && pairs.length >= 1, `object ${row.object_id} chunk ${row.idx} has no holders`);
  const all: string[] = [];
  const live: string[] = [];
  for (const pair of pairs as Array<[string, number]>) {
    assert(typeof pair[0] === "string" && (pair[1] === 0 || pair[1] === 1), `object ${row.object_id} has a bad holder`);
    all.push(pair[0]);
    if (pair[1] === 1) live.push(pair[0]);
  }
  return { all, live };
}


export function underReplicated(s: Statements, q: Page): { chunks: UnderReplicatedChunk[]; next?: string } {
  checkPage(q);
  const rows = s.underPage.all({ ...decodeChunkCursor(q.after), limit: q.limit + 1 });
  const chunks = rows.slice(0, q.limit).map((row) => {
    const { all, live } = pageHolders(row);
    checkLive(row, live);
    assert(row.live < row.rf, `object ${row.object_id} chunk ${row.idx} listed as under-replicated with ${row.live}/${row.rf}`);
    return { ...chunkFields(row), bucket: row.bucket, key: row.key, livePeers: live, allPeers: all };
  });
  return { chunks, ...nextCursor(rows, q.limit, chunks) };
}

export function overReplicated(s: Statements, q: Page): { chunks: OverReplicatedChunk[]; next?: string } {
  checkPage(q);
  const rows = s.overPage.all({ ...decodeChunkCursor(q.after), limit: q.limit + 1 });
  const chunks = rows.slice(0, q.limit).map((row) => {
    const { all, live } = pageHolders(row);
    checkLive(row, live);
    assert(row.live > row.rf, `object ${row.object_id} chunk ${row.idx} listed as over-replicated with ${row.live}/${row.rf}`);
    return { objectId: row.object_id, index: row.idx, rf: row.rf, peers: live, allPeers: all };
  });
  return { chunks, ...nextCursor(rows, q.limit, chunks) };
}

export function chunksOnPeer(s: Statements, peerId: string, q: Page): { chunks: PeerChunk[]; next?: string } {
  checkPage(q);
  const peer = resolvePeer(s, peerId);
  const rows = s.peerChunkPage.all({ peer: peer.num, ...decodeChunkCursor(q.after), limit: q.limit + 1 });
  const chunks = rows.slice(0, q.limit).map((row) => {
    const { all } = pageHolders(row);
    assert(all.includes(peerId), `object ${row.object_id} chunk ${row.idx} listed on ${peerId} but not held there`);
    return { ...chunkFields(row), bucket: row.bucket, peers: all };
  });
  return { chunks, ...nextCursor(rows, q.limit, chunks) };
}

function chunkFields(row: ChunkPageRow) {
  return { objectId: row.object_id, index: row.idx, size: row.size, checksum: blobToHex(row.checksum, 8), rf: row.rf };
}

/**
 * What the catalog knows of a chunk a peer says it holds (reconciliation):
 *   replica    a recorded replica on this peer;
 *   extra      a chunk of a live ball, not recorded on this peer (a heal copy never recorded);
 *   garbage    queued for deletion from this peer;
 *   uploading  of an upload under way (its intent lives);
 *   retired    of a version overwritten, deleted or abandoned (a late write);
 *   unknown    of nothing the catalog knows at all.
 */
export type Holding = "replica" | "extra" | "garbage" | "uploading" | "retired" | "unknown";

export function classifyHolding(s: Statements, objectId: string, index: number, peerId: string): Holding {
  checkObjectId(objectId);
  checkInt("chunk index", index, 0, limits.ballChunksMax - 1);
  const peer = s.peerById.get({ id: checkPeerId(peerId) });
  if (s.garbageGet.get({ object_id: objectId, idx: index, peer_id: peerId }) !== null) return "garbage";
  const ball = s.ballByObject.get({ object_id: objectId });
  if (ball !== null && index < ball.num_chunks) {
    if (peer !== null && s.replicaGet.get({ ball: ball.id, idx: index, peer: peer.num }) !== null) return "replica";
    return "extra";
  }
  if (s.intentGet.get({ object_id: objectId }) !== null) return "uploading";
  if (ball !== null || s.retiredGet.get({ object_id: objectId }) !== null) return "retired"; // an index past the ball's end counts as retired too
  return "unknown";
}

export function findChunk(s: Statements, objectId: string, index: number): FoundChunk | undefined {
  const chunk = locate(s, objectId, index);
  if (chunk === undefined) return undefined;
  const { all } = holders(s, chunk.ball, index);
  assert(all.length >= 1, `object ${objectId} chunk ${index} has no holders`);
  const { row } = chunk;
  return { bucket: chunk.bucket, key: chunk.key, size: row.size, checksum: blobToHex(row.checksum, 8), rf: row.rf, peers: all };
}
