// Replica bookkeeping on PostgreSQL: src/catalog/replication.ts call for call (healing,
// trimming, drain and reconciliation read these; the rules are written there).
import { assert } from "../../lib/assert.ts";
import { ConflictError } from "../../lib/errors.ts";
import { limits } from "../../lib/limits.ts";
import { decodeChunkCursor } from "../cursor.ts";
import type { Holding } from "../replication.ts";
import { blobToHex } from "../rows.ts";
import { checkLive, nextCursor } from "../rules.ts";
import type { FoundChunk, OverReplicatedChunk, Page, PeerChunk, UnderReplicatedChunk } from "../types.ts";
import { checkInt, checkObjectId, checkPage, checkPeerId } from "../validate.ts";
import { all, one, run, type Db } from "./db.ts";
import { ballById, ballByObject } from "./balls.ts";
import { bucketOfObject, insertGarbage, intentRow, retiredRow } from "./garbage.ts";
import { peerRow, resolvePeer } from "./peers.ts";

type ChunkRef = { ball: number; idx: number; objectId: string; bucket: string };

async function locate(db: Db, objectId: string, index: number): Promise<ChunkRef | undefined> {
  checkObjectId(objectId);
  checkInt("chunk index", index, 0, limits.ballChunksMax - 1);
  const ball = await ballByObject(db, objectId);
  if (ball === undefined || index >= ball.num_chunks) return undefined;
  return { ball: ball.id, idx: index, objectId, bucket: ball.bucket };
}

export async function addReplica(db: Db, objectId: string, index: number, peerId: string): Promise<boolean> {
  checkPeerId(peerId);
  const peer = await resolvePeer(db, peerId);
  const chunk = await locate(db, objectId, index);
  if (chunk === undefined) {
    const bucket = await bucketOfObject(db, objectId);
    if (bucket !== undefined) await insertGarbage(db, { objectId, index, peerId }, bucket);
    return false;
  }
  await db`DELETE FROM garbage WHERE object_id = ${objectId} AND idx = ${index} AND peer_id = ${peerId}`;
  const added = (await run(db`INSERT INTO replicas (ball, idx, peer) VALUES (${chunk.ball}, ${index}, ${peer.num}) ON CONFLICT DO NOTHING`)) === 1;
  if (added && peer.live) await db`UPDATE chunks SET live = live + 1 WHERE ball = ${chunk.ball} AND idx = ${index}`;
  return true;
}

export async function removeReplica(db: Db, objectId: string, index: number, peerId: string, garbage: boolean): Promise<boolean> {
  checkPeerId(peerId);
  const peer = await resolvePeer(db, peerId);
  const chunk = await locate(db, objectId, index);
  if (chunk === undefined) return false;
  const holders = await one<{ here: boolean; n: number }>(db`SELECT bool_or(peer = ${peer.num}) AS here, count(*) AS n FROM replicas WHERE ball = ${chunk.ball} AND idx = ${index}`);
  if (holders?.here !== true) return false;
  if (holders.n === 1) throw new ConflictError(`chunk ${index} of object ${objectId} has no replica but the one on ${peerId}; it cannot be removed`);
  await db`DELETE FROM replicas WHERE ball = ${chunk.ball} AND idx = ${index} AND peer = ${peer.num}`;
  if (peer.live) await db`UPDATE chunks SET live = live - 1 WHERE ball = ${chunk.ball} AND idx = ${index}`;
  if (garbage) await insertGarbage(db, { objectId, index, peerId }, chunk.bucket);
  return true;
}

/** A page row: a chunk, its ball's names, and its holders as [peer id, live 0|1] sorted by peer id. */
type ChunkPageRow = { ball: number; idx: number; size: number; checksum: Uint8Array; rf: number; live: number; object_id: string; bucket: string; key: string; holders: Array<[string, number]> };

/** A chunk's holders in one correlated subquery, so a page of chunks is one statement. */
const holders = (db: Db) =>
  db.unsafe(`(SELECT json_agg(json_build_array(p.id, (p.state <> 'down' AND p.draining = 0)::int) ORDER BY p.id)
    FROM replicas AS h JOIN peers AS p ON p.num = h.peer WHERE h.ball = c.ball AND h.idx = c.idx) AS holders`);
const pageColumns = (db: Db) => db`c.ball, c.idx, c.size, c.checksum, c.rf, c.live, b.object_id, b.bucket, b.key, ${holders(db)}`;

function pageHolders(row: ChunkPageRow): { all: string[]; live: string[] } {
  const pairs = row.holders;
  assert(Array.isArray(pairs) && pairs.length >= 1, `object ${row.object_id} chunk ${row.idx} has no holders`);
  const everyone: string[] = [];
  const live: string[] = [];
  for (const pair of pairs) {
    assert(typeof pair[0] === "string" && (pair[1] === 0 || pair[1] === 1), `object ${row.object_id} has a bad holder`);
    everyone.push(pair[0]);
    if (pair[1] === 1) live.push(pair[0]);
  }
  return { all: everyone, live };
}


function chunkFields(row: ChunkPageRow) {
  return { objectId: row.object_id, index: row.idx, size: row.size, checksum: blobToHex(row.checksum, 8), rf: row.rf };
}

