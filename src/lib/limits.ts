// Every bound in mictlanx, in one place. Units last in names. Each is enforced where it applies
// and tested at its edge; change one here and the tests follow.
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
export const units = { KiB, MiB, GiB } as const;

export const limits = {
  // --- the wire ---------------------------------------------------------------------------
  /** The largest chunk anyone may store. A chunk travels in one frame. */
  chunkBytesMax: 8 * MiB,
  /** Default chunk size the client cuts payloads into. */
  chunkBytesDefault: 1 * MiB,
  /** Room in a frame for the envelope and metadata beside the chunk bytes. */
  frameOverheadBytesMax: 1 * MiB,
  /** A frame's body may not pass this; the length prefix is checked before buffering. */
  frameBytesMax: 8 * MiB + 1 * MiB,
  /** Bytes queued on a socket waiting for drain before a writer must wait. */
  writeQueueBytesMax: 16 * MiB,
  /** Requests one connection may have outstanding (client side waits, server side refuses). */
  inFlightPerConnectionMax: 256,
  /** Default time a request waits for its reply. */
  requestTimeoutMsDefault: 30_000,
  /** Time allowed to open a TCP connection. */
  connectTimeoutMs: 3_000,
  /** Connection attempts before a pool gives up on an address for one call. */
  connectAttemptsMax: 4,
  /** Backoff between connection attempts: base doubles each time, capped, with full jitter. */
  connectBackoffMsBase: 50,
  connectBackoffMsMax: 1_000,
  /** Connections a pool keeps open to one address. */
  connectionsPerAddressMax: 4,
  /** Connections a server accepts at once; past this new ones are closed at once. */
  serverConnectionsMax: 4096,

  // --- names ------------------------------------------------------------------------------
  bucketNameBytesMax: 128,
  keyBytesMax: 1024,
  ballIdBytesMax: 256,
  peerIdBytesMax: 64,
  tagCountMax: 64,
  tagBytesMax: 1024,

  // --- batches ----------------------------------------------------------------------------
  /** Chunks in one batch put or batch get. */
  batchChunksMax: 1024,
  /** Total chunk bytes in one batch put (the frame must still fit). */
  batchBytesMax: 8 * MiB,
  /** Entries in one page of a listing. */
  listPageMax: 1000,

  // --- the peer's engine ------------------------------------------------------------------
  shardBytesDefault: 1 * GiB,
  capacityBytesDefault: 100 * GiB,
  /** How long a lone write waits for company before its fsync. */
  groupCommitWaitMs: 2,
  /** Writes that share one fsync at most. */
  groupCommitWritesMax: 4096,
  /** Bytes that share one fsync at most. */
  groupCommitBytesMax: 64 * MiB,
  /** A chunk's ball id in the engine: a ball id plus room for a version or suffix. */
  chunkBallBytesMax: 256 + 64,
  /** Bytes of writes queued in the engine (not yet fsynced); past this a put is `overloaded`. */
  engineQueueBytesMax: 256 * MiB,
  /** Read window when scanning shards on open and rebuild (memory stays bounded by it). */
  shardScanWindowBytes: 4 * MiB,
  /** Records applied to the index in one transaction during recovery and rebuild. */
  recoveryRecordsPerTransactionMax: 4096,
  /** Default share of a read-only shard's bytes that must be garbage before compaction. */
  compactionGarbageRatioDefault: 0.5,
  /** Bytes of live records compaction reads and re-appends per group commit. */
  compactionBatchBytesMax: 8 * MiB,
  /** Index rows compaction fetches at a time from one shard. */
  compactionRowsPerPageMax: 1024,
  /** Times a read looks a chunk up again when compaction moved it under the read. */
  readRetriesMax: 3,
  /** The chunk index commits at least this often while writes flow (rescan on open covers the gap). */
  indexCommitIntervalMs: 200,
  /** ...or after this many applied records, whichever comes first. */
  indexCommitRowsMax: 65_536,
  /** How long opening a store waits for another holder of its index lock before giving up. */
  indexLockWaitMs: 200,
  /** SQLite page cache for the chunk index (per store). */
  indexCacheBytes: 32 * MiB,
  /** Reads getMany keeps in flight at once. */
  getManyConcurrencyMax: 16,
  /**
   * Resident memory past which a router or peer moving large buffers asks for a synchronous
   * garbage collection (gc-pacer.ts); below it the collector picks its own time. Leaves room
   * under the 256 MiB these processes are held to for what moves between two looks.
   */
  gcRssSoftBytes: 200 * MiB,
  /**
   * How long the allocator keeps freed memory before handing it back to the OS
   * (MIMALLOC_PURGE_DELAY, set by src/commands/allocator.ts for the long-running and
   * bulk-moving commands). Its default, 10 ms, returned each relayed chunk's pages between
   * chunks, so the next chunk page-faulted them in again: 5x the minor faults, 64 MiB GET
   * ~383 -> ~508 MB/s and PUT ~230 -> ~253 MB/s with 1 s. Memory is still given back after
   * a second without use.
   */
  allocatorPurgeDelayMs: 1_000,

  // --- the catalog (SPM) ------------------------------------------------------------------
  /** Caller-chosen id of one ball version's chunks. */
  objectIdBytesMax: 128,
  contentTypeBytesMax: 256,
  peerAddressBytesMax: 256,
  /** Peers one VSS registers at most (listPeers is not paginated). */
  peersMax: 4096,
  /** Chunks in one ball (a commit is one transaction; 2^20 chunks of 8 MiB is 8 TiB). */
  ballChunksMax: 1 << 20,
  /** How long SQLite waits for a lock held by another connection before failing. */
  catalogBusyTimeoutMs: 5_000,
  /**
   * How long a retired object id (overwritten, deleted, or an expired upload) is remembered: a
   * late commit of it is refused, and a replica copied for it meanwhile becomes garbage.
   */
  retiredObjectRetainMs: 24 * 60 * 60 * 1000,

  // --- tools ------------------------------------------------------------------------------
  /**
   * Failures a bench phase takes before its first success before it stops: a wrong --router
   * or a dead VSS is said at once, not after every one of 20,000 operations has retried.
   */
  benchFailuresBeforeSuccessMax: 64,

  // --- mictlanx up: supervising its children ------------------------------------------------
  /**
   * A child of `up` that exits is started again after this, doubled for each death within
   * `upRestartWindowMs` (250 ms, 500 ms, 1 s, …): a role killed once is back before its peers
   * notice (suspect after 3 s), and one that fails at start does not spin.
   */
  upRestartBackoffMsBase: 250,
  /** The backoff never grows past this, so a role that comes back late still comes back soon. */
  upRestartBackoffMsMax: 8_000,
  /**
   * Deaths of one child within `upRestartWindowMs` (failed starts count) after which `up` stops
   * restarting it, stops the whole VSS and exits 1 with the child's last log lines: a taken port
   * or a broken data dir does not heal by retrying, and a VSS with a role missing for good is
   * better stopped loudly than left half up. With the backoff above the fifth death comes ~4 s
   * after the first.
   */
  upRestartDeathsMax: 5,
  upRestartWindowMs: 60_000,
  /** Lines of a child's log `up` prints when it gives up on the child… */
  upLogTailLines: 20,
  /** …read from at most this many bytes at the end of the log (a log can be large). */
  upLogTailBytesMax: 64 * KiB,
} as const;

