// Client-side compression of chunks with zstd (Bun.zstdCompressSync / Bun.zstdDecompressSync).
// A compressed ball's chunks each start with one byte saying how the rest is stored:
//   0  as is (zstd would not have made it smaller: already compressed or random data)
//   1  one zstd frame
// Decompression is bounded: a frame must declare its content size, that size may not pass the
// ball's chunk size, and the chunk must be exactly one frame; zstd itself refuses a frame
// whose blocks decode to more than it declared. So a hostile chunk cannot inflate past the
// chunk size however it was crafted.
import { MictlanxError } from "../lib/errors.ts";

export const compression = {
  /** The value of the `compression` tag on a compressed ball. */
  tag: "zstd",
  /** zstd level: 3 is zstd's default, fast both ways. */
  level: 3,
  /** Bytes a stored chunk may have beyond its plaintext (the marker byte). */
  overheadBytes: 1,
} as const;

const markerRaw = 0;
const markerZstd = 1;

export class DecompressError extends MictlanxError {
  constructor(where: string, why: string) {
    super("corrupt", `cannot decompress ${where}: ${why}`);
    this.name = "DecompressError";
  }
}

/** marker ‖ zstd frame, or marker ‖ the bytes as they are when zstd does not shrink them. */
export function compressChunk(plain: Uint8Array): Uint8Array {
  const packed = Bun.zstdCompressSync(plain, { level: compression.level });
  const keep = packed.byteLength < plain.byteLength;
  const body = keep ? packed : plain;
  const out = new Uint8Array(1 + body.byteLength);
  out[0] = keep ? markerZstd : markerRaw;
  out.set(body, 1);
  return out;
}

/** The plaintext of a stored chunk; refuses anything that would inflate past `maxBytes`. */
export function decompressChunk(stored: Uint8Array, maxBytes: number, where: string): Uint8Array {
  if (stored.byteLength === 0) throw new DecompressError(where, "the chunk is empty (no marker byte)");
  const body = stored.subarray(1);
  if (stored[0] === markerRaw) {
    if (body.byteLength > maxBytes) throw new DecompressError(where, `${body.byteLength} bytes is over the chunk size ${maxBytes}`);
    return body;
  }
  if (stored[0] !== markerZstd) throw new DecompressError(where, `unknown marker byte ${stored[0]}`);
  const declared = zstdFrameContentSize(body, where);
  if (declared > maxBytes) throw new DecompressError(where, `it declares ${declared} bytes, over the chunk size ${maxBytes}`);
  let out: Uint8Array;
  try {
    out = Bun.zstdDecompressSync(body);
  } catch (error) {
    throw new DecompressError(where, `zstd refused it (${(error as Error).message})`);
  }
  if (out.byteLength !== declared) throw new DecompressError(where, `it decoded to ${out.byteLength} bytes but declared ${declared}`);
  return out;
}

const zstdMagic = 0xfd2fb528;
const blockMaxBytes = 128 * 1024;

/**
 * The content size a single zstd frame declares, after checking that `frame` is exactly one
 * frame (walking its block headers to its end). Throws when the size is not declared or the
 * bytes are not one well-formed frame.
 */
export function zstdFrameContentSize(frame: Uint8Array, where: string): number {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const need = (at: number, bytes: number) => {
    if (at + bytes > frame.byteLength) throw new DecompressError(where, "the zstd frame is cut short");
  };
  need(0, 5);
  if (view.getUint32(0, true) !== zstdMagic) throw new DecompressError(where, "not a zstd frame");
  const descriptor = view.getUint8(4);
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  if ((descriptor >> 3) & 1) throw new DecompressError(where, "reserved bit set in the zstd frame header");
  const hasChecksum = (descriptor >> 2) & 1;
  const dictionaryIdBytes = [0, 1, 2, 4][descriptor & 3] as number;
  const contentSizeBytes = fcsFlag === 0 ? singleSegment : ([0, 2, 4, 8][fcsFlag] as number);
  if (contentSizeBytes === 0) throw new DecompressError(where, "the zstd frame does not declare its size");
  let at = 5 + (singleSegment ? 0 : 1) + dictionaryIdBytes;
  if (dictionaryIdBytes > 0) throw new DecompressError(where, "the zstd frame needs a dictionary");
  need(at, contentSizeBytes);
  let size: number;
  if (contentSizeBytes === 1) size = view.getUint8(at);
  else if (contentSizeBytes === 2) size = view.getUint16(at, true) + 256;
  else if (contentSizeBytes === 4) size = view.getUint32(at, true);
  else {
    const high = view.getUint32(at + 4, true);
    if (high !== 0) throw new DecompressError(where, "the zstd frame declares more than 4 GiB");
    size = view.getUint32(at, true);
  }
  at += contentSizeBytes;
  // Blocks: a 3-byte header (last flag, type, size), then the block's bytes.
  let regeneratedMax = 0;
  for (;;) {
    need(at, 3);
    const header = view.getUint8(at) | (view.getUint8(at + 1) << 8) | (view.getUint8(at + 2) << 16);
    at += 3;
    const last = header & 1;
    const type = (header >> 1) & 3;
    const blockSize = header >>> 3;
    if (type === 3) throw new DecompressError(where, "reserved block type in the zstd frame");
    const stored = type === 1 ? 1 : blockSize; // RLE: one byte repeated blockSize times
    need(at, stored);
    at += stored;
    regeneratedMax += type === 2 ? blockMaxBytes : blockSize;
    if (last) break;
  }
  if (hasChecksum) {
    need(at, 4);
    at += 4;
  }
  if (at !== frame.byteLength) throw new DecompressError(where, "bytes follow the zstd frame");
  if (regeneratedMax < size) throw new DecompressError(where, `its blocks cannot hold the ${size} bytes it declares`);
  return size;
}
