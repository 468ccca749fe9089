// The on-disk record: the only thing in a shard file. Everything the index holds can be rebuilt
// from these, so a record carries its full key, its seq and both checksums.
//
// Layout, little-endian, no padding. H = 56 + bucketBytes + ballBytes + keyBytes is the header
// length (keyBytes is always 0 in a version 1 record, where its field was reserved).
//
//   offset  size  field
//   ------  ----  -----------------------------------------------------------------------------
//        0     4  magic          0x4D 0x58 0x52 0x43  ("MXRC")
//        4     1  version        2 (this build writes); 1 (older builds wrote; still read)
//        5     1  kind           1 = put, 2 = tombstone; version 2 adds 3 = manifest,
//                                4 = manifest tombstone (manifest.ts says what their data holds)
//        6     2  bucketBytes    u16, 1..limits.bucketNameBytesMax
//        8     2  ballBytes      u16, 1..chunkBallBytesMax (ballIdBytesMax + 64): the object id
//       10     2  keyBytes       u16, 0..limits.keyBytesMax: the ball's key (v1: reserved, zero).
//                                A chunk put carries it when the writer knew it (0 = not told); a
//                                manifest always does; a tombstone never needs it.
//       12     4  index          u32, 0..2^31-1 (0 for a manifest)
//       16     8  seq            u64, strictly increasing per write; kept when compaction moves
//       24     8  createdMs      u64, wall-clock ms of the put or delete
//       32     4  dataBytes      u32, 0..limits.chunkBytesMax; always 0 for a tombstone
//       36     4  reserved       zero
//       40     8  dataChecksum   u64, xxHash3-64 of the data (chunkChecksum)
//       48     8  headerChecksum u64, xxHash3-64 of bytes [0, H) with this field taken as zero
//       56     …  bucket         UTF-8, bucketBytes
//  56+bucket   …  ball           UTF-8, ballBytes
//  …+ball      …  key            UTF-8, keyBytes
//          H   …  data           dataBytes
//
// A record's length is H + dataBytes. Nothing in it depends on where it sits, so compaction
// copies records byte for byte (a version 1 record stays version 1). Validation is two-step on
// purpose: the header checksum proves the lengths before anything trusts them (a torn or
// garbage tail cannot make the reader allocate or skip wildly), then the data checksum proves
// the data.
import { assert } from "../lib/assert.ts";
import { chunkChecksum } from "../lib/checksum.ts";
import { limits } from "../lib/limits.ts";

/** The longest ball field a chunk ref may carry: limits.ballIdBytesMax plus 64 (a version or suffix). */
export const chunkBallBytesMax = limits.chunkBallBytesMax;
export const recordMagic = 0x4352584d; // "MXRC" read as a little-endian u32
/** The version this build writes. */
export const recordVersion = 2;
/** The first format (no key, no manifests): written by builds before record version 2, still read. */
export const recordVersionLegacy = 1;
export const recordFixedBytes = 56;
/** The largest header: fixed part plus the longest names. */
export const recordHeaderBytesMax = recordFixedBytes + limits.bucketNameBytesMax + chunkBallBytesMax + limits.keyBytesMax;
export const recordBytesMax = recordHeaderBytesMax + limits.chunkBytesMax;

const offsets = {
  magic: 0,
  version: 4,
  kind: 5,
  bucketBytes: 6,
  ballBytes: 8,
  keyBytes: 10,
  index: 12,
  seq: 16,
  createdMs: 24,
  dataBytes: 32,
  reserved2: 36,
  dataChecksum: 40,
  headerChecksum: 48,
  names: 56,
} as const;
const headerChecksumBytes = 8;

export const RecordKind = { put: 1, tombstone: 2, manifest: 3, manifestTombstone: 4 } as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

/** Whether a kind is one of a ball's manifests (live or tombstone): data is a manifest (manifest.ts). */
export function isManifestKind(kind: RecordKind): boolean {
  return kind === RecordKind.manifest || kind === RecordKind.manifestTombstone;
}

const int32Max = 2 ** 31 - 1;
const u64Max = 2n ** 64n - 1n;
const emptyChecksum = chunkChecksum(new Uint8Array(0));
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** What a record says about itself. */
export interface RecordHeader {
  kind: RecordKind;
  bucket: string;
  ball: string;
  /** The ball's key, when the record carries one (absent: a v1 record, a tombstone, a writer that was not told). */
  key?: string;
  index: number;
  seq: number;
  createdMs: number;
  dataBytes: number;
  dataChecksum: bigint;
}

/** A decoded header and the lengths it implies. */
export interface DecodedHeader extends RecordHeader {
  headerBytes: number;
  recordBytes: number;
}

export type HeaderDecode =
  | { ok: true; header: DecodedHeader }
  | { ok: false; reason: "short"; needBytes: number }
  | { ok: false; reason: "bad_magic" | "bad_version" | "bad_fields" | "bad_checksum" | "bad_names" };

