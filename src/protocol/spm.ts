// The SPM's operations: the registry (peers and routers report in), the catalog (balls and
// where their chunks are), placement, and the numbers `status` and the TUI show.
import { z } from "zod";
import { defineOps } from "./envelope.ts";
import { address, ballKey, bucketName, byteCount, checksumHex, chunkIndex, newBallKey, newBucketName, peerId } from "./schemas.ts";
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
  peerLocation,
  requestId,
  rf,
  stagedChunks,
  stagedCount,
  uploadChunkBytes,
} from "./ball.ts";
import { limits, vssLimits } from "../lib/limits.ts";
import { peerHealth } from "./peer.ts";
import { auditActor, auditedBucketOps, keyOps } from "./keys.ts";
import { bucketSettingOps } from "./bucket-settings.ts";

export const peerState = z.enum(["up", "suspect", "down"]);
export type PeerState = z.infer<typeof peerState>;

/** A random identity (a VSS's, a peer data dir's): printable, bounded. */
const identity = (max: number) => z.string().regex(/^[0-9A-Za-z_-]+$/, "an id is letters, digits, - and _").max(max);
export const vssId = identity(limits.vssIdBytesMax);
export const instanceId = identity(limits.peerInstanceIdBytesMax);

export const peerReport = z.object({
  id: peerId,
  address,
  /** The identity of the peer's data dir, made at its first start. */
  instanceId,
  /** The VSS this peer joined (absent until its first registration). */
  vssId: vssId.optional(),
  capacityBytes: byteCount,
  usedBytes: byteCount,
  freeBytes: byteCount,
  liveBytes: byteCount,
  chunks: byteCount,
  puts: byteCount,
  gets: byteCount,
  /** When this peer's TLS certificate expires (status warns ahead of it); absent without TLS. */
  certificateNotAfterMs: z.number().int().min(0).optional(),
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
  /** Like a peer's: by the age of its last heartbeat. */
  state: peerState,
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

/** Reconciliation of the catalog with what peers hold (src/roles/spm/reconcile.ts); totals since the SPM started. */
export const reconcileStatus = z.object({
  /** Peers being checked now. */
  checking: byteCount,
  /** Full checks done. */
  passes: byteCount,
  /** Replicas the catalog recorded that their peer did not hold: forgotten, then healed. */
  missingReplicas: byteCount,
  /** Chunks on peers that no ball uses, queued for deletion. */
  orphansCollected: byteCount,
  /** Unrecorded copies of under-replicated chunks taken as replicas. */
  adoptedReplicas: byteCount,
  /** Replicas with other bytes than recorded, rewritten from a good one. */
  repairedReplicas: byteCount,
  /** Chunks whose only recorded replica was not on its peer. */
  lostChunks: byteCount,
  /** Peers whose unknown chunks are not collected, and why. */
  blocked: z.array(z.object({ peerId: z.string(), message: z.string() })),
});
export type ReconcileStatus = z.infer<typeof reconcileStatus>;

/** Why chunks stay on a draining peer (src/roles/spm/maintenance.ts, DrainWork). */
export const drainBlockReasons = ["rf", "room", "source"] as const;
export type DrainBlockReason = (typeof drainBlockReasons)[number];

/** A drain under way: what is left, what moved, and what keeps the rest (by chunk and ball count). */
export const drainStatus = z.object({
  peerId: z.string(),
  /** Replicas still on the peer. */
  remainingChunks: byteCount,
  /** Replicas taken off it since this SPM started (each copied elsewhere first when the others lacked it). */
  movedChunks: byteCount,
  /** What keeps chunks on it, as of the last full look over them; empty when nothing does. */
  blocked: z.array(
    z.object({
      /** rf: the other peers that take data are fewer than the chunks' rf; room: none of them has room; source: no replica is on a peer that is up. */
      reason: z.enum(drainBlockReasons),
      chunks: byteCount,
      balls: byteCount,
      /** What it is and what to do, for a person. */
      message: z.string(),
    }),
  ),
});
export type DrainStatus = z.infer<typeof drainStatus>;

/**
 * An SPM's part among several (`spm --coordination`): the leader runs everything that writes on
 * its own initiative and takes writes; a standby serves reads and forwards writes to the leader.
 * An SPM without coordination is always the leader, with no term.
 */
export const spmRole = z.enum(["leader", "standby"]);
export type SpmRole = z.infer<typeof spmRole>;
/** Who leads, as an SPM knows it: the leader's address and term (the etcd create_revision of its key). */
export const spmLeadership = z.object({ role: spmRole, term: z.number().int().min(1).optional(), leader: z.string().optional() });
export type SpmLeadership = z.infer<typeof spmLeadership>;

/**
 * How a standby refuses a write, and how a caller reads the leader back out of it: errors carry
 * a code and a message only, so the message's form is part of the protocol (one place for both).
 */
export function standbyRefusalMessage(self: string, leader: { address: string; term: number } | undefined): string {
  const who = leader ? `the leader is ${leader.address} (term ${leader.term})` : "no leader SPM is elected yet; retry shortly";
  return `SPM ${self} is a standby and takes no writes: ${who}`;
}
const standbyRefusalPattern = /is a standby and takes no writes: the leader is (\S+) \(term (\d+)\)/;
export function leaderOfStandbyRefusal(message: string): { address: string; term: number } | undefined {
  const named = standbyRefusalPattern.exec(message);
  return named ? { address: named[1]!, term: Number(named[2]) } : undefined;
}

export const vssStatus = z.object({
  spm: z.string(),
  /** This SPM's part: leader or standby, its term, and the leader's address when known. */
  leadership: spmLeadership.optional(),
  uptimeMs: z.number(),
  /** This VSS's identity (made with its catalog). */
  vssId: z.string(),
  /** Whether the catalog takes writes; when not, why (e.g. after an fsync error, until a restart). */
  catalog: z.object({ writable: z.boolean(), problem: z.string().optional() }),
  peers: z.array(peerStatus),
  routers: z.array(routerStatus),
  balls: byteCount,
  buckets: byteCount,
  bytes: byteCount,
  chunks: byteCount,
  underReplicated: byteCount,
  garbage: byteCount,
  /** Uploads begun and neither committed nor abandoned yet (their intents). */
  pendingUploads: byteCount,
  /** Bytes placed for them: chunk size × replicas placed, the most they hold on peers now. */
  pendingUploadBytes: byteCount,
  healing: healingStatus,
  /** One entry per draining peer. */
  drains: z.array(drainStatus),
  reconcile: reconcileStatus,
  events: z.array(z.object({ atMs: z.number(), kind: z.string(), message: z.string() })),
  /** The SPM runs without TLS or access keys (--insecure): anyone who reaches it is believed. */
  insecure: z.boolean(),
  /** The nodes' TLS certificates as they last reported them, soonest to expire first (none without TLS). */
  certificates: z.array(z.object({ role: z.string(), id: z.string(), notAfterMs: z.number() })),
  /** One line per certificate that expires within certificateExpiryWarnMs (30 days), or has. */
  certificateWarnings: z.array(z.string()),
});
export type VssStatus = z.infer<typeof vssStatus>;

export const placement = z.object({ index: chunkIndex, peers: z.array(peerLocation) });
export type Placement = z.infer<typeof placement>;

/** The outcome of one item of a batch: its result, or its own typed error. */
export function itemOutcome<T extends z.ZodType>(result: T) {
  return z.union([z.object({ ok: z.literal(true), value: result }), z.object({ ok: z.literal(false), code: z.string(), message: z.string() })]);
}

/** What an item of a batch reply says when the reply is full: the router then asks for it alone. */
export const batchFullMessage = "the batch's reply is full; ask for this one alone";

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
  chunkBytes: uploadChunkBytes.optional(),
});
/** `committed`: a retry of a put whose first try already committed; nothing more to write. */
const reserveResult = z.object({ objectId, placements: z.array(placement), committed: z.object({ version: z.number().int().min(1) }).optional() });
const commitArgs = ballDeclaration.extend({ objectId, chunks: z.array(chunkRecord).max(limits.chunkRecordsPageMax), stagedChunks: stagedCount.optional() });
const commitResult = z.object({ version: z.number().int(), replacedObjectId: z.string().optional() });
const ballRefArgs = z.object({ bucket: bucketName, key: ballKey });

