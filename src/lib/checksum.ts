// Chunk checksums: xxHash3-64 through Bun.hash (tens of GB/s here; sha256 would cap the data
// path at ~330 MiB/s per core). Carried as a bigint in memory and on disk (u64), and as
// 16 lowercase hex digits wherever a person reads it (CLI, JSON, catalog).
export function chunkChecksum(bytes: Uint8Array): bigint {
  return BigInt.asUintN(64, Bun.hash.xxHash3(bytes));
}

export function checksumHex(checksum: bigint): string {
  return checksum.toString(16).padStart(16, "0");
}

export function checksumFromHex(hex: string): bigint {
  return BigInt(`0x${hex}`);
}
