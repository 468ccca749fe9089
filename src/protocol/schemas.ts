// Shapes shared by several services' messages. Every bound comes from src/lib/limits.ts.
import { z } from "zod";
import { limits } from "../lib/limits.ts";

const utf8 = new TextEncoder();
const byteLength = (text: string) => utf8.encode(text).byteLength;

/** A name: non-empty, no NUL or control characters, at most `max` UTF-8 bytes. */
export function name(what: string, max: number) {
  return z
    .string()
    .min(1, `${what} must not be empty`)
    .refine((text) => byteLength(text) <= max, `${what} is longer than ${max} bytes`)
    .refine((text) => !/[\u0000-\u001f]/.test(text), `${what} must not contain control characters`);
}

export const bucketName = name("bucket", limits.bucketNameBytesMax);
export const ballKey = name("key", limits.keyBytesMax);
export const ballIdName = name("ball id", limits.ballIdBytesMax);
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
