// The router's operations: what clients call. A large ball is put as begin → putChunk × N →
// commit and read as stat → getChunk × N, so no frame is ever larger than one chunk; any
// router can serve any step, which lets a client move to another router mid-transfer.
import { z } from "zod";
import { defineOps } from "./envelope.ts";
import { ballKey, bucketName, byteCount, bytes, checksumHex, chunkBytes, chunkIndex, newBallKey, newBucketName } from "./schemas.ts";
import {
  abandonResult,
  ballDeclaration,
  ballLocated,
  bucketOps,
  ballMeta,
  chunkRecord,
  chunksPageArgs,
  chunksPageResult,
  listBallsArgs,
  listBallsResult,
  listBucketsArgs,
  listBucketsResult,
  objectId,
  requestId,
  rf,
  stagedChunks,
  stagedCount,
  uploadChunkBytes,
} from "./ball.ts";
import { limits } from "../lib/limits.ts";
import { bucketSettingOps } from "./bucket-settings.ts";

const ballRef = z.object({ bucket: bucketName, key: ballKey });

export const routerOps = defineOps({
  "ball.begin": {
    args: z.object({ bucket: newBucketName, key: newBallKey, rf, ifAbsent: z.boolean().optional(), chunkBytes: uploadChunkBytes.optional() }),
    result: z.object({ objectId }), replyBytesMax: limits.smallReplyBytesMax },
  /**
   * The client gives up an upload it began (it failed, or was interrupted): the SPM ends it at
   * once and deletes the chunks placed for it. Conflict when it had committed; asking again is fine.
   */
  "ball.abandon": { args: ballRef.extend({ objectId }), result: abandonResult, replyBytesMax: limits.smallReplyBytesMax },
  "ball.putChunk": {
    // chunksHint: how many chunks the whole put has, when the client knows (placements ahead stop there).
    args: ballRef.extend({ objectId, index: chunkIndex, rf, data: chunkBytes, checksum: checksumHex, chunksHint: z.number().int().min(1).optional() }),
    result: chunkRecord, replyBytesMax: limits.smallReplyBytesMax },
  /** A page of an upload's chunk records, ahead of a commit of more than one page's worth. */
  "ball.stageChunks": {
    args: ballRef.extend({ objectId, chunks: stagedChunks }),
    result: z.object({ staged: stagedCount }), replyBytesMax: limits.smallReplyBytesMax },
  /** `stagedChunks`: that many chunk records were staged ahead; `chunks` are the rest. */
  "ball.commit": {
    args: ballDeclaration.extend({ objectId, chunks: z.array(chunkRecord).max(limits.chunkRecordsPageMax), stagedChunks: stagedCount.optional() }),
    result: z.object({ version: z.number().int(), objectId }), replyBytesMax: limits.smallReplyBytesMax },
  /** A ball of at most one chunk in one round trip. */
  /** `requestId`: the same on every retry of one put, so a retry whose first try committed is not a second version. */
  "ball.put": {
    args: ballDeclaration.extend({ data: chunkBytes, requestId: requestId.optional() }),
    result: z.object({ version: z.number().int(), objectId }), replyBytesMax: limits.smallReplyBytesMax },
  "ball.stat": { args: ballRef, result: ballLocated },
  /** More of a version's chunk records, after the first page `ball.get` or `ball.stat` gave. */
  "ball.chunks": { args: chunksPageArgs.extend({ bucket: bucketName }), result: chunksPageResult },
  "ball.getChunk": {
    args: z.object({ bucket: bucketName, objectId, index: chunkIndex }),
    result: z.object({ data: bytes, size: byteCount, checksum: checksumHex }),
  },
  /**
   * Metadata and, for a ball of at most one chunk, its bytes: one round trip for small reads.
   * A client that has the bytes of version `cachedObjectId` cached says so, and gets no bytes
   * back when that is still the current version.
   */
  "ball.get": {
    args: ballRef.extend({ cachedObjectId: objectId.optional() }),
    result: z.object({ meta: ballMeta, chunks: z.array(chunkRecord), chunksNext: chunkIndex.optional(), data: bytes.optional() }),
  },
  "ball.delete": { args: ballRef, result: ballMeta },
  "ball.list": { args: listBallsArgs, result: listBallsResult },
  "bucket.list": { args: listBucketsArgs, result: listBucketsResult },
  /** Buckets and bulk deletes, passed to the SPM as they are. */
  ...bucketOps,
  /** The S3 gateway's bucket settings and object ACLs, passed to the SPM as they are. */
  ...bucketSettingOps,
  "router.health": {
    args: z.object({}),
    result: z.object({
      address: z.string(),
      /** The SPMs this router asks, comma-separated (as --spm takes them). */
      spm: z.string(),
      /** The same, a list (absent from routers before several SPMs). */
      spms: z.array(z.string()).optional(),
      /** The SPM it asks first, when it knows which leads. */
      spmLeader: z.string().optional(),
      uptimeMs: z.number(),
      requests: byteCount,
      errors: byteCount,
    }),
  },
});
export type RouterOps = typeof routerOps;
