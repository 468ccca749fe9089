// Damage a stored replica on disk the way a failing disk would: find the chunk's bytes in the
// peer's shard files and flip one of them.
import { readdirSync, openSync, readSync, writeSync, closeSync, statSync } from "node:fs";
import { join } from "node:path";

/** Flip one byte of the first occurrence of `needle` in the peer's shards; false if not found. */
export function flipByteOnDisk(peerDataDir: string, needle: Uint8Array): boolean {
  const shardsDir = join(peerDataDir, "shards");
  for (const name of readdirSync(shardsDir).filter((file) => file.endsWith(".shard"))) {
    const path = join(shardsDir, name);
    const fd = openSync(path, "r+");
    try {
      const bytes = new Uint8Array(statSync(path).size);
      readSync(fd, bytes, 0, bytes.byteLength, 0);
      const at = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(Buffer.from(needle));
      if (at < 0) continue;
      const target = at + Math.floor(needle.byteLength / 2);
      writeSync(fd, new Uint8Array([(bytes[target] ?? 0) ^ 0xff]), 0, 1, target);
      return true;
    } finally {
      closeSync(fd);
    }
  }
  return false;
}

/** Write `bytes` over a file at `offset` (damage placed by hand, e.g. inside a record header). */
export function overwriteAt(path: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, bytes, 0, bytes.byteLength, offset);
  } finally {
    closeSync(fd);
  }
}

/** Flip the bits of `mask` in the byte at `offset`. */
export function xorByteAt(path: string, offset: number, mask: number): void {
  const fd = openSync(path, "r+");
  try {
    const one = new Uint8Array(1);
    readSync(fd, one, 0, 1, offset);
    writeSync(fd, new Uint8Array([(one[0] ?? 0) ^ mask]), 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}
