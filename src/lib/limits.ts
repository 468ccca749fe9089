// Every bound in mictlanx, in one place. Units last in names. Each is enforced where it applies
// and tested at its edge; change one here and the tests follow.
import { assert } from "./assert.ts";
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
  /** Requests one connection may have outstanding (client side waits, server side stops reading). */
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
  /** Client connections a server keeps (its nodes' are apart, serverNodeConnectionsMax); past
   *  this a newcomer evicts the least recently active one. */
  serverConnectionsMax: 4096,

  // --- names ------------------------------------------------------------------------------
  bucketNameBytesMax: 128,
  keyBytesMax: 1024,
  ballIdBytesMax: 256,
  peerIdBytesMax: 64,
  /** A peer's data-dir identity and a VSS's identity (random UUIDs today; room to spare). */
  peerInstanceIdBytesMax: 64,
  vssIdBytesMax: 64,
  /** A client's id for one put, the same on each retry (a UUID today). */
  requestIdBytesMax: 64,
  tagCountMax: 64,
  tagBytesMax: 1024,

  // --- batches ----------------------------------------------------------------------------
  /** Chunks in one batch put or batch get. */
  batchChunksMax: 1024,
  /** Total chunk bytes in one batch put (the frame must still fit). */
  batchBytesMax: 8 * MiB,
  /** Entries in one page of a listing. */
  listPageMax: 1000,
  /**
   * What ops whose replies are a few fields (an acknowledgement, a version, a chunk record)
   * declare as their largest reply, and a batch of them 64 times that: servers then let many
   * run at once on a connection before the first has answered (see OpSpec.replyBytesMax).
   */
  smallReplyBytesMax: 4096,
  /**
   * Metadata bytes one reply page carries at most (src/lib/wire-size.ts counts them): a listing
   * page of balls, a page of a ball's chunk records. A page ends early at this, whatever its
   * count, so 1,000 balls with 64 large tags each, or a ball of 2^18 chunks, never outgrow a
   * frame; the rest comes in the next page.
   */
  metadataPageBytesMax: 2 * MiB,
  /** Chunk records one page carries at most (and never more than metadataPageBytesMax). */
  chunkRecordsPageMax: 8192,
  /** Bytes of items one batched SPM call carries at most (commitMany's, getMany's reply). */
  spmBatchBytesMax: 4 * MiB,

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
   * The data of one manifest record (docs/recovery.md): its generation and the ball's metadata
   * in MessagePack. The largest metadata is its tags (tagCountMax names and values of
   * tagBytesMax UTF-16 units each, so up to 3 UTF-8 bytes a unit: 384 KiB) beside a key, ball
   * id and content type; asserted below.
   */
  manifestRecordBytesMax: 512 * KiB,
  /** Manifests one `manifest.putMany` carries at most (one group commit on the peer). */
  manifestBatchItemsMax: 256,
  /** Manifests `manifest.ofObject` returns at most (an object id belongs to one key, so one is the norm). */
  manifestsOfObjectMax: 16,
  /** Manifests one `manifest.list` page carries at most… */
  manifestListPageMax: 1000,
  /** …and the bytes of their metadata at most (the page ends early past it). */
  manifestListPageBytesMax: 2 * MiB,
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
  /**
   * Chunks in one ball: 256 GiB at the default 1 MiB chunks, 2 TiB at 8 MiB. The commit that
   * makes a ball visible is one catalog transaction and holds the SPM for its length, ~10 us a
   * chunk (2^18: 2-3 s measured on the 2-core box; 2^20 took 13-26 s there, too long a stall).
   */
  ballChunksMax: 1 << 18,
  /** How long SQLite waits for a lock held by another connection before failing. */
  catalogBusyTimeoutMs: 5_000,
  /**
   * How long a retired object id (overwritten, deleted, or an expired upload) is remembered: a
   * late commit of it is refused, and a replica copied for it meanwhile becomes garbage.
   */
  retiredObjectRetainMs: 24 * 60 * 60 * 1000,
  /**
   * How long the catalog remembers a committed put's request id: a retry of it (after a lost
   * reply, across an SPM restart) gets the first try's version instead of making a second one.
   * Far longer than any client retries.
   */
  putRequestRetainMs: 60 * 60 * 1000,

  // --- access keys, grants and the audit log (issue 12; src/lib/grants.ts, src/catalog/access-keys.ts) ---
  /** Grants one access key holds at most: a key that needs more wants bucket prefixes (`logs-*`). */
  grantsPerKeyMax: 64,
  /** A grant's bucket pattern (a bucket name, a prefix and `*`, or `*`): a bucket name's bound, since a longer prefix could match nothing. */
  grantBucketPatternBytesMax: 128,
  /** Access keys the catalog keeps, revoked ones included (they stay so the audit log's ids keep meaning something). */
  accessKeysMax: 100_000,
  /** Keys one `key.list` page carries at most (and never more than metadataPageBytesMax of them). */
  accessKeysPageMax: 1000,
  /**
   * Audit records the catalog keeps: appending one past this trims the oldest in the same
   * transaction. A record is at most ~1.7 KiB, so the table stays under ~170 MiB even with
   * every target at its longest; at a delete a second that is more than a day of history.
   */
  auditRecordsMax: 100_000,
  /** Records one `audit.list` page carries at most: at their largest, well within metadataPageBytesMax (asserted in src/catalog/audit-log.ts). */
  auditPageMax: 1000,
  /** Records `mictlanx audit` shows when no --limit says otherwise (newest first). */
  auditShownDefault: 50,
  /** What an audit record names (`bucket/key`, a peer id, a key id, `bucket/prefix*`): a bucket, a slash, a key, a star and room. */
  auditTargetBytesMax: 128 + 1 + 1024 + 1 + 64,
  /** The address an audit record says a request came from. */
  auditRemoteBytesMax: 256,
  /** An audit record's action (an op name; envelopes bound op names the same) and its outcome ("ok" or an error code). */
  auditActionBytesMax: 64,
  auditOutcomeBytesMax: 64,

  // --- tools ------------------------------------------------------------------------------
  /**
   * Failures a bench phase takes before its first success before it stops: a wrong --router
   * or a dead VSS is said at once, not after every one of 20,000 operations has retried.
   */
  benchFailuresBeforeSuccessMax: 64,
  /** How often `mictlanx bench` redraws its progress line on a terminal. */
  benchProgressIntervalMs: 200,

  // --- the client on the shell (pipes, writing into directories) ---------------------------
  /**
   * How long a command whose stdout reader went away (`| head -1`) spends stopping its work
   * (a `get --ball-id` removing the partial files it had open) before it exits anyway: a
   * stopped filter must end promptly, and a request in flight can take its whole timeout.
   */
  outputClosedStopMsMax: 2_000,

  // --- scrub (the peer's engine verifying cold data; src/storage/scrub.ts) ------------------
  /**
   * Bytes per second the scrub reads by default (`mictlanx peer --scrub-rate`). ~5 % of one
   * spinning disk's sequential bandwidth (~160 MB/s), 1-2 % of a SATA SSD's, so clients keep
   * the disk; still, a peer of the default capacity (100 GiB) is read end to end every ~3.5 h
   * and a 4 TiB disk every ~6 days. Costs ~2-5 % of a core (measured, docs/reliability.md), and
   * reads go direct, so they do not evict the page cache that serves hot chunks.
   */
  scrubBytesPerSecDefault: 8 * MiB,
  /**
   * A pass starts at most this often (from the start of one to the start of the next): a small
   * store is not read over and over, and a pass over an empty store waits instead of spinning.
   * A store too big to read in this time is scrubbed pass after pass.
   */
  scrubPassIntervalMsDefault: 60 * 60_000,
  /** The shortest pass interval accepted (tests use a few hundred ms; 0 would spin). */
  scrubPassIntervalMsMin: 100,
  /**
   * Bytes one scrub step reads: neighbouring small records are read together up to this; a
   * bigger record is read alone (at most one chunk and its header). It is also the token
   * bucket's burst (or one second of the rate, if less), so the scrub never reads more than
   * this ahead of its rate.
   */
  scrubReadBytesMax: 1 * MiB,
  /**
   * Index rows the scrub fetches at a time from one shard, and so the records one step verifies
   * at most: fetching a row and verifying its record take ~13 us of the event loop (measured
   * with 4 KiB records under load), so a step holds the loop for about 1 ms, not the 7 ms
   * of 256 rows, which showed in clients' p99.
   */
  scrubRowsPerPageMax: 64,

  // --- connections and memory (issue 10 point 10: src/net, src/protocol/frame.ts) --------
  /**
   * A frame's buffer starts at most this big and doubles as its bytes arrive, so a prefix
   * that declares 9 MiB and then stops holds this much, not 9 MiB. Frames up to this size
   * (nearly every request and reply but a chunk's) are allocated whole at once, as before.
   */
  frameBufferGrowStartBytes: 64 * KiB,
  /**
   * Once this share of a frame's declared length has arrived, its buffer is allocated whole:
   * a sender must really send an eighth of what it declares to make the receiver hold all of
   * it, while an 8 MiB chunk (which arrives in Bun's 512 KiB reads) is still copied once: its
   * first read is kept as a view and the whole buffer is allocated on the second. Doubling
   * all the way would copy up to a chunk's worth more per chunk (decoder 14 → 12 GB/s).
   */
  frameBufferWholeAfterRatio: 1 / 8,
  /**
   * Reply bytes one server connection may hold: replies computed and not yet taken by the
   * socket, plus what the requests running on it are expected to answer (each op's largest
   * reply so far; a frame's worth before its first). A request starts only while they fit, so
   * a client that never reads pins this much, not inFlightPerConnectionMax × 8 MiB; a reply
   * that would pass it anyway (an op answering more than ever before) is withheld as an
   * `overloaded` error. Room for three 8 MiB chunks in flight, or 32 of the default 1 MiB.
   */
  replyBytesInFlightMax: 32 * MiB,
  /** A connection in the middle of a frame that gets no bytes for this long (or whose replies
   *  the socket takes none of) is closed: a half-sent frame pins memory only this long. */
  frameStallTimeoutMs: 30_000,
  /** A connection with no request, no bytes in or out for this long is closed. */
  connectionIdleTimeoutMs: 5 * 60_000,
  /** Deadlines are checked this many times per the shorter of the two: a connection over its
   *  deadline is closed within a quarter of it more. */
  connectionSweepsPerTimeout: 4,
  /**
   * After a closing notice (idle, evicted, stalled, oversized frame) the server half-closes and
   * reads and drops what still comes for this long, so a request crossing the notice does not
   * turn into a reset that erases the notice at the client before it is read.
   */
  closeLingerMs: 2_000,
  /**
   * Connections a server keeps that say they are the VSS's own nodes (a pool's hello, or a
   * handler's markNode): never evicted for a client, but bounded so a flood of hellos cannot
   * grow memory forever. Every peer of a full VSS (peersMax) with a full pool (connectionsPerAddressMax).
   */
  serverNodeConnectionsMax: 4096 * 4,
  /** A node identity's role and id in a hello (an id is a peer id or an address). */
  nodeIdentityBytesMax: 256,
  /** The highest wire version a hello may state (src/protocol/envelope.ts): a u16, room for decades of bumps. */
  wireVersionMax: 0xffff,
  /** Addresses a pool keeps connections to; the least recently used is closed past this
   *  (routers call whatever peer addresses the SPM hands out). */
  poolAddressesMax: 1024,
  /**
   * Distinct SPM addresses in one `--spm a,b,c` (or MICTLANX_SPM) list: several SPMs share one
   * catalog and elect one leader, so 3 or 5 is the usual count; 7 leaves room to grow and keeps
   * a heartbeat round (one call to each) and a failover walk (each tried once) short.
   */
  spmAddressesMax: 7,
  /** Connection attempts to one SPM of several before the next is asked (one SPM alone gets connectAttemptsMax). */
  spmSetConnectAttempts: 2,
  /**
   * A pool closes a connection unused for this long, and forgets an address with none: well
   * under connectionIdleTimeoutMs, so between roles it is the caller that closes an idle
   * connection, never the server under a request just sent.
   */
  poolConnectionIdleMs: 60_000,
  /** Times a pool sends a request again on a fresh connection when the old one closed
   *  without it having been read (never sent, or the server said it read nothing more). */
  requestResendsMax: 2,

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
  /**
   * `up --ha`: PostgreSQL (initdb on a first start, then its recovery) and etcd must answer
   * within this long. A cold initdb takes 2-5 s on a slow disk; a minute is for a loaded CI box.
   */
  upServiceReadyTimeoutMs: 60_000,
  /** PostgreSQL and etcd get this long to stop after SIGINT / SIGTERM before SIGKILL (a fast shutdown takes well under a second). */
  upServiceStopGraceMs: 10_000,
  /** SPMs `up --ha` starts: a leader and two standbys, so one can fail and a standby still takes over. */
  upHaSpms: 3,

  // --- interrupted uploads (issue 11: a put that stops tells the SPM, src/client/client.ts) ---
  /**
   * How long a put that was aborted (Ctrl-C, an AbortSignal) waits for its chunks already on
   * their way before it abandons the upload: one that lands after the abandon's deletes would
   * stay until reconciliation collects it (the orphan grace, an hour). A chunk takes
   * milliseconds on a LAN; a stalled one is not waited for past this.
   */
  abandonInFlightWaitMs: 2_000,
  /** The most an abandon (`ball.abandon`, retries included) takes before the put gives up on it; the intent then expires as before. */
  abandonCallMsMax: 2_000,
  /**
   * After Ctrl-C or SIGTERM, how long `mictlanx put` has to stop and abandon its upload before
   * it exits anyway (130 / 143): the two waits above, and a little for the source to close. A
   * second signal exits at once.
   */
  interruptStopMsMax: 5_000,

  // --- bulk work from the shell (issue 11: trees in and out, del --recursive, buckets) -------
  /**
   * Balls one `ball.deletePrefix` deletes at most, in one catalog transaction (one write of
   * the SPM's group commit). Retiring a ball of one chunk at rf 2 costs ~100 us with its share
   * of the fsync (measured on the 2-core box, 1,000 at a time: 110-160 ms), so a batch holds the
   * SPM's event loop ~25 ms: puts and gets queued behind it barely notice, and 50,000 balls
   * still go in ~200 round trips.
   */
  deleteBatchBallsMax: 256,
  /**
   * …and a batch stops early once the chunks of its balls pass this (a ball of more chunks
   * still goes, alone): each chunk retired costs about as much again (~120 us at 4 chunks a ball).
   */
  deleteBatchChunksMax: 1024,
  /**
   * Balls `ball.count` counts under a prefix at most (a whole bucket's count is kept by
   * triggers and exact). Counting reads only the index, ~3 ms per 50,000 balls on the SPM's
   * loop (measured); past the bound `del --recursive` asks about "more than 100,000 balls".
   */
  ballCountMax: 100_000,
  /**
   * Files `put --recursive` and `get --recursive` (and `get --ball-id`) move at once. Small
   * files are bound by round trips: a 3,000-file tree went in at 205, 313 and 425 files/s and
   * came back at 298, 450 and 446 with 4, 16 and 32 in flight (docs/performance.md). Each
   * transfer holds up to (concurrency + 3) chunks, so 16 large files hold ~112 MiB at the
   * default chunk size; 32 would pass what a client process should take.
   */
  treeTransfersInFlightMax: 16,

  // --- everyday use from the shell (issue 11): errors that name the cause ---------------------
  /**
   * A port taken when a role starts: the processes whose open files are looked through (in
   * /proc) to name the one holding it. A diagnostic on a failed start, so bounded, not exact.
   */
  portOwnerProcessesScannedMax: 4096,
  /** That process's command line, as quoted in the error, is cut here. */
  portOwnerCommandCharsMax: 200,
  /**
   * The smallest `--chunk-size` of `put` and `bench`. Each chunk costs a catalog record, a
   * round trip and a record header on rf peers: below a few KiB that overhead is most of the
   * work (a 1 MiB file in 1 B chunks is a million catalog rows). 4 KiB is a disk page.
   */
  chunkSizeFlagBytesMin: 4 * KiB,
  /** A child that closed its output before its ready line is given this long to exit, so its exit code (and error) can be told. */
  roleExitWaitMs: 2_000,
  /** How long `up` waits for the SPM a DIR/vss.json names to answer before starting anew there. */
  upRunningCheckTimeoutMs: 1_000,

  // --- security: certificates and keys (docs/security.md) ---------------------------------
  /** A VSS CA made by `certs init` is good for this many days. */
  caValidityDaysDefault: 3650,
  /** A node certificate made by `certs issue` (`--days`) is good for this many days. */
  certificateValidityDaysDefault: 365,
  /** `--days` at most: a certificate that never expires is one nobody rotates. */
  certificateValidityDaysMax: 7300,
  /** notBefore is set this far in the past, so a host whose clock is a little behind accepts a new certificate. */
  certificateBackdateMs: 5 * 60_000,
  /** A node id written into a certificate. */
  certificateIdBytesMax: 64,
  /** `status` and the TUI warn this long before a node's certificate expires. */
  certificateExpiryWarnMs: 30 * 86_400_000,
  /**
   * A router uses an access key's record for this long after the SPM gave it without asking
   * again; past it, it asks again in the background while it keeps using the record…
   */
  keyRefreshAfterMs: 1_000,
  /**
   * …and past this, a request waits for a fresh record: so a revoked key is refused by every
   * router within this long while an SPM is reachable (the promise docs/security.md makes).
   */
  keyRevocationMs: 5_000,
  /**
   * A router cut off from every SPM keeps accepting a key it validated within this long, then
   * refuses it with `unavailable`: the trade-off between staying up without an SPM and a
   * revocation it cannot hear of (docs/security.md).
   */
  keyOfflineTrustMs: 60_000,
  /** Access keys a router keeps records of (the least recently used goes). */
  keyCacheEntriesMax: 4096,
  /** Where a role serves its metrics unless --metrics-host says otherwise: loopback, not the world. */
  metricsHostDefault: "127.0.0.1",
  /** An access key's id as a hello may carry it. */
  accessKeyIdBytesMax: 128,
  /** Bytes read of a --tls-cert / --tls-key / --tls-ca file (a PEM chain is a few KiB). */
  tlsFileBytesMax: 1024 * 1024,

  // --- S3 gateway: AWS Signature V4 (issue 13; src/s3/sigv4.ts) ---------------------------
  /** A signed request's X-Amz-Date may be this far from the gateway's clock, either way: S3's own 15 minutes. */
  s3ClockSkewMsMax: 15 * 60_000,
  /** A presigned URL's X-Amz-Expires at most, in seconds: S3's 7 days. */
  s3PresignExpiresSecondsMax: 7 * 86_400,
  /** An Authorization header (or X-Amz-SignedHeaders) we parse: a credential, dozens of signed header names, a signature. */
  s3AuthorizationBytesMax: 8 * KiB,
  /** An aws-chunked chunk header line without its CRLF: "hex;chunk-signature=<64 hex>" is at most 97 bytes; room for extensions. */
  s3ChunkHeaderBytesMax: 1 * KiB,
  /** An aws-chunked body's trailer section: a few x-amz-checksum-* lines and x-amz-trailer-signature. */
  s3ChunkTrailerBytesMax: 16 * KiB,
  /** ListObjectsV2's max-keys at most (and its default): S3's 1000. */
  s3ListKeysMax: 1000,
  /** The SigV4 region a router's S3 endpoint signs for without --s3-region: what SDKs default to. */
  s3RegionDefault: "us-east-1",
  /** One PutObject's body at most: S3's own 5 GiB (larger objects are multipart uploads in S3). */
  s3PutObjectBytesMax: 5 * 1024 * MiB,
  /** What aws-chunked framing (chunk headers, signatures, trailers) may add to the largest PutObject body in one request. */
  s3ChunkedFramingBytesMax: 64 * MiB,
  /** The body of a bucket request (CreateBucket's CreateBucketConfiguration) read at most; it is not otherwise used. */
  s3BucketBodyBytesMax: 64 * KiB,
  /** How long the S3 listener waits for a request to go quiet before closing it, in seconds (Bun.serve's idleTimeout, 255 at most). */
  s3IdleTimeoutSeconds: 120,
  /** PostObject: the form's fields (all but the file) together, names and values, as S3 bounds them. */
  s3PostFieldsBytesMax: 20 * KiB,
  /** PostObject: fields before the file part. */
  s3PostFieldsMax: 64,
  /** PostObject: one part's header block (Content-Disposition, Content-Type). */
  s3PostPartHeaderBytesMax: 4 * KiB,
  /** CopyObject's source at most: S3's own 5 GiB (larger objects are copied by UploadPartCopy). */
  s3CopyObjectBytesMax: 5 * 1024 * MiB,
  /** Keys one DeleteObjects names at most: S3's 1000. */
  s3DeleteObjectsKeysMax: 1000,
  /** A DeleteObjects XML body at most: 1000 keys of 1 KiB each, escaped, with room for the markup. */
  s3DeleteObjectsBodyBytesMax: 2 * MiB,
  /** Keys of one DeleteObjects deleted at once (each is one SPM round trip). */
  s3DeleteObjectsConcurrencyMax: 16,

  // --- S3 canned ACLs and lifecycle rules (issue 13; src/s3/acl.ts, src/s3/lifecycle.ts) ------
  /** How old a bucket's ACL a router may answer an anonymous request with: a PutBucketAcl to private closes anonymous listing within this. */
  s3BucketAclCacheMs: 5_000,
  /** Buckets whose ACL one router caches at most (the oldest is dropped first). */
  s3BucketAclCacheEntriesMax: 1024,
  /** The body of a PutBucketAcl, PutObjectAcl or PutBucketLifecycleConfiguration read at most. */
  s3SettingsBodyBytesMax: 256 * KiB,
  /** Rules in one lifecycle configuration at most: S3's 1000. */
  s3LifecycleRulesMax: 1000,
  /** A lifecycle rule's ID at most, in bytes: S3's 255. */
  s3LifecycleRuleIdBytesMax: 255,
  /** One bucket setting's stored value (a lifecycle configuration as JSON) at most. */
  bucketSettingBytesMax: 512 * KiB,
  /** How often the SPM applies lifecycle rules without `spm --lifecycle-every` (S3 itself does once a day). */
  lifecycleIntervalMsDefault: 10 * 60_000,
  /** Balls one lifecycle pass looks at at most (it goes on where it stopped the next pass). */
  lifecycleBallsScannedPerPassMax: 10_000,
  /** Balls one lifecycle pass deletes at most, in transactions of deleteBatchBallsMax. */
  lifecycleBallsDeletedPerPassMax: 1_000,

  // --- S3 multipart uploads (src/roles/router/s3/multipart.ts) -------------------------------
  /** How long a multipart upload lives from CreateMultipartUpload: past it, it and its parts are garbage (S3 keeps them until aborted; a week bounds what an abandoned one holds). */
  s3MultipartUploadMsMax: 7 * 24 * 3_600_000,
  /** The smallest part of a multipart upload but its last: S3's 5 MiB (EntityTooSmall at Complete). */
  s3MultipartPartBytesMin: 5 * MiB,
  /** The largest part (UploadPart's body): S3's 5 GiB. */
  s3MultipartPartBytesMax: 5 * 1024 * MiB,
  /** Part numbers run 1..this: S3's 10,000. */
  s3MultipartPartsMax: 10_000,
  /** A CompleteMultipartUpload body at most: 10,000 <Part> elements of about 120 bytes each, with room. */
  s3CompleteBodyBytesMax: 2 * MiB,
  /** While Complete copies the parts into the object, a space is sent this often so clients and proxies do not time out. */
  s3CompleteKeepaliveMs: 5_000,
  /** Chunks of the parts Complete reads ahead of the one it copies (memory: this many chunks of 1 MiB). */
  s3CompleteReadAheadChunks: 4,
  /** How long a completed upload's record stays, so a retried CompleteMultipartUpload (its reply was lost) succeeds again. */
  s3CompletedUploadKeepMs: 15 * 60_000,
  /** How often a router looks for multipart uploads past s3MultipartUploadMsMax. */
  s3MultipartSweepMs: 60_000,
  /** ListParts' max-parts and ListMultipartUploads' max-uploads at most (and their default): S3's 1000. */
  s3ListPartsMax: 1000,
  /** Multipart uploads of one bucket that ListMultipartUploads reads to sort them by key (the catalog keeps them by upload id). */
  s3ListUploadsScanMax: 100_000,

  // --- the catalog on PostgreSQL (src/catalog/postgres, docs/catalog-postgres.md) ----------
  /**
   * Connections one SPM keeps to its PostgreSQL catalog. Writes run one at a time (an advisory
   * lock), so more connections serve only concurrent reads; a few SPMs on one server stay far
   * below its default max_connections of 100.
   */
  catalogPostgresPoolMax: 8,
  /** How long opening a connection may take before the catalog is `unavailable`. */
  catalogPostgresConnectTimeoutMs: 5_000,
  /**
   * How long a statement may wait for a lock (another SPM's write holding the writer lock)
   * before the call is `unavailable`: as long as sqlite's busy timeout.
   */
  catalogPostgresLockTimeoutMs: 5_000,
  /**
   * How long one statement may run before the server cancels it (`unavailable`): a bound on a
   * runaway, far above the longest the catalog needs (a commit of a ball of ballChunksMax
   * chunks, its half a million replicas each checked against its chunk and its peer: ~10 s).
   */
  catalogPostgresStatementTimeoutMs: 60_000,
  /**
   * The one statement allowed longer: a peer going down or up changes the live count of every
   * chunk it holds, O(its chunks) in one UPDATE, ~20 µs a chunk on the 2-core box (5 s for
   * 251,000 chunks, past the statement bound at ~2.5M: a 10M-ball catalog on 8 peers). 10
   * minutes covers ~30M chunks on one peer; the writer lock is held meanwhile (docs/performance.md).
   */
  catalogPostgresLivenessFlipTimeoutMs: 600_000,
  /** Idle connections are closed after this, so a pool shrinks back after a burst. */
  catalogPostgresIdleTimeoutMs: 60_000,
  /** Rows `catalog migrate` copies in one page (bounded memory: a page of balls is ~1 KiB a row). */
  catalogMigratePageRows: 1_000,
} as const;

