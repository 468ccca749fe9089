// Ball metadata as it travels between SPM, routers and clients.
import { z } from "zod";
import { ballIdName, ballKey, bucketName, byteCount, checksumHex, chunkIndex, newBallIdName, newBallKey, newBucketName, newContentType, newTags, peerId, sha256Hex, tags } from "./schemas.ts";
import { limits } from "../lib/limits.ts";

/**
 * Tags whose names start with this are the S3 gateway's (its ETag, user metadata): the native
 * client refuses to set them, so S3 metadata never collides with a user's tags or mictlanx's.
 */
export const s3TagPrefix = "s3:";

export const rf = z.number().int().min(1).max(16);
/** Chosen by the client once per put and sent again on every retry, so a retry is recognised. */
export const requestId = z.string().regex(/^[0-9a-zA-Z-]{8,64}$/, "request id must be 8–64 letters, digits or dashes");
export const objectId = z.string().regex(/^[0-9a-zA-Z-]{8,64}$/, "object id must be 8–64 letters, digits or dashes");

export const chunkRecord = z.object({
  index: chunkIndex,
  size: byteCount.max(limits.chunkBytesMax),
  checksum: checksumHex,
  peers: z.array(peerId).min(1).max(16),
});
export type ChunkRecordWire = z.infer<typeof chunkRecord>;

export const ballMeta = z.object({
  bucket: bucketName,
  key: ballKey,
  ballId: ballIdName,
  objectId,
  version: z.number().int().min(1),
  size: byteCount,
  checksum: sha256Hex,
  contentType: z.string().max(256),
  tags,
  rf,
  createdMs: z.number(),
  chunkSize: byteCount.max(limits.chunkBytesMax),
  numChunks: z.number().int().min(0),
});
export type BallMetaWire = z.infer<typeof ballMeta>;

export const peerLocation = z.object({ id: peerId, address: z.string() });
export type PeerLocation = z.infer<typeof peerLocation>;

export const peerLocated = peerLocation.extend({ state: z.enum(["up", "suspect", "down"]) });

/**
 * A ball with where its chunks live: enough for a router to read it. A ball of many chunks
 * lists a first page of them; `chunksNext` is then the index the rest start at (`ball.chunks`).
 */
export const ballLocated = ballMeta.extend({
  chunks: z.array(chunkRecord).max(limits.chunkRecordsPageMax),
  peers: z.array(peerLocated),
  chunksNext: chunkIndex.optional(),
});
export type BallLocated = z.infer<typeof ballLocated>;

/** A page of a version's chunk records, from `fromIndex`; `next` when there are more. */
export const chunksPageArgs = z.object({ objectId, fromIndex: chunkIndex, limit: z.number().int().min(1).max(limits.chunkRecordsPageMax).optional() });
export const chunksPageResult = z.object({ chunks: z.array(chunkRecord).max(limits.chunkRecordsPageMax), peers: z.array(peerLocated), next: chunkIndex.optional() });
/** A page of an upload's chunk records, sent ahead of a commit too big to name them all. */
export const stagedChunks = z.array(chunkRecord).min(1).max(limits.chunkRecordsPageMax);
/** How many chunk records were staged ahead of a commit (the commit's `chunks` are the rest). */
export const stagedCount = z.number().int().min(1).max(limits.ballChunksMax);

export const bucketSummary = z.object({ name: z.string(), balls: byteCount, bytes: byteCount, createdMs: z.number() });

export const listBallsArgs = z.object({
  bucket: bucketName,
  prefix: z.string().max(limits.keyBytesMax).optional(),
  ballId: ballIdName.optional(),
  after: z.string().max(limits.keyBytesMax).optional(),
  limit: z.number().int().min(1).max(limits.listPageMax),
});
export const listBallsResult = z.object({ balls: z.array(ballMeta), next: z.string().optional() });
export const listBucketsArgs = z.object({ after: z.string().max(limits.bucketNameBytesMax).optional(), limit: z.number().int().min(1).max(limits.listPageMax) });
export const listBucketsResult = z.object({ buckets: z.array(bucketSummary), next: z.string().optional() });