/** Bytes a manifest's data takes at least (its generation, manifest.ts) and at most. */
export const manifestDataBytesMin = 8;
export const manifestDataBytesMax = limits.manifestRecordBytesMax;

/** Invariants of a header; asserted before a record is written and again after it is read. */
export function assertRecordHeader(h: RecordHeader): void {
  assert(Object.values(RecordKind).includes(h.kind), `record kind ${h.kind}`);
  assert(h.bucket.length > 0 && h.ball.length > 0, "record names are empty");
  assert(h.key === undefined || h.key.length > 0, "a record's key is absent or not empty");
  assert(Number.isInteger(h.index) && h.index >= 0 && h.index <= int32Max, `record index ${h.index}`);
  assert(Number.isSafeInteger(h.seq) && h.seq > 0, `record seq ${h.seq}`);
  assert(Number.isSafeInteger(h.createdMs) && h.createdMs >= 0, `record createdMs ${h.createdMs}`);
  assert(Number.isInteger(h.dataBytes) && h.dataBytes >= 0 && h.dataBytes <= limits.chunkBytesMax, "record dataBytes");
  assert(h.dataChecksum >= 0n && h.dataChecksum <= u64Max, "record dataChecksum is not a u64");
  if (h.kind === RecordKind.tombstone) {
    assert(h.dataBytes === 0 && h.dataChecksum === emptyChecksum, "a tombstone carries no data");
  }
  if (isManifestKind(h.kind)) {
    assert(h.key !== undefined && h.index === 0, "a manifest names its key, at index 0");
    assert(h.dataBytes >= manifestDataBytesMin && h.dataBytes <= manifestDataBytesMax, `manifest data of ${h.dataBytes} bytes`);
  }
}

export function headerBytesFor(bucketBytes: number, ballBytes: number, keyBytes = 0): number {
  return recordFixedBytes + bucketBytes + ballBytes + keyBytes;
}

/** Header bytes (fixed part, names, header checksum) for a record; the data goes after it. */
export function encodeHeader(h: RecordHeader): Uint8Array {
  assertRecordHeader(h);
  const bucket = utf8Encoder.encode(h.bucket);
  const ball = utf8Encoder.encode(h.ball);
  const key = utf8Encoder.encode(h.key ?? "");
  assert(bucket.length <= limits.bucketNameBytesMax && ball.length <= chunkBallBytesMax && key.length <= limits.keyBytesMax, "record names too long");
  const out = new Uint8Array(headerBytesFor(bucket.length, ball.length, key.length));
  const view = new DataView(out.buffer);
  view.setUint32(offsets.magic, recordMagic, true);
  view.setUint8(offsets.version, recordVersion);
  view.setUint8(offsets.kind, h.kind);
  view.setUint16(offsets.bucketBytes, bucket.length, true);
  view.setUint16(offsets.ballBytes, ball.length, true);
  view.setUint16(offsets.keyBytes, key.length, true);
  view.setUint32(offsets.index, h.index, true);
  view.setBigUint64(offsets.seq, BigInt(h.seq), true);
  view.setBigUint64(offsets.createdMs, BigInt(h.createdMs), true);
  view.setUint32(offsets.dataBytes, h.dataBytes, true);
  view.setBigUint64(offsets.dataChecksum, h.dataChecksum, true);
  out.set(bucket, offsets.names);
  out.set(ball, offsets.names + bucket.length);
  out.set(key, offsets.names + bucket.length + ball.length);
  view.setBigUint64(offsets.headerChecksum, chunkChecksum(out), true); // computed while the field is zero
  return out;
}

/** The whole record in one buffer; for tests and tools (the engine writes header and data apart). */
export function encodeRecord(h: RecordHeader, data: Uint8Array): Uint8Array {
  assert(data.byteLength === h.dataBytes, "record data length differs from its header");
  const header = encodeHeader(h);
  const out = new Uint8Array(header.length + data.length);
  out.set(header, 0);
  out.set(data, header.length);
  return out;
}

function headerChecksumOk(buf: Uint8Array, headerBytes: number, view: DataView): boolean {
  const stored = view.getBigUint64(offsets.headerChecksum, true);
  // Hash a copy with the field zeroed: the caller's buffer may be shared with a reader. (A copy
  // made by hand: on a Buffer, slice() would be a view and zero the caller's bytes.)
  const copy = new Uint8Array(headerBytes);
  copy.set(buf.subarray(0, headerBytes));
  copy.fill(0, offsets.headerChecksum, offsets.headerChecksum + headerChecksumBytes);
  return chunkChecksum(copy) === stored;
}