export type Limits = typeof limits;

// Relationships between the bounds of connections and memory, checked when this module loads.
assert(limits.s3MultipartPartBytesMax <= limits.s3PutObjectBytesMax, "the S3 listener's body bound (from PutObject's) must hold the largest part");
assert(limits.s3MultipartPartBytesMin <= limits.s3MultipartPartBytesMax && limits.s3MultipartSweepMs < limits.s3MultipartUploadMsMax, "multipart bounds out of order");
assert(limits.replyBytesInFlightMax >= limits.frameBytesMax, "one connection's reply bytes must hold a reply of a whole frame");
assert(limits.serverNodeConnectionsMax >= limits.peersMax * limits.connectionsPerAddressMax, "every peer of a full VSS must be able to hold a full pool to one server");
assert(limits.poolConnectionIdleMs < limits.connectionIdleTimeoutMs, "pools must close idle connections before servers do");
assert(limits.spmAddressesMax >= 3 && limits.spmAddressesMax < limits.poolAddressesMax, "an SPM list must hold at least a 3-SPM set, and a pool must hold every SPM of it besides its peers");
assert(limits.abandonInFlightWaitMs + limits.abandonCallMsMax < limits.interruptStopMsMax, "an interrupted put must have time to abandon its upload before the CLI exits anyway");
assert(limits.keyRefreshAfterMs < limits.keyRevocationMs && limits.keyRevocationMs < limits.keyOfflineTrustMs, "a key is refreshed before it must be, and trusted offline longer than it is fresh");
assert(limits.frameBufferGrowStartBytes <= limits.frameBytesMax && limits.frameBufferWholeAfterRatio > 0 && limits.frameBufferWholeAfterRatio <= 1, "frame buffer growth out of range");
assert(limits.grantBucketPatternBytesMax === limits.bucketNameBytesMax, "a grant's bucket pattern is bounded as a bucket name is");
assert(limits.auditTargetBytesMax >= limits.bucketNameBytesMax + 1 + limits.keyBytesMax + 1, "an audit target must hold bucket/key and a prefix's star");
assert(
  limits.manifestRecordBytesMax >= 8 + limits.tagCountMax * 2 * (3 * limits.tagBytesMax + 5) + 3 * (limits.ballIdBytesMax + limits.contentTypeBytesMax) + 1024,
  "a manifest record must hold a ball's largest metadata (tags, ball id, content type and the fixed fields)",
);
assert(limits.manifestListPageBytesMax >= limits.manifestRecordBytesMax && limits.manifestListPageBytesMax <= limits.metadataPageBytesMax, "a manifest page holds the largest manifest and fits a metadata page");
assert(limits.catalogPostgresLockTimeoutMs < limits.catalogPostgresStatementTimeoutMs && limits.catalogPostgresPoolMax >= 2, "a wait for the writer lock must end before a statement's bound, and reads need a connection beside the writer's");

