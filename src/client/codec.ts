// What a chunk's bytes go through between the caller and the store: compress (zstd), then
// encrypt (AES-256-GCM) on a put; open, then decompress on a get. A ball's tags say which:
// `compression=zstd`, `encryption=aes-256-gcm`. Checksums: the router and peers check each
// stored chunk's xxh3 (of the bytes as stored); the ball's sha256 is of the plaintext.
import { BadRequestError, MictlanxError } from "../lib/errors.ts";
import { compressChunk, compression, decompressChunk } from "./compress.ts";
import { KeyRequiredError, openChunk, sealChunk, sealing, type ChunkPlace } from "./seal.ts";

export interface ChunkCodec {
  /** Tags that tell a reader how to undo it. */
  readonly tags: Record<string, string>;
  /** Bytes a stored chunk may have beyond its plaintext. */
  readonly overheadBytes: number;
  readonly identity: boolean;
  encode(plain: Uint8Array, place: ChunkPlace): Uint8Array;
  /** The plaintext, at most `plainBytesMax` bytes, or a typed error (DecryptError, DecompressError). */
  decode(stored: Uint8Array, place: ChunkPlace, plainBytesMax: number): Uint8Array;
}

/** Tag names the client owns; a user's tag may not use them. */
export const reservedTags = ["fullname", "extension", "num_chunks", "full_checksum", "compression", "encryption"] as const;

export function codecFor(options: { compress: boolean; key: Uint8Array | undefined }): ChunkCodec {
  const { compress, key } = options;
  const tags: Record<string, string> = {};
  if (compress) tags.compression = compression.tag;
  if (key) tags.encryption = sealing.tag;
  return {
    tags,
    overheadBytes: (compress ? compression.overheadBytes : 0) + (key ? sealing.overheadBytes : 0),
    identity: !compress && !key,
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
  return codecFor({ compress: compressed !== undefined, key: encrypted !== undefined ? key : undefined });
}
