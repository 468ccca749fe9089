// The peer's operations: chunks in, chunks out. A peer knows nothing of the cluster; the one
// op that names another node (chunk.pull) is the SPM asking it to copy a replica for healing.
import { z } from "zod";
import { Packr } from "msgpackr";
import { defineOps } from "./envelope.ts";
import { address, ballKey, byteCount, bytes, checksumHex, chunkBall, chunkBytes, chunkIndex, bucketName, cursor, pageLimit } from "./schemas.ts";
import { ballMeta } from "./ball.ts";
import { limits } from "../lib/limits.ts";

/** The VSS an SPM's order comes from; a peer that joined another one refuses the order. */
const orderVss = z.string().min(1).max(limits.vssIdBytesMax).optional();

export const chunkRef = z.object({ bucket: bucketName, ball: chunkBall, index: chunkIndex });
export type ChunkRefWire = z.infer<typeof chunkRef>;

export const chunkMeta = z.object({
  bucket: z.string(),
  ball: z.string(),
  index: z.number().int(),
  size: byteCount,
  checksum: checksumHex,
  shardId: z.number().int(),
  createdMs: z.number(),
});
export type ChunkMetaWire = z.infer<typeof chunkMeta>;

/** `key`: the ball's key, written into the chunk's record (record version 2) so the shards alone name it. */
const putItem = chunkRef.extend({ data: chunkBytes, checksum: checksumHex.optional(), key: ballKey.optional() });

/**
 * A ball's manifest as the SPM sends it to the peers holding chunk 0 at a commit, and as those
 * peers list it for a catalog rebuild (docs/recovery.md). `generation` is the SPM's commit
 * order. The peer stores `body` as it came (it never reads it): the SPM packs it once
 * (`encodeManifestBody`) and the rebuild reads it back (`decodeManifestBody`), checked there.
 */
/** The generation takes the first 8 bytes of a manifest record's data; the body the rest. */
const manifestBodyBytesMax = limits.manifestRecordBytesMax - 8;
const bodyPackr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false, mapsAsObjects: true });
export const manifestItem = z.object({
  bucket: bucketName,
  key: ballKey,
  objectId: chunkBall,
  generation: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  dead: z.boolean(),
  body: bytes.refine((body) => body.byteLength <= manifestBodyBytesMax, `a manifest body is at most ${manifestBodyBytesMax} bytes`),
});
export type ManifestWire = z.infer<typeof manifestItem>;
export const listedManifest = manifestItem.extend({ createdMs: z.number().int().min(0) });
export type ListedManifestWire = z.infer<typeof listedManifest>;

/** What a manifest's body says: a live one, the ball's metadata; a tombstone, why its key's versions went. */
export const manifestBall = ballMeta.omit({ bucket: true, key: true, objectId: true });
export const manifestBodyOf = z.union([
  z.object({ ball: manifestBall }),
  z.object({ reason: z.enum(["deleted", "overwritten"]) }),
]);
export type ManifestBody = z.infer<typeof manifestBodyOf>;
export type ManifestBallWire = z.infer<typeof manifestBall>;

export function encodeManifestBody(body: ManifestBody): Uint8Array {
  return bodyPackr.pack(body);
}

