// The SPM's operations: the registry (peers and routers report in), the catalog (balls and
// where their chunks are), placement, and the numbers `status` and the TUI show.
import { z } from "zod";
import { defineOps } from "./envelope.ts";
import { address, ballKey, bucketName, byteCount, checksumHex, chunkIndex, newBallKey, newBucketName, peerId } from "./schemas.ts";
import { ballDeclaration, ballLocated, ballMeta, chunkRecord, listBallsArgs, listBallsResult, listBucketsArgs, listBucketsResult, objectId, peerLocation, requestId, rf } from "./ball.ts";
import { limits, vssLimits } from "../lib/limits.ts";

export const peerState = z.enum(["up", "suspect", "down"]);
export type PeerState = z.infer<typeof peerState>;

export const peerReport = z.object({
  id: peerId,
  address,
  capacityBytes: byteCount,
  usedBytes: byteCount,
  freeBytes: byteCount,
  liveBytes: byteCount,
  chunks: byteCount,
  puts: byteCount,
  gets: byteCount,
});

export const peerStatus = z.object({
  id: z.string(),
  address: z.string(),
  state: peerState,
  draining: z.boolean(),
  usedBytes: byteCount,
  capacityBytes: byteCount,
  freeBytes: byteCount,
  chunks: byteCount,
  replicas: byteCount,
  lastHeartbeatAgeMs: z.number(),
  opsPerSec: z.number(),
});
export type PeerStatus = z.infer<typeof peerStatus>;

/** What a router counts and reports in its heartbeats (all totals since it started). */
export const routerCounters = z.object({
  requests: byteCount,
  errors: byteCount,
  /** Balls stored (ball.put and ball.commit that succeeded). */
  puts: byteCount,
  /** Balls read (ball.get that succeeded). */
  gets: byteCount,
  /** Chunk bytes received from clients and sent to clients. */
  bytesIn: byteCount,
  bytesOut: byteCount,
});
export type RouterCounters = z.infer<typeof routerCounters>;

export const routerStatus = routerCounters.extend({
  address: z.string(),
  lastHeartbeatAgeMs: z.number(),
  /** Rates between the router's last two heartbeats. */
  requestsPerSec: z.number(),
  putsPerSec: z.number(),
  getsPerSec: z.number(),
  bytesInPerSec: z.number(),
  bytesOutPerSec: z.number(),
});

export const healingStatus = z.object({
  active: z.boolean(),
  queued: byteCount,
  inFlight: byteCount,
  healedChunks: byteCount,
  healedBytes: byteCount,
  trimmedReplicas: byteCount,
  movedChunks: byteCount,
  repairedCorrupt: byteCount,
  failures: byteCount,
  bytesPerSec: z.number(),
  lastError: z.string().optional(),
});
export type HealingStatus = z.infer<typeof healingStatus>;

export const vssStatus = z.object({
  spm: z.string(),
  uptimeMs: z.number(),
  peers: z.array(peerStatus),
  routers: z.array(routerStatus),
  balls: byteCount,
  buckets: byteCount,
  bytes: byteCount,
  chunks: byteCount,
  underReplicated: byteCount,
  garbage: byteCount,
  healing: healingStatus,
  events: z.array(z.object({ atMs: z.number(), kind: z.string(), message: z.string() })),
});
export type VssStatus = z.infer<typeof vssStatus>;

export const placement = z.object({ index: chunkIndex, peers: z.array(peerLocation) });
export type Placement = z.infer<typeof placement>;

/** The outcome of one item of a batch: its result, or its own typed error. */
export function itemOutcome<T extends z.ZodType>(result: T) {
  return z.union([z.object({ ok: z.literal(true), value: result }), z.object({ ok: z.literal(false), code: z.string(), message: z.string() })]);
}

/** Items one batched call carries at most (routers coalesce concurrent calls into these). */
const spmBatchItemsMax = vssLimits.spmBatchItemsMax;

