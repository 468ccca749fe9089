// Chunk refs from callers: validated here, once, at the edge of the engine. Names are stored in
// records and in the index, never used as paths, so the rules are about size and well-formedness.
import { BadRequestError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import type { ChunkRef } from "./types.ts";
import { chunkBallBytesMax } from "./record.ts";

const int32Max = 2 ** 31 - 1;

/** `${ball}_${index}`: the chunk key the design names. */
export function chunkKey(ref: ChunkRef): string {
  return `${ref.ball}_${ref.index}`;
}

/** `bucket/ball_index`, used in messages and as a map key (bucket names cannot hold NUL). */
export function refLabel(ref: ChunkRef): string {
  return `${ref.bucket}/${chunkKey(ref)}`;
}

/** A map key for a ref that cannot collide across different refs. */
export function refMapKey(ref: ChunkRef): string {
  return `${ref.bucket}\u0000${ref.ball}\u0000${ref.index}`;
}

function checkName(what: string, value: unknown, maxBytes: number): string {
  if (typeof value !== "string") throw new BadRequestError(`${what} must be a string`);
  if (value.length === 0) throw new BadRequestError(`${what} must not be empty`);
  if (value.includes("\u0000")) throw new BadRequestError(`${what} must not contain NUL`);
  // Lone surrogates would be replaced on encoding, making two names one on disk.
  if (!value.isWellFormed()) throw new BadRequestError(`${what} is not well-formed UTF-16 text`);
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > maxBytes) {
    throw new BadRequestError(`${what} is ${bytes} bytes of UTF-8; the limit is ${maxBytes}`);
  }
  return value;
}

export function validateBucket(bucket: unknown): string {
  return checkName("bucket name", bucket, limits.bucketNameBytesMax);
}

/** A ball's key, as a record carries it (record version 2). */
export function validateKey(key: unknown): string {
  return checkName("ball key", key, limits.keyBytesMax);
}

export function validateIndex(index: unknown): number {
  if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index > int32Max) {
    throw new BadRequestError(`chunk index must be an integer in 0..${int32Max}, got ${String(index)}`);
  }
  return index;
}

/** A checked copy of a caller's ref (extra fields dropped). */
export function validateRef(ref: unknown): ChunkRef {
  if (typeof ref !== "object" || ref === null) throw new BadRequestError("chunk ref must be an object");
  const r = ref as Record<string, unknown>;
  return {
    bucket: validateBucket(r.bucket),
    ball: checkName("ball id", r.ball, chunkBallBytesMax),
    index: validateIndex(r.index),
  };
}

export function validateChunkBytes(ref: ChunkRef, bytes: unknown): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new BadRequestError(`chunk ${refLabel(ref)}: bytes must be a Uint8Array`);
  if (bytes.byteLength > limits.chunkBytesMax) {
    throw new BadRequestError(
      `chunk ${refLabel(ref)} is ${bytes.byteLength} bytes; the limit is ${limits.chunkBytesMax}`,
    );
  }
  return bytes;
}

// --- list cursors and prefixes ---------------------------------------------------------------

/** A manifest listing's cursor: base64url of the last (bucket, key, object id) returned. */
export function encodeManifestCursor(at: { bucket: string; key: string; ball: string }): string {
  return Buffer.from(JSON.stringify([at.bucket, at.key, at.ball]), "utf8").toString("base64url");
}

export function decodeManifestCursor(cursor: unknown): { bucket: string; key: string; ball: string } {
  const bad = () => new BadRequestError("manifest cursor is not one this peer handed out");
  if (typeof cursor !== "string" || cursor.length === 0 || cursor.length > 8 * limits.keyBytesMax) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed.length !== 3) throw bad();
  try {
    return { bucket: validateBucket(parsed[0]), key: validateKey(parsed[1]), ball: checkName("object id", parsed[2], chunkBallBytesMax) };
  } catch {
    throw bad();
  }
}

/** Opaque to callers: base64url of the last key returned. */
export function encodeCursor(ref: ChunkRef): string {
  return Buffer.from(JSON.stringify([ref.bucket, ref.ball, ref.index]), "utf8").toString("base64url");
}

export function decodeCursor(cursor: unknown): ChunkRef {
  const bad = () => new BadRequestError("list cursor is not one this peer handed out");
  if (typeof cursor !== "string" || cursor.length === 0 || cursor.length > 4 * limits.keyBytesMax) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed.length !== 3) throw bad();
  try {
    return validateRef({ bucket: parsed[0], ball: parsed[1], index: parsed[2] });
  } catch {
    throw bad();
  }
}

const codePointMax = 0x10ffff;
const surrogateFirst = 0xd800;
const surrogateLast = 0xdfff;

/**
 * The least string greater than every string that starts with `prefix`, in code point order
 * (which is SQLite's BINARY order on UTF-8); undefined when there is none. Lets a prefix
 * listing be a range scan on the primary key.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix, (c) => c.codePointAt(0) ?? 0);
  while (points.length > 0) {
    const last = points.pop() ?? 0;
    if (last === codePointMax) continue;
    const next = last + 1 === surrogateFirst ? surrogateLast + 1 : last + 1;
    return String.fromCodePoint(...points, next);
  }
  return undefined;
}
