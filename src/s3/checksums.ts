// The flexible checksums S3 clients send with an upload (x-amz-checksum-<algorithm>, as a header
// or an aws-chunked trailer): CRC32, CRC32C, CRC64NVME, SHA1, SHA256, each as S3 writes it, the
// big-endian digest in base64. Pure and incremental (update as bytes arrive, digest at the end),
// so a put checks a body it never holds whole; UploadPart uses the same interface.
// CRC32 is zlib's (native). CRC32C and CRC64NVME have no native implementation in Bun or Node,
// so they are table-driven here (reflected, slicing-by-8: eight lookups per eight bytes); CRC64
// is kept as two 32-bit halves because BigInt arithmetic per byte would be far too slow.
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

/**
 * Slicing-by-8 tables for a reflected CRC: table k (entries k*256 … k*256+255) is the CRC of a
 * byte followed by k zero bytes, so eight input bytes cost eight lookups and no per-bit work.
 */
function slicingTables(first: (n: number) => [number, number], width: 32 | 64): { hi: Uint32Array; lo: Uint32Array } {
  const hi = new Uint32Array(8 * 256);
  const lo = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n += 1) [hi[n], lo[n]] = first(n);
  for (let k = 1; k < 8; k += 1) {
    for (let n = 0; n < 256; n += 1) {
      const prevHi = hi[(k - 1) * 256 + n] as number;
      const prevLo = lo[(k - 1) * 256 + n] as number;
      const index = prevLo & 0xff;
      // (prev >> 8) ^ table0[prev & 0xff], on the two halves (a 32-bit CRC has hi = 0).
      const shiftedLo = width === 64 ? ((prevLo >>> 8) | (prevHi << 24)) >>> 0 : prevLo >>> 8;
      hi[k * 256 + n] = ((prevHi >>> 8) ^ (hi[index] as number)) >>> 0;
      lo[k * 256 + n] = (shiftedLo ^ (lo[index] as number)) >>> 0;
    }
  }
  return { hi, lo };
}

/** The CRC of one byte `n` by the bit-at-a-time definition, for a reflected polynomial split in halves. */
function bitwise(n: number, polyHi: number, polyLo: number, width: 32 | 64): [number, number] {
  let h = 0;
  let l = n;
  for (let k = 0; k < 8; k += 1) {
    const odd = l & 1;
    l = width === 64 ? ((l >>> 1) | ((h & 1) << 31)) >>> 0 : l >>> 1;
    h = h >>> 1;
    if (odd) {
      h = (h ^ polyHi) >>> 0;
      l = (l ^ polyLo) >>> 0;
    }
  }
  return [h, l];
}

/** CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF. */
const crc32cTable = slicingTables((n) => bitwise(n, 0, 0x82f63b78, 32), 32).lo;

class Crc32cChecksum implements IncrementalChecksum {
  readonly algorithm = "crc32c";
  private crc = 0xffffffff;
  update(bytes: Uint8Array): void {
    let crc = this.crc;
    const t = crc32cTable;
    const length = bytes.length;
    let i = 0;
    for (; i + 8 <= length; i += 8) {
      crc ^= (bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24);
      crc =
        (t[1792 + (crc & 0xff)] as number) ^ (t[1536 + ((crc >>> 8) & 0xff)] as number) ^ (t[1280 + ((crc >>> 16) & 0xff)] as number) ^ (t[1024 + (crc >>> 24)] as number) ^
        (t[768 + (bytes[i + 4] as number)] as number) ^ (t[512 + (bytes[i + 5] as number)] as number) ^ (t[256 + (bytes[i + 6] as number)] as number) ^ (t[bytes[i + 7] as number] as number);
    }
    for (; i < length; i += 1) crc = (t[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
    this.crc = crc >>> 0;
  }
  digestBase64(): string {
    return uint32Base64(this.crc ^ 0xffffffff);
  }
}

/**
 * CRC-64/NVME: reflected polynomial 0x9A6C9329AC4BC9B5 (0xAD93D23594C935A9 forward), init and
 * final xor all ones. The tables' entries and the register are split into high and low words.
 */
const crc64Tables = slicingTables((n) => bitwise(n, 0x9a6c9329, 0xac4bc9b5, 64), 64);

class Crc64NvmeChecksum implements IncrementalChecksum {
  readonly algorithm = "crc64nvme";
  private hi = 0xffffffff;
  private lo = 0xffffffff;
  update(bytes: Uint8Array): void {
    let hi = this.hi;
    let lo = this.lo;
    const th = crc64Tables.hi;
    const tl = crc64Tables.lo;
    const length = bytes.length;
    let i = 0;
    for (; i + 8 <= length; i += 8) {
      const l = lo ^ ((bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24));
      const h = hi ^ ((bytes[i + 4] as number) | ((bytes[i + 5] as number) << 8) | ((bytes[i + 6] as number) << 16) | ((bytes[i + 7] as number) << 24));
      const i7 = 1792 + (l & 0xff), i6 = 1536 + ((l >>> 8) & 0xff), i5 = 1280 + ((l >>> 16) & 0xff), i4 = 1024 + (l >>> 24);
      const i3 = 768 + (h & 0xff), i2 = 512 + ((h >>> 8) & 0xff), i1 = 256 + ((h >>> 16) & 0xff), i0 = h >>> 24;
      lo = ((tl[i7] as number) ^ (tl[i6] as number) ^ (tl[i5] as number) ^ (tl[i4] as number) ^ (tl[i3] as number) ^ (tl[i2] as number) ^ (tl[i1] as number) ^ (tl[i0] as number)) >>> 0;
      hi = ((th[i7] as number) ^ (th[i6] as number) ^ (th[i5] as number) ^ (th[i4] as number) ^ (th[i3] as number) ^ (th[i2] as number) ^ (th[i1] as number) ^ (th[i0] as number)) >>> 0;
    }
    for (; i < length; i += 1) {
      const index = (lo ^ (bytes[i] as number)) & 0xff;
      lo = (((lo >>> 8) | (hi << 24)) ^ (tl[index] as number)) >>> 0;
      hi = ((hi >>> 8) ^ (th[index] as number)) >>> 0;
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