/** chunks_under: reads only the under-replicated chunks, in (ball, idx) order. */
export async function underReplicated(db: Db, q: Page): Promise<{ chunks: UnderReplicatedChunk[]; next?: string }> {
  checkPage(q);
  const at = decodeChunkCursor(q.after);
  const rows = await all<ChunkPageRow>(db`SELECT ${pageColumns(db)} FROM chunks AS c JOIN balls AS b ON b.id = c.ball
    WHERE c.live < c.rf AND (c.ball, c.idx) > (${at.ball}, ${at.idx}) ORDER BY c.ball, c.idx LIMIT ${q.limit + 1}`);
  const chunks = rows.slice(0, q.limit).map((row) => {
    const { all: allPeers, live } = pageHolders(row);
    checkLive(row, live);
    assert(row.live < row.rf, `object ${row.object_id} chunk ${row.idx} listed as under-replicated with ${row.live}/${row.rf}`);
    return { ...chunkFields(row), bucket: row.bucket, key: row.key, livePeers: live, allPeers };
  });
  return { chunks, ...nextCursor(rows, q.limit, chunks) };
}

/** chunks_over: reads only the over-replicated chunks. */
export async function overReplicated(db: Db, q: Page): Promise<{ chunks: OverReplicatedChunk[]; next?: string }> {
  checkPage(q);
  const at = decodeChunkCursor(q.after);
  const rows = await all<ChunkPageRow>(db`SELECT ${pageColumns(db)} FROM chunks AS c JOIN balls AS b ON b.id = c.ball
    WHERE c.live > c.rf AND (c.ball, c.idx) > (${at.ball}, ${at.idx}) ORDER BY c.ball, c.idx LIMIT ${q.limit + 1}`);
  const chunks = rows.slice(0, q.limit).map((row) => {
    const { all: allPeers, live } = pageHolders(row);
    checkLive(row, live);
    assert(row.live > row.rf, `object ${row.object_id} chunk ${row.idx} listed as over-replicated with ${row.live}/${row.rf}`);
    return { objectId: row.object_id, index: row.idx, rf: row.rf, peers: live, allPeers };
  });
  return { chunks, ...nextCursor(rows, q.limit, chunks) };
}

/** replicas_peer drives: one peer's chunks in (ball, idx) order. */
export async function chunksOnPeer(db: Db, peerId: string, q: Page): Promise<{ chunks: PeerChunk[]; next?: string }> {
  checkPage(q);
  const peer = await resolvePeer(db, peerId);
  const at = decodeChunkCursor(q.after);
  const rows = await all<ChunkPageRow>(db`SELECT ${pageColumns(db)} FROM replicas AS r JOIN chunks AS c ON c.ball = r.ball AND c.idx = r.idx JOIN balls AS b ON b.id = r.ball
    WHERE r.peer = ${peer.num} AND (r.ball, r.idx) > (${at.ball}, ${at.idx}) ORDER BY r.ball, r.idx LIMIT ${q.limit + 1}`);
  const chunks = rows.slice(0, q.limit).map((row) => {
    const { all: allPeers } = pageHolders(row);
    assert(allPeers.includes(peerId), `object ${row.object_id} chunk ${row.idx} listed on ${peerId} but not held there`);
    return { ...chunkFields(row), bucket: row.bucket, peers: allPeers };
  });
  return { chunks, ...nextCursor(rows, q.limit, chunks) };
}

export async function classifyHolding(db: Db, objectId: string, index: number, peerId: string): Promise<Holding> {
  checkObjectId(objectId);
  checkInt("chunk index", index, 0, limits.ballChunksMax - 1);
  const peer = await peerRow(db, checkPeerId(peerId));
  if ((await one(db`SELECT 1 AS one FROM garbage WHERE object_id = ${objectId} AND idx = ${index} AND peer_id = ${peerId}`)) !== undefined) return "garbage";
  const ball = await ballByObject(db, objectId);
  if (ball !== undefined && index < ball.num_chunks) {
    if (peer !== undefined && (await one(db`SELECT 1 AS one FROM replicas WHERE ball = ${ball.id} AND idx = ${index} AND peer = ${peer.num}`)) !== undefined) return "replica";
    return "extra";
  }
  if ((await intentRow(db, objectId)) !== undefined) return "uploading";
  if (ball !== undefined || (await retiredRow(db, objectId)) !== undefined) return "retired";
  return "unknown";
}

export async function findChunk(db: Db, objectId: string, index: number): Promise<FoundChunk | undefined> {
  const chunk = await locate(db, objectId, index);
  if (chunk === undefined) return undefined;
  const ball = (await ballById(db, chunk.ball))!;
  const row = await one<{ size: number; checksum: Uint8Array; rf: number; holders: string[] }>(db`SELECT c.size, c.checksum, c.rf,
      coalesce((SELECT array_agg(p.id ORDER BY p.id) FROM replicas AS r JOIN peers AS p ON p.num = r.peer WHERE r.ball = c.ball AND r.idx = c.idx), '{}') AS holders
    FROM chunks AS c WHERE c.ball = ${chunk.ball} AND c.idx = ${index}`);
  assert(row !== undefined, `ball ${ball.bucket}/${ball.key} lacks chunk ${index}`);
  assert(ball.object_id === objectId && row.holders.length >= 1, `object ${objectId} chunk ${index} read back wrong`);
  return { bucket: ball.bucket, key: ball.key, size: row.size, checksum: blobToHex(row.checksum, 8), rf: row.rf, peers: row.holders };
}
