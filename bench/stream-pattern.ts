// The bytes of a streamed bench ball, made and checked piece by piece so that neither the writer
// nor the reader ever holds a whole ball (a 1 GiB ball is never one buffer).
//
// Ball `ball` is a run of blocks of base.byteLength bytes: block k is the base with its first
// patternHeaderBytes replaced by (ball, k) as two float64s. Every block differs from every other
// (a chunk written to the wrong index or ball is caught), and both ends compute any stretch of it
// from its offset alone with a copy, so a check costs a memcpy and a memcmp, not a hash.

export const patternHeaderBytes = 16;

/** Write the pattern's bytes [offset, offset + into.byteLength) of ball `ball` into `into`. */
export function fillPattern(into: Uint8Array, base: Uint8Array, ball: number, offset: number): Uint8Array {
  const blockBytes = base.byteLength;
  if (blockBytes < patternHeaderBytes) throw new Error(`a pattern block is at least ${patternHeaderBytes} bytes, got ${blockBytes}`);
  const header = new Uint8Array(patternHeaderBytes);
  const view = new DataView(header.buffer);
  let at = 0;
  while (at < into.byteLength) {
    const position = offset + at;
    const block = Math.floor(position / blockBytes);
    const within = position - block * blockBytes;
    const take = Math.min(blockBytes - within, into.byteLength - at);
    into.set(base.subarray(within, within + take), at);
    if (within < patternHeaderBytes) {
      view.setFloat64(0, ball);
      view.setFloat64(8, block);
      const headerEnd = Math.min(patternHeaderBytes, within + take);
      into.set(header.subarray(within, headerEnd), at);
    }
    at += take;
  }
  return into;
}

/**
 * Ball `ball` of `totalBytes` as pieces of at most pieceBytes. One buffer is refilled for each
 * piece: the client copies a piece into its chunk before it asks for the next (chunker.ts), and
 * were that ever not so, the read-back check would fail rather than pass wrongly.
 */
export async function* patternPieces(base: Uint8Array, ball: number, totalBytes: number, pieceBytes: number): AsyncGenerator<Uint8Array> {
  const piece = new Uint8Array(pieceBytes);
  for (let offset = 0; offset < totalBytes; offset += pieceBytes) {
    const length = Math.min(pieceBytes, totalBytes - offset);
    yield fillPattern(piece.subarray(0, length), base, ball, offset);
  }
}

/** Checks a ball read back in pieces of any size against the pattern, holding one piece's worth of scratch. */
export class PatternCheck {
  private offset = 0;
  private scratch = new Uint8Array(0);

  constructor(
    private readonly base: Uint8Array,
    private readonly ball: number,
  ) {}

  get checkedBytes(): number {
    return this.offset;
  }

  /** Throws at the first piece that differs from the pattern at its offset. */
  update(piece: Uint8Array): void {
    if (this.scratch.byteLength < piece.byteLength) this.scratch = new Uint8Array(piece.byteLength);
    const expected = fillPattern(this.scratch.subarray(0, piece.byteLength), this.base, this.ball, this.offset);
    if (Buffer.compare(asBuffer(piece), asBuffer(expected)) !== 0) {
      throw new Error(`ball ${this.ball}: the ${piece.byteLength} bytes read at offset ${this.offset} differ from what was written`);
    }
    this.offset += piece.byteLength;
  }

  /** Throws unless exactly totalBytes were read. */
  finish(totalBytes: number): void {
    if (this.offset !== totalBytes) throw new Error(`ball ${this.ball}: read ${this.offset} bytes, wrote ${totalBytes}`);
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