const reserveArgs = z.object({
  bucket: newBucketName,
  key: newBallKey,
  rf,
  ifAbsent: z.boolean().optional(),
  count: z.number().int().min(0).max(limits.batchChunksMax),
  /** A retry of the same put: the SPM hands back the reservation it made the first time. */
  requestId: requestId.optional(),
});
const reserveResult = z.object({ objectId, placements: z.array(placement) });
const commitArgs = ballDeclaration.extend({ objectId, chunks: z.array(chunkRecord) });
const commitResult = z.object({ version: z.number().int(), replacedObjectId: z.string().optional() });
const ballRefArgs = z.object({ bucket: bucketName, key: ballKey });

export const spmOps = defineOps({
  /** A peer reports in (first contact registers it); the reply says how often to come back. */
  "peer.heartbeat": { args: peerReport, result: z.object({ heartbeatIntervalMs: z.number().int() }) },
  "router.heartbeat": {
    args: routerCounters.extend({ address }),
    result: z.object({ heartbeatIntervalMs: z.number().int() }),
  },
  /** Start a put: checks --if-absent and rf early, returns the new version's object id. */
  "ball.begin": {
    args: z.object({ bucket: newBucketName, key: newBallKey, rf, ifAbsent: z.boolean().optional() }),
    result: z.object({ objectId }),
  },
  /** ball.begin and ball.place in one: a new version's object id and placements for its first `count` chunks. */
  "ball.reserve": { args: reserveArgs, result: reserveResult },
  "ball.reserveMany": {
    args: z.object({ items: z.array(reserveArgs).min(1).max(spmBatchItemsMax) }),
    result: z.object({ results: z.array(itemOutcome(reserveResult)) }),
  },
  /** Choose rf distinct up peers for each of `count` chunks from `fromIndex`, avoiding `exclude`. */
  "ball.place": {
    args: z.object({ objectId, fromIndex: chunkIndex, count: z.number().int().min(1).max(limits.batchChunksMax), rf, exclude: z.array(peerId).max(64).optional() }),
    result: z.object({ placements: z.array(placement) }),
  },
  /** Make a ball visible: all its chunks are durable on rf peers. One catalog transaction. */
  "ball.commit": { args: commitArgs, result: commitResult },
  "ball.commitMany": {
    args: z.object({ items: z.array(commitArgs).min(1).max(spmBatchItemsMax) }),
    result: z.object({ results: z.array(itemOutcome(commitResult)) }),
  },
  "ball.get": { args: ballRefArgs, result: ballLocated },
  "ball.getMany": {
    args: z.object({ items: z.array(ballRefArgs).min(1).max(spmBatchItemsMax) }),
    result: z.object({ results: z.array(itemOutcome(ballLocated)) }),
  },
  /** Where one chunk of a version is now (routers refresh after healing or drain moved it). */
  "chunk.locate": {
    args: z.object({ objectId, index: chunkIndex }),
    result: z.object({ size: byteCount, checksum: checksumHex, peers: z.array(peerLocation.extend({ state: peerState })) }),
  },
  "ball.delete": { args: z.object({ bucket: bucketName, key: ballKey }), result: ballMeta },
  "ball.list": { args: listBallsArgs, result: listBallsResult },
  "bucket.list": { args: listBucketsArgs, result: listBucketsResult },
  /** A router found a replica whose bytes fail their checksum: repair it from a good one. */
  "replica.corrupt": {
    args: z.object({ objectId, index: chunkIndex, peerId, detail: z.string().max(1024) }),
    result: z.object({ accepted: z.boolean() }),
  },
  "peers.list": { args: z.object({}), result: z.object({ peers: z.array(peerStatus) }) },
  "peer.drain": { args: z.object({ id: peerId }), result: z.object({ id: z.string(), chunks: byteCount }) },
  "vss.status": { args: z.object({}), result: vssStatus },
});
export type SpmOps = typeof spmOps;