/** The body of a listed manifest, checked; undefined when it is not one this build reads. */
export function decodeManifestBody(bytes: Uint8Array): ManifestBody | undefined {
  try {
    const parsed = manifestBodyOf.safeParse(bodyPackr.unpack(bytes));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
const stored = z.object({ size: byteCount, checksum: checksumHex });

export const shardInfo = z.object({
  id: z.number().int(),
  state: z.enum(["active", "read_only", "deleted"]),
  bytes: byteCount,
  liveBytes: byteCount,
});

/** The background scrub (src/storage/scrub.ts): counters since the peer started, and the pass under way. */
export const scrubProgress = z.object({
  state: z.enum(["off", "scanning", "waiting"]),
  /** Full passes finished. */
  passes: byteCount,
  bytesScanned: byteCount,
  chunksScanned: byteCount,
  /** Corrupt chunks found (a chunk still bad on a later pass counts again). */
  corruptFound: byteCount,
  /** How far the pass under way is (0..1; 1 while waiting for the next). */
  passProgress: z.number().min(0).max(1),
  /** Wall-clock ms when the last full pass ended; absent before the first. */
  lastPassMs: z.number().optional(),
  /** Bytes per second it reads; 0 when off. */
  ratePerSec: z.number().min(0),
});
export type ScrubProgressWire = z.infer<typeof scrubProgress>;

export const peerHealth = z.object({
  id: z.string(),
  version: z.string(),
  uptimeMs: z.number(),
  capacityBytes: byteCount,
  usedBytes: byteCount,
  freeBytes: byteCount,
  liveBytes: byteCount,
  chunks: byteCount,
  shards: z.array(shardInfo),
  puts: byteCount,
  gets: byteCount,
  errors: byteCount,
  /** The last few errors worth an operator's eye (corrupt reads, full disk, bugs), newest last. */
  recentErrors: z.array(z.object({ atMs: z.number(), op: z.string(), code: z.string(), message: z.string() })),
  scrub: scrubProgress,
});
export type PeerHealth = z.infer<typeof peerHealth>;

/** `key`: the ball's key, when the chunk's record carries one (a healing copy keeps it). */
const getResult = z.object({ data: bytes, size: byteCount, checksum: checksumHex, key: ballKey.optional() });
const failure = z.object({ ok: z.literal(false), code: z.string(), message: z.string() });

export const peerOps = defineOps({
  "chunk.put": { args: putItem, result: stored, replyBytesMax: limits.smallReplyBytesMax },
  "chunk.putMany": {
    args: z.object({ items: z.array(putItem).min(1).max(limits.batchChunksMax) }),
    result: z.object({ results: z.array(stored) }), replyBytesMax: limits.smallReplyBytesMax * 64 },
  "chunk.get": {
    args: chunkRef.extend({ offset: byteCount.optional(), length: byteCount.optional() }),
    result: getResult,
  },
  "chunk.getMany": {
    args: z.object({ refs: z.array(chunkRef).min(1).max(limits.batchChunksMax) }),
    result: z.object({ results: z.array(z.union([getResult.extend({ ok: z.literal(true) }), failure])) }),
  },
  /** The SPM deleting garbage (or an operator, on a peer run alone). */
  "chunk.delete": { args: chunkRef.extend({ vssId: orderVss }), result: z.object({ deleted: z.boolean() }), replyBytesMax: limits.smallReplyBytesMax },
  "chunk.stat": { args: chunkRef, result: chunkMeta, replyBytesMax: limits.smallReplyBytesMax },
  /** Many stats at once: the SPM checks what the catalog says a peer holds (reconciliation). */
  "chunk.statMany": {
    args: z.object({ refs: z.array(chunkRef).min(1).max(limits.batchChunksMax) }),
    result: z.object({ results: z.array(z.union([chunkMeta.extend({ ok: z.literal(true) }), failure])) }),
  },
  "chunk.list": {
    args: z.object({ bucket: bucketName.optional(), ballPrefix: z.string().max(limits.ballIdBytesMax + 64).optional(), after: cursor.optional(), limit: pageLimit }),
    result: z.object({ chunks: z.array(chunkMeta), next: z.string().optional() }),
  },
  /** Copy a chunk from another peer (healing, rebalance, drain); verified before it is stored. */
  "chunk.pull": {
    args: chunkRef.extend({ from: address, checksum: checksumHex, vssId: orderVss }),
    result: stored, replyBytesMax: limits.smallReplyBytesMax },
  "peer.health": { args: z.object({}), result: peerHealth },
  /** The SPM at a commit, delete or overwrite: manifests durable (one group commit) before the reply. */
  "manifest.putMany": {
    args: z.object({ items: z.array(manifestItem).min(1).max(limits.manifestBatchItemsMax) }),
    result: z.object({ stored: byteCount }), replyBytesMax: limits.smallReplyBytesMax },
  /** The manifests naming one object id: a peer copying chunk 0 (healing) copies them with it. */
  "manifest.ofObject": {
    args: z.object({ bucket: bucketName, objectId: chunkBall }),
    result: z.object({ manifests: z.array(listedManifest).max(limits.manifestsOfObjectMax) }),
  },
  /** A page of the manifests this peer holds, and who it is (a catalog rebuild asks every peer). */
  "manifest.list": {
    args: z.object({ after: z.string().max(limits.keyBytesMax * 8).optional(), limit: z.number().int().min(1).max(limits.manifestListPageMax) }),
    result: z.object({
      peerId: z.string(),
      instanceId: z.string(),
      vssId: z.string().optional(),
      manifests: z.array(listedManifest),
      next: z.string().optional(),
    }),
  },
});
export type PeerOps = typeof peerOps;
