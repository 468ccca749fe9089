// The scrub: the engine reading its cold data back in the background and verifying it, so a
// disk that rots is found out before a reader (or the last good replica) needs those bytes.
//
// A pass walks every shard that exists when it starts (active and read-only), in id order, and
// in each the current chunks' records in file order, up to where the shard ended when the pass
// reached it. Each step reads neighbouring records together (up to limits.scrubReadBytesMax,
// or one bigger record alone) through O_DIRECT, so the disk's bytes are what is checked and the
// page cache keeps serving hot chunks, then verifies each exactly as a read does (verify.ts:
// header, data xxh3, and that it is the record the index names). Steps are paced by a token
// bucket at the scrub's byte rate and yield to the event loop, so client traffic goes first.
//
// What can change under a pass, and why none of it is reported as corrupt:
// - compaction moves a record (byte for byte, same seq) and deletes its shard: the shard is
//   pinned for each read (its fd stays open until the read is done); a shard already retired
//   is skipped, and the records it moved are checked where they landed on the next pass.
// - an overwrite or a delete: the old record's bytes stay on disk and still verify; a record
//   that fails is looked up again, and only one the index still names, at the same place and
//   seq, is a finding.
// - the store closing: the pass stops at the next step; close() waits for the step under way.
// Records written after the pass started are left to the next one (they are not cold).
//
// A finding is logged, counted and handed to `onCorrupt` (the peer reports it to the SPM, which
// rewrites it from a good replica); reads keep refusing the bytes meanwhile. A chunk is visited
// once a pass, so it is reported at most once a pass. Passes start at most once per
// `passIntervalMs`; a pass that takes longer is followed at once by the next.
import { assert } from "../lib/assert.ts";
import { toMictlanxError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { TokenBucket } from "../lib/token-bucket.ts";
import type { ChunkRow, IndexDb } from "./index-db.ts";
import { refLabel } from "./refs.ts";
import type { ShardSet } from "./shard-set.ts";
import type { ChunkRef, ScrubClock, ScrubOptions, ScrubProgress } from "./types.ts";
import { verifyRecord } from "./verify.ts";

export interface ScrubContext {
  index: IndexDb;
  shards: ShardSet;
  isClosing: () => boolean;
  log: (message: string) => void;
}

export const scrubOff: ScrubProgress = {
  state: "off",
  passes: 0,
  bytesScanned: 0,
  chunksScanned: 0,
  corruptFound: 0,
  passProgress: 0,
  ratePerSec: 0,
};

const systemClock: ScrubClock = {
  nowMs: () => performance.now(),
  // unref: background upkeep alone should not keep a process alive (a server's sockets do).
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()),
};

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

interface PlannedShard {
  id: number;
  /** Where the shard ended when the pass reached it; records past it are left to the next pass. */
  bytes: number;
}

