// The client's read cache: verified plaintext chunks in memory, least recently used first out,
// bounded in bytes, keyed by (object id, index). An object id names one version of one ball
// and is never reused, so a cached chunk can only ever be the bytes of that version: an
// overwrite gets a new object id and can never be served from an old entry.
//
// Beside it, a small bounded map (bucket, key) → the object id last seen, so a get can tell
// the router "I hold version X" (`cachedObjectId`); when X is still current the router sends
// the metadata without the bytes. Every get still asks for the metadata: that round trip is
// what tells the client which version is current (read-after-write), the cache only saves
// the chunk transfer.
import { Lru } from "../lib/lru.ts";

export const cacheLimits = {
  /** Default bytes of chunks a Client keeps. */
  bytesDefault: 64 * 1024 * 1024,
  /** (bucket, key) → object id entries kept. */
  keysMax: 4096,
  /** A ball larger than cacheBytes / this is not cached: reading it would only flush everything else. */
  ballShareDivisor: 4,
} as const;

export interface CacheStats {
  bytes: number;
  bytesMax: number;
  chunks: number;
  hits: number;
  misses: number;
}

export class ChunkCache {
  private readonly chunks: Lru<string, Uint8Array>;
  private readonly current = new Lru<string, string>(cacheLimits.keysMax);
  private hits = 0;
  private misses = 0;

  constructor(readonly bytesMax: number) {
    this.chunks = new Lru<string, Uint8Array>(Number.MAX_SAFE_INTEGER, bytesMax, (chunk) => chunk.byteLength);
  }

  get enabled(): boolean {
    return this.bytesMax > 0;
  }

  /** Whether a ball of this many bytes is worth caching. */
  admits(ballBytes: number): boolean {
    return this.enabled && ballBytes <= this.bytesMax / cacheLimits.ballShareDivisor;
  }

  get(objectId: string, index: number): Uint8Array | undefined {
    if (!this.enabled) return undefined;
    const chunk = this.chunks.get(chunkKey(objectId, index));
    if (chunk) this.hits += 1;
    else this.misses += 1;
    return chunk;
  }

  has(objectId: string, index: number): boolean {
    return this.enabled && this.chunks.get(chunkKey(objectId, index)) !== undefined;
  }

  /** The caller must not change `chunk` afterwards (give a copy of anything shared). */
  set(objectId: string, index: number, chunk: Uint8Array): void {
    if (this.enabled) this.chunks.set(chunkKey(objectId, index), chunk);
  }

  /** Forget a version's chunks (after a delete or a failed check). */
  drop(objectId: string, numChunks: number): void {
    for (let index = 0; index < numChunks; index += 1) this.chunks.delete(chunkKey(objectId, index));
  }

  /** The object id last seen for (bucket, key). */
  objectIdOf(bucket: string, key: string): string | undefined {
    return this.enabled ? this.current.get(ballKey(bucket, key)) : undefined;
  }

  noteObjectId(bucket: string, key: string, objectId: string | undefined): void {
    if (!this.enabled) return;
    if (objectId === undefined) this.current.delete(ballKey(bucket, key));
    else this.current.set(ballKey(bucket, key), objectId);
  }

  stats(): CacheStats {
    return { bytes: this.chunks.bytes, bytesMax: this.bytesMax, chunks: this.chunks.size, hits: this.hits, misses: this.misses };
  }

  clear(): void {
    this.chunks.clear();
    this.current.clear();
  }
}

// Names never contain control characters (src/protocol/schemas.ts), so NUL separates safely.
const chunkKey = (objectId: string, index: number) => `${objectId}\u0000${index}`;
const ballKey = (bucket: string, key: string) => `${bucket}\u0000${key}`;
