// Cursors and key ranges. SQLite compares TEXT byte by byte in UTF-8 (BINARY collation), which
// is code point order; JS compares UTF-16 code units, which is not (U+FFFF sorts after U+10000
// in JS and before it in SQLite). Everything here works in code points so it agrees with SQLite.
import { BadRequestError } from "../lib/errors.ts";

const surrogate = /[\uD800-\uDFFF]/;

/** SQLite's order for two strings: negative, zero or positive. */
export function compareUtf8(a: string, b: string): number {
  // Without surrogates, UTF-16 code unit order is code point order: no bytes to make (the
  // holders of every chunk of a get are ordered with this).
  if (!surrogate.test(a) && !surrogate.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * The least string greater than every string that starts with `prefix`, or undefined when none
 * exists (an empty prefix, or one made only of U+10FFFF). Increment the last code point,
 * stepping over the surrogate range, which no well-formed key contains.
 */
export function prefixEnd(prefix: string): string | undefined {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!;
    const next = last === 0xd7ff ? 0xe000 : last + 1;
    if (next <= 0x10ffff) return points.join("") + String.fromCodePoint(next);
  }
  return undefined;
}

/** The key range a listing reads: `key > lower` (or `>=` when inclusive) and `key < upper`. */
export type KeyRange = { lower: string; inclusive: boolean; upper?: string };

/** Range for keys that start with `prefix` and come after the cursor `after`. */
export function keyRange(prefix: string, after: string | undefined): KeyRange {
  const upper = prefix.length > 0 ? prefixEnd(prefix) : undefined;
  if (after !== undefined && compareUtf8(after, prefix) >= 0) return { lower: after, inclusive: false, upper };
  return { lower: prefix, inclusive: true, upper };
}

/** A position among chunks: (internal ball number, chunk index), as an opaque string. */
export type ChunkCursor = { ball: number; idx: number };

export const chunkCursorStart: ChunkCursor = { ball: -1, idx: -1 };

export function encodeChunkCursor(cursor: ChunkCursor): string {
  return `${cursor.ball}:${cursor.idx}`;
}

export function decodeChunkCursor(after: string | undefined): ChunkCursor {
  if (after === undefined) return chunkCursorStart;
  const match = /^(\d{1,15}):(\d{1,15})$/.exec(after);
  if (match === null) throw new BadRequestError(`"${after}" is not a cursor this listing gave out; pass back its "next"`);
  return { ball: Number(match[1]), idx: Number(match[2]) };
}
