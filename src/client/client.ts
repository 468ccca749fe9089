// The mictlanx client library.
//
// Put: the payload is cut into chunks of `chunkSize` (indexed 0..N-1); each chunk is optionally
// compressed (zstd) then sealed (AES-256-GCM) here, before it leaves; chunks go out in order
// from a FIFO with at most `concurrency` in flight, each to the router with the fewest
// requests outstanding, each retried on its own (backoff with jitter, another router when there
// is one); the ball becomes visible only at commit. Memory: about concurrency + 3 chunks,
// whatever the payload's size.
//
// Get: one metadata round trip (always: it is what makes a read see the latest committed
// version), then the chunks, fetched up to `concurrency` ahead and delivered in order; each is
// checked against its xxh3 on arrival, opened and decompressed, and the whole ball against its
// sha256 (of the payload; of the sealed chunks for a ball put encrypted, see codec.ts).
// Verified chunks of small balls stay in an LRU cache keyed by (object id, index).
//
// A put that fails or is aborted after its upload began abandons it (`ball.abandon`), so the
// chunks it wrote are deleted at once rather than when the upload would have expired.
import { constants as fsConstants, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { RouterSet, type RouterState } from "./routers.ts";
import { clientSecurity } from "./credentials.ts";
import type { ClientSecurity } from "../net/connection.ts";
import { chunkCountOf, chunks, numbered, type ByteSource, type NumberedChunk } from "./chunker.ts";
import { ballTags, codecFor, codecForBall, reservedTags, type ChunkCodec } from "./codec.ts";
import { ChunkCache, cacheLimits, type CacheStats } from "./cache.ts";
import { ChunkDirectory } from "./chunk-directory.ts";
import { mapBounded, type Outcome } from "./bounded.ts";
import { defaultBallId, s3TagPrefix, type BallLocated, type BallMetaWire, type ChunkRecordWire } from "../protocol/ball.ts";
import { chunkChecksum, checksumHex } from "../lib/checksum.ts";
import { verifyModes, type Verify } from "../lib/verify.ts";
import { chunkRecordWireBytes } from "../lib/wire-size.ts";
import { formatBytes as formatSize } from "../lib/size.ts";
import { limits } from "../lib/limits.ts";
import { Semaphore } from "../lib/semaphore.ts";
import { assert } from "../lib/assert.ts";
import { BadRequestError, CorruptError, MictlanxError, NotFoundError, UsageError, toMictlanxError } from "../lib/errors.ts";
import { contentTypeFor } from "./content-type.ts";
import { sealing } from "./seal.ts";
import { fileKind, statOrUndefined } from "../lib/file-info.ts";

export interface ClientOptions {
  /** Routers of one VSS: "host:port,host:port" or a list. Work is spread over them. */
  routers: string | string[];
  /** Chunk size for puts (default 1 MiB). */
  chunkSize?: number;
  /** Chunks in flight per transfer (default 4). */
  concurrency?: number;
  /** Bytes of verified chunks kept in memory for repeated reads (default 64 MiB; 0 turns the cache off). */
  cacheBytes?: number;
  /** A 32-byte key: every put is encrypted with it (AES-256-GCM, in this process) and encrypted balls are read with it. */
  key?: Uint8Array;
  /** Compress every put's chunks with zstd (default false; per put: PutOptions.compress). */
  compress?: boolean;
  /** Replication factor of puts that do not say (default 2). */
  rf?: number;
  /** Per-request timeout in ms (default 30 s). */
  timeoutMs?: number;
  /**
   * How long a request is retried while routers answer that the VSS cannot serve it just now
   * (an SPM restarting, peers coming back): default 15 s; 0 to fail at the first such answer.
   */
  retryWindowMs?: number;
  /** An access key of the VSS (`mictlanx key create`, or DIR/credentials.json of `mictlanx up`)… */
  accessKey?: string;
  secretKey?: string;
  /** …and the VSS's CA, as PEM text or a path to ca.crt: with these the client speaks TLS. Without, plain TCP (a VSS run with --insecure). */
  ca?: string;
  /** What every get checks (default "full"; per get: GetOptions.verify). See Verify. */
  verify?: Verify;
}

/**
 * What a get checks before it hands bytes over. Both check every chunk against its xxh3 (the
 * 64-bit checksum the client computed at put; a mismatch is fetched again from another
 * replica) and the ball's size.
 * - "full" (the default) also hashes the whole payload with sha256 and compares it with the
 *   ball's: that catches what per-chunk checks cannot, e.g. chunk records of another ball or
 *   in the wrong order, at the cost of sha256 over every byte (the largest CPU cost of a big
 *   get: docs/performance.md).
 * - "chunks" skips the sha256: every byte is still checked against its chunk's xxh3.
 */
export { verifyModes, type Verify };

function checkVerify(verify: unknown): Verify {
  if (!verifyModes.includes(verify as Verify)) throw new UsageError(`verify must be one of ${verifyModes.join(", ")}, got ${String(verify)}`);
  return verify as Verify;
}

/** TLS and the key from the options: all three, or none (plain TCP). */
function securityOf(options: ClientOptions): ClientSecurity | undefined {
  const given = [options.accessKey, options.secretKey, options.ca].filter((value) => value !== undefined).length;
  if (given === 0) return undefined;
  if (given < 3 || options.accessKey === undefined || options.secretKey === undefined || options.ca === undefined) {
    throw new UsageError("a Client with TLS needs accessKey, secretKey and ca (the VSS's CA, PEM or a path) together");
  }
  return clientSecurity({ accessKey: options.accessKey, secretKey: options.secretKey, ca: options.ca });
}

/** What put accepts: bytes, a Blob or Bun.file, a ReadableStream, an async iterable of bytes, or a file path. */
export type PutData = ByteSource | string;

export interface PutOptions {
  rf?: number;
  chunkSize?: number;
  /** Put the ball in this group (default: its own group, named by its key). */
  ballId?: string;
  /** Default: from the key's extension, else the file's, else the Blob's type, else application/octet-stream. */
  contentType?: string;
  tags?: Record<string, string>;
  /** Fail with a `conflict` error instead of overwriting an existing ball. */
  ifAbsent?: boolean;
  /** Compress this put's chunks with zstd (default: the client's `compress`). */
  compress?: boolean;
  /** Called as chunks are acknowledged, with the payload bytes acknowledged so far. */
  onProgress?: (doneBytes: number) => void;
  /**
   * Abort the put; it rejects with the signal's reason and nothing is committed. An upload
   * already begun is abandoned: the SPM is told at once, and the chunks it wrote are deleted.
   */
  signal?: AbortSignal;
}

export interface PutResult {
  bucket: string;
  key: string;
  objectId: string;
  version: number;
  /** Payload bytes (before compression and encryption). */
  size: number;
  /** The ball's sha256, as `stat` shows it: of the payload; of its sealed chunks when encrypted (docs/client.md, Encryption). */
  checksum: string;
  numChunks: number;
  /** Bytes as stored per replica (after compression and encryption). */
  storedBytes: number;
  contentType: string;
  compressed: boolean;
  encrypted: boolean;
  /** The ball's group: the `ballId` option, else the key (its sha256 when longer than a ball id may be). */
  ballId: string;
  /** The ball's tags: yours and the client's (fullname, extension, num_chunks, full_checksum, …). */
  tags: Record<string, string>;
}

export interface GetOptions {
  /** What this get checks (default: the Client's `verify`, else "full"). */
  verify?: Verify;
  /** Called as verified bytes are delivered, with the bytes delivered so far and the ball's size. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Abort the read; it rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface GetToFileOptions extends GetOptions {
  /**
   * `path` is the file itself, as chosen by a program that names files after keys (the group
   * writer): never a directory to put the ball in, never a FIFO or device to write into; a
   * symbolic link there is replaced, not followed.
   */
  exact?: boolean;
}

export interface BallStream {
  meta: BallMetaWire;
  /** The payload's bytes in order; throws a typed error (e.g. CorruptError) instead of ever yielding a wrong byte. */
  stream: AsyncGenerator<Uint8Array>;
}

export interface PutItem {
  bucket: string;
  key: string;
  data: PutData;
  options?: PutOptions;
}

export interface BallRef {
  bucket: string;
  key: string;
}

export interface ClientStats {
  routers: RouterState[];
  /** Requests retried since the client was made. */
  retries: number;
  cache: CacheStats;
}

export const clientDefaults = {
  rf: 2,
  concurrency: 4,
  /** Balls in flight in putMany, getMany and getGroup unless told. */
  manyConcurrency: 4,
  /** getGroup reads ahead at most this many payload bytes (always at least one ball). */
  groupAheadBytesMax: 64 * 1024 * 1024,
  /** A chunk whose xxh3 fails on arrival is fetched again this many times. */
  chunkRefetchesMax: 2,
} as const;

export { type Outcome } from "./bounded.ts";

export class Client {
  private readonly routers: RouterSet;
  private readonly chunkSize: number;
  private readonly concurrency: number;
  private readonly rf: number;
  private readonly key: Uint8Array | undefined;
  private readonly compress: boolean;
  private readonly cache: ChunkCache;
  private readonly verify: Verify;

  constructor(options: ClientOptions) {
    if (options.key !== undefined && options.key.byteLength !== sealing.keyBytes) {
      throw new UsageError(`an encryption key is ${sealing.keyBytes} bytes (64 hex digits); this one is ${options.key.byteLength} bytes`);
    }
    const concurrency = options.concurrency ?? clientDefaults.concurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError(`concurrency must be a whole number ≥ 1, got ${concurrency}`);
    const cacheBytes = options.cacheBytes ?? cacheLimits.bytesDefault;
    if (!Number.isFinite(cacheBytes) || cacheBytes < 0) throw new UsageError(`cacheBytes must be ≥ 0, got ${cacheBytes}`);
    this.routers = new RouterSet(options.routers, options.timeoutMs, Math.random, options.retryWindowMs, securityOf(options));
    this.chunkSize = options.chunkSize ?? limits.chunkBytesDefault;
    this.concurrency = concurrency;
    this.rf = options.rf ?? clientDefaults.rf;
    this.key = options.key === undefined ? undefined : Uint8Array.from(options.key);
    this.compress = options.compress ?? false;
    this.cache = new ChunkCache(cacheBytes);
    this.verify = checkVerify(options.verify ?? "full");
  }

  close(): void {
    this.routers.close();
    this.cache.clear();
  }

  stats(): ClientStats {
    return { routers: this.routers.states(), retries: this.routers.retries, cache: this.cache.stats() };
  }

  // --- put -------------------------------------------------------------------------------

  async put(bucket: string, key: string, data: PutData, options: PutOptions = {}): Promise<PutResult> {
    const codec = codecFor({ compress: options.compress ?? this.compress, key: this.key });
    const chunkSize = options.chunkSize ?? this.chunkSize;
    const chunkSizeMax = limits.chunkBytesMax - codec.overheadBytes;
    if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > chunkSizeMax) {
      throw new BadRequestError(`chunk size must be 1 B to ${chunkSizeMax} B${codec.identity ? "" : " (with compression or encryption, a little under the 8 MiB limit)"}; got ${chunkSize}`);
    }
    const userTags = options.tags ?? {};
    for (const name of reservedTags) {
      if (name in userTags) throw new BadRequestError(`tag "${name}" is set by the client; choose another name${name === "compression" || name === "encryption" ? " (use the compress or key options)" : ""}`);
    }
    for (const name of Object.keys(userTags)) {
      if (name.startsWith(s3TagPrefix)) throw new BadRequestError(`tag "${name}": names starting with ${s3TagPrefix} are the S3 gateway's (its ETag and x-amz-meta-*); choose another name`);
    }
    const rf = options.rf ?? this.rf;
    const source = openSource(data);
    const encrypted = codec.tags.encryption !== undefined;
    // Encrypted: from the key alone (which the catalog shows anyway), never from the local file's name.
    const contentType = options.contentType ?? (encrypted ? contentTypeFor(key) : chooseContentType(key, data));
    const declaration = {
      bucket,
      key,
      rf,
      chunkSize,
      contentType,
      ...(options.ballId === undefined ? {} : { ballId: options.ballId }),
      ...(options.ifAbsent ? { ifAbsent: true } : {}),
    };
    const signal = options.signal;
    signal?.throwIfAborted();
    const hasher = new Bun.CryptoHasher("sha256");
    const keep = new WriteThrough(this.cache);
    const pieces = numbered(chunks(source, chunkSize));
    let first: IteratorResult<NumberedChunk>;
    try {
      first = await untilAborted(pieces.next(), signal); // stdin may be slow to give the first chunk
    } catch (error) {
      await closeSource(pieces, signal);
      throw error;
    }
    const ballId = options.ballId ?? defaultBallId(key);
    const finish = (objectId: string, version: number, size: number, numChunks: number, storedBytes: number, checksum: string, tags: Record<string, string>): PutResult => {
      keep.commit(objectId, bucket, key, size);
      return { bucket, key, objectId, version, size, checksum, numChunks, storedBytes, contentType, compressed: "compression" in codec.tags, encrypted, ballId, tags };
    };

    if (first.done || first.value.final) {
      // Zero or one chunk: one round trip.
      const plain = first.done ? new Uint8Array(0) : first.value.data;
      const numChunks = plain.byteLength === 0 ? 0 : 1;
      const stored = numChunks === 0 ? plain : codec.encode(plain, { bucket, key, index: 0, final: true });
      const covered = codec.checksumOf === "sealed" ? stored : plain;
      hasher.update(covered);
      keep.add(0, covered);
      const checksum = hasher.digest("hex");
      const tags = ballTags(codec, userTags, key, numChunks, checksum);
      signal?.throwIfAborted();
      // One request id for every retry of this put: a retry after a lost reply is not a second version.
      const requestId = crypto.randomUUID();
      const reply = await this.routers.call("ball.put", { ...declaration, tags, size: plain.byteLength, checksum, data: stored, requestId }, { alsoRetry: ["corrupt"] });
      options.onProgress?.(plain.byteLength);
      return finish(reply.objectId, reply.version, plain.byteLength, numChunks, stored.byteLength, checksum, tags);
    }

    let begun: { objectId: string };
    try {
      // chunkBytes: the most one stored chunk holds, so `status` can count what uploads under way place.
      begun = await this.routers.call("ball.begin", { bucket, key, rf, chunkBytes: chunkSize + codec.overheadBytes, ...(options.ifAbsent ? { ifAbsent: true } : {}) });
    } catch (error) {
      await pieces.return(undefined); // close the source
      throw error;
    }
    const objectId = begun.objectId;
    const chunksHint = chunkCountOf(source, chunkSize);
    try {
      const sent = await this.sendChunks({ bucket, key, objectId, rf, codec, hasher, keep, options, chunksHint }, first.value, pieces);
      const checksum = hasher.digest("hex");
      const tags = ballTags(codec, userTags, key, sent.records.length, checksum);
      signal?.throwIfAborted();
      const records = await this.stageRecords(bucket, key, objectId, sent.records);
      signal?.throwIfAborted();
      const reply = await this.routers.call("ball.commit", { ...declaration, tags, objectId, size: sent.size, checksum, ...records });
      return finish(objectId, reply.version, sent.size, sent.records.length, sent.storedBytes, checksum, tags);
    } catch (error) {
      throw await this.abandon(bucket, key, objectId, error);
    }
  }

  /**
   * A put that fails or is aborted after its upload began tells the SPM it gives up
   * (`ball.abandon`): the chunks it placed are deleted now instead of when the upload would
   * have expired (10 minutes). Returns what the put rejects with: `cause` itself, or, when the
   * VSS could not be told, an error of the same code that says so (the chunks then go when the
   * upload expires) or that the commit had gone through after all.
   */
  private async abandon(bucket: string, key: string, objectId: string, cause: unknown): Promise<unknown> {
    try {
      await this.routers.call("ball.abandon", { bucket, key, objectId }, { withinMs: limits.abandonCallMsMax });
      return cause;
    } catch (error) {
      const typed = toMictlanxError(cause);
      const refusal = toMictlanxError(error);
      const why =
        refusal.code === "conflict" && refusal.remote
          ? `; its commit had gone through after all: ${bucket}/${key} is stored (see stat)`
          : `; telling the VSS to delete the chunks it wrote failed too (${refusal.message}): they are deleted when the upload expires`;
      return new MictlanxError(typed.code, `${typed.message}${why}`, { cause, remote: typed.remote });
    }
  }

  /**
   * A commit names its ball's chunk records. More than fit one page go ahead a page at a time
   * (ball.stageChunks) and the commit carries the last page and how many went ahead, so no
   * message outgrows a frame however many chunks the ball has.
   */
  private async stageRecords(bucket: string, key: string, objectId: string, records: ChunkRecordWire[]): Promise<{ chunks: ChunkRecordWire[]; stagedChunks?: number }> {
    const pages = recordPages(records);
    if (pages.length <= 1) return { chunks: records };
    for (const page of pages.slice(0, -1)) await this.routers.call("ball.stageChunks", { bucket, key, objectId, chunks: page });
    const last = pages[pages.length - 1]!;
    return { chunks: last, stagedChunks: records.length - last.length };
  }

  /**
   * The chunks of one put, in order from a FIFO, at most `concurrency` in flight. The source is
   * read only when a slot is free, so memory stays near (concurrency + 3) × chunkSize.
   */
  private async sendChunks(
    put: { bucket: string; key: string; objectId: string; rf: number; codec: ChunkCodec; hasher: Bun.CryptoHasher; keep: WriteThrough; options: PutOptions; chunksHint: number | undefined },
    first: NumberedChunk,
    rest: AsyncGenerator<NumberedChunk>,
  ): Promise<{ records: ChunkRecordWire[]; size: number; storedBytes: number }> {
    const { bucket, key, objectId, rf, codec, hasher, keep, options, chunksHint } = put;
    // The router asks the SPM for placements ahead; knowing where the put ends, it asks for no more.
    const hint = chunksHint === undefined ? {} : { chunksHint };
    const slots = new Semaphore(this.concurrency);
    const records: ChunkRecordWire[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: MictlanxError | undefined;
    let size = 0;
    let storedBytes = 0;
    let acknowledged = 0;
    let count = 0;
    try {
      await this.pump(first, rest, slots, options.signal, (chunk) => {
        if (chunk.index >= limits.ballChunksMax) {
          throw new BadRequestError(`a ball holds at most ${limits.ballChunksMax} chunks (${formatSize(limits.ballChunksMax * chunk.data.byteLength)} at this chunk size); put it with a larger chunk size`);
        }
        size += chunk.data.byteLength;
        count += 1;
      }, () => failure !== undefined || options.signal?.aborted === true, (chunk) => {
        const stored = codec.encode(chunk.data, { bucket, key, index: chunk.index, final: chunk.final });
        // Launched in index order, so the ball's sha256 sees the chunks in order.
        const covered = codec.checksumOf === "sealed" ? stored : chunk.data;
        hasher.update(covered);
        keep.add(chunk.index, covered);
        storedBytes += stored.byteLength;
        const plainBytes = chunk.data.byteLength;
        const task = this.routers
          .call("ball.putChunk", { bucket, key, objectId, index: chunk.index, rf, data: stored, checksum: checksumHex(chunkChecksum(stored)), ...hint }, { alsoRetry: ["corrupt"] })
          .then(
            (record) => {
              records[chunk.index] = record;
              acknowledged += plainBytes;
              options.onProgress?.(acknowledged);
            },
            (error) => {
              failure ??= toMictlanxError(error);
            },
          )
          .finally(() => {
            slots.release();
            inFlight.delete(task);
          });
        inFlight.add(task);
      });
    } finally {
      // Aborted (Ctrl-C): the chunks on their way are waited for a little, so that few land
      // after the abandon has deleted the rest; a stalled one is not waited for.
      if (options.signal?.aborted) await settledWithin(inFlight, limits.abandonInFlightWaitMs);
      else await Promise.all(inFlight);
    }
    if (failure) throw failure;
    options.signal?.throwIfAborted();
    for (let index = 0; index < count; index += 1) {
      if (records[index] === undefined) throw new MictlanxError("internal", `${bucket}/${key}: chunk ${index} was sent but never acknowledged`);
    }
    return { records, size, storedBytes };
  }

  /**
   * Read chunks in order and launch each once a slot is free; stop early when `stop()` says so.
   * The source is closed however this ends (a file or stdin is not left open after a failure).
   * An abort does not wait for the source's next chunk nor for a free slot (a trickling stdin
   * may not give one for minutes): it rejects with the signal's reason at once.
   */
  private async pump(
    first: NumberedChunk,
    rest: AsyncGenerator<NumberedChunk>,
    slots: Semaphore,
    signal: AbortSignal | undefined,
    read: (chunk: NumberedChunk) => void,
    stop: () => boolean,
    launch: (chunk: NumberedChunk) => void,
  ): Promise<void> {
    try {
      for (let next: IteratorResult<NumberedChunk> = { done: false, value: first }; !next.done; next = await untilAborted(rest.next(), signal)) {
        read(next.value);
        await untilAborted(slots.acquire(), signal); // a slot granted after an abort is never used: the semaphore dies with this put
        if (stop()) {
          slots.release();
          return;
        }
        launch(next.value);
      }
    } finally {
      await closeSource(rest, signal);
    }
  }

  /** Put many balls, at most `concurrency` at once; one outcome per item, in input order. */
  putMany(items: Iterable<PutItem> | AsyncIterable<PutItem>, options: { concurrency?: number } = {}): Promise<Outcome<PutResult>[]> {
    return mapBounded(items, options.concurrency ?? clientDefaults.manyConcurrency, (item) => this.put(item.bucket, item.key, item.data, item.options));
  }

  // --- get -------------------------------------------------------------------------------

  /** Metadata and where each chunk is (all of its chunks, however many pages they take). */
  async stat(bucket: string, key: string): Promise<BallLocated> {
    const first = await this.routers.call("ball.stat", { bucket, key });
    if (first.chunksNext === undefined) return first;
    const { chunksNext, ...ball } = first;
    const peers = new Map(first.peers.map((peer) => [peer.id, peer]));
    const directory = this.directoryOf(ball, first.chunks, chunksNext, (page) => page.peers.forEach((peer) => peers.set(peer.id, peer)));
    return { ...ball, chunks: await directory.all(), peers: [...peers.values()] };
  }

  /** A ball's chunk records: those that came with its metadata, the rest asked for page by page. */
  private directoryOf(
    meta: { bucket: string; key: string; objectId: string; numChunks: number },
    first: ChunkRecordWire[],
    chunksNext: number | undefined,
    onPage?: (page: { peers: BallLocated["peers"] }) => void,
  ): ChunkDirectory {
    return new ChunkDirectory(`${meta.bucket}/${meta.key}`, meta.numChunks, first, chunksNext, async (fromIndex) => {
      const page = await this.routers.call("ball.chunks", { bucket: meta.bucket, objectId: meta.objectId, fromIndex });
      onPage?.(page);
      return page;
    });
  }

  /** The whole ball in memory (you own the bytes). For large balls prefer getStream or getToFile. */
  async get(bucket: string, key: string, options: GetOptions = {}): Promise<Uint8Array> {
    return (await this.readWhole(bucket, key, options)).data;
  }

  /**
   * A ball's bytes in one buffer. Chunks stored as they are (no compression or encryption) are
   * received straight into their place in it, so each byte is copied once on its way in.
   */
  private async readWhole(bucket: string, key: string, options: GetOptions): Promise<{ meta: BallMetaWire; data: Uint8Array }> {
    let out: Uint8Array | undefined;
    const { meta, stream } = await this.openStream(bucket, key, options, (size) => (out = uninitialized(size)));
    const data = out ?? uninitialized(meta.size);
    let at = 0;
    for await (const piece of stream) {
      // The stream never yields past meta.size; a piece received in place needs no copy.
      if (piece.buffer !== data.buffer || piece.byteOffset !== data.byteOffset + at) data.set(piece, at);
      at += piece.byteLength;
    }
    return { meta, data };
  }

  /** Get many balls, at most `concurrency` at once; one outcome per ref, in input order. */
  getMany(refs: Iterable<BallRef> | AsyncIterable<BallRef>, options: { concurrency?: number } = {}): Promise<Outcome<Uint8Array>[]> {
    return mapBounded(refs, options.concurrency ?? clientDefaults.manyConcurrency, (ref) => this.get(ref.bucket, ref.key));
  }

  /**
   * A ball as an ordered stream of verified bytes, in constant memory: up to `concurrency`
   * chunks are fetched ahead. The metadata request goes out every time (that is what makes a
   * read see the latest committed version); chunks of that version already in the cache are
   * not fetched, and a one-chunk ball that is cached costs only that request.
   */
  getStream(bucket: string, key: string, options: GetOptions = {}): Promise<BallStream> {
    return this.openStream(bucket, key, options, undefined);
  }

  /**
   * getStream, and for a whole-ball read (`destination`: gives a buffer of the ball's size) the
   * chunks of a ball stored as they are land straight in that buffer, each at its place; the
   * pieces yielded are then views of it. A chunk that arrives elsewhere (inline, cached, or
   * transformed) is yielded as its own buffer, and the caller copies it.
   */
  private async openStream(bucket: string, key: string, options: GetOptions, destination: ((size: number) => Uint8Array) | undefined): Promise<BallStream> {
    options.signal?.throwIfAborted();
    const known = this.cache.objectIdOf(bucket, key);
    const cachedObjectId = known !== undefined && this.cache.has(known, 0) ? known : undefined;
    const reply = await this.routers.call("ball.get", { bucket, key, ...(cachedObjectId === undefined ? {} : { cachedObjectId }) });
    const meta = reply.meta;
    const codec = codecForBall(meta, this.key);
    this.cache.noteObjectId(bucket, key, meta.objectId);
    const directory = this.directoryOf(meta, reply.chunks, reply.chunksNext);
    const plainMax = Math.min(meta.chunkSize > 0 ? meta.chunkSize : limits.chunkBytesMax, limits.chunkBytesMax);
    const cacheable = this.cache.admits(meta.size);
    const cache = this.cache;
    const routers = this.routers;
    let inline = reply.data;
    // Where each chunk goes in the destination: stored chunks are the plaintext, in order.
    let into: Uint8Array | undefined;
    const offsets: number[] = [];
    if (destination !== undefined && codec.identity && directory.complete) {
      let at = 0;
      for (const chunk of reply.chunks) {
        offsets.push(at);
        at += chunk.size;
      }
      if (at === meta.size) into = destination(meta.size);
    }

    // What the ball's sha256 covers (codec.ts): the plaintext, or the chunks as stored. The
    // cache keeps that form, so a chunk read from it is checked like one fetched.
    const sealed = codec.checksumOf === "sealed";

    /**
     * One chunk: its plaintext, and the bytes the ball's sha256 covers. From the cache, or
     * fetched, checked against its xxh3, opened (GCM checks it) and cached.
     */
    const load = async (index: number): Promise<{ plain: Uint8Array; covered: Uint8Array }> => {
      const expected = await directory.take(index);
      const place = { bucket, key, index, final: index === meta.numChunks - 1 };
      const hit = cache.get(meta.objectId, index);
      if (hit && !sealed) {
        const plain = copyOf(hit); // the caller owns what it gets; the cache keeps its own
        return { plain, covered: plain };
      }
      if (hit) return { plain: ownedPlain(codec.decode(hit, place, plainMax), hit), covered: hit };
      let stored: Uint8Array | undefined;
      for (let attempt = 0; attempt <= clientDefaults.chunkRefetchesMax; attempt += 1) {
        let candidate: Uint8Array;
        if (index === 0 && inline !== undefined) {
          candidate = inline;
          inline = undefined;
        } else {
          const start = offsets[index] ?? 0;
          const place = into?.subarray(start, start + expected.size);
          candidate = (await routers.call("ball.getChunk", { bucket, objectId: meta.objectId, index }, place ? { into: place } : {})).data;
        }
        if (checksumHex(chunkChecksum(candidate)) === expected.checksum) {
          stored = candidate;
          break;
        }
      }
      if (!stored) throw new CorruptError(`${bucket}/${key}: chunk ${index} failed its xxh3 checksum on arrival ${clientDefaults.chunkRefetchesMax + 1} times`);
      const plain = codec.decode(stored, place, plainMax);
      if (cacheable) cache.set(meta.objectId, index, copyOf(sealed ? stored : plain));
      return { plain, covered: sealed ? stored : plain };
    };

    const concurrency = this.concurrency;
    const signal = options.signal;
    const whole = (options.verify === undefined ? this.verify : checkVerify(options.verify)) === "full";
    async function* stream(): AsyncGenerator<Uint8Array> {
      const hasher = whole ? new Bun.CryptoHasher("sha256") : undefined;
      const ahead: Array<Promise<{ plain: Uint8Array; covered: Uint8Array }>> = [];
      let next = 0;
      let delivered = 0;
      const fill = () => {
        while (ahead.length < concurrency && next < meta.numChunks) {
          const pending = load(next);
          next += 1;
          pending.catch(() => {}); // handled when awaited below; silenced if the reader stops early
          ahead.push(pending);
        }
      };
      try {
        for (let index = 0; index < meta.numChunks; index += 1) {
          fill();
          signal?.throwIfAborted();
          const { plain, covered } = await (ahead.shift() as Promise<{ plain: Uint8Array; covered: Uint8Array }>);
          fill();
          if (delivered + plain.byteLength > meta.size) throw new CorruptError(`${bucket}/${key}: the chunks hold more than the ${meta.size} bytes the metadata says`);
          hasher?.update(covered);
          delivered += plain.byteLength;
          options.onProgress?.(delivered, meta.size);
          yield plain;
        }
        if (delivered !== meta.size) throw new CorruptError(`${bucket}/${key}: the chunks hold ${delivered} bytes but the metadata says ${meta.size}`);
        // With verify "chunks" there is no hasher: each chunk's xxh3 was checked as it came.
        const actual = hasher?.digest("hex");
        if (actual !== undefined && actual !== meta.checksum) throw new CorruptError(`${bucket}/${key}: ${sealed ? "the sealed chunks' sha256" : "payload sha256"} ${actual} differs from the stored ${meta.checksum}`);
      } catch (error) {
        cache.drop(meta.objectId, meta.numChunks); // whatever went wrong, keep nothing of it
        throw error;
      }
    }
    return { meta, stream: stream() };
  }

  /**
   * Write a ball to `path`: the bytes go to a partial file next to it, which is fsynced and
   * renamed over `path` only when every byte checked out. On any failure the partial file is
   * removed and `path` is untouched. When `path` is an existing directory the file is named
   * after the key's last part. When `path` is a FIFO or a device (not a regular file), the
   * bytes are written into it as they are verified chunk by chunk: nothing is renamed over it,
   * and a failure after some bytes went in says how many.
   */
  async getToFile(bucket: string, key: string, path: string, options: GetToFileOptions = {}): Promise<BallMetaWire & { path: string }> {
    const target = fileTarget(path, key, options.exact === true);
    const { meta, stream } = await this.getStream(bucket, key, options); // a missing ball fails before any file exists
    if (target.into) {
      await writeInto(target.path, stream, options.signal);
      return { ...meta, path: target.path };
    }
    await writeReplacing(target.path, stream);
    return { ...meta, path: target.path };
  }

  // --- delete, list ------------------------------------------------------------------------

  async delete(bucket: string, key: string): Promise<BallMetaWire> {
    const meta = await this.routers.call("ball.delete", { bucket, key });
    this.cache.noteObjectId(bucket, key, undefined);
    this.cache.drop(meta.objectId, meta.numChunks);
    return meta;
  }

  /** Balls in a bucket, page by page (async iterator); prefix and ballId narrow it. */
  async *list(bucket: string, query: { prefix?: string; ballId?: string; pageSize?: number } = {}): AsyncGenerator<BallMetaWire[]> {
    let after: string | undefined;
    for (;;) {
      const page = await this.routers.call("ball.list", {
        bucket,
        limit: query.pageSize ?? limits.listPageMax,
        ...(query.prefix === undefined ? {} : { prefix: query.prefix }),
        ...(query.ballId === undefined ? {} : { ballId: query.ballId }),
        ...(after === undefined ? {} : { after }),
      });
      if (page.balls.length > 0) yield page.balls;
      if (page.next === undefined) return;
      after = page.next;
    }
  }

  async *buckets(pageSize: number = limits.listPageMax): AsyncGenerator<Array<{ name: string; balls: number; bytes: number; createdMs: number }>> {
    let after: string | undefined;
    for (;;) {
      const page = await this.routers.call("bucket.list", { limit: pageSize, ...(after === undefined ? {} : { after }) });
      if (page.buckets.length > 0) yield page.buckets;
      if (page.next === undefined) return;
      after = page.next;
    }
  }

  // --- buckets and bulk deletes ---------------------------------------------------------------

  /** Make an empty bucket: listed with 0 balls until deleteBucket. ConflictError when it exists. */
  async createBucket(bucket: string): Promise<{ name: string; balls: number; bytes: number; createdMs: number }> {
    return this.routers.call("bucket.create", { bucket });
  }

  /**
   * How many balls are under `prefix` (a plain string prefix; the whole bucket when absent),
   * counted up to limits.ballCountMax: `more` when there are more. `bytes` for a whole bucket.
   * NotFoundError when there is no such bucket.
   */
  async countBalls(bucket: string, prefix?: string): Promise<{ balls: number; bytes?: number; more: boolean }> {
    return this.routers.call("ball.count", { bucket, ...(prefix === undefined ? {} : { prefix }) });
  }

  /**
   * Delete every ball under `prefix` (a plain string prefix; the whole bucket when absent). The
   * SPM deletes them in batches (limits.deleteBatchBallsMax a round trip, each batch one
   * durable catalog transaction), in key order; `onProgress` hears the totals after each batch.
   * Balls put behind the batches meanwhile are kept. NotFoundError when there is no such bucket.
   */
  async deletePrefix(bucket: string, prefix?: string, options: { onProgress?: (deleted: number, bytes: number) => void } = {}): Promise<{ deleted: number; bytes: number }> {
    let deleted = 0;
    let bytes = 0;
    let after: string | undefined;
    for (;;) {
      const batch = await this.routers.call("ball.deletePrefix", { bucket, ...(prefix === undefined ? {} : { prefix }), ...(after === undefined ? {} : { after }) });
      deleted += batch.deleted;
      bytes += batch.bytes;
      options.onProgress?.(deleted, bytes);
      if (batch.next === undefined) return { deleted, bytes };
      // Each batch starts past the last key the one before deleted, so the loop ends.
      assert(after === undefined || Buffer.compare(Buffer.from(batch.next), Buffer.from(after)) > 0, `a bulk delete went back from ${after} to ${batch.next}`);
      after = batch.next;
    }
  }

  /** Forget an empty bucket (ConflictError while it holds balls); `force` deletes them first, as deletePrefix does. */
  async deleteBucket(bucket: string, options: { force?: boolean; onProgress?: (deleted: number, bytes: number) => void } = {}): Promise<{ deleted: number; bytes: number }> {
    const emptied = options.force ? await this.deletePrefix(bucket, undefined, options.onProgress ? { onProgress: options.onProgress } : {}) : { deleted: 0, bytes: 0 };
    await this.routers.call("bucket.delete", { bucket });
    return emptied;
  }

  // --- ball groups -------------------------------------------------------------------------

  /** Every ball of a group (all pages). For very large groups page with list(bucket, { ballId }). */
  async listGroup(bucket: string, ballId: string): Promise<BallMetaWire[]> {
    const balls: BallMetaWire[] = [];
    for await (const page of this.list(bucket, { ballId })) balls.push(...page);
    return balls;
  }

  /**
   * The balls of a group with their bytes, in key order. Reads ahead up to `concurrency` balls
   * (and at most 64 MiB, always at least one ball). Throws NotFoundError for an empty group.
   */
  async *getGroup(bucket: string, ballId: string, options: { concurrency?: number } = {}): AsyncGenerator<{ meta: BallMetaWire; data: Uint8Array }> {
    const concurrency = options.concurrency ?? clientDefaults.manyConcurrency;
    const ahead: Array<{ bytes: number; pending: Promise<{ meta: BallMetaWire; data: Uint8Array } | undefined> }> = [];
    let aheadBytes = 0;
    let found = 0;
    const fetchOne = async (ball: BallMetaWire) => {
      try {
        return await this.readWhole(bucket, ball.key, {});
      } catch (error) {
        if (error instanceof MictlanxError && error.code === "not_found") return undefined; // deleted since it was listed
        throw error;
      }
    };
    const take = async function* () {
      const head = ahead.shift();
      if (!head) return;
      aheadBytes -= head.bytes;
      const got = await head.pending;
      if (got) yield got;
    };
    for await (const page of this.list(bucket, { ballId })) {
      for (const ball of page) {
        found += 1;
        while (ahead.length > 0 && (ahead.length >= concurrency || aheadBytes + ball.size > clientDefaults.groupAheadBytesMax)) yield* take();
        const pending = fetchOne(ball);
        pending.catch(() => {});
        ahead.push({ bytes: ball.size, pending });
        aheadBytes += ball.size;
      }
    }
    while (ahead.length > 0) yield* take();
    if (found === 0) throw new NotFoundError(`no balls with ball id "${ballId}" in ${bucket}`);
  }

  /** Delete every ball of a group; returns their keys. Throws NotFoundError when the group has none. */
  async deleteGroup(bucket: string, ballId: string, options: { concurrency?: number } = {}): Promise<string[]> {
    const deleted: string[] = [];
    for (;;) {
      const page = await this.list(bucket, { ballId, pageSize: limits.listPageMax }).next();
      if (page.done || page.value.length === 0) break;
      const outcomes = await mapBounded(page.value, options.concurrency ?? clientDefaults.manyConcurrency, (ball) => this.delete(bucket, ball.key));
      let progress = 0;
      for (const outcome of outcomes) {
        if (outcome.ok) {
          deleted.push(outcome.key);
          progress += 1;
        } else if (outcome.error.code === "not_found") progress += 1; // someone else deleted it meanwhile
        else throw outcome.error;
      }
      if (progress === 0) break;
    }
    if (deleted.length === 0) throw new NotFoundError(`no balls with ball id "${ballId}" in ${bucket}`);
    return deleted;
  }
}

/** Chunk records cut into pages by count and by bytes, as the SPM takes them (at least one per page). */
function recordPages(records: ChunkRecordWire[]): ChunkRecordWire[][] {
  const pages: ChunkRecordWire[][] = [];
  let page: ChunkRecordWire[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = chunkRecordWireBytes(record);
    if (page.length > 0 && (page.length >= limits.chunkRecordsPageMax || bytes + size > limits.metadataPageBytesMax)) {
      pages.push(page);
      page = [];
      bytes = 0;
    }
    page.push(record);
    bytes += size;
  }
  if (page.length > 0) pages.push(page);
  return pages;
}

/** `promise`, or the signal's reason as soon as it is aborted (the promise is left to settle alone). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** Wait for every task, or `ms`, whichever is first. */
async function settledWithin(tasks: Iterable<Promise<unknown>>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  await Promise.race([Promise.allSettled([...tasks]), deadline]);
  clearTimeout(timer);
}

/**
 * Close a put's source. After an abort it may be in the middle of a read that ends only when
 * more bytes come (a trickling stdin), and closing waits for that read: it is then left to
 * close when it can, and a failure to close a source nobody reads any more is of no use to anyone.
 */
function closeSource(source: AsyncGenerator<unknown>, signal: AbortSignal | undefined): Promise<void> | void {
  const closing = source.return(undefined).then(() => {});
  if (signal?.aborted) {
    closing.catch(() => {});
    return;
  }
  return closing;
}

function chooseContentType(key: string, data: PutData): string {
  const fromKey = contentTypeFor(key);
  if (fromKey !== "application/octet-stream") return fromKey;
  if (typeof data === "string") return contentTypeFor(data);
  if (data instanceof Blob && data.type !== "") return data.type.split(";")[0] ?? fromKey;
  return fromKey;
}

function openSource(data: PutData): ByteSource {
  if (typeof data !== "string") return data;
  let isFile = false;
  try {
    isFile = statSync(data).isFile();
  } catch {
    throw new BadRequestError(`cannot read ${data}: no such file (a string passed to put is a file path; pass bytes with new TextEncoder().encode(text))`);
  }
  if (!isFile) throw new BadRequestError(`cannot read ${data}: not a regular file`);
  return Bun.file(data);
}

/** A copy that shares nothing with `bytes` (Buffer#slice, unlike Uint8Array#slice, would be a view). */
function copyOf(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

/** A chunk decoded from the cache's copy: a copy of its own if decoding gave back the cache's bytes. */
function ownedPlain(plain: Uint8Array, cached: Uint8Array): Uint8Array {
  return plain.buffer === cached.buffer ? copyOf(plain) : plain;
}

/** A buffer for bytes that will all be overwritten before anyone sees them (not zeroed first). */
function uninitialized(size: number): Uint8Array {
  return size === 0 ? new Uint8Array(0) : new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
}

/** What getToFile writes: `path` replaced through a partial file, or (`into`) a FIFO or device written in place. */
function fileTarget(path: string, key: string, exact: boolean): { path: string; into: boolean } {
  if (exact) {
    const info = statOrUndefined(path, { follow: false });
    if (info !== undefined && !info.isFile() && !info.isSymbolicLink()) throw new BadRequestError(`${path} is ${fileKind(info)}; not replacing it with ${key}`);
    return { path, into: false };
  }
  let target = path;
  let info = statOrUndefined(target, { follow: true });
  if (info?.isDirectory()) {
    const last = key.split("/").pop() ?? "";
    if (last === "" || last === "." || last === "..") throw new BadRequestError(`the key ${key} does not end in a file name (its last part is "${last}"); give a file path instead of the directory ${path}`);
    target = join(path, last);
    info = statOrUndefined(target, { follow: true });
    if (info?.isDirectory()) throw new BadRequestError(`${target} is a directory; give another file path`);
  }
  return { path: target, into: info !== undefined && !info.isFile() };
}

/** Into a partial file next to `target`, fsynced, then renamed over it; on any failure the partial file is removed. */
async function writeReplacing(target: string, stream: AsyncGenerator<Uint8Array>): Promise<void> {
  mkdirSync(dirname(target) || ".", { recursive: true });
  const partial = `${target}.mictlanx-partial-${process.pid}-${Math.floor(Math.random() * 0xffffff).toString(16)}`;
  let handle: FileHandle | undefined;
  try {
    handle = await open(partial, "wx");
    for await (const piece of stream) await writeAll(handle, piece);
    await handle.datasync();
    await handle.close();
    handle = undefined;
    renameSync(partial, target);
  } catch (error) {
    await stream.return(undefined).catch(() => {});
    await handle?.close().catch(() => {});
    rmSync(partial, { force: true });
    throw error;
  }
}

/**
 * Into a FIFO or a device, in place: opened for writing only (never created, truncated or
 * renamed over), each verified piece written as it comes. Bytes written cannot be taken back,
 * so a failure after some went in (a checksum at the end) says how many, and to discard them.
 */
async function writeInto(path: string, stream: AsyncGenerator<Uint8Array>, signal: AbortSignal | undefined): Promise<void> {
  let handle: FileHandle | undefined;
  let written = 0;
  try {
    handle = await openAbortable(path, fsConstants.O_WRONLY, signal); // a FIFO waits here for its reader
    for await (const piece of stream) {
      await writeAll(handle, piece);
      written += piece.byteLength;
    }
    await handle.close();
    handle = undefined;
  } catch (error) {
    await stream.return(undefined).catch(() => {});
    await handle?.close().catch(() => {});
    if (written === 0) throw error;
    const typed = toMictlanxError(error);
    throw new MictlanxError(typed.code, `${typed.message}; ${written} bytes had already gone into ${path}, which is not a regular file and cannot be taken back: discard them`, { cause: error });
  }
}

async function writeAll(handle: FileHandle, piece: Uint8Array): Promise<void> {
  let at = 0;
  while (at < piece.byteLength) at += (await handle.write(piece, at, piece.byteLength - at)).bytesWritten;
}

/** open(), but an abort (Ctrl-C) does not wait for a FIFO's reader; a late open is closed. */
async function openAbortable(path: string, flags: number, signal: AbortSignal | undefined): Promise<FileHandle> {
  signal?.throwIfAborted();
  const opening = open(path, flags);
  if (signal === undefined) return opening;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([opening, aborted]);
  } catch (error) {
    opening.then((handle) => handle.close(), () => {});
    throw error;
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}

/** A put's chunks kept for the cache while the ball is small enough, handed over at commit. */
class WriteThrough {
  private chunks: Uint8Array[] | undefined = [];
  private bytes = 0;

  constructor(private readonly cache: ChunkCache) {
    if (!cache.enabled) this.chunks = undefined;
  }

  add(index: number, data: Uint8Array): void {
    if (!this.chunks) return;
    this.bytes += data.byteLength;
    if (!this.cache.admits(this.bytes)) {
      this.chunks = undefined;
      return;
    }
    this.chunks[index] = copyOf(data); // the caller's buffer may change after the put
  }

  commit(objectId: string, bucket: string, key: string, size: number): void {
    this.cache.noteObjectId(bucket, key, objectId);
    if (!this.chunks || size === 0) return;
    this.chunks.forEach((chunk, index) => this.cache.set(objectId, index, chunk));
    this.chunks = undefined;
  }
}
