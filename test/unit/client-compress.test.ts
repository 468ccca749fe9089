// zstd per chunk: round trips, incompressible chunks stored as they are, and hostile frames
// (undeclared size, a size over the chunk size, a lying size, extra frames) refused before they
// can inflate.
import { describe, expect, test } from "bun:test";
import { compressChunk, decompressChunk, DecompressError, zstdFrameContentSize } from "../../src/lib/compress.ts";
import { randomBytes, seededRandom } from "../support/random.ts";

const { random, seed } = seededRandom("client-compress");
const where = "chunk 0 of b/k";

/** A hand-made zstd frame: single segment with a 1-byte content size, then RLE blocks. */
function frame(declared: number | null, blocks: Array<{ size: number; last: boolean }>): Uint8Array {
  const header = declared === null ? [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58] : [0x28, 0xb5, 0x2f, 0xfd, 0x20, declared];
  const body = blocks.flatMap(({ size, last }) => {
    const h = (size << 3) | (1 << 1) | (last ? 1 : 0);
    return [h & 255, (h >> 8) & 255, (h >> 16) & 255, 0x41];
  });
  return new Uint8Array([...header, ...body]);
}
const marked = (zstd: Uint8Array) => new Uint8Array([1, ...zstd]);

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DecompressError);
    return (error as Error).message;
  }
  throw new Error("expected a DecompressError");
}

describe(`zstd chunks (seed ${seed})`, () => {
  test("compressible data shrinks and comes back exact", () => {
    const plain = new TextEncoder().encode(Array.from({ length: 30_000 }, (_, i) => `row ${i % 97},${(i * 7) % 13}\n`).join(""));
    const stored = compressChunk(plain);
    expect(stored[0]).toBe(1);
    expect(stored.byteLength).toBeLessThan(plain.byteLength / 4);
    expect(Buffer.compare(Buffer.from(decompressChunk(stored, plain.byteLength, where)), Buffer.from(plain))).toBe(0);
  });

  test("incompressible data is stored as it is, one marker byte longer", () => {
    const plain = randomBytes(random, 256 * 1024);
    const stored = compressChunk(plain);
    expect(stored[0]).toBe(0);
    expect(stored.byteLength).toBe(plain.byteLength + 1);
    expect(Buffer.compare(Buffer.from(decompressChunk(stored, plain.byteLength, where)), Buffer.from(plain))).toBe(0);
    expect(refusal(() => decompressChunk(stored, plain.byteLength - 1, where))).toContain("over the chunk size");
  });

  test("empty and tiny chunks", () => {
    for (const size of [0, 1, 7]) {
      const plain = randomBytes(random, size);
      expect(decompressChunk(compressChunk(plain), 8, where).byteLength).toBe(size);
    }
  });

  test("an honest hand-made frame decodes", () => {
    expect(decompressChunk(marked(frame(10, [{ size: 10, last: true }])), 10, where)).toEqual(new Uint8Array(10).fill(0x41));
  });

  test("a frame that does not declare its size is refused (it could inflate without bound)", () => {
    const bomb = frame(null, Array.from({ length: 40 }, (_, i) => ({ size: 100_000, last: i === 39 })));
    expect(refusal(() => decompressChunk(marked(bomb), 1024 * 1024, where))).toContain("does not declare its size");
  });

  test("a declared size over the chunk size is refused before decoding", () => {
    expect(refusal(() => decompressChunk(marked(frame(200, [{ size: 200, last: true }])), 100, where))).toContain("declares 200 bytes, over the chunk size 100");
  });

  test("a frame whose blocks decode to more than it declares is refused", () => {
    expect(refusal(() => decompressChunk(marked(frame(10, [{ size: 100_000, last: true }])), 1024 * 1024, where))).toContain("cannot decompress chunk 0 of b/k");
  });

  test("bytes after the frame (a second frame) are refused", () => {
    const one = frame(10, [{ size: 10, last: true }]);
    const two = new Uint8Array([...one, ...frame(null, [{ size: 100_000, last: true }])]);
    expect(refusal(() => decompressChunk(marked(two), 1024 * 1024, where))).toContain("bytes follow the zstd frame");
  });

  test("garbage, cut-short frames and unknown markers are refused", () => {
    expect(refusal(() => decompressChunk(new Uint8Array(0), 10, where))).toContain("no marker byte");
    expect(refusal(() => decompressChunk(new Uint8Array([7, 1, 2]), 10, where))).toContain("unknown marker byte 7");
    expect(refusal(() => decompressChunk(marked(randomBytes(random, 64)), 1024, where))).toContain("not a zstd frame");
    const real = Bun.zstdCompressSync(new Uint8Array(4096));
    expect(zstdFrameContentSize(real, where)).toBe(4096);
    expect(refusal(() => zstdFrameContentSize(real.subarray(0, real.byteLength - 1), where))).toContain("cut short");
  });

  test("random frames never decode past the bound", () => {
    for (let i = 0; i < 200; i += 1) {
      const size = Math.floor(random() * 5000);
      const stored = compressChunk(new Uint8Array(size).fill(Math.floor(random() * 4)));
      // Flip a byte anywhere: it is refused or decodes to at most the bound, never more.
      const damaged = stored.slice();
      const at = Math.floor(random() * damaged.byteLength);
      damaged[at] = (damaged[at] ?? 0) ^ 0xff;
      try {
        expect(decompressChunk(damaged, 5000, where).byteLength).toBeLessThanOrEqual(5000);
      } catch (error) {
        expect(error).toBeInstanceOf(DecompressError);
      }
    }
  });
});
