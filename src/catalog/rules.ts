// What both engines decide alike, whatever their SQL: a commit's preconditions and its repeat,
// a staged page's shape, a retired version's page of chunks from its garbage rows, an access
// key's secret opened, the totals as stats. Kept once here so sqlite (catalog.ts and its
// modules) and PostgreSQL (postgres/) cannot drift apart.
import { assert } from "../lib/assert.ts";
import { ConflictError, MictlanxError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { secretKeyPattern } from "../lib/access-keys.ts";
import { chunkRecordWireBytes } from "../lib/wire-size.ts";
import { encodeChunkCursor } from "./cursor.ts";
import { blobToHex, type BallRow } from "./rows.ts";
import { unseal } from "./secrets.ts";
import type { AccessKeyRecord, AccessKeySummary, BallInput, CatalogStats, ChunkRecord, CommitOptions, CommitResult } from "./types.ts";
import { checkHex, checkInt, checkPeerList } from "./validate.ts";

/** The same commit again (a retry after a lost reply) succeeds without a change. */
export function repeatedCommit(current: BallRow, ball: BallInput): CommitResult {
  const same = current.size === ball.size && blobToHex(current.checksum, 32) === ball.checksum && current.num_chunks === ball.numChunks;
  if (!same) throw new ConflictError(`object id ${ball.objectId} is already committed with other contents`);
  return { version: current.version };
}

/** --if-absent and an expected object id (S3's conditional writes), against the key's live version. */
export function checkPreconditions(current: BallRow | undefined, options: CommitOptions, ball: BallInput): void {
  const where = `${ball.bucket}/${ball.key}`;
  if (options.ifAbsent === true && current !== undefined) {
    throw new ConflictError(`${where} already exists (version ${current.version}) and the put was if-absent`);
  }
  const expected = options.expectedObjectId;
  if (expected !== undefined && current?.object_id !== expected) {
    const found = current === undefined ? "no ball" : `object ${current.object_id}`;
    throw new ConflictError(`${where} was expected to be object ${expected} but is ${found}; read it again and retry`);
  }
}

/** A page of chunk records to stage after `staged` are: in order, each well formed; where it ends. */
export function checkStagedPage(objectId: string, chunks: ChunkRecord[], staged: number): number {
  checkInt("chunk records in a page", chunks.length, 1, limits.chunkRecordsPageMax);
  const first = chunks[0]!.index;
  if (first > staged) throw new ConflictError(`chunk records of object ${objectId} must be staged in order: ${staged} are, this page starts at ${first}`);
  chunks.forEach((chunk, position) => {
    checkInt(`staged chunk ${position} index`, chunk.index, first + position, first + position);
    checkInt(`chunk ${chunk.index} size`, chunk.size, 0, limits.chunkBytesMax);
    checkHex(`chunk ${chunk.index} checksum`, chunk.checksum, 16);
    checkPeerList(`chunk ${chunk.index} peers`, chunk.peers, 1);
  });
  const end = first + chunks.length;
  if (end > limits.ballChunksMax) throw new ConflictError(`a ball has at most ${limits.ballChunksMax} chunks; use a larger --chunk-size`);
  return end;
}

/**
 * A retired version's chunk records from `from`, built from its garbage rows (ordered by index
 * then peer): stops at the first chunk whose replicas are all gone, and at
 * metadataPageBytesMax; undefined when none is left at `from`.
 */
export function retiredPageOf(
  rows: Iterable<{ idx: number; peer_id: string; size: number; checksum: Uint8Array }>,
  from: number,
  limit: number,
): { chunks: ChunkRecord[]; next?: number } | undefined {
  const byIndex = new Map<number, { size: number; checksum: string; peers: string[] }>();
  for (const row of rows) {
    const chunk = byIndex.get(row.idx) ?? { size: row.size, checksum: blobToHex(row.checksum, 8), peers: [] };
    chunk.peers.push(row.peer_id);
    byIndex.set(row.idx, chunk);
  }
  const chunks: ChunkRecord[] = [];
  let bytes = 0;
  let full = false;
  for (let index = from; byIndex.has(index); index += 1) {
    const chunk = { index, ...byIndex.get(index)! };
    bytes += chunkRecordWireBytes(chunk);
    if (chunks.length > 0 && bytes > limits.metadataPageBytesMax) {
      full = true;
      break;
    }
    chunks.push(chunk);
  }
  if (chunks.length === 0) return undefined;
  const end = from + chunks.length;
  return full || end === from + limit ? { chunks, next: end } : { chunks };
}

/** A key's record with its secret unsealed (the id is the associated data: a row copied onto another key does not open). */
export function openedKey(summary: AccessKeySummary, sealed: Uint8Array, masterKey: Uint8Array, accessKey: string): AccessKeyRecord {
  assert(summary.accessKey === accessKey, `access key lookup for ${accessKey} returned ${summary.accessKey}`);
  const secretKey = unseal(masterKey, accessKey, sealed);
  if (secretKey === undefined) {
    throw new MictlanxError("internal", `the sealed secret of access key ${accessKey} does not open with the catalog's secrets.key: its row was changed or copied from another key; revoke it and make a new one`);
  }
  assert(secretKeyPattern.test(secretKey), `access key ${accessKey} unsealed to a secret of the wrong shape`);
  return { ...summary, secretKey };
}

/** The totals row as stats. */
export function statsOf(t: { balls: number; buckets: number; bytes: number; chunks: number; replicas: number; under: number; garbage: number; intents: number; intent_bytes: number }): CatalogStats {
  return {
    balls: t.balls,
    buckets: t.buckets,
    bytes: t.bytes,
    chunks: t.chunks,
    replicas: t.replicas,
    underReplicated: t.under,
    garbage: t.garbage,
    intents: t.intents,
    intentBytes: t.intent_bytes,
  };
}

/** A page row's live replica count, checked against the holders read back. */
export function checkLive(row: { live: number; object_id: string; idx: number }, live: string[]): void {
  assert(row.live === live.length, `object ${row.object_id} chunk ${row.idx} counts ${row.live} live replicas, has ${live.length}`);
}

/** A chunk page read one row past `limit`: the cursor after its last item, when there is more. */
export function nextCursor<T>(rows: Array<{ ball: number; idx: number }>, limit: number, items: T[]): { next?: string } {
  if (rows.length <= limit) return {};
  const last = rows[limit - 1]!;
  assert(items.length === limit, "page lost items");
  return { next: encodeChunkCursor({ ball: last.ball, idx: last.idx }) };
}

/** A counter's take (nextMetaCounter): `count` values in [1, listPageMax], from a floor the last of them can be reached from. */
export function checkCounterTake(floor: number, count: number): void {
  checkInt("counter count", count, 1, limits.listPageMax);
  checkInt("counter floor", floor, 0, Number.MAX_SAFE_INTEGER - count);
}

/** The first of a take of `count` values, from the counter's new value as an engine returned it (text in the meta table), checked. */
export function counterValue(key: string, value: string | number | undefined, count = 1): number {
  const counted = Number(value);
  assert(Number.isSafeInteger(counted) && counted >= count, `meta ${key} holds ${JSON.stringify(value)}, not a counter that took ${count}`);
  return counted - count + 1;
}
