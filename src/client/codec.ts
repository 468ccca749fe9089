// What a chunk's bytes go through between the caller and the store: compress (zstd), then
// encrypt (AES-256-GCM) on a put; open, then decompress on a get. A ball's tags say which:
// `compression=zstd`, `encryption=aes-256-gcm`. Checksums: the router and peers check each
// stored chunk's xxh3 (of the bytes as stored). The ball's sha256 is of the plaintext, except
// for a ball put encrypted (tag `checksum_of=sealed`): then it is of the sealed chunks as
// stored, one after the other, so the catalog holds nothing computed from the plaintext (the
// random IVs make it differ even for the same file put twice). Such a ball's plaintext is
// checked by each chunk's GCM tag (which binds its bucket, key, index and whether it is the
// last) and the sha256 of the sealed chunks (which binds them to this version: a chunk of an
// older version of the same key, at the same index, opens with the same key but changes it).
// Balls encrypted before `checksum_of` existed keep a plaintext sha256, and are read with it.
import { BadRequestError, MictlanxError } from "../lib/errors.ts";
import { compressChunk, compression, decompressChunk } from "../lib/compress.ts";
import { extensionOf } from "./content-type.ts";
import { KeyRequiredError, openChunk, sealChunk, sealing, type ChunkPlace } from "./seal.ts";

/** What a ball's sha256 covers: its plaintext, or its chunks as stored (sealed). */
export type ChecksumOf = "plain" | "sealed";

export interface ChunkCodec {
  /** Tags that tell a reader how to undo it. */
  readonly tags: Record<string, string>;
  /** Bytes a stored chunk may have beyond its plaintext. */
  readonly overheadBytes: number;
  readonly identity: boolean;
  /** What the ball's sha256 (its `checksum`, the `full_checksum` tag) is computed over. */
  readonly checksumOf: ChecksumOf;
  encode(plain: Uint8Array, place: ChunkPlace): Uint8Array;
  /** The plaintext, at most `plainBytesMax` bytes, or a typed error (DecryptError, DecompressError). */
  decode(stored: Uint8Array, place: ChunkPlace, plainBytesMax: number): Uint8Array;
}

/** Tag names the client owns; a user's tag may not use them. */
export const reservedTags = ["fullname", "extension", "num_chunks", "full_checksum", "compression", "encryption", "checksum_of"] as const;

/** The value of the `checksum_of` tag on a ball whose sha256 is of its sealed chunks. */
export const sealedChecksumTag = "sealed";

/** A put's codec: an encrypted put's sha256 is always of its sealed chunks. */
export function codecFor(options: { compress: boolean; key: Uint8Array | undefined }): ChunkCodec {
  return makeCodec(options.compress, options.key, options.key ? "sealed" : "plain");
}

function makeCodec(compress: boolean, key: Uint8Array | undefined, checksumOf: ChecksumOf): ChunkCodec {
  const tags: Record<string, string> = {};
  if (compress) tags.compression = compression.tag;
  if (key) tags.encryption = sealing.tag;
  if (checksumOf === "sealed") tags.checksum_of = sealedChecksumTag;
  return {
    tags,
    overheadBytes: (compress ? compression.overheadBytes : 0) + (key ? sealing.overheadBytes : 0),
    identity: !compress && !key,
    checksumOf,
    encode(plain, place) {
      const packed = compress ? compressChunk(plain) : plain;
      return key ? sealChunk(key, packed, place) : packed;
    },
    decode(stored, place, plainBytesMax) {
      const opened = key ? openChunk(key, stored, place) : stored;
      const where = `chunk ${place.index} of ${place.bucket}/${place.key}`;
      const plain = compress ? decompressChunk(opened, plainBytesMax, where) : opened;
      if (plain.byteLength > plainBytesMax) throw new MictlanxError("corrupt", `${where} is ${plain.byteLength} bytes, over the ball's chunk size ${plainBytesMax}`);
      return plain;
    },
  };
}

/** How to read a stored ball, from its tags; KeyRequiredError when it is encrypted and no key is at hand. */
export function codecForBall(ball: { bucket: string; key: string; tags: Record<string, string> }, key: Uint8Array | undefined): ChunkCodec {
  const compressed = ball.tags.compression;
  const encrypted = ball.tags.encryption;
  if (compressed !== undefined && compressed !== compression.tag) {
    throw new BadRequestError(`${ball.bucket}/${ball.key} is compressed with "${compressed}", which this client cannot read (it knows ${compression.tag})`);
  }
  if (encrypted !== undefined && encrypted !== sealing.tag) {
    throw new BadRequestError(`${ball.bucket}/${ball.key} is encrypted with "${encrypted}", which this client cannot read (it knows ${sealing.tag})`);
  }
  if (encrypted !== undefined && !key) throw new KeyRequiredError(ball.bucket, ball.key);
  // Only on an encrypted ball, and only the client's own value: a user's tag of that name on a
  // ball put before the name was reserved leaves the checksum what it was, the plaintext's.
  const checksumOf: ChecksumOf = encrypted !== undefined && ball.tags.checksum_of === sealedChecksumTag ? "sealed" : "plain";
  return makeCodec(compressed !== undefined, encrypted !== undefined ? key : undefined, checksumOf);
}

/**
 * The tags a put's ball carries besides the user's own (after the MictlanX design): the
 * codec's, `num_chunks` and `full_checksum` (the ball's sha256, of what `checksumOf` says).
 * `fullname` and `extension` (the key's last part and its extension) only when the ball is not
 * encrypted: an encrypted ball's catalog entry holds nothing beyond its key that the put chose.
 */
export function ballTags(codec: ChunkCodec, user: Record<string, string>, key: string, numChunks: number, checksum: string): Record<string, string> {
  const encrypted = codec.tags.encryption !== undefined;
  return {
    ...user,
    ...codec.tags,
    ...(encrypted ? {} : { fullname: key.split("/").pop() ?? key, extension: extensionOf(key) }),
    num_chunks: String(numChunks),
    full_checksum: checksum,
  };
}