// --- the VSS (SPM and routers) -------------------------------------------------------------
export const vssTimings = {
  /** How often peers and routers report to the SPM. */
  heartbeatIntervalMs: 1_000,
  /**
   * After the SPM could not be reached, a router answers lookups it holds an answer for from
   * that answer for this long without dialling the SPM again (each dial of a dead address costs
   * its connect retries, ~0.2-0.5 s); past it the next lookup asks the SPM again.
   */
  spmAwayRecheckMs: 1_000,
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
  /**
   * How long the SPM waits for a peer to store a manifest before it counts that peer out (the
   * peers holding chunk 0 have just fsynced it, so a healthy one answers in milliseconds).
   */
  manifestDeliveryTimeoutMs: 5_000,
  /** How long a catalog rebuild keeps asking a peer that does not answer before it gives up. */
  rebuildPeerWaitMs: 60_000,
  /** How long a router trusts its cached peer list. */
  peerListTtlMs: 1_000,
  /**
   * How long a router waits for one replica of a chunk before it reads another: a peer that is
   * stopped (SIGSTOP, a stalled disk) answers nothing, and the request's own timeout (30 s)
   * would hold the read that long. An 8 MiB chunk from a healthy peer takes milliseconds.
   */
  replicaReadTimeoutMs: 5_000,
  /** …and a peer whose read timed out is asked last for this long, so one stopped peer costs one timeout, not one per chunk. */
  replicaSlowForMs: 10_000,

  // --- trust nothing unchecked (issue 10) ---------------------------------------------------
  /** A router silent this long leaves `status` (it shows as down long before). */
  routerForgetAfterMs: 10 * 60_000,
  /**
   * How long an overwritten or deleted version's chunks stay on the peers, so a reader that had
   * started on it finishes (`spm --reader-grace`). A read still going after this fails with a
   * message saying the version was replaced. Costs only space: the old bytes wait this long.
   */
  readerGraceMsDefault: 5 * 60_000,
  /** Each up peer's holdings are checked against the catalog at least this often (`spm --reconcile-every`). */
  reconcileIntervalMsDefault: 10 * 60_000,
  /**
   * A chunk on a peer that the catalog does not want is deleted only once it is older than this
   * (`spm --orphan-grace`): far longer than any upload's step, so a write about to be recorded
   * is never taken for an orphan. Compared with the peer's clock: it also covers clock skew.
   */
  orphanGraceMsDefault: 60 * 60_000,
  /**
   * An unrecorded copy of a live chunk (a heal or move whose record was lost with an SPM that
   * died between the copy and the record) waits only this long before reconciliation adopts or
   * collects it: such a copy is recorded within milliseconds of landing, or never. Kept below
   * the orphan grace, never above it.
   */
  extraCopyGraceMs: 60_000,
  /**
   * Wall time one reconciliation step (one a second) may take, page after page, before it yields
   * to the next second: at most a fifth of the SPM's time, yet a peer of a few thousand chunks is
   * walked in a step or two, not one page a second (4 peers of 6,000 chunks after an SPM restart
   * took over 90 s, and a replaced disk's leftovers waited behind the others; see
   * docs/reliability.md). The first page of a step is always taken.
   */
  reconcileStepBudgetMs: 200,
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
   * Bytes of ball metadata (with its first page of chunk locations) a router keeps of what it
   * served last, weighed as the wire carries it: gets of these balls go on while no SPM answers.
   */
  routerBallCacheBytesMax: 32 * MiB,
  /** Bytes of further chunk pages (`ball.chunks`) kept the same way, for big balls. */
  routerChunkPageCacheBytesMax: 32 * MiB,
  /**
   * The most chunk placements a router asks for in one `ball.place` ahead of an upload's
   * chunks (runs of 1, 2, 4, … up to this). Unused ones become garbage the SPM collects.
   */
  placeAheadChunksMax: 16,
  /** Uploads a router keeps placements ahead for (least recently used ones are forgotten). */
  placeAheadUploadsMax: 1024,

  // --- trust nothing unchecked (issue 10) ---------------------------------------------------
  /** Routers the SPM keeps in its table (keyed by what they send; the least recently heard from goes). */
  routersTrackedMax: 1024,
  /** Nodes whose certificate expiry the SPM keeps for `status` (every peer, every router tracked, itself)… */
  certificatesTrackedMax: 4096 + 1024 + 1,
  /** …forgetting a node not heard from for this long (removed, or renamed). */
  certificateForgetMs: 10 * 60_000,
  /** Chunks one reconciliation step asks a peer about (one page of its list, or one chunk.statMany). */
  reconcilePageChunks: 512,
  /** Pages one reconciliation step takes at most, however fast they go (the time budget is reconcileStepBudgetMs). */
  reconcilePagesPerStepMax: 32,
  /**
   * The share of a peer's chunks the catalog may not know at all before reconciliation stops
   * collecting them: in normal life such orphans are a handful (a write that outlived its
   * upload's records); many more means the catalog is probably missing data, and deleting
   * would destroy what it could be rebuilt from. Judged on a full check, used on the next.
   */
  orphanShareMax: 0.05,

  // --- scrub (the peer reporting what its scrub finds; src/roles/peer/scrub-reports.ts) ----
  /**
   * `replica.corrupt` reports a peer has in flight to the SPM at once. A disk gone bad could
   * turn up thousands of corrupt chunks a second; past this a finding is only logged and
   * counted, and the next pass reports it again.
   */
  scrubReportsInFlightMax: 8,
} as const;

