// The record format and ref validation: pure functions, every field and every corruption.
import { describe, expect, test } from "bun:test";
import { AssertionError } from "../../src/lib/assert.ts";
import { chunkChecksum } from "../../src/lib/checksum.ts";
import { BadRequestError } from "../../src/lib/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import {
  chunkBallBytesMax,
  decodeHeader,
  decodeRecord,
  encodeHeader,
  encodeRecord,
  recordFixedBytes,
  RecordKind,
  tombstoneChecksum,
  type RecordHeader,
} from "../../src/storage/record.ts";
import { decodeCursor, encodeCursor, prefixUpperBound, validateRef } from "../../src/storage/refs.ts";
import { encodeManifestData, manifestGeneration } from "../../src/storage/manifest.ts";
import { encodeRecordV1 } from "../support/storage.ts";

function sample(data: Uint8Array, over: Partial<RecordHeader> = {}): RecordHeader {
  return {
    kind: RecordKind.put,
    bucket: "bucket-ü",
    ball: "ball/日本",
    index: 7,
    seq: 123_456_789,
    createdMs: 1_700_000_000_000,
    dataBytes: data.byteLength,
    dataChecksum: chunkChecksum(data),
    ...over,
  };
}

describe("record encode/decode", () => {
  test("round trip keeps every field and the data", () => {
    const data = new TextEncoder().encode("hello, shard");
    const h = sample(data);
    const rec = encodeRecord(h, data);
    const d = decodeRecord(rec);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect({ ...d.header }).toEqual({
      ...h,
      headerBytes: recordFixedBytes + Buffer.byteLength(h.bucket) + Buffer.byteLength(h.ball),
      recordBytes: rec.length,
    });
    expect(Buffer.from(d.data).equals(Buffer.from(data))).toBe(true);
  });

  test("round trip of a tombstone, of empty data and of extreme values", () => {
    const empty = new Uint8Array(0);
    for (const h of [
      sample(empty, { kind: RecordKind.tombstone, dataChecksum: tombstoneChecksum() }),
      sample(empty),
      sample(empty, { index: 2 ** 31 - 1, seq: Number.MAX_SAFE_INTEGER, createdMs: 0 }),
      sample(empty, { bucket: "b".repeat(limits.bucketNameBytesMax), ball: "x".repeat(chunkBallBytesMax) }),
    ]) {
      const d = decodeRecord(encodeRecord(h, empty));
      expect(d.ok).toBe(true);
      if (d.ok) expect(d.header.seq).toBe(h.seq);
    }
  });

  test("a record followed by other bytes decodes to just itself", () => {
    const data = new Uint8Array([1, 2, 3]);
    const rec = encodeRecord(sample(data), data);
    const buf = new Uint8Array(rec.length + 10).fill(0xee);
    buf.set(rec);
    const d = decodeRecord(buf);
    expect(d.ok && d.data.length).toBe(3);
  });

  test("every single-bit flip in header, names or data is detected", () => {
    const data = new Uint8Array(64).map((_, i) => i * 7);
    const rec = encodeRecord(sample(data), data);
    const headerBytes = rec.length - data.length;
    for (let byte = 0; byte < rec.length; byte += 1) {
      for (const bit of [0, 3, 7]) {
        const bad = rec.slice();
        bad[byte] = (bad[byte] ?? 0) ^ (1 << bit);
        const d = decodeRecord(bad);
        expect(d.ok).toBe(false);
        if (!d.ok && byte >= headerBytes) expect(d.reason).toBe("bad_data_checksum");
        if (!d.ok && byte < headerBytes) expect(d.reason).not.toBe("bad_data_checksum");
      }
    }
  });

  test("each header field's corruption names a reason", () => {
    const data = new Uint8Array([9, 9]);
    const rec = encodeRecord(sample(data), data);
    const flip = (at: number, value: number) => {
      const bad = rec.slice();
      bad[at] = value;
      return decodeHeader(bad);
    };
    expect(flip(0, 0)).toMatchObject({ ok: false, reason: "bad_magic" });
    expect(flip(4, 3)).toMatchObject({ ok: false, reason: "bad_version" });
    expect(flip(4, 0)).toMatchObject({ ok: false, reason: "bad_version" });
    expect(flip(4, 1)).toMatchObject({ ok: false, reason: "bad_checksum" }); // a v2 record passed off as v1
    expect(flip(5, 9)).toMatchObject({ ok: false, reason: "bad_fields" }); // kind
    expect(flip(5, 3)).toMatchObject({ ok: false, reason: "bad_fields" }); // a manifest needs a key and data of its own shape
    expect(flip(10, 1)).toMatchObject({ ok: false, reason: "bad_checksum" }); // keyBytes: the header's length moves
    expect(flip(11, 0xff)).toMatchObject({ ok: false, reason: "bad_fields" }); // keyBytes past keyBytesMax
    expect(flip(36, 1)).toMatchObject({ ok: false, reason: "bad_fields" }); // reserved
    expect(flip(15, 0x80)).toMatchObject({ ok: false, reason: "bad_fields" }); // index > int32
    expect(flip(35, 0xff)).toMatchObject({ ok: false, reason: "bad_fields" }); // dataBytes huge
    expect(flip(16, 0x11)).toMatchObject({ ok: false, reason: "bad_checksum" }); // seq
    expect(flip(24, 0x11)).toMatchObject({ ok: false, reason: "bad_checksum" }); // createdMs
    expect(flip(40, 0x11)).toMatchObject({ ok: false, reason: "bad_checksum" }); // dataChecksum
    expect(flip(48, 0x11)).toMatchObject({ ok: false, reason: "bad_checksum" }); // headerChecksum
    expect(flip(56, 0x41)).toMatchObject({ ok: false, reason: "bad_checksum" }); // bucket name
    expect(flip(6, 0)).toMatchObject({ ok: false, reason: "bad_fields" }); // bucketBytes 0
  });

  test("truncated records are short, never misread", () => {
    const data = new Uint8Array(100).fill(5);
    const rec = encodeRecord(sample(data), data);
    for (let len = 0; len < rec.length; len += 1) {
      const d = decodeRecord(rec.subarray(0, len));
      expect(d.ok).toBe(false);
      if (!d.ok) expect(d.reason).toBe("short");
    }
  });

  test("encode asserts its input (paired with the assert after decode)", () => {
    const data = new Uint8Array(1);
    expect(() => encodeHeader(sample(data, { seq: 0 }))).toThrow(AssertionError);
    expect(() => encodeHeader(sample(data, { index: -1 }))).toThrow(AssertionError);
    expect(() => encodeHeader(sample(data, { dataBytes: limits.chunkBytesMax + 1 }))).toThrow(AssertionError);
    expect(() => encodeHeader(sample(data, { kind: RecordKind.tombstone }))).toThrow(AssertionError);
    expect(() => encodeRecord(sample(data, { dataBytes: 2 }), data)).toThrow(AssertionError);
  });
});

