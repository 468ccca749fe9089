// Client-side encryption at the chunk boundary: what a tampered, moved or wrongly keyed chunk
// does (a typed DecryptError, never plaintext), and the key formats the shell accepts.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DecryptError, KeyRequiredError, additionalData, keyFromFile, keyFromHex, openChunk, sealChunk, sealing, type ChunkPlace } from "../../src/client/seal.ts";
import { ballTags, codecFor, codecForBall, reservedTags } from "../../src/client/codec.ts";
import { randomBytes, seededRandom } from "../support/random.ts";
import { MictlanxError } from "../../src/lib/errors.ts";

const { random, seed } = seededRandom("client-seal");
const key = randomBytes(random, 32);
const otherKey = randomBytes(random, 32);
const place: ChunkPlace = { bucket: "b", key: "k", index: 3, final: false };
const dir = mkdtempSync(join(tmpdir(), "mictlanx-seal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function expectDecryptError(run: () => unknown, index = place.index, ball = "b/k"): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(DecryptError);
  expect((thrown as MictlanxError).code).toBe("corrupt");
  expect((thrown as Error).message).toBe(`cannot decrypt chunk ${index} of ${ball}: wrong key or the chunk was altered`);
}

describe(`AES-256-GCM chunks (seed ${seed})`, () => {
  const plain = randomBytes(random, 100_000);

  test("round trip; the sealed form is iv ‖ ciphertext ‖ tag, 28 bytes longer, and hides the plaintext", () => {
    const sealed = sealChunk(key, plain, place);
    expect(sealed.byteLength).toBe(plain.byteLength + sealing.overheadBytes);
    expect(Buffer.from(sealed).indexOf(Buffer.from(plain.subarray(0, 32)))).toBe(-1);
    expect(Buffer.compare(Buffer.from(openChunk(key, sealed, place)), Buffer.from(plain))).toBe(0);
    expect(openChunk(key, sealChunk(key, new Uint8Array(0), place), place).byteLength).toBe(0);
  });

  test("a fresh random IV per chunk: the same plaintext seals differently each time", () => {
    const a = sealChunk(key, plain, place);
    const b = sealChunk(key, plain, place);
    expect(Buffer.compare(Buffer.from(a.subarray(0, 12)), Buffer.from(b.subarray(0, 12)))).not.toBe(0);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).not.toBe(0);
  });

  test("the wrong key fails cleanly", () => {
    expectDecryptError(() => openChunk(otherKey, sealChunk(key, plain, place), place));
  });

  test("one flipped bit anywhere (IV, ciphertext, tag) fails", () => {
    const sealed = sealChunk(key, plain, place);
    for (const at of [0, 11, 12, 12 + Math.floor(random() * plain.byteLength), sealed.byteLength - 16, sealed.byteLength - 1]) {
      const tampered = sealed.slice();
      tampered[at] = (tampered[at] ?? 0) ^ (1 << Math.floor(random() * 8));
      expectDecryptError(() => openChunk(key, tampered, place));
    }
  });

  test("truncated or too short chunks fail", () => {
    const sealed = sealChunk(key, plain, place);
    expectDecryptError(() => openChunk(key, sealed.subarray(0, sealed.byteLength - 1), place));
    expectDecryptError(() => openChunk(key, sealed.subarray(0, 27), place));
    expectDecryptError(() => openChunk(key, new Uint8Array(0), place));
  });

  test("a chunk moved to another index, ball, bucket, or marked last, fails", () => {
    const sealed = sealChunk(key, plain, place);
    expectDecryptError(() => openChunk(key, sealed, { ...place, index: 4 }), 4);
    expectDecryptError(() => openChunk(key, sealed, { ...place, key: "k2" }), 3, "b/k2");
    expectDecryptError(() => openChunk(key, sealed, { ...place, bucket: "b2" }), 3, "b2/k");
    expectDecryptError(() => openChunk(key, sealed, { ...place, final: true }));
  });

  test("the additional data is unambiguous: bucket/key splits do not collide", () => {
    const a = additionalData({ bucket: "ab", key: "c", index: 0, final: false });
    const b = additionalData({ bucket: "a", key: "bc", index: 0, final: false });
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).not.toBe(0);
  });

  test("keys: 32 bytes only", () => {
    expect(() => sealChunk(new Uint8Array(16), plain, place)).toThrow("32 bytes");
  });
});

