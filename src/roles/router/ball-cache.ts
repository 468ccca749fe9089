// Reads that survive the control plane: the last metadata this router served for each ball,
// and the chunk pages it served for each version, kept so that gets go on while no SPM can be
// reached (killed, restarting, partitioned, between leaders).
//
// What it promises, and why that is enough:
// - The SPM is the truth whenever it answers: every answer replaces what is held for that key,
//   a not_found drops it, and a put or delete through this router drops it too (the next get
//   asks the SPM). So the cache holds, per key, exactly the version this router served last,
//   and a get served from it is never older than one this router has served.
// - Only a get that could not reach the SPM (`unavailable`, `timeout`) is served from here. A
//   delete or overwrite made through another router while this one could not hear of it is not
//   seen until the SPM is back: reads during an outage are as of the outage's start. Chunks a
//   delete left behind stay readable for the reader grace (`spm --reader-grace`; no GC runs
//   while the SPM is away at all), after which their peers answer not_found and the get fails,
//   never wrong: every chunk is still checked against the checksum held here.
// - Bounded by entries and by bytes (each weighed as the wire would carry it), least recently
//   used first out; one ball or page heavier than its bound alone is never held.
import type { BallLocated } from "../../protocol/ball.ts";
import { vssLimits, vssTimings } from "../../lib/limits.ts";
import { Lru } from "../../lib/lru.ts";
import { ballMetaWireBytes, chunkRecordWireBytes, stringWireBytes } from "../../lib/wire-size.ts";
import type { MictlanxError } from "../../lib/errors.ts";

export interface ChunksPage {
  chunks: BallLocated["chunks"];
  peers: BallLocated["peers"];
  next?: number;
}

/**
 * Whether the SPM was just found unreachable. An error that means "the SPM could not be asked"
 * (`unavailable`, `timeout`, from this side of the link) starts a spell of
 * vssTimings.spmAwayRecheckMs in which held answers are served without dialling it again.
 */
export class SpmAway {
  private untilMs = 0;

  /** True when `error` means the SPM could not be asked (a held answer may be served). */
  noted(error: MictlanxError): boolean {
    const unreachable = error.code === "unavailable" || error.code === "timeout";
    if (unreachable && !error.remote) this.untilMs = performance.now() + vssTimings.spmAwayRecheckMs;
    return unreachable;
  }

  /** Within a spell: serve what is held at once. */
  now(): boolean {
    return performance.now() < this.untilMs;
  }
}

export class BallCache {
  private readonly balls = new Lru<string, BallLocated>(vssLimits.routerBallCacheEntries, vssLimits.routerBallCacheBytesMax, ballBytes);
  private readonly pages = new Lru<string, ChunksPage>(vssLimits.routerBallCacheEntries, vssLimits.routerChunkPageCacheBytesMax, pageBytes);
  /** What the SPM just said of a ball: it replaces whatever was held for its key. */
  remember(ball: BallLocated): void {
    this.balls.set(ballKey(ball.bucket, ball.key), ball);
  }

  /** The key is gone or changed (deleted, overwritten, or the SPM said not_found). */
  forget(bucket: string, key: string): void {
    this.balls.delete(ballKey(bucket, key));
  }

  /** Forget every key of a bucket under a prefix ("" = the whole bucket): a prefix delete. */
  forgetPrefix(bucket: string, prefix: string): void {
    const start = ballKey(bucket, prefix);
    for (const held of this.balls.keys()) if (held.startsWith(start)) this.balls.delete(held);
  }

  /** The last ball served under this key, for a get the SPM could not answer. */
  lookup(bucket: string, key: string): BallLocated | undefined {
    return this.balls.get(ballKey(bucket, key));
  }

  rememberPage(objectId: string, fromIndex: number, limit: number | undefined, page: ChunksPage): void {
    this.pages.set(pageKey(objectId, fromIndex, limit), page);
  }

  page(objectId: string, fromIndex: number, limit: number | undefined): ChunksPage | undefined {
    return this.pages.get(pageKey(objectId, fromIndex, limit));
  }

  get entries(): number {
    return this.balls.size + this.pages.size;
  }

  get bytes(): number {
    return this.balls.bytes + this.pages.bytes;
  }
}

// NUL cannot appear in a bucket name, so no two (bucket, key) pairs share a cache key.
function ballKey(bucket: string, key: string): string {
  return `${bucket}\u0000${key}`;
}

function pageKey(objectId: string, fromIndex: number, limit: number | undefined): string {
  return `${objectId}:${fromIndex}:${limit ?? ""}`;
}

function ballBytes(ball: BallLocated): number {
  return ballMetaWireBytes(ball) + pageBytes(ball);
}

function pageBytes(page: ChunksPage): number {
  let total = 0;
  for (const chunk of page.chunks) total += chunkRecordWireBytes(chunk);
  for (const peer of page.peers) total += stringWireBytes(peer.id) + stringWireBytes(peer.address) + 16;
  return total;
}