/** The most bytes one stored chunk of an upload holds (chunk size plus compression and encryption overhead): `status` counts what uploads place with it. */
export const uploadChunkBytes = byteCount.max(limits.chunkBytesMax);

/** What becomes of an abandoned upload: its placements queued for deletion (`replicas`), none when it was already abandoned or expired. */
export const abandonResult = z.object({ replicas: byteCount });

// --- buckets and bulk deletes (the shell's mb, rb, del --recursive) ---------------------------
export const bucketArgs = z.object({ bucket: bucketName });
export const newBucketArgs = z.object({ bucket: newBucketName });
export const bucketDeleted = z.object({ bucket: z.string() });
/** Balls under `prefix` (the whole bucket when absent); counted up to limits.ballCountMax. */
export const ballCountArgs = z.object({ bucket: bucketName, prefix: z.string().max(limits.keyBytesMax).optional() });
/** `more`: there are more than `balls`; `bytes` only for a whole bucket. */
export const ballCountResult = z.object({ balls: byteCount, bytes: byteCount.optional(), more: z.boolean() });
/** One batch of a bulk delete: the balls under `prefix` after the key `after`, at most `limit`. */
export const deletePrefixArgs = z.object({
  bucket: bucketName,
  prefix: z.string().max(limits.keyBytesMax).optional(),
  after: z.string().max(limits.keyBytesMax).optional(),
  limit: z.number().int().min(1).max(limits.deleteBatchBallsMax).optional(),
});
/** `next`: pass it as `after` for the next batch; absent when nothing is left under the prefix. */
export const deletePrefixResult = z.object({ deleted: byteCount, bytes: byteCount, next: z.string().optional() });

/** Buckets and bulk deletes: the same ops on the SPM and on routers, which pass them on as they are. */
export const bucketOps = {
  /** Make an empty bucket; it stays (listed with 0 balls) until bucket.delete. `conflict` when it exists. */
  "bucket.create": { args: newBucketArgs, result: bucketSummary, replyBytesMax: limits.smallReplyBytesMax },
  /** Forget an empty bucket; `conflict` while it holds balls. */
  "bucket.delete": { args: bucketArgs, result: bucketDeleted, replyBytesMax: limits.smallReplyBytesMax },
  "ball.count": { args: ballCountArgs, result: ballCountResult, replyBytesMax: limits.smallReplyBytesMax },
  /**
   * One batch of a bulk delete (del --recursive, rb --force): up to deleteBatchBallsMax balls
   * under a prefix in one catalog transaction, durable before the reply, each retired with the
   * readers' grace as ball.delete retires one. Call again with `after: next` until no `next`.
   */
  "ball.deletePrefix": { args: deletePrefixArgs, result: deletePrefixResult, replyBytesMax: limits.smallReplyBytesMax },
} as const;

/** A ball without --ball-id is its own group: the key, or its sha256 when the key is longer than a ball id may be. */
export function defaultBallId(key: string): string {
  return new TextEncoder().encode(key).byteLength <= limits.ballIdBytesMax ? key : new Bun.CryptoHasher("sha256").update(key).digest("hex");
}

/** What a put declares about its ball; the router adds the chunk records. Its names are new ones. */
export const ballDeclaration = z.object({
  bucket: newBucketName,
  key: newBallKey,
  ballId: newBallIdName.optional(),
  size: byteCount,
  checksum: sha256Hex,
  contentType: newContentType,
  tags: newTags,
  rf,
  chunkSize: byteCount.max(limits.chunkBytesMax),
  ifAbsent: z.boolean().optional(),
  /** Compare-and-swap: commit only while the key still holds this version (S3's If-Match on a write). */
  expectedObjectId: objectId.optional(),
});
