// Client-side encryption of chunks: AES-256-GCM with a random 12-byte IV per chunk. A sealed
// chunk is iv ‖ ciphertext ‖ tag (28 bytes more than the plaintext). The additional data binds
// the chunk to its bucket, key, index and whether it is the last one, so a chunk moved to
// another ball or position, or a ball cut short at a chunk boundary, fails to open.
// The key never leaves the client; the store only learns that a ball is encrypted.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { MictlanxError, UsageError } from "../lib/errors.ts";

export const sealing = {
  algorithm: "aes-256-gcm",
  /** The value of the `encryption` tag on an encrypted ball. */
  tag: "aes-256-gcm",
  keyBytes: 32,
  ivBytes: 12,
  tagBytes: 16,
  /** Bytes a sealed chunk has beyond its plaintext. */
  overheadBytes: 12 + 16,
} as const;

/** A ball is encrypted and no key was given. Code `usage`: the caller must supply a key. */
export class KeyRequiredError extends MictlanxError {
  constructor(bucket: string, key: string) {
    super("usage", `${bucket}/${key} is encrypted (aes-256-gcm); give the key it was put with (library: new Client({ key }); shell: MICTLANX_KEY=<64 hex digits> or --key-file FILE)`);
    this.name = "KeyRequiredError";
  }
}

/** A chunk did not open: the key is not the one it was sealed with, or its bytes were altered. Code `corrupt`. */
export class DecryptError extends MictlanxError {
  constructor(bucket: string, key: string, index: number) {
    super("corrupt", `cannot decrypt chunk ${index} of ${bucket}/${key}: wrong key or the chunk was altered`);
    this.name = "DecryptError";
  }
}

/** Where a chunk belongs; all of it is authenticated with the chunk. */
export interface ChunkPlace {
  bucket: string;
  key: string;
  index: number;
  /** The ball's last chunk. */
  final: boolean;
}

const utf8 = new TextEncoder();

/** "mictlanx-chunk-v1" ‖ u32 len ‖ bucket ‖ u32 len ‖ key ‖ u32 index ‖ u8 final. Unambiguous by construction. */
export function additionalData(place: ChunkPlace): Uint8Array {
  const label = utf8.encode("mictlanx-chunk-v1");
  const bucket = utf8.encode(place.bucket);
  const key = utf8.encode(place.key);
  const out = new Uint8Array(label.byteLength + 4 + bucket.byteLength + 4 + key.byteLength + 4 + 1);
  const view = new DataView(out.buffer);
  let at = 0;
  out.set(label, at);
  at += label.byteLength;
  view.setUint32(at, bucket.byteLength);
  out.set(bucket, at + 4);
  at += 4 + bucket.byteLength;
  view.setUint32(at, key.byteLength);
  out.set(key, at + 4);
  at += 4 + key.byteLength;
  view.setUint32(at, place.index);
  out[at + 4] = place.final ? 1 : 0;
  return out;
}

function checkKey(key: Uint8Array): void {
  if (key.byteLength !== sealing.keyBytes) throw new UsageError(`an encryption key is ${sealing.keyBytes} bytes (64 hex digits); this one is ${key.byteLength} bytes`);
}

/** iv ‖ AES-256-GCM(plaintext) ‖ tag. */
export function sealChunk(key: Uint8Array, plaintext: Uint8Array, place: ChunkPlace, iv: Uint8Array = randomBytes(sealing.ivBytes)): Uint8Array {
  checkKey(key);
  const cipher = createCipheriv(sealing.algorithm, key, iv, { authTagLength: sealing.tagBytes });
  cipher.setAAD(additionalData(place));
  const body = cipher.update(plaintext);
  const tail = cipher.final();
  const tag = cipher.getAuthTag();
  const out = new Uint8Array(sealing.ivBytes + body.byteLength + tail.byteLength + sealing.tagBytes);
  out.set(iv, 0);
  out.set(body, sealing.ivBytes);
  out.set(tail, sealing.ivBytes + body.byteLength);
  out.set(tag, out.byteLength - sealing.tagBytes);
  return out;
}

/** The plaintext of a sealed chunk, or DecryptError when the key is wrong or any byte (or the place) differs. */
export function openChunk(key: Uint8Array, sealed: Uint8Array, place: ChunkPlace): Uint8Array {
  checkKey(key);
  if (sealed.byteLength < sealing.overheadBytes) throw new DecryptError(place.bucket, place.key, place.index);
  const iv = sealed.subarray(0, sealing.ivBytes);
  const tag = sealed.subarray(sealed.byteLength - sealing.tagBytes);
  const body = sealed.subarray(sealing.ivBytes, sealed.byteLength - sealing.tagBytes);
  try {
    const decipher = createDecipheriv(sealing.algorithm, key, iv, { authTagLength: sealing.tagBytes });
    decipher.setAAD(additionalData(place));
    decipher.setAuthTag(tag);
    const head = decipher.update(body);
    const tail = decipher.final(); // throws when the tag does not match
    if (tail.byteLength === 0) return new Uint8Array(head.buffer, head.byteOffset, head.byteLength);
    const out = new Uint8Array(head.byteLength + tail.byteLength);
    out.set(head, 0);
    out.set(tail, head.byteLength);
    return out;
  } catch {
    throw new DecryptError(place.bucket, place.key, place.index);
  }
}

/** A key written as 64 hex digits (whitespace around it ignored). */
export function keyFromHex(text: string, where = "the key"): Uint8Array {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new UsageError(`${where} must be 64 hex digits (32 bytes), e.g. from: openssl rand -hex 32`);
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

/** A key file holds 32 raw bytes, or 64 hex digits (a trailing newline is fine). */
export function keyFromFile(path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new UsageError(`cannot read the key file ${path}: ${(error as Error).message}`);
  }
  if (bytes.byteLength === sealing.keyBytes) return Uint8Array.from(bytes);
  const text = new TextDecoder().decode(bytes);
  if (/^\s*[0-9a-fA-F]{64}\s*$/.test(text)) return keyFromHex(text);
  throw new UsageError(`the key file ${path} must hold 32 raw bytes or 64 hex digits; it has ${bytes.byteLength} bytes`);
}