describe("codecs", () => {
  test("compress then encrypt, and back; tags say both", () => {
    const codec = codecFor({ compress: true, key });
    expect(codec.tags).toEqual({ compression: "zstd", encryption: "aes-256-gcm", checksum_of: "sealed" });
    const plain = new TextEncoder().encode("mictlanx ".repeat(20_000));
    const stored = codec.encode(plain, place);
    expect(stored.byteLength).toBeLessThan(plain.byteLength / 10);
    expect(Buffer.compare(Buffer.from(codec.decode(stored, place, plain.byteLength)), Buffer.from(plain))).toBe(0);
    // Decompression is bounded by the chunk size the ball declares.
    expect(() => codec.decode(stored, place, plain.byteLength - 1)).toThrow("over the chunk size");
  });

  test("reading: an encrypted ball without a key says a key is needed; unknown algorithms are named", () => {
    const ball = { bucket: "b", key: "k", tags: { encryption: "aes-256-gcm" } };
    expect(() => codecForBall(ball, undefined)).toThrow(KeyRequiredError);
    expect(() => codecForBall(ball, undefined)).toThrow("b/k is encrypted (aes-256-gcm); give the key");
    expect(codecForBall(ball, key).tags).toEqual({ encryption: "aes-256-gcm" });
    expect(() => codecForBall({ ...ball, tags: { encryption: "rot13" } }, key)).toThrow('encrypted with "rot13"');
    expect(() => codecForBall({ ...ball, tags: { compression: "lz4" } }, key)).toThrow('compressed with "lz4"');
    expect(codecForBall({ ...ball, tags: {} }, key).identity).toBe(true); // a plain ball reads the same with a key at hand
  });
});

describe("what an encrypted ball's catalog entry says", () => {
  const sha = (bytes: Uint8Array) => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

  test("an encrypted put's checksum covers its sealed chunks, and its tags name no file and no plaintext digest", () => {
    const codec = codecFor({ compress: false, key });
    expect(codec.checksumOf).toBe("sealed");
    const plain = randomBytes(random, 5_000);
    const stored = codec.encode(plain, place);
    const tags = ballTags(codec, { team: "storage" }, "reports/2024/q1-salaries.pdf", 1, sha(stored));
    expect(tags).toEqual({ team: "storage", encryption: "aes-256-gcm", checksum_of: "sealed", num_chunks: "1", full_checksum: sha(stored) });
    expect(JSON.stringify(tags)).not.toContain(sha(plain));
    expect(JSON.stringify(tags)).not.toContain("q1-salaries");
    // The same plaintext sealed again (a fresh IV) has another digest: the catalog cannot tell two puts of one file apart.
    expect(sha(codec.encode(plain, place))).not.toBe(sha(stored));
    expect(reservedTags).toContain("checksum_of");
  });

  test("an unencrypted put keeps the plaintext checksum and the file's name and extension", () => {
    const codec = codecFor({ compress: true, key: undefined });
    expect(codec.checksumOf).toBe("plain");
    expect(ballTags(codec, {}, "logs/app.ndjson", 3, "ab".repeat(32))).toEqual({
      compression: "zstd", fullname: "app.ndjson", extension: "ndjson", num_chunks: "3", full_checksum: "ab".repeat(32),
    });
  });

  test("reading: a ball encrypted before checksum_of existed is checked against its plaintext; a new one against its sealed chunks", () => {
    const old = { bucket: "b", key: "k", tags: { encryption: "aes-256-gcm", fullname: "k", full_checksum: "00".repeat(32) } };
    expect(codecForBall(old, key).checksumOf).toBe("plain");
    expect(codecForBall({ ...old, tags: { encryption: "aes-256-gcm", checksum_of: "sealed" } }, key).checksumOf).toBe("sealed");
    // A user's own tag of that name on an unencrypted ball (before the name was reserved) changes nothing.
    expect(codecForBall({ ...old, tags: { checksum_of: "sealed" } }, key).checksumOf).toBe("plain");
    // Both kinds open the same sealed chunks.
    const sealed = sealChunk(key, new Uint8Array([1, 2, 3]), place);
    expect([...codecForBall(old, key).decode(sealed, place, 3)]).toEqual([1, 2, 3]);
  });
});

describe("key formats", () => {
  const hex = Buffer.from(key).toString("hex");

  test("64 hex digits, either case, whitespace around ignored", () => {
    expect(Buffer.from(keyFromHex(`  ${hex.toUpperCase()}\n`)).toString("hex")).toBe(hex);
    for (const bad of ["", hex.slice(2), `${hex}00`, `${hex.slice(1)}g`]) expect(() => keyFromHex(bad, "MICTLANX_KEY")).toThrow("MICTLANX_KEY must be 64 hex digits");
  });

  test("a key file holds 32 raw bytes or 64 hex digits", () => {
    writeFileSync(join(dir, "raw"), key);
    writeFileSync(join(dir, "hex"), `${hex}\n`);
    writeFileSync(join(dir, "short"), key.subarray(0, 31));
    expect(Buffer.from(keyFromFile(join(dir, "raw"))).toString("hex")).toBe(hex);
    expect(Buffer.from(keyFromFile(join(dir, "hex"))).toString("hex")).toBe(hex);
    expect(() => keyFromFile(join(dir, "short"))).toThrow("must hold 32 raw bytes or 64 hex digits; it has 31 bytes");
    let error: unknown;
    try {
      keyFromFile(join(dir, "missing"));
    } catch (caught) {
      error = caught;
    }
    expect((error as MictlanxError).code).toBe("usage");
    expect((error as Error).message).toContain("cannot read the key file");
  });
});