export const spmOps = defineOps({
  /** A peer reports in (first contact registers it); the reply says how often to come back and which VSS this is. */
  "peer.heartbeat": { args: peerReport, result: z.object({ heartbeatIntervalMs: z.number().int(), vssId, leadership: spmLeadership.optional() }), replyBytesMax: limits.smallReplyBytesMax },
  "router.heartbeat": {
    args: routerCounters.extend({ address, certificateNotAfterMs: z.number().int().min(0).optional() }),
    result: z.object({ heartbeatIntervalMs: z.number().int(), leadership: spmLeadership.optional() }), replyBytesMax: limits.smallReplyBytesMax },
  /** Start a put: checks --if-absent and rf early, returns the new version's object id. */
  "ball.begin": {
    args: z.object({ bucket: newBucketName, key: newBallKey, rf, ifAbsent: z.boolean().optional(), chunkBytes: uploadChunkBytes.optional() }),
    result: z.object({ objectId }), replyBytesMax: limits.smallReplyBytesMax },
  /**
   * End an upload under way now: its placements become garbage at once (nothing of it was ever
   * visible, so no readers' grace) and its object id is retired as abandoned. Conflict when it
   * committed; an upload already abandoned or expired answers `replicas: 0`.
   */
  "ball.abandon": { args: z.object({ objectId }), result: abandonResult, replyBytesMax: limits.smallReplyBytesMax },
  /** ball.begin and ball.place in one: a new version's object id and placements for its first `count` chunks. */
  "ball.reserve": { args: reserveArgs, result: reserveResult },
  "ball.reserveMany": {
    args: z.object({ items: z.array(reserveArgs).min(1).max(spmBatchItemsMax) }),
    result: z.object({ results: z.array(itemOutcome(reserveResult)) }),
  },
  /** Choose rf distinct up peers for each of `count` chunks from `fromIndex`, avoiding `exclude`; extends the upload. */
  "ball.place": {
    args: z.object({ objectId, fromIndex: chunkIndex, count: z.number().int().min(1).max(limits.batchChunksMax), rf, exclude: z.array(peerId).max(64).optional() }),
    /** Placing extends the upload's intent: it lives another `intentTtlMs`. */
    result: z.object({ placements: z.array(placement), intentTtlMs: z.number().int().min(1) }),
  },
  /**
   * An upload is still making progress: its intent lives another intentTtlMs. Routers send it
   * before writing a chunk when the upload has not been placed or touched for a quarter of that.
   */
  "ball.touch": { args: z.object({ objectId }), result: z.object({ intentTtlMs: z.number().int().min(1) }), replyBytesMax: limits.smallReplyBytesMax },
  /** Make a ball visible: all its chunks are durable on rf peers. One catalog transaction. */
  "ball.commit": { args: commitArgs, result: commitResult, replyBytesMax: limits.smallReplyBytesMax },
  "ball.commitMany": {
    args: z.object({ items: z.array(commitArgs).min(1).max(spmBatchItemsMax) }),
    result: z.object({ results: z.array(itemOutcome(commitResult)) }), replyBytesMax: limits.smallReplyBytesMax * spmBatchItemsMax },
  "ball.get": { args: ballRefArgs, result: ballLocated },
  /** More of a version's chunk records, after the first page `ball.get` gave. */
  /** `bucket`: the object must be of it (a router passes the one its client named, which its key was checked for). */
  "ball.chunks": { args: chunksPageArgs.extend({ bucket: bucketName.optional() }), result: chunksPageResult },
  /** A page of an upload's chunk records ahead of its commit (in order); the reply counts those staged. */
  "ball.stageChunks": { args: z.object({ objectId, chunks: stagedChunks, bucket: bucketName.optional() }), result: z.object({ staged: stagedCount }), replyBytesMax: limits.smallReplyBytesMax },
  "ball.getMany": {
    args: z.object({ items: z.array(ballRefArgs).min(1).max(spmBatchItemsMax) }),
    result: z.object({ results: z.array(itemOutcome(ballLocated)) }),
  },
  /** Where one chunk of a version is now (routers refresh after healing or drain moved it). */
  "chunk.locate": {
    args: z.object({ objectId, index: chunkIndex }),
    result: z.object({ size: byteCount, checksum: checksumHex, peers: z.array(peerLocation.extend({ state: peerState })) }),
  },
  /** `actor`: the client a router deletes for, for the audit log (see protocol/keys.ts). */
  "ball.delete": { args: z.object({ bucket: bucketName, key: ballKey, actor: auditActor.optional() }), result: ballMeta },
  "ball.list": { args: listBallsArgs, result: listBallsResult },
  "bucket.list": { args: listBucketsArgs, result: listBucketsResult },
  ...bucketOps,
  ...auditedBucketOps,
  /** A router found a replica whose bytes fail their checksum, or that its peer lacks: repair it from a good one. */
  "replica.corrupt": {
    /** `missing`: the peer answered not_found for a chunk the catalog records there. */
    args: z.object({ objectId, index: chunkIndex, peerId, detail: z.string().max(1024), problem: z.enum(["corrupt", "missing"]).optional() }),
    result: z.object({ accepted: z.boolean() }), replyBytesMax: limits.smallReplyBytesMax },
  "peers.list": { args: z.object({}), result: z.object({ peers: z.array(peerStatus) }) },
  /** Move every chunk off a peer; refused when the other peers cannot hold them at their rf. */
  "peer.drain": { args: z.object({ id: peerId }), result: z.object({ id: z.string(), chunks: byteCount }), replyBytesMax: limits.smallReplyBytesMax },
  /** Cancel a drain: the peer takes new data again (what already moved stays moved). */
  "peer.undrain": { args: z.object({ id: peerId }), result: z.object({ id: z.string() }), replyBytesMax: limits.smallReplyBytesMax },
  /** Forget a peer that is down or draining; refused while it holds a chunk's only replica. */
  "peer.remove": { args: z.object({ id: peerId }), result: z.object({ id: z.string(), replicas: byteCount }), replyBytesMax: limits.smallReplyBytesMax },
  "vss.status": { args: z.object({}), result: vssStatus },
  /** A peer's own health, asked of it by the SPM for an admin (the TUI's detail pane): peers take no clients. */
  "peer.healthOf": { args: z.object({ id: peerId }), result: peerHealth },
  ...keyOps,
  ...bucketSettingOps,
});
export type SpmOps = typeof spmOps;