describe("chunk refs", () => {
  test("a chunk's ball field allows a ball id plus 64 bytes", () => {
    expect(chunkBallBytesMax).toBe(limits.ballIdBytesMax + 64);
  });

  test("valid refs pass and are copied without extra fields", () => {
    const r = validateRef({ bucket: "b", ball: "x", index: 0, extra: 1 });
    expect(r).toEqual({ bucket: "b", ball: "x", index: 0 });
  });

  test.each([
    [{ bucket: "", ball: "x", index: 0 }, "bucket name must not be empty"],
    [{ bucket: "b".repeat(limits.bucketNameBytesMax + 1), ball: "x", index: 0 }, "bytes of UTF-8"],
    [{ bucket: "é".repeat(65), ball: "x", index: 0 }, "130 bytes"],
    [{ bucket: "b", ball: "", index: 0 }, "ball id must not be empty"],
    [{ bucket: "b", ball: "x".repeat(chunkBallBytesMax + 1), index: 0 }, "ball id is"],
    [{ bucket: "b\u0000", ball: "x", index: 0 }, "NUL"],
    [{ bucket: "b", ball: "x\u0000y", index: 0 }, "NUL"],
    [{ bucket: "b", ball: "\ud800", index: 0 }, "well-formed"],
    [{ bucket: "b", ball: "x", index: -1 }, "chunk index"],
    [{ bucket: "b", ball: "x", index: 1.5 }, "chunk index"],
    [{ bucket: "b", ball: "x", index: 2 ** 31 }, "chunk index"],
    [{ bucket: "b", ball: "x", index: "1" }, "chunk index"],
    [{ bucket: 5, ball: "x", index: 1 }, "must be a string"],
    [null, "must be an object"],
  ])("bad ref %p is a BadRequestError", (ref, message) => {
    expect(() => validateRef(ref)).toThrow(BadRequestError);
    expect(() => validateRef(ref)).toThrow(message);
  });

  test("list cursors round trip; forged ones are rejected", () => {
    const ref = { bucket: "b", ball: "x_y", index: 3 };
    expect(decodeCursor(encodeCursor(ref))).toEqual(ref);
    for (const bad of ["", "%%%", Buffer.from("[1,2,3]").toString("base64url"), Buffer.from('["b","x",-1]').toString("base64url")]) {
      expect(() => decodeCursor(bad)).toThrow(BadRequestError);
    }
  });

  test("prefix upper bound brackets exactly the strings with that prefix", () => {
    expect(prefixUpperBound("ab")).toBe("ac");
    expect(prefixUpperBound("a\u{10ffff}")).toBe("b");
    expect(prefixUpperBound("\u{10ffff}")).toBeUndefined();
    expect(prefixUpperBound("a\ud7ff")).toBe("a\ue000");
    const utf8Less = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b)) < 0;
    const prefix = "x\uffff";
    const upper = prefixUpperBound(prefix) ?? "";
    for (const s of ["x\uffff", "x\uffff\u{10ffff}\u{10ffff}", "x\uffffz"]) expect(utf8Less(s, upper)).toBe(true);
    for (const s of ["x\u{10000}", "y"]) expect(utf8Less(s, upper)).toBe(false);
  });
});

