// The records the catalog keeps. These shapes are the catalog's contract with the SPM; a
// distributed engine behind the same `Catalog` interface would keep the same shapes.
import type { Grant } from "../lib/grants.ts";
import type { MictlanxError } from "../lib/errors.ts";

export const peerStates = ["up", "suspect", "down"] as const;
export type PeerState = (typeof peerStates)[number];

export type PeerRecord = {
  id: string;
  address: string;
  capacityBytes: number;
  usedBytes: number;
  freeBytes: number;
  /** Chunks the peer reported holding (its own count, not the catalog's). */
  chunks: number;
  state: PeerState;
  lastHeartbeatMs: number;
  registeredMs: number;
  draining: boolean;
  /**
   * The identity of the peer's data dir (made at its first start). A peer that comes back under
   * the same id with another instance has another disk: what the old one held is gone.
   */
  instanceId?: string;
};

/** One version of an object, identified by (bucket, key). */
export type BallRecord = {
  bucket: string;
  key: string;
  ballId: string;
  /** Unique id of this version's chunks, chosen by the caller; never reused. */
  objectId: string;
  /** Starts at 1, +1 per overwrite of (bucket, key); a delete ends the line (a new put starts at 1). */
  version: number;
  size: number;
  /** sha256 of the whole payload, 64 lowercase hex digits. */
  checksum: string;
  contentType: string;
  tags: Record<string, string>;
  rf: number;
  createdMs: number;
  chunkSize: number;
  numChunks: number;
};

/** What a commit supplies: the catalog assigns the version. */
export type BallInput = Omit<BallRecord, "version"> & { version?: number };

export type ChunkRecord = {
  index: number;
  size: number;
  /** xxHash3-64 of the chunk, 16 lowercase hex digits (src/lib/checksum.ts). */
  checksum: string;
  /** Ids of the peers holding a replica, sorted. */
  peers: string[];
};

export type BallWithChunks = BallRecord & { chunks: ChunkRecord[] };

/**
 * When a version is retired (overwritten, deleted) and how long its replicas stay for readers
 * that started on it: its garbage is due at `atMs + readerGraceMs`. Defaults: now, and no grace.
 */
export type RetireTiming = { atMs?: number; readerGraceMs?: number };

export type CommitOptions = {
  /** When the version this commit replaces is retired, and its readers' grace. */
  retire?: RetireTiming;
  /** Fail with ConflictError if (bucket, key) already holds a ball. */
  ifAbsent?: boolean;
  /** Compare-and-swap: fail with ConflictError unless the current ball has this objectId. */
  expectedObjectId?: string;
  /**
   * The commit must end an upload under way, and every replica it names must be one the SPM
   * placed for that chunk (the SPM sets this: it never takes a router's word for where data is).
   */
  requirePlacements?: boolean;
  /** Every chunk must name at least this many replicas (the SPM asks for rf: a put is acknowledged on rf peers). */
  replicasMin?: number;
  /** The first this-many chunk records were staged ahead (Catalog.stageChunks); `chunks` holds the rest. */
  stagedChunks?: number;
  /** A catalog rebuilt from the peers (docs/recovery.md): a new key starts at the version its manifest had, not 1. */
  restoredVersion?: number;
};

export type CommitResult = { version: number; replacedObjectId?: string };

export type CommitItem = { ball: BallInput; chunks: ChunkRecord[]; options?: CommitOptions };
/**
 * What addIntents did with one intent: added it; left it out because its request id is known
 * (an upload of it is under way or it committed: the put is a retry, findRequest says of what);
 * or refused it as addIntent would, in its place. A refused or left-out intent wrote nothing.
 */
export type IntentOutcome = "added" | "request_known" | MictlanxError;

export type Placement = { index: number; peers: string[] };