export class Scrubber {
  private readonly clock: ScrubClock;
  private readonly bucket: TokenBucket;
  /** The bucket's size: one step's read, or a second's worth at a lower rate. */
  private readonly burstBytes: number;
  private readonly passIntervalMs: number;
  private readonly counters = { passes: 0, bytesScanned: 0, chunksScanned: 0, corruptFound: 0 };
  private state: ScrubProgress["state"] = "scanning";
  private lastPassMs: number | undefined;
  private pass = { totalBytes: 0, doneBytes: 0, shardBytes: 0 };
  private stopping = false;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly ctx: ScrubContext,
    private readonly options: ScrubOptions,
  ) {
    assert(Number.isFinite(options.bytesPerSec) && options.bytesPerSec > 0, `scrub rate ${options.bytesPerSec}`);
    this.passIntervalMs = options.passIntervalMs ?? limits.scrubPassIntervalMsDefault;
    assert(this.passIntervalMs >= limits.scrubPassIntervalMsMin, `scrub pass interval ${this.passIntervalMs} ms`);
    this.clock = options.clock ?? systemClock;
    this.burstBytes = Math.max(1, Math.min(limits.scrubReadBytesMax, Math.floor(options.bytesPerSec)));
    this.bucket = new TokenBucket(options.bytesPerSec, this.burstBytes, this.clock);
  }

  start(): void {
    assert(this.running === undefined, "the scrub started twice");
    this.running = this.loop();
  }

  /** Stop at the next step and wait for the step under way (it may hold a shard's fd). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
  }

  progress(): ScrubProgress {
    const { totalBytes, doneBytes, shardBytes } = this.pass;
    const passProgress = this.state !== "scanning" ? 1 : totalBytes === 0 ? 0 : Math.min(1, (doneBytes + shardBytes) / totalBytes);
    return {
      state: this.state,
      ...this.counters,
      passProgress,
      ...(this.lastPassMs === undefined ? {} : { lastPassMs: this.lastPassMs }),
      ratePerSec: this.options.bytesPerSec,
    };
  }

  private get stopped(): boolean {
    return this.stopping || this.ctx.isClosing();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const startedMs = this.clock.nowMs();
      this.state = "scanning";
      try {
        await this.runPass();
      } catch (error) {
        // A bug or a broken index: say so, and try again after the interval (never spin).
        if (!this.stopped) this.ctx.log(`scrub pass ${this.counters.passes + 1} failed: ${toMictlanxError(error).message}`);
      }
      if (this.stopped) break;
      this.state = "waiting";
      const waitMs = this.passIntervalMs - (this.clock.nowMs() - startedMs);
      if (waitMs > 0) await this.wait(waitMs);
    }
  }

  /** Sleep on the clock, cut short by stop(). */
  private wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      void this.clock.sleep(ms).then(resolve);
    }).finally(() => (this.wake = undefined));
  }

  private async runPass(): Promise<void> {
    await yieldToLoop();
    const plan: PlannedShard[] = this.ctx.shards.ids().map((id) => ({ id, bytes: this.ctx.shards.get(id)?.size ?? 0 }));
    this.pass = { totalBytes: plan.reduce((sum, s) => sum + s.bytes, 0), doneBytes: 0, shardBytes: 0 };
    const found = { corrupt: 0 };
    for (const shard of plan) {
      if (this.stopped) return;
      await this.scrubShard(shard, found);
      this.pass.doneBytes += shard.bytes;
      this.pass.shardBytes = 0;
    }
    if (this.stopped) return;
    this.counters.passes += 1;
    this.lastPassMs = Date.now();
    if (found.corrupt > 0) {
      this.ctx.log(`scrub pass ${this.counters.passes} done: ${found.corrupt} corrupt chunks found (see above)`);
    }
  }

  private async scrubShard(shard: PlannedShard, found: { corrupt: number }): Promise<void> {
    let after = -1;
    for (;;) {
      const rows = this.ctx.index
        .chunkRowsInShard(shard.id, after, limits.scrubRowsPerPageMax)
        .filter((row) => row.offset + row.recordBytes <= shard.bytes);
      if (rows.length === 0) return;
      for (const step of steps(rows)) {
        if (this.stopped) return;
        const done = await this.scrubStep(shard.id, step, found);
        if (!done) return; // the shard was retired under the pass
        const last = step.at(-1);
        assert(last, "an empty scrub step");
        after = last.offset;
        this.pass.shardBytes = last.offset + last.recordBytes;
        await yieldToLoop();
      }
      if (rows.length < limits.scrubRowsPerPageMax) return;
    }
  }

  /** Read one step's records and verify each; false when the shard is gone (nothing read). */
  private async scrubStep(shardId: number, step: ChunkRow[], found: { corrupt: number }): Promise<boolean> {
    const first = step[0];
    const last = step.at(-1);
    assert(first && last, "an empty scrub step");
    const span = last.offset + last.recordBytes - first.offset;
    if (!(await this.pace(span))) return true; // stopping: the caller sees it next
    const read = await this.read(shardId, first.offset, span);
    if (read === undefined) return false;
    this.counters.bytesScanned += span;
    if (!read.ok && step.length > 1) return this.scrubAlone(shardId, step, found); // which record is unreadable?
    for (const row of step) {
      const at = row.offset - first.offset;
      const detail = read.ok ? problemOf(row, read.bytes.subarray(at, at + row.recordBytes)) : read.detail;
      this.counters.chunksScanned += 1;
      if (detail !== undefined) this.finding(shardId, row, detail, found);
    }
    return true;
  }

  /** After a read error over several records: read each alone, so only the bad ones are findings. */
  private async scrubAlone(shardId: number, step: ChunkRow[], found: { corrupt: number }): Promise<boolean> {
    for (const row of step) {
      if (!(await this.pace(row.recordBytes))) return true;
      const read = await this.read(shardId, row.offset, row.recordBytes);
      if (read === undefined) return false;
      this.counters.bytesScanned += row.recordBytes;
      this.counters.chunksScanned += 1;
      const detail = read.ok ? problemOf(row, read.bytes) : read.detail;
      if (detail !== undefined) this.finding(shardId, row, detail, found);
    }
    return true;
  }

  private async read(shardId: number, offset: number, length: number): Promise<{ ok: true; bytes: Uint8Array } | { ok: false; detail: string } | undefined> {
    const file = this.ctx.shards.get(shardId);
    // Lookup and pin in one turn of the event loop: compaction cannot close the fd in between.
    if (!file?.acquire()) return undefined;
    try {
      return { ok: true, bytes: await file.read(offset, length, { direct: true }) };
    } catch (error) {
      return { ok: false, detail: `reading shard ${shardId} at byte ${offset} failed: ${toMictlanxError(error).message}` };
    } finally {
      file.release();
    }
  }

  /** Take `bytes` tokens in burst-sized pieces (a big read must not pass at the price of one burst); false if stopped. */
  private async pace(bytes: number): Promise<boolean> {
    let left = bytes;
    while (left > 0) {
      if (this.stopped) return false;
      const piece = Math.min(left, this.burstBytes);
      const waitMs = this.bucket.tryTake(piece);
      if (waitMs === 0) left -= piece;
      else await this.wait(waitMs);
    }
    return true;
  }

  private finding(shardId: number, row: ChunkRow, detail: string, found: { corrupt: number }): void {
    const ref: ChunkRef = { bucket: row.bucket, ball: row.ball, index: row.index };
    // Only what the index still names at this place and seq: an overwrite, a delete or a move
    // since the page was fetched is not damage.
    const now = this.ctx.index.getChunk(ref);
    if (!now || now.shardId !== shardId || now.offset !== row.offset || now.seq !== row.seq) return;
    found.corrupt += 1;
    this.counters.corruptFound += 1;
    const pass = this.counters.passes + 1;
    this.ctx.log(`scrub pass ${pass}: ${detail}; reads of chunk ${refLabel(ref)} refuse it until a good copy is put`);
    this.options.onCorrupt?.({ ref, shardId, offset: row.offset, seq: row.seq, detail, pass });
  }
}

/** What is wrong with a record's bytes, or undefined when they verify. */
function problemOf(row: ChunkRow, raw: Uint8Array): string | undefined {
  try {
    verifyRecord(row, row, raw);
    return undefined;
  } catch (error) {
    return toMictlanxError(error).message;
  }
}

/** Group rows (in file order) into reads: neighbours while the span fits scrubReadBytesMax. */
function steps(rows: ChunkRow[]): ChunkRow[][] {
  const out: ChunkRow[][] = [];
  let current: ChunkRow[] = [];
  for (const row of rows) {
    const start = current[0]?.offset ?? row.offset;
    if (current.length > 0 && row.offset + row.recordBytes - start > limits.scrubReadBytesMax) {
      out.push(current);
      current = [];
    }
    current.push(row);
  }
  if (current.length > 0) out.push(current);
  return out;
}
