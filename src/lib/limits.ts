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
} as const;

export type Limits = typeof limits;
