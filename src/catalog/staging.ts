// Chunk records staged for a big commit. A ball of many chunks cannot name them all in one
// message (a frame holds ~100k records), so its uploader sends them a page at a time before the
// commit, and the commit names only how many were staged. Staged records live with the upload's
// intent and go with it (committed, or expired).
import { ConflictError } from "../lib/errors.ts";
import { assert } from "../lib/assert.ts";
import { noUpload } from "./garbage.ts";
import { blobToHex, hexToBlob } from "./rows.ts";
import type { Statements } from "./statements.ts";
import type { ChunkRecord } from "./types.ts";
import { checkStagedPage } from "./rules.ts";
import { checkInt, checkObjectId } from "./validate.ts";

/**
 * Stage a page of an upload's chunk records; pages come in order (a page sent again replaces
 * what it covers). Returns how many records are staged now. Extends the upload's intent.
 */
export function stageChunks(s: Statements, objectId: string, chunks: ChunkRecord[], expiresMs: number): number {
  checkObjectId(objectId);
  if (s.intentGet.get({ object_id: objectId }) === null) throw noUpload(s, objectId);
  const staged = s.stagedCount.get({ object_id: objectId })!.n;
  const end = checkStagedPage(objectId, chunks, staged);
  for (const chunk of chunks) {
    s.stagedInsert.run({ object_id: objectId, idx: chunk.index, size: chunk.size, checksum: hexToBlob(chunk.checksum), peers: JSON.stringify(chunk.peers) });
  }
  s.intentExtend.run({ object_id: objectId, expires_ms: checkInt("expiresMs", expiresMs) });
  return Math.max(staged, end);
}

/** The `count` staged records of an upload, in order; ConflictError if they are not all there. */
export function takeStaged(s: Statements, objectId: string, count: number): ChunkRecord[] {
  const rows = s.stagedOf.all({ object_id: objectId });
  if (rows.length !== count) throw new ConflictError(`the commit of object ${objectId} names ${count} staged chunk records, but ${rows.length} are staged`);
  return rows.map((row, position) => {
    assert(row.idx === position, `staged chunk ${position} of ${objectId} has index ${row.idx}`);
    const peers: unknown = JSON.parse(row.peers);
    assert(Array.isArray(peers) && peers.every((id) => typeof id === "string"), `staged chunk ${position} of ${objectId} has bad peers`);
    return { index: row.idx, size: row.size, checksum: blobToHex(row.checksum, 8), peers: peers as string[] };
  });
}

export function dropStaged(s: Statements, objectId: string): void {
  s.stagedDelete.run({ object_id: objectId });
}