/** The fixed fields a version allows; names and lengths within their bounds. */
function fieldsInBounds(view: DataView, version: number, names: { bucketBytes: number; ballBytes: number; keyBytes: number }): boolean {
  const kind = view.getUint8(offsets.kind) as RecordKind;
  const dataBytes = view.getUint32(offsets.dataBytes, true);
  const kinds: readonly number[] = version === recordVersionLegacy ? [RecordKind.put, RecordKind.tombstone] : Object.values(RecordKind);
  if (!kinds.includes(kind)) return false;
  if (names.bucketBytes < 1 || names.bucketBytes > limits.bucketNameBytesMax) return false;
  if (names.ballBytes < 1 || names.ballBytes > chunkBallBytesMax) return false;
  if (names.keyBytes > (version === recordVersionLegacy ? 0 : limits.keyBytesMax)) return false;
  if (view.getUint32(offsets.reserved2, true) !== 0) return false;
  if (view.getUint32(offsets.index, true) > int32Max) return false;
  if (dataBytes > limits.chunkBytesMax) return false;
  if (isManifestKind(kind)) {
    return names.keyBytes > 0 && view.getUint32(offsets.index, true) === 0 && dataBytes >= manifestDataBytesMin && dataBytes <= manifestDataBytesMax;
  }
  return kind === RecordKind.put || (dataBytes === 0 && names.keyBytes === 0);
}

/**
 * Decode a header from the start of `buf`. Never throws on bad bytes: a torn tail or a flipped
 * bit is an expected condition for the scanner, which decides what it means.
 */
export function decodeHeader(buf: Uint8Array): HeaderDecode {
  if (buf.byteLength < recordFixedBytes) return { ok: false, reason: "short", needBytes: recordFixedBytes };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(offsets.magic, true) !== recordMagic) return { ok: false, reason: "bad_magic" };
  const version = view.getUint8(offsets.version);
  if (version !== recordVersion && version !== recordVersionLegacy) return { ok: false, reason: "bad_version" };
  const bucketBytes = view.getUint16(offsets.bucketBytes, true);
  const ballBytes = view.getUint16(offsets.ballBytes, true);
  const keyBytes = view.getUint16(offsets.keyBytes, true); // v1: the reserved field, zero (checked)
  if (!fieldsInBounds(view, version, { bucketBytes, ballBytes, keyBytes })) return { ok: false, reason: "bad_fields" };
  const headerBytes = headerBytesFor(bucketBytes, ballBytes, keyBytes);
  if (buf.byteLength < headerBytes) return { ok: false, reason: "short", needBytes: headerBytes };
  if (!headerChecksumOk(buf, headerBytes, view)) return { ok: false, reason: "bad_checksum" };
  const seq = view.getBigUint64(offsets.seq, true);
  const createdMs = view.getBigUint64(offsets.createdMs, true);
  // A header that hashes right but holds values this build never writes is still not ours.
  if (seq === 0n || seq > BigInt(Number.MAX_SAFE_INTEGER) || createdMs > BigInt(Number.MAX_SAFE_INTEGER)) {
    return { ok: false, reason: "bad_fields" };
  }
  let bucket: string;
  let ball: string;
  let key: string;
  try {
    const ballStart = offsets.names + bucketBytes;
    bucket = utf8Decoder.decode(buf.subarray(offsets.names, ballStart));
    ball = utf8Decoder.decode(buf.subarray(ballStart, ballStart + ballBytes));
    key = utf8Decoder.decode(buf.subarray(ballStart + ballBytes, headerBytes));
  } catch {
    return { ok: false, reason: "bad_names" };
  }
  if (bucket.includes("\u0000") || ball.includes("\u0000") || key.includes("\u0000")) return { ok: false, reason: "bad_names" };
  const dataBytes = view.getUint32(offsets.dataBytes, true);
  const header: DecodedHeader = {
    kind: view.getUint8(offsets.kind) as RecordKind,
    bucket,
    ball,
    ...(key.length > 0 ? { key } : {}),
    index: view.getUint32(offsets.index, true),
    seq: Number(seq),
    createdMs: Number(createdMs),
    dataBytes,
    dataChecksum: view.getBigUint64(offsets.dataChecksum, true),
    headerBytes,
    recordBytes: headerBytes + dataBytes,
  };
  if (header.kind === RecordKind.tombstone && header.dataChecksum !== emptyChecksum) {
    return { ok: false, reason: "bad_fields" };
  }
  assertRecordHeader(header);
  return { ok: true, header };
}

export type RecordDecode =
  | { ok: true; header: DecodedHeader; data: Uint8Array }
  | { ok: false; reason: Exclude<HeaderDecode, { ok: true }>["reason"] | "bad_data_checksum"; header?: DecodedHeader };

/** Decode and verify a whole record held in `buf` (which may run past the record's end). */
export function decodeRecord(buf: Uint8Array): RecordDecode {
  const decoded = decodeHeader(buf);
  if (!decoded.ok) return { ok: false, reason: decoded.reason };
  const { header } = decoded;
  if (buf.byteLength < header.recordBytes) return { ok: false, reason: "short", header };
  const data = buf.subarray(header.headerBytes, header.recordBytes);
  if (chunkChecksum(data) !== header.dataChecksum) return { ok: false, reason: "bad_data_checksum", header };
  return { ok: true, header, data };
}

export function tombstoneChecksum(): bigint {
  return emptyChecksum;
}