describe("record version 2", () => {
  test("a version 1 record (the old encoder's bytes) still decodes, without a key", () => {
    const data = new TextEncoder().encode("written by an older build");
    const h = sample(data);
    const d = decodeRecord(encodeRecordV1(h, data));
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.header.key).toBeUndefined();
    expect({ ...d.header }).toEqual({ ...h, headerBytes: 56 + Buffer.byteLength(h.bucket) + Buffer.byteLength(h.ball), recordBytes: 56 + Buffer.byteLength(h.bucket) + Buffer.byteLength(h.ball) + data.length });
    const tomb = decodeRecord(encodeRecordV1(sample(new Uint8Array(0), { kind: RecordKind.tombstone, dataChecksum: tombstoneChecksum() }), new Uint8Array(0)));
    expect(tomb.ok && tomb.header.kind).toBe(RecordKind.tombstone);
  });

  test("a version 1 record with a key length, or of a kind version 1 never had, is refused", () => {
    const data = new Uint8Array([1, 2]);
    const v1 = encodeRecordV1(sample(data), data);
    const withKey = v1.slice();
    withKey[10] = 1; // the reserved field of version 1
    expect(decodeHeader(withKey)).toMatchObject({ ok: false, reason: "bad_fields" });
    const manifestKind = v1.slice();
    manifestKind[5] = RecordKind.manifest;
    expect(decodeHeader(manifestKind)).toMatchObject({ ok: false, reason: "bad_fields" });
  });

  test("a chunk put carries its ball's key; the longest key round-trips", () => {
    const data = new Uint8Array([7, 7, 7]);
    for (const key of ["photos/2024/ü.jpg", "k".repeat(limits.keyBytesMax)]) {
      const h = sample(data, { key });
      const rec = encodeRecord(h, data);
      expect(rec[4]).toBe(2);
      const d = decodeRecord(rec);
      expect(d.ok && d.header.key).toBe(key);
      expect(d.ok && d.header.headerBytes).toBe(recordFixedBytes + Buffer.byteLength(h.bucket) + Buffer.byteLength(h.ball) + Buffer.byteLength(key));
    }
    expect(() => encodeHeader(sample(data, { key: "k".repeat(limits.keyBytesMax + 1) }))).toThrow(AssertionError);
  });

  test("manifest records: key and data required, index 0, bounded; every bit flip detected", () => {
    const body = encodeManifestData(42, new TextEncoder().encode("metadata"));
    const h = sample(body, { kind: RecordKind.manifest, key: "a/key", index: 0 });
    const rec = encodeRecord(h, body);
    const d = decodeRecord(rec);
    expect(d.ok && d.header.kind).toBe(RecordKind.manifest);
    expect(d.ok && manifestGeneration(d.data)).toBe(42);
    for (let byte = 0; byte < rec.length; byte += 1) {
      const bad = rec.slice();
      bad[byte] = (bad[byte] ?? 0) ^ 0x10;
      expect(decodeRecord(bad).ok).toBe(false);
    }
    expect(() => encodeHeader(sample(body, { kind: RecordKind.manifest, index: 0 }))).toThrow(AssertionError); // no key
    expect(() => encodeHeader(sample(body, { kind: RecordKind.manifest, key: "k", index: 1 }))).toThrow(AssertionError);
    const short = new Uint8Array(4);
    expect(() => encodeHeader(sample(short, { kind: RecordKind.manifestTombstone, key: "k", index: 0 }))).toThrow(AssertionError);
    const big = new Uint8Array(limits.manifestRecordBytesMax + 1);
    expect(() => encodeHeader(sample(big, { kind: RecordKind.manifest, key: "k", index: 0 }))).toThrow(AssertionError);
  });

  test("a manifest's generation is refused when out of range", () => {
    expect(manifestGeneration(new Uint8Array(7))).toBeUndefined();
    expect(manifestGeneration(new Uint8Array(8))).toBeUndefined(); // 0
    const huge = new Uint8Array(8);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 53n, true);
    expect(manifestGeneration(huge)).toBeUndefined();
    expect(manifestGeneration(encodeManifestData(Number.MAX_SAFE_INTEGER, new Uint8Array(0)))).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => encodeManifestData(0, new Uint8Array(0))).toThrow(AssertionError);
  });
});
