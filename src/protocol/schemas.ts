// Shapes shared by several services' messages. Every bound comes from src/lib/limits.ts.
import { z } from "zod";
import { limits } from "../lib/limits.ts";
import { newNameProblem } from "../lib/names.ts";

const utf8 = new TextEncoder();
const byteLength = (text: string) => utf8.encode(text).byteLength;

/**
 * A name as it may be stored and read: non-empty, no C0 control characters (never accepted on
 * the wire), at most `max` UTF-8 bytes. Reads, listings and deletes take these, so names stored
 * before the rule for new names (below) stay readable.
 */
export function name(what: string, max: number) {
  return z
    .string()
    .min(1, `${what} must not be empty`)
    .refine((text) => byteLength(text) <= max, `${what} is longer than ${max} bytes`)
    .refine((text) => !/[\u0000-\u001f]/.test(text), `${what} must not contain control characters`);
}

/** Text checked by the rule for new names (src/lib/names.ts); the message names the code point. */
function newNameText<T extends z.ZodType<string>>(what: string, schema: T) {
  return schema.superRefine((text, context) => {
    const problem = newNameProblem(what, text);
    if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
  });
}

/** A name a write creates (a put's bucket, key, ball id): no control characters, no bidi controls. */
export function newName(what: string, max: number) {
  return newNameText(what, name(what, max));
}

export const bucketName = name("bucket", limits.bucketNameBytesMax);
export const ballKey = name("key", limits.keyBytesMax);
export const ballIdName = name("ball id", limits.ballIdBytesMax);
export const newBucketName = newName("bucket", limits.bucketNameBytesMax);
export const newBallKey = newName("key", limits.keyBytesMax);
export const newBallIdName = newName("ball id", limits.ballIdBytesMax);
export const peerId = name("peer id", limits.peerIdBytesMax);
/** The peer-level name of a ball version's chunks (the catalog's object id). */
export const chunkBall = name("ball", limits.ballIdBytesMax + 64);
export const chunkIndex = z.number().int().min(0).max(0x7fff_ffff);
export const checksumHex = z.string().regex(/^[0-9a-f]{16}$/, "checksum must be 16 hex digits");
export const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "checksum must be 64 hex digits (sha256)");
/** Binary: MessagePack `bin` arrives as a Uint8Array (a Buffer in Bun). */
export const bytes = z.custom<Uint8Array>((value) => value instanceof Uint8Array, "expected binary data");
export const chunkBytes = bytes.refine((data) => data.byteLength <= limits.chunkBytesMax, `chunk is larger than ${limits.chunkBytesMax} bytes`);
export const address = z.string().regex(/^[^\s:]+:\d{1,5}$/, "address must be host:port");
export const byteCount = z.number().int().min(0);
export const pageLimit = z.number().int().min(1).max(limits.listPageMax);
export const cursor = z.string().max(limits.keyBytesMax * 2 + 64);
export const tags = z
  .record(z.string().min(1).max(limits.tagBytesMax), z.string().max(limits.tagBytesMax))
  .refine((record) => Object.keys(record).length <= limits.tagCountMax, `at most ${limits.tagCountMax} tags`);
/** The tags a write sets: names and values under the rule for new names. */
export const newTags = z
  .record(newNameText("tag name", z.string().min(1).max(limits.tagBytesMax)), newNameText("tag value", z.string().max(limits.tagBytesMax)))
  .refine((record) => Object.keys(record).length <= limits.tagCountMax, `at most ${limits.tagCountMax} tags`);
/** A content type a write sets (may be empty: unknown); shown by `stat`, so under the same rule. */
export const newContentType = newNameText("content type", z.string().max(limits.contentTypeBytesMax));
