// The mictlanx client library. Puts cut a payload into chunks, send them through the routers
// with bounded concurrency (each chunk retried on its own), and commit; gets fetch chunks in
// parallel, deliver them in order and verify every chunk and the whole payload's sha256.
import { RouterSet } from "./routers.ts";
import { chunks, type ByteSource } from "./chunker.ts";
import type { BallLocated, BallMetaWire, ChunkRecordWire } from "../protocol/ball.ts";
import { chunkChecksum, checksumHex } from "../lib/checksum.ts";
import { limits } from "../lib/limits.ts";
import { Semaphore } from "../lib/semaphore.ts";
import { BadRequestError, CorruptError } from "../lib/errors.ts";
import { contentTypeFor, extensionOf } from "./content-type.ts";

export interface ClientOptions {
  /** "host:port,host:port" or a list. */
  routers: string | string[];
  /** Chunk size for puts (default 1 MiB). */
  chunkSize?: number;
  /** Chunks in flight per transfer (default 4). */
  concurrency?: number;
  /** Per-request timeout in ms. */
  timeoutMs?: number;
}

export interface PutOptions {
  rf?: number;
  chunkSize?: number;
  ballId?: string;
  contentType?: string;
  tags?: Record<string, string>;
  ifAbsent?: boolean;
  /** Called as bytes are acknowledged. */
  onProgress?: (bytes: number) => void;
}

export interface PutResult {
  bucket: string;
  key: string;
  objectId: string;
  version: number;
  size: number;
  checksum: string;
  numChunks: number;
}

export interface GetOptions {
  onProgress?: (bytes: number) => void;
}

export const clientDefaults = { rf: 2, concurrency: 4 } as const;

export class Client {
  private readonly routers: RouterSet;
  private readonly chunkSize: number;
  private readonly concurrency: number;

  constructor(options: ClientOptions) {
    this.routers = new RouterSet(options.routers, options.timeoutMs);
    this.chunkSize = options.chunkSize ?? limits.chunkBytesDefault;
    this.concurrency = options.concurrency ?? clientDefaults.concurrency;
  }

  close(): void {
    this.routers.close();
  }

  async put(bucket: string, key: string, data: ByteSource | string, options: PutOptions = {}): Promise<PutResult> {
    const source = typeof data === "string" ? Bun.file(data) : data;
    const chunkSize = options.chunkSize ?? this.chunkSize;
    if (chunkSize < 1 || chunkSize > limits.chunkBytesMax) throw new BadRequestError(`chunk size must be 1 B to ${limits.chunkBytesMax} B`);
    const rf = options.rf ?? clientDefaults.rf;
    const declaration = {
      bucket,
      key,
      rf,
      chunkSize,
      contentType: options.contentType ?? contentTypeFor(typeof data === "string" ? data : key),
      tags: options.tags ?? {},
      ...(options.ballId === undefined ? {} : { ballId: options.ballId }),
      ...(options.ifAbsent ? { ifAbsent: true } : {}),
    };
    const hasher = new Bun.CryptoHasher("sha256");
    const iterator = chunks(source, chunkSize)[Symbol.asyncIterator]();
    const first = await iterator.next();
    const second = first.done ? first : await iterator.next();
    if (second.done) {
      // Zero or one chunk: one round trip.
      const bytes = first.done ? new Uint8Array(0) : first.value;
      hasher.update(bytes);
      const checksum = hasher.digest("hex");
      const tags = systemTags(declaration.tags, key, bytes.byteLength === 0 ? 0 : 1, checksum);
      const reply = await this.routers.call("ball.put", { ...declaration, tags, size: bytes.byteLength, checksum, data: bytes });
      options.onProgress?.(bytes.byteLength);
      return { bucket, key, objectId: reply.objectId, version: reply.version, size: bytes.byteLength, checksum, numChunks: bytes.byteLength === 0 ? 0 : 1 };
    }
    const { objectId } = await this.routers.call("ball.begin", { bucket, key, rf, ...(options.ifAbsent ? { ifAbsent: true } : {}) });
    const records = await this.sendChunks(bucket, key, objectId, rf, [first.value, second.value], iterator, hasher, options);
    const size = records.reduce((sum, record) => sum + record.size, 0);
    const checksum = hasher.digest("hex");
    const tags = systemTags(declaration.tags, key, records.length, checksum);
    const reply = await this.routers.call("ball.commit", { ...declaration, tags, objectId, size, checksum, chunks: records });
    return { bucket, key, objectId, version: reply.version, size, checksum, numChunks: records.length };
  }

