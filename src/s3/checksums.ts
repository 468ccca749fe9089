// The flexible checksums S3 clients send with an upload (x-amz-checksum-<algorithm>, as a header
// or an aws-chunked trailer): CRC32, CRC32C, CRC64NVME, SHA1, SHA256, each as S3 writes it, the
// big-endian digest in base64. Pure and incremental (update as bytes arrive, digest at the end),
// so a put checks a body it never holds whole; UploadPart uses the same interface.
// CRC32 is zlib's (native). CRC32C and CRC64NVME have no native implementation in Bun or Node,
// so they are table-driven here (reflected, one table lookup per byte); CRC64 is kept as two
// 32-bit halves because BigInt arithmetic per byte would be far too slow for large bodies.
import { createHash, type Hash } from "node:crypto";
import { crc32 } from "node:zlib";

export const checksumAlgorithms = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"] as const;
export type ChecksumAlgorithm = (typeof checksumAlgorithms)[number];

/** A checksum over bytes given in any split. */
export interface IncrementalChecksum {
  readonly algorithm: ChecksumAlgorithm;
  update(bytes: Uint8Array): void;
  /** The digest as S3 sends it: base64 of its big-endian bytes. Call once. */
  digestBase64(): string;
}

/** The header (and trailer) that carries the algorithm's value: x-amz-checksum-crc32c, … */
export function checksumHeader(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm}`;
}

/** An algorithm from its S3 name in any case (CRC32C, crc64nvme, …); undefined for one S3 does not define. */
export function checksumAlgorithmOf(name: string): ChecksumAlgorithm | undefined {
  const lower = name.trim().toLowerCase();
  return checksumAlgorithms.find((algorithm) => algorithm === lower);
}

/** The length in bytes of the algorithm's digest: a sent value of another length is malformed. */
export const checksumDigestBytes: Readonly<Record<ChecksumAlgorithm, number>> = { crc32: 4, crc32c: 4, crc64nvme: 8, sha1: 20, sha256: 32 };

export function createChecksum(algorithm: ChecksumAlgorithm): IncrementalChecksum {
  switch (algorithm) {
    case "crc32":
      return new Crc32Checksum();
    case "crc32c":
      return new Crc32cChecksum();
    case "crc64nvme":
      return new Crc64NvmeChecksum();
    case "sha1":
    case "sha256":
      return new HashChecksum(algorithm, createHash(algorithm));
  }
}

/** The whole of `bytes` at once (tests, small bodies). */
export function checksumOf(algorithm: ChecksumAlgorithm, bytes: Uint8Array): string {
  const checksum = createChecksum(algorithm);
  checksum.update(bytes);
  return checksum.digestBase64();
}

function uint32Base64(value: number): string {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value >>> 0);
  return Buffer.from(bytes).toString("base64");
}

class Crc32Checksum implements IncrementalChecksum {
  readonly algorithm = "crc32";
  private value = 0;
  update(bytes: Uint8Array): void {
    this.value = crc32(bytes, this.value);
  }
  digestBase64(): string {
    return uint32Base64(this.value);
  }
}

/** CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF. */
const crc32cTable = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

class Crc32cChecksum implements IncrementalChecksum {
  readonly algorithm = "crc32c";
  private crc = 0xffffffff;
  update(bytes: Uint8Array): void {
    let crc = this.crc;
    const table = crc32cTable;
    for (let i = 0; i < bytes.length; i += 1) crc = (table[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
    this.crc = crc;
  }
  digestBase64(): string {
    return uint32Base64(this.crc ^ 0xffffffff);
  }
}

/**
 * CRC-64/NVME: reflected polynomial 0x9A6C9329AC4BC9B5 (0xAD93D23594C935A9 forward), init and
 * final xor all ones. The table's entries and the register are split into high and low words.
 */
const crc64Tables = (() => {
  const hi = new Uint32Array(256);
  const lo = new Uint32Array(256);
  const polyHi = 0x9a6c9329;
  const polyLo = 0xac4bc9b5;
  for (let n = 0; n < 256; n += 1) {
    let h = 0;
    let l = n;
    for (let k = 0; k < 8; k += 1) {
      const odd = l & 1;
      l = ((l >>> 1) | ((h & 1) << 31)) >>> 0;
      h = h >>> 1;
      if (odd) {
        h = (h ^ polyHi) >>> 0;
        l = (l ^ polyLo) >>> 0;
      }
    }
    hi[n] = h;
    lo[n] = l;
  }
  return { hi, lo };
})();

class Crc64NvmeChecksum implements IncrementalChecksum {
  readonly algorithm = "crc64nvme";
  private hi = 0xffffffff;
  private lo = 0xffffffff;
  update(bytes: Uint8Array): void {
    let hi = this.hi;
    let lo = this.lo;
    const tableHi = crc64Tables.hi;
    const tableLo = crc64Tables.lo;
    for (let i = 0; i < bytes.length; i += 1) {
      const index = (lo ^ (bytes[i] as number)) & 0xff;
      lo = (((lo >>> 8) | (hi << 24)) ^ (tableLo[index] as number)) >>> 0;
      hi = ((hi >>> 8) ^ (tableHi[index] as number)) >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
  }
  digestBase64(): string {
    const bytes = new Uint8Array(8);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, (this.hi ^ 0xffffffff) >>> 0);
    view.setUint32(4, (this.lo ^ 0xffffffff) >>> 0);
    return Buffer.from(bytes).toString("base64");
  }
}

class HashChecksum implements IncrementalChecksum {
  constructor(
    readonly algorithm: "sha1" | "sha256",
    private readonly hash: Hash,
  ) {}
  update(bytes: Uint8Array): void {
    this.hash.update(bytes);
  }
  digestBase64(): string {
    return this.hash.digest("base64");
  }
}
