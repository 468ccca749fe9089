// The on-disk record: the only thing in a shard file. Everything the index holds can be rebuilt
// from these, so a record carries its full key, its seq and both checksums.
//
// Layout, little-endian, no padding. H = 56 + bucketBytes + ballBytes is the header length.
//
//   offset  size  field
//   ------  ----  -----------------------------------------------------------------------------
//        0     4  magic          0x4D 0x58 0x52 0x43  ("MXRC")
//        4     1  version        1
//        5     1  kind           1 = put, 2 = tombstone
//        6     2  bucketBytes    u16, 1..limits.bucketNameBytesMax
//        8     2  ballBytes      u16, 1..chunkBallBytesMax (ballIdBytesMax + 64)
//       10     2  reserved       zero
//       12     4  index          u32, 0..2^31-1
//       16     8  seq            u64, strictly increasing per write; kept when compaction moves
//       24     8  createdMs      u64, wall-clock ms of the put or delete
//       32     4  dataBytes      u32, 0..limits.chunkBytesMax; always 0 for a tombstone
//       36     4  reserved       zero
//       40     8  dataChecksum   u64, xxHash3-64 of the data (chunkChecksum)
//       48     8  headerChecksum u64, xxHash3-64 of bytes [0, H) with this field taken as zero
//       56     …  bucket         UTF-8, bucketBytes
//  56+bucket   …  ball           UTF-8, ballBytes
//          H   …  data           dataBytes
//
// A record's length is H + dataBytes. Nothing in it depends on where it sits, so compaction
// copies records byte for byte. Validation is two-step on purpose: the header checksum proves
// the lengths before anything trusts them (a torn or garbage tail cannot make the reader
// allocate or skip wildly), then the data checksum proves the data.
import { assert } from "../lib/assert.ts";
import { chunkChecksum } from "../lib/checksum.ts";
import { limits } from "../lib/limits.ts";

/** The longest ball field a chunk ref may carry: limits.ballIdBytesMax plus 64 (a version or suffix). */
export const chunkBallBytesMax = limits.chunkBallBytesMax;
export const recordMagic = 0x4352584d; // "MXRC" read as a little-endian u32
export const recordVersion = 1;
export const recordFixedBytes = 56;
/** The largest header: fixed part plus the longest names. */
export const recordHeaderBytesMax = recordFixedBytes + limits.bucketNameBytesMax + chunkBallBytesMax;
export const recordBytesMax = recordHeaderBytesMax + limits.chunkBytesMax;

const offsets = {
  magic: 0,
  version: 4,
  kind: 5,
  bucketBytes: 6,
  ballBytes: 8,
  reserved1: 10,
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

export const RecordKind = { put: 1, tombstone: 2 } as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

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

/** Invariants of a header; asserted before a record is written and again after it is read. */
export function assertRecordHeader(h: RecordHeader): void {
  assert(h.kind === RecordKind.put || h.kind === RecordKind.tombstone, `record kind ${h.kind}`);
  assert(h.bucket.length > 0 && h.ball.length > 0, "record names are empty");
  assert(Number.isInteger(h.index) && h.index >= 0 && h.index <= int32Max, `record index ${h.index}`);
  assert(Number.isSafeInteger(h.seq) && h.seq > 0, `record seq ${h.seq}`);
  assert(Number.isSafeInteger(h.createdMs) && h.createdMs >= 0, `record createdMs ${h.createdMs}`);
  assert(Number.isInteger(h.dataBytes) && h.dataBytes >= 0 && h.dataBytes <= limits.chunkBytesMax, "record dataBytes");
  assert(h.dataChecksum >= 0n && h.dataChecksum <= u64Max, "record dataChecksum is not a u64");
  if (h.kind === RecordKind.tombstone) {
    assert(h.dataBytes === 0 && h.dataChecksum === emptyChecksum, "a tombstone carries no data");
  }
}

export function headerBytesFor(bucketBytes: number, ballBytes: number): number {
  return recordFixedBytes + bucketBytes + ballBytes;
}

/** Header bytes (fixed part, names, header checksum) for a record; the data goes after it. */
export function encodeHeader(h: RecordHeader): Uint8Array {
  assertRecordHeader(h);
  const bucket = utf8Encoder.encode(h.bucket);
  const ball = utf8Encoder.encode(h.ball);
  assert(bucket.length <= limits.bucketNameBytesMax && ball.length <= chunkBallBytesMax, "record names too long");
  const out = new Uint8Array(headerBytesFor(bucket.length, ball.length));
  const view = new DataView(out.buffer);
  view.setUint32(offsets.magic, recordMagic, true);
  view.setUint8(offsets.version, recordVersion);
  view.setUint8(offsets.kind, h.kind);
  view.setUint16(offsets.bucketBytes, bucket.length, true);
  view.setUint16(offsets.ballBytes, ball.length, true);
  view.setUint32(offsets.index, h.index, true);
  view.setBigUint64(offsets.seq, BigInt(h.seq), true);
  view.setBigUint64(offsets.createdMs, BigInt(h.createdMs), true);
  view.setUint32(offsets.dataBytes, h.dataBytes, true);
  view.setBigUint64(offsets.dataChecksum, h.dataChecksum, true);
  out.set(bucket, offsets.names);
  out.set(ball, offsets.names + bucket.length);
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

function fieldsInBounds(view: DataView, bucketBytes: number, ballBytes: number): boolean {
  const kind = view.getUint8(offsets.kind);
  const dataBytes = view.getUint32(offsets.dataBytes, true);
  if (kind !== RecordKind.put && kind !== RecordKind.tombstone) return false;
  if (bucketBytes < 1 || bucketBytes > limits.bucketNameBytesMax) return false;
  if (ballBytes < 1 || ballBytes > chunkBallBytesMax) return false;
  if (view.getUint16(offsets.reserved1, true) !== 0 || view.getUint32(offsets.reserved2, true) !== 0) return false;
  if (view.getUint32(offsets.index, true) > int32Max) return false;
  if (dataBytes > limits.chunkBytesMax) return false;
  return kind === RecordKind.put || dataBytes === 0;
}

/**
 * Decode a header from the start of `buf`. Never throws on bad bytes: a torn tail or a flipped
 * bit is an expected condition for the scanner, which decides what it means.
 */
export function decodeHeader(buf: Uint8Array): HeaderDecode {
  if (buf.byteLength < recordFixedBytes) return { ok: false, reason: "short", needBytes: recordFixedBytes };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(offsets.magic, true) !== recordMagic) return { ok: false, reason: "bad_magic" };
  if (view.getUint8(offsets.version) !== recordVersion) return { ok: false, reason: "bad_version" };
  const bucketBytes = view.getUint16(offsets.bucketBytes, true);
  const ballBytes = view.getUint16(offsets.ballBytes, true);
  if (!fieldsInBounds(view, bucketBytes, ballBytes)) return { ok: false, reason: "bad_fields" };
  const headerBytes = headerBytesFor(bucketBytes, ballBytes);
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
  try {
    bucket = utf8Decoder.decode(buf.subarray(offsets.names, offsets.names + bucketBytes));
    ball = utf8Decoder.decode(buf.subarray(offsets.names + bucketBytes, headerBytes));
  } catch {
    return { ok: false, reason: "bad_names" };
  }
  if (bucket.includes("\u0000") || ball.includes("\u0000")) return { ok: false, reason: "bad_names" };
  const dataBytes = view.getUint32(offsets.dataBytes, true);
  const header: DecodedHeader = {
    kind: view.getUint8(offsets.kind) as RecordKind,
    bucket,
    ball,
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