assert(vssLimits.certificatesTrackedMax >= limits.peersMax + vssLimits.routersTrackedMax + 1, "the SPM must be able to track every peer's and router's certificate, and its own");

// --- coordination on etcd (issue 14: several SPMs, one leader; src/coordination) ------------
export const coordinationLimits = {
  /** Endpoints in one `etcd://h1:2379,h2:2379` list (a cluster is 3 or 5 members; room to spare). */
  etcdEndpointsMax: 16,
  /** One request to etcd's JSON gateway gets no answer in this long: the next endpoint is asked. */
  etcdRequestTimeoutMs: 2_000,
  /**
   * Attempts of one call, rotating over the endpoints, after a failure that says nothing was done
   * (refused, reset, timed out, or etcd's own "unavailable": no raft leader, a request timeout).
   */
  etcdAttemptsMax: 3,
  /** Pause after every endpoint has failed once before they are asked again. */
  etcdRetryBackoffMs: 100,
  /** Bytes of one reply read from the gateway; the client ranges single small keys, so more is refused. */
  etcdReplyBytesMax: 256 * KiB,
  /** Bytes of one newline-delimited message of a watch stream. */
  etcdWatchLineBytesMax: 256 * KiB,
  /** etcd leases are whole seconds and etcd grants none shorter than 1 s (2 s with its default timings: it answers the larger TTL). */
  leaseTtlMsMin: 1_000,
  /** A longer lease only makes failover slower; past a minute it is a typo. */
  leaseTtlMsMax: 60_000,
  /** The SPM leader's lease: failover takes about this long after a leader dies. */
  leaseTtlMsDefault: 5_000,
  /** Keepalives a leader sends per lease TTL (every TTL/3, the period etcd's own clients use). */
  leaseKeepalivesPerTtl: 3,
  /**
   * The share of the TTL a leader gives up before etcd could expire its lease (see
   * src/coordination/election.ts): the time its event loop has to notice and stop acting.
   */
  leaseSafetyMarginShare: 0.2,
  /** Bytes of a candidate's id and address as stored in the leader key. */
  electionValueBytesMax: 1 * KiB,
  /** A candidate whose step failed (etcd unreachable, a race) tries again after this long. */
  electionRetryMs: 250,
  /** Leases a demoted leader still means to revoke once etcd answers (older ones expire by themselves). */
  electionStaleLeasesMax: 16,
} as const;

assert(
  coordinationLimits.leaseSafetyMarginShare > 0 && coordinationLimits.leaseSafetyMarginShare < 1 - 2 / coordinationLimits.leaseKeepalivesPerTtl,
  "a leader must get at least two keepalive attempts in before it gives up the lease",
);
assert(
  coordinationLimits.leaseTtlMsMin <= coordinationLimits.leaseTtlMsDefault && coordinationLimits.leaseTtlMsDefault <= coordinationLimits.leaseTtlMsMax && coordinationLimits.leaseTtlMsDefault % 1_000 === 0,
  "lease TTLs out of order, or a default etcd cannot grant (whole seconds)",
);
assert(coordinationLimits.electionValueBytesMax * 2 < coordinationLimits.etcdReplyBytesMax, "a reply must hold the leader key, base64 and all");
