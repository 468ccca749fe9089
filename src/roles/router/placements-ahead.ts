// Placements asked for ahead of an upload's chunks. A multi-chunk put sends its chunks one by
// one; asking the SPM where each goes cost one `ball.place` (a catalog write and a WAL fsync)
// per chunk, ~0.5 CPU-s per GiB at the SPM. Here chunk indexes fall into fixed runs of 1, 2, 4,
// … placeAheadChunksMax, then placeAheadChunksMax each ([0], [1,2], [3..6], [7..14], [15..30],
// [31..46], …); the first chunk of a run to arrive asks for the whole run, so a 64-chunk ball
// takes 8 calls. Fixed runs never overlap, whatever order chunks arrive in (a few are in flight
// at once), so no chunk is placed twice. When the client says how many chunks the put has, no
// run goes past the last; otherwise the last run may overshoot, and the SPM turns placements a
// ball did not use into garbage at its commit (deleting a chunk never written is a no-op).
// A chunk sent again (a retry) whose run was asked already gets a placement of its own.
import type { SpmOps } from "../../protocol/spm.ts";
import type { ServiceCaller } from "../../net/spm-set.ts";
import type { PeerLocation } from "../../protocol/ball.ts";
import { vssLimits } from "../../lib/limits.ts";
import { assert } from "../../lib/assert.ts";
import { Lru } from "../../lib/lru.ts";

const runChunksMax = vssLimits.placeAheadChunksMax;
assert(Number.isInteger(Math.log2(runChunksMax)), "placeAheadChunksMax must be a power of two");
/** Indexes [0, doublingEnd) are in the growing runs 1, 2, 4, … runChunksMax. */
const doublingEnd = 2 * runChunksMax - 1;
/** Runs this far behind the newest one asked are forgotten (a retry that late asks anew). */
const runsRememberedBehind = 64 * runChunksMax;

interface Upload {
  rf: number;
  /** First indexes of the runs asked for. */
  asked: Set<number>;
  /** Placements asked for and not yet taken, by chunk index. */
  pending: Map<number, Promise<PeerLocation[]>>;
}

/** The run chunk `index` belongs to: [start, start + length). */
export function runOf(index: number): { start: number; length: number } {
  if (index < doublingEnd) {
    const length = 2 ** Math.floor(Math.log2(index + 1));
    return { start: length - 1, length };
  }
  return { start: doublingEnd + Math.floor((index - doublingEnd) / runChunksMax) * runChunksMax, length: runChunksMax };
}

export class PlacementsAhead {
  private readonly uploads = new Lru<string, Upload>(vssLimits.placeAheadUploadsMax);

  constructor(
    private readonly spm: ServiceCaller<SpmOps>,
    /** Told when the SPM placed chunks of an upload (which extends its intent). */
    private readonly onPlaced: (objectId: string, intentTtlMs: number) => void = () => {},
  ) {}

  /**
   * Where chunk `index` of `objectId` goes: rf distinct peers, as the SPM placed them.
   * `chunksHint`: the upload's chunk count, when the client knows it; no run goes past it.
   */
  take(objectId: string, index: number, rf: number, chunksHint?: number): Promise<PeerLocation[]> {
    let upload = this.uploads.get(objectId);
    if (upload === undefined || upload.rf !== rf) {
      upload = { rf, asked: new Set(), pending: new Map() };
      this.uploads.set(objectId, upload);
    }
    let placed = upload.pending.get(index);
    if (placed === undefined) {
      const run = runOf(index);
      if (upload.asked.has(run.start)) {
        placed = this.ask(objectId, index, 1, rf).then((placements) => placements[0] ?? []); // a chunk sent again
      } else {
        this.askRun(objectId, run, upload, chunksHint);
        placed = upload.pending.get(index);
      }
    }
    upload.pending.delete(index);
    assert(placed !== undefined, `chunk ${index} of ${objectId} has no placement asked for`);
    return placed;
  }

  /** The upload is committed (or given up): nothing more will be taken for it. */
  forget(objectId: string): void {
    this.uploads.delete(objectId);
  }

  private askRun(objectId: string, run: { start: number; length: number }, upload: Upload, chunksHint: number | undefined): void {
    upload.asked.add(run.start);
    for (const start of upload.asked) if (start < run.start - runsRememberedBehind) upload.asked.delete(start);
    const length = chunksHint === undefined ? run.length : Math.max(1, Math.min(run.length, chunksHint - run.start));
    const asked = this.ask(objectId, run.start, length, upload.rf);
    for (let offset = 0; offset < length; offset += 1) {
      const placed = asked.then((placements) => placements[offset] ?? []);
      placed.catch(() => {}); // one nobody takes must not be an unhandled rejection; takers see the error
      upload.pending.set(run.start + offset, placed);
    }
  }

  /** rf peers for each of `count` chunks from `fromIndex`, in index order. */
  private async ask(objectId: string, fromIndex: number, count: number, rf: number): Promise<PeerLocation[][]> {
    const { placements, intentTtlMs } = await this.spm.call("ball.place", { objectId, fromIndex, count, rf });
    this.onPlaced(objectId, intentTtlMs);
    return Array.from({ length: count }, (_, offset) => placements.find((placement) => placement.index === fromIndex + offset)?.peers ?? []);
  }
}
