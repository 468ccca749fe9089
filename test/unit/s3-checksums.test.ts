// The flexible checksums against published check values ("123456789") and against the AWS
// SDK's own implementations (the ones @aws-sdk/client-s3 signs uploads with), over seeded
// random bodies fed in random splits.
import { describe, expect, test } from "bun:test";
import { Crc32, Crc32cJs, Crc64NvmeJs } from "@aws-sdk/checksums/crc";
import { createHash } from "node:crypto";
import { checksumAlgorithmOf, checksumAlgorithms, checksumDigestBytes, checksumOf, createChecksum, type ChecksumAlgorithm } from "../../src/s3/checksums.ts";

const check = new TextEncoder().encode("123456789");
const hexOf = (base64: string) => Buffer.from(base64, "base64").toString("hex");

/** A small seeded generator (mulberry32): the same bodies on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function sdkDigest(algorithm: ChecksumAlgorithm, bytes: Uint8Array): Promise<string> {
  if (algorithm === "sha1" || algorithm === "sha256") return createHash(algorithm).update(bytes).digest("base64");
  const checksum = algorithm === "crc32" ? new Crc32() : algorithm === "crc32c" ? new Crc32cJs() : new Crc64NvmeJs();
  checksum.update(bytes);
  return Buffer.from(await checksum.digest()).toString("base64");
}

describe("flexible checksums", () => {
  test("the published check values of 123456789", () => {
    expect(hexOf(checksumOf("crc32", check))).toBe("cbf43926");
    expect(hexOf(checksumOf("crc32c", check))).toBe("e3069283");
    expect(hexOf(checksumOf("crc64nvme", check))).toBe("ae8b14860a799888");
    expect(hexOf(checksumOf("sha1", check))).toBe("f7c3bc1d808e04732adf679965ccc34ca7ae3441");
  });

  test("the empty body", () => {
    expect(hexOf(checksumOf("crc32", new Uint8Array(0)))).toBe("00000000");
    expect(hexOf(checksumOf("crc32c", new Uint8Array(0)))).toBe("00000000");
    expect(hexOf(checksumOf("crc64nvme", new Uint8Array(0)))).toBe("0000000000000000");
  });

  test("each digest has its algorithm's length", () => {
    for (const algorithm of checksumAlgorithms) expect(Buffer.from(checksumOf(algorithm, check), "base64").byteLength).toBe(checksumDigestBytes[algorithm]);
  });

  test("the same as the AWS SDK's implementations, over random bodies in random splits", async () => {
    const seed = 13_2026;
    console.log(`s3-checksums seed ${seed}`);
    const random = seeded(seed);
    for (let round = 0; round < 20; round += 1) {
      const body = new Uint8Array(Math.floor(random() * 70_000));
      for (let i = 0; i < body.length; i += 1) body[i] = Math.floor(random() * 256);
      for (const algorithm of checksumAlgorithms) {
        const incremental = createChecksum(algorithm);
        for (let at = 0; at < body.length; ) {
          const take = Math.min(body.length - at, 1 + Math.floor(random() * 9000));
          incremental.update(body.subarray(at, at + take));
          at += take;
        }
        expect(incremental.digestBase64()).toBe(await sdkDigest(algorithm, body));
      }
    }
  });

  test("a single changed byte changes every digest", () => {
    const body = new Uint8Array(4096).fill(7);
    const changed = body.slice();
    changed[2048] = 8;
    for (const algorithm of checksumAlgorithms) expect(checksumOf(algorithm, changed)).not.toBe(checksumOf(algorithm, body));
  });

  test("algorithm names in any case; others are not algorithms", () => {
    expect(checksumAlgorithmOf("CRC32C")).toBe("crc32c");
    expect(checksumAlgorithmOf("Crc64Nvme")).toBe("crc64nvme");
    expect(checksumAlgorithmOf("md5")).toBeUndefined();
  });
});