export type PutIntent = {
  objectId: string;
  bucket: string;
  key: string;
  createdMs: number;
  expiresMs: number;
  placements: Placement[];
  /** The client's id for this put, the same on every retry: a retry finds this upload, or its commit. */
  requestId?: string;
  /** The most bytes one stored chunk of it holds; each replica placed counts this much in `intentBytes`. Unknown (0) when absent. */
  chunkBytes?: number;
};

/** A replica that must be deleted from a peer. */
export type GarbageItem = { objectId: string; index: number; peerId: string };

/** What addGarbage takes: the bucket may be left out while the catalog knows the object. */
export type GarbageInput = GarbageItem & { bucket?: string };

/** What takeGarbage gives: with the bucket the peer files the chunk under. */
export type GarbageEntry = GarbageItem & { bucket: string };

export type ReplicaRef = GarbageItem;

export type Page = { after?: string; limit: number };

export type ListBallsQuery = Page & { bucket: string; prefix?: string; ballId?: string };

export type BucketSummary = { name: string; balls: number; bytes: number; createdMs: number };

/** One batch of a bulk delete: balls of `bucket` under `prefix` (all when absent), after the key `after`. */
export type DeleteBallsQuery = { bucket: string; prefix?: string; after?: string; limit: number; chunksMax: number };
/** `next`: the last key deleted, to pass as `after` for the next batch; absent when none is left. */
export type DeleteBallsResult = { deleted: number; bytes: number; next?: string };

/**
 * Balls under a prefix, counted up to a bound: `more` when there are more than `balls`. `bytes`
 * only for a whole bucket (kept by triggers); under a prefix it would cost a read of every row.
 */
export type BallCount = { balls: number; bytes?: number; more: boolean };

export type UnderReplicatedChunk = {
  objectId: string;
  index: number;
  size: number;
  checksum: string;
  rf: number;
  bucket: string;
  key: string;
  /** Holders that are not down and not draining (up or suspect). */
  livePeers: string[];
  /** Every holder, live or not. */
  allPeers: string[];
};

export type OverReplicatedChunk = {
  objectId: string;
  index: number;
  rf: number;
  /** Holders that are not down and not draining (more than rf of them); trim only among those known up. */
  peers: string[];
  /** Every holder, live or not. */
  allPeers: string[];
};

export type PeerChunk = {
  objectId: string;
  index: number;
  /** The bucket the peer files the chunk under. */
  bucket: string;
  size: number;
  checksum: string;
  rf: number;
  peers: string[];
};

/** A retired version's chunk still on peers, and why and when the version was retired. */
export type RetiredChunk = { bucket: string; size: number; checksum: string; peers: string[]; reason: string; retiredMs: number };

export type FoundChunk = { bucket: string; key: string; size: number; checksum: string; rf: number; peers: string[] };

export type CatalogStats = {
  balls: number;
  buckets: number;
  bytes: number;
  chunks: number;
  replicas: number;
  underReplicated: number;
  garbage: number;
  intents: number;
  /** Bytes placed for uploads under way: Σ chunk bytes × replicas placed (an upper bound on what they hold on peers). */
  intentBytes: number;
};

/** An access key as the catalog keeps it; the secret comes back unsealed only from getAccessKey. */
export type AccessKeyRecord = {
  accessKey: string;
  secretKey: string;
  grants: Grant[];
  admin: boolean;
  createdMs: number;
  /** When it was revoked; absent while it is valid. */
  revokedMs?: number;
};

/** A key as listings show it: never its secret. */
export type AccessKeySummary = Omit<AccessKeyRecord, "secretKey">;

/** One entry of the audit log: who did what to what, when, from where, and how it ended. */
export type AuditInput = {
  atMs: number;
  /** The key that made the request; null when anonymous or insecure. */
  accessKey: string | null;
  remote: string;
  /** The op, e.g. "key.create", "ball.delete", "peer.drain". */
  action: string;
  /** What it acted on: bucket/key, bucket/prefix*, a bucket, a peer id or a key id. */
  target: string;
  /** "ok", or the error code it ended with. */
  outcome: string;
};

export type AuditRecord = AuditInput & { seq: number };
