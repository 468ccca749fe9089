// Rows as SQLite returns them, and their conversion to records. Every conversion asserts the
// row's shape: the catalog only reads back what it validated on the way in, so a mismatch here
// is a bug (or a damaged file), never a user error.
import { assert } from "../lib/assert.ts";
import { compareUtf8 } from "./cursor.ts";
import { peerStates, type BallRecord, type PeerRecord, type PeerState } from "./types.ts";

export type PeerRow = {
  num: number;
  id: string;
  address: string;
  capacity_bytes: number;
  used_bytes: number;
  free_bytes: number;
  chunks: number;
  state: string;
  last_heartbeat_ms: number;
  registered_ms: number;
  draining: number;
  instance_id: string | null;
};

export type BallRow = {
  id: number;
  bucket: string;
  key: string;
  ball_id: string;
  object_id: string;
  version: number;
  size: number;
  checksum: Uint8Array;
  content_type: string;
  tags: string;
  rf: number;
  created_ms: number;
  chunk_size: number;
  num_chunks: number;
};

export type ChunkRow = { ball: number; idx: number; size: number; checksum: Uint8Array; rf: number; live: number };

export type HolderRow = { idx: number; id: string; live: number };

/** Chunk rows in index order. */
export function byIndex<Row extends { idx: number }>(rows: Row[]): Row[] {
  return rows.sort((a, b) => a.idx - b.idx);
}

/** Holder rows in (chunk index, peer id) order, peer ids compared as SQLite compares TEXT. */
export function sortHolders(rows: HolderRow[]): HolderRow[] {
  return rows.sort((a, b) => a.idx - b.idx || compareUtf8(a.id, b.id));
}

export function hexToBlob(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

export function blobToHex(blob: Uint8Array, bytes: number): string {
  assert(blob instanceof Uint8Array && blob.byteLength === bytes, `checksum blob of ${blob?.byteLength} bytes, expected ${bytes}`);
  return Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).toString("hex");
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

export function peerFromRow(row: PeerRow): PeerRecord {
  assert(typeof row.id === "string" && row.id.length > 0, "peer row without an id");
  assert((peerStates as readonly string[]).includes(row.state), `peer ${row.id} has state ${row.state}`);
  assert(row.draining === 0 || row.draining === 1, `peer ${row.id} has draining ${row.draining}`);
  const counts = [row.capacity_bytes, row.used_bytes, row.free_bytes, row.chunks, row.last_heartbeat_ms, row.registered_ms];
  assert(counts.every(isCount), `peer ${row.id} has a field that is not a whole number`);
  return {
    id: row.id,
    address: row.address,
    capacityBytes: row.capacity_bytes,
    usedBytes: row.used_bytes,
    freeBytes: row.free_bytes,
    chunks: row.chunks,
    state: row.state as PeerState,
    lastHeartbeatMs: row.last_heartbeat_ms,
    registeredMs: row.registered_ms,
    draining: row.draining === 1,
    ...(row.instance_id === null ? {} : { instanceId: row.instance_id }),
  };
}

/**
 * A replica counts toward its chunk's rf while its peer is not down and not draining. A
 * suspect peer (a missed heartbeat or two) still counts: it may well be back in a second, and
 * treating a blip as a loss would both start needless healing and rewrite the live count of
 * every chunk the peer holds twice per blip.
 */
export function isLive(peer: { state: string; draining: number | boolean }): boolean {
  return peer.state !== "down" && (peer.draining === 0 || peer.draining === false);
}

export function ballFromRow(row: BallRow): BallRecord {
  assert(typeof row.bucket === "string" && typeof row.key === "string", "ball row without bucket or key");
  const where = `ball ${row.bucket}/${row.key}`;
  assert([row.version, row.size, row.rf, row.created_ms, row.chunk_size, row.num_chunks].every(isCount), `${where} has a bad number`);
  assert(row.version >= 1 && row.rf >= 1, `${where} has version ${row.version}, rf ${row.rf}`);
  return {
    bucket: row.bucket,
    key: row.key,
    ballId: row.ball_id,
    objectId: row.object_id,
    version: row.version,
    size: row.size,
    checksum: blobToHex(row.checksum, 32),
    contentType: row.content_type,
    tags: tagsFromJson(row.tags, where),
    rf: row.rf,
    createdMs: row.created_ms,
    chunkSize: row.chunk_size,
    numChunks: row.num_chunks,
  };
}

function tagsFromJson(json: string, where: string): Record<string, string> {
  const tags: unknown = JSON.parse(json);
  assert(typeof tags === "object" && tags !== null && !Array.isArray(tags), `${where} has tags that are not an object`);
  assert(Object.values(tags).every((value) => typeof value === "string"), `${where} has a tag value that is not a string`);
  return tags as Record<string, string>;
}

/** The ball row's columns, in the order `SELECT ${ballColumns}` gives them. */
export const ballColumns =
  "id, bucket, key, ball_id, object_id, version, size, checksum, content_type, tags, rf, created_ms, chunk_size, num_chunks";

/**
 * The record the catalog reads back for `ball` committed at `version`: the row the commit
 * writes, read as every read reads it. A commit's caller uses it instead of reading the ball
 * again (the catalog suites check the two agree on both engines).
 */
export function committedBall(ball: Omit<BallRecord, "version">, version: number): BallRecord {
  return ballFromRow({ id: 0, ...ballParams(ball, version) });
}

export function ballParams(ball: Omit<BallRecord, "version">, version: number) {
  return {
    bucket: ball.bucket,
    key: ball.key,
    ball_id: ball.ballId,
    object_id: ball.objectId,
    version,
    size: ball.size,
    checksum: hexToBlob(ball.checksum),
    content_type: ball.contentType,
    tags: JSON.stringify(ball.tags),
    rf: ball.rf,
    created_ms: ball.createdMs,
    chunk_size: ball.chunkSize,
    num_chunks: ball.numChunks,
  };
}
