// The check every read of a chunk's record makes, shared by the read path (store.ts) and the
// scrub (scrub.ts): the bytes must decode and verify, and be the record the index names.
import { CorruptError } from "../lib/errors.ts";
import type { ChunkRow } from "./index-db.ts";
import { decodeRecord, RecordKind } from "./record.ts";
import { refLabel } from "./refs.ts";
import type { ChunkRef } from "./types.ts";

/** The record read back must verify and be the one the index names; else CorruptError, no data. */
export function verifyRecord(ref: ChunkRef, row: ChunkRow, raw: Uint8Array): Uint8Array {
  return verifiedRecord(ref, row, raw).data;
}

/** verifyRecord, with the ball's key when the record carries one (record version 2). */
export function verifiedRecord(ref: ChunkRef, row: ChunkRow, raw: Uint8Array): { data: Uint8Array; key?: string } {
  const where = `chunk ${refLabel(ref)} in shard ${row.shardId}`;
  if (raw.byteLength < row.recordBytes) throw new CorruptError(`${where}: the shard file ends before the record`);
  const decoded = decodeRecord(raw);
  if (!decoded.ok) {
    const what = decoded.reason === "bad_data_checksum" ? "failed its checksum" : `has a damaged record header (${decoded.reason})`;
    throw new CorruptError(`${where} ${what}`);
  }
  const h = decoded.header;
  const same =
    h.kind === RecordKind.put &&
    h.bucket === ref.bucket &&
    h.ball === ref.ball &&
    h.index === ref.index &&
    h.seq === row.seq &&
    h.dataBytes === row.size &&
    h.dataChecksum === row.checksum &&
    h.recordBytes === row.recordBytes;
  if (!same) throw new CorruptError(`${where}: the record at byte ${row.offset} is not the one the index names`);
  return h.key === undefined ? { data: decoded.data } : { data: decoded.data, key: h.key };
}