export type Limits = typeof limits;

// --- the VSS (SPM and routers) -------------------------------------------------------------
export const vssTimings = {
  /** How often peers and routers report to the SPM. */
  heartbeatIntervalMs: 1_000,
  /** No heartbeat for this long: the peer is suspect (not used for new placements). */
  suspectAfterMs: 3_000,
  /** No heartbeat for this long: the peer is down, and healing of its chunks begins (the grace period). */
  downAfterMs: 10_000,
  /** How often the SPM looks for work: healing, trimming, drain, rebalance, garbage. */
  healIntervalMs: 250,
  /** How often intents expire and drain, trim and rebalance look for work (slower, they change slowly). */
  slowPassIntervalMs: 1_000,
  /** An upload that has not committed after this long is abandoned; its chunks become garbage. */
  intentTtlMs: 10 * 60_000,
  /** How long a router trusts its cached peer list. */
  peerListTtlMs: 1_000,
} as const;

export const vssLimits = {
  /** Chunk copies (heal, drain, rebalance) running at once. */
  healConcurrencyMax: 4,
  /** Bytes per second that healing may copy (a token bucket; keeps client traffic first). */
  healBytesPerSecDefault: 256 * MiB,
  /** Chunks looked at per healing pass. */
  healPageChunks: 256,
  /** Garbage deletes sent per pass. */
  gcPageChunks: 512,
  /** Chunks rebalance moves per pass. */
  rebalanceChunksPerPass: 8,
  /** Rebalance until (max − min) of peers' live/capacity ratios is within this share of the mean. */
  rebalanceSpreadMax: 0.2,
  /** …and only when the fullest peer holds this many bytes more than its even share would be: small
   *  differences are noise, and moving a few chunks back and forth would never settle. */
  rebalanceSlackBytes: 32 * MiB,
  /** Events kept for status and the TUI. */
  eventsKept: 200,
  /** In-flight bytes one router spends on writes to peers at once. */
  routerInFlightBytesMax: 64 * MiB,
  /** Attempts to place one chunk (each on a fresh set of peers) before a put fails. */
  chunkPlaceAttemptsMax: 3,
  /** Chunk bytes a router or peer moves between looks at its resident memory (see gc-pacer.ts). */
  gcEveryBytes: 8 * MiB,
  /** Items in one batched SPM call (reserveMany, commitMany, getMany) a router sends. */
  spmBatchItemsMax: 64,
  /** Catalog writes one SPM group commit takes at most; the rest wait for the next turn. */
  spmWriteBatchMax: 512,
  /** Chunks up to this size are batched per peer by routers; larger ones travel alone (a batch must fit a frame). */
  peerBatchedChunkBytesMax: 64 * KiB,
  /** Chunks in one coalesced putMany/getMany a router sends to a peer. */
  peerBatchItemsMax: 64,
  /** Errors a peer keeps for `peer.health` (the TUI's detail pane). */
  peerRecentErrorsKept: 20,
  /** Reservations the SPM remembers by request id, so a retried put is not a second version. */
  reservationsKept: 65_536,
  /** Ball metadata a router caches by object id (versions are immutable). */
  routerBallCacheEntries: 4096,
  /**
   * The most chunk placements a router asks for in one `ball.place` ahead of an upload's
   * chunks (runs of 1, 2, 4, … up to this). Unused ones become garbage the SPM collects.
   */
  placeAheadChunksMax: 16,
  /** Uploads a router keeps placements ahead for (least recently used ones are forgotten). */
  placeAheadUploadsMax: 1024,
} as const;
