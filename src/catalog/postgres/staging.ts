// Chunk records staged ahead of a big commit, on PostgreSQL: src/catalog/staging.ts call for
// call (why a commit can name staged records instead of carrying them is written there).
import { assert } from "../../lib/assert.ts";
import { ConflictError } from "../../lib/errors.ts";
import { blobToHex } from "../rows.ts";
import type { ChunkRecord } from "../types.ts";
import { checkStagedPage } from "../rules.ts";
import { checkInt, checkObjectId } from "../validate.ts";
import { all, one, type Db } from "./db.ts";
import { extendIntent, intentRow, noUpload } from "./garbage.ts";

/** Stage a page of an upload's records (in order; a page sent again replaces what it covers); how many are staged now. */
export async function stageChunks(db: Db, objectId: string, chunks: ChunkRecord[], expiresMs: number): Promise<number> {
  checkObjectId(objectId);
  if ((await intentRow(db, objectId)) === undefined) throw await noUpload(db, objectId);
  const staged = (await one<{ n: number }>(db`SELECT count(*) AS n FROM intent_chunks WHERE object_id = ${objectId}`))!.n;
  const end = checkStagedPage(objectId, chunks, staged);
  await db`INSERT INTO intent_chunks (object_id, idx, size, checksum, peers)
    SELECT ${objectId}, s.idx, s.size, decode(s.checksum, 'hex'), s.peers
    FROM unnest(${db.array(chunks.map((chunk) => chunk.index), "INT")}::int[], ${db.array(chunks.map((chunk) => chunk.size), "BIGINT")}::bigint[],
                ${db.array(chunks.map((chunk) => chunk.checksum), "TEXT")}::text[], ${db.array(chunks.map((chunk) => JSON.stringify(chunk.peers)), "TEXT")}::text[]) AS s (idx, size, checksum, peers)
    ON CONFLICT (object_id, idx) DO UPDATE SET size = excluded.size, checksum = excluded.checksum, peers = excluded.peers`;
  await extendIntent(db, objectId, checkInt("expiresMs", expiresMs));
  return Math.max(staged, end);
}

/** The `count` staged records of an upload, in order; ConflictError if they are not all there. */
export async function takeStaged(db: Db, objectId: string, count: number): Promise<ChunkRecord[]> {
  const rows = await all<{ idx: number; size: number; checksum: Uint8Array; peers: string }>(db`SELECT idx, size, checksum, peers FROM intent_chunks WHERE object_id = ${objectId} ORDER BY idx`);
  if (rows.length !== count) throw new ConflictError(`the commit of object ${objectId} names ${count} staged chunk records, but ${rows.length} are staged`);
  return rows.map((row, position) => {
    assert(row.idx === position, `staged chunk ${position} of ${objectId} has index ${row.idx}`);
    const peers: unknown = JSON.parse(row.peers);
    assert(Array.isArray(peers) && peers.every((id) => typeof id === "string"), `staged chunk ${position} of ${objectId} has bad peers`);
    return { index: row.idx, size: row.size, checksum: blobToHex(row.checksum, 8), peers: peers as string[] };
  });
}

export async function dropStaged(db: Db, objectId: string): Promise<void> {
  await db`DELETE FROM intent_chunks WHERE object_id = ${objectId}`;
}