  /** Send chunks with at most `concurrency` in flight; memory stays at concurrency × chunkSize. */
  private async sendChunks(
    bucket: string,
    key: string,
    objectId: string,
    rf: number,
    head: Uint8Array[],
    rest: AsyncIterator<Uint8Array>,
    hasher: Bun.CryptoHasher,
    options: PutOptions,
  ) {
    const slots = new Semaphore(this.concurrency);
    const records: ChunkRecordWire[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let index = 0;
    const send = async (data: Uint8Array, at: number) => {
      const record = await this.routers.call("ball.putChunk", { bucket, key, objectId, index: at, rf, data, checksum: checksumHex(chunkChecksum(data)) });
      records[at] = record;
      options.onProgress?.(data.byteLength);
    };
    const launch = async (data: Uint8Array) => {
      hasher.update(data);
      await slots.acquire();
      if (failure) throw failure;
      const task = send(data, index)
        .catch((error) => {
          failure ??= error;
        })
        .finally(() => {
          slots.release();
          inFlight.delete(task);
        });
      inFlight.add(task);
      index += 1;
    };
    for (const data of head) await launch(data);
    for (let next = await rest.next(); !next.done; next = await rest.next()) await launch(next.value);
    await Promise.all(inFlight);
    if (failure) throw failure;
    return records;
  }

  /** Metadata and where each chunk is. */
  stat(bucket: string, key: string): Promise<BallLocated> {
    return this.routers.call("ball.stat", { bucket, key });
  }

  /** The whole ball in memory. For large balls prefer getStream or getToFile. */
  async get(bucket: string, key: string, options: GetOptions = {}): Promise<Uint8Array> {
    const { meta, stream } = await this.getStream(bucket, key, options);
    const out = new Uint8Array(meta.size);
    let at = 0;
    for await (const piece of stream) {
      out.set(piece, at);
      at += piece.byteLength;
    }
    return out;
  }

  /**
   * A ball as an ordered stream of verified chunks. Fetches up to `concurrency` chunks ahead;
   * the stream throws CorruptError if the whole payload's sha256 differs from the metadata.
   */
  async getStream(bucket: string, key: string, options: GetOptions = {}): Promise<{ meta: BallMetaWire; stream: AsyncGenerator<Uint8Array> }> {
    const reply = await this.routers.call("ball.get", { bucket, key });
    const meta = reply.meta;
    const fetchChunk = (index: number) => this.routers.call("ball.getChunk", { bucket, objectId: meta.objectId, index });
    const concurrency = this.concurrency;
    const inline = reply.data;
    async function* stream(): AsyncGenerator<Uint8Array> {
      const hasher = new Bun.CryptoHasher("sha256");
      const ahead: Array<Promise<{ data: Uint8Array }>> = [];
      let next = inline === undefined ? 0 : 1;
      const fill = () => {
        while (ahead.length < concurrency && next < meta.numChunks) {
          const pending = fetchChunk(next++);
          pending.catch(() => {}); // handled when awaited below; silence it if the reader stops early
          ahead.push(pending);
        }
      };
      for (let index = 0; index < meta.numChunks; index += 1) {
        fill();
        const data = index === 0 && inline !== undefined ? inline : (await (ahead.shift() as Promise<{ data: Uint8Array }>)).data;
        fill();
        const expected = reply.chunks[index];
        if (!expected || checksumHex(chunkChecksum(data)) !== expected.checksum) {
          throw new CorruptError(`${bucket}/${key}: chunk ${index} failed its checksum on arrival`);
        }
        hasher.update(data);
        options.onProgress?.(data.byteLength);
        yield data;
      }
      const actual = hasher.digest("hex");
      if (actual !== meta.checksum) throw new CorruptError(`${bucket}/${key}: payload sha256 ${actual} differs from the stored ${meta.checksum}`);
    }
    return { meta, stream: stream() };
  }

  async delete(bucket: string, key: string): Promise<BallMetaWire> {
    return this.routers.call("ball.delete", { bucket, key });
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

  async *buckets(pageSize = limits.listPageMax): AsyncGenerator<Array<{ name: string; balls: number; bytes: number; createdMs: number }>> {
    let after: string | undefined;
    for (;;) {
      const page = await this.routers.call("bucket.list", { limit: pageSize, ...(after === undefined ? {} : { after }) });
      if (page.buckets.length > 0) yield page.buckets;
      if (page.next === undefined) return;
      after = page.next;
    }
  }
}

/** The tags every ball carries (after the MictlanX design), beside the user's own. */
function systemTags(user: Record<string, string>, key: string, numChunks: number, fullChecksum: string): Record<string, string> {
  return {
    ...user,
    fullname: key.split("/").pop() ?? key,
    extension: extensionOf(key),
    num_chunks: String(numChunks),
    full_checksum: fullChecksum,
  };
}
