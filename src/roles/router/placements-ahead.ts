// Placements asked for ahead of an upload's chunks. A multi-chunk put sends its chunks one by
// one; asking the SPM where each goes cost one `ball.place` (a catalog write and a WAL fsync)
// per chunk, ~0.5 CPU-s per GiB at the SPM. Here the first chunk asks for itself, the next for
// a run of 2, then 4, … up to placeAheadChunksMax, so a 64-chunk ball takes 7 calls, and a ball
// that ends early wastes fewer placements than it used (the SPM turns the unused ones into
// garbage when the ball commits, and deleting a chunk that was never written is a no-op).
// Chunks arrive roughly in order, a few at a time; one that finds its placement already asked
// for waits for that answer instead of asking again.
import type { ServiceClient } from "../../net/pool.ts";
import type { SpmOps } from "../../protocol/spm.ts";
import type { PeerLocation } from "../../protocol/ball.ts";
import { vssLimits } from "../../lib/limits.ts";
import { Lru } from "../../lib/lru.ts";

interface Upload {
  rf: number;
  /** The length of the next run asked for. */
  runChunks: number;
  /** Placements asked for and not yet taken, by chunk index. */
  pending: Map<number, Promise<PeerLocation[]>>;
}

export class PlacementsAhead {
  private readonly uploads = new Lru<string, Upload>(vssLimits.placeAheadUploadsMax);
  /** ball.place calls made (for tests and metrics). */
  calls = 0;

  constructor(private readonly spm: ServiceClient<SpmOps>) {}

  /** Where chunk `index` of `objectId` goes: rf distinct peers, as the SPM placed them. */
  take(objectId: string, index: number, rf: number): Promise<PeerLocation[]> {
    let upload = this.uploads.get(objectId);
    if (upload === undefined || upload.rf !== rf) {
      upload = { rf, runChunks: 1, pending: new Map() };
      this.uploads.set(objectId, upload);
    }
    let placed = upload.pending.get(index);
    if (placed === undefined) {
      this.askRun(objectId, index, upload);
      placed = upload.pending.get(index);
    }
    upload.pending.delete(index);
    return placed ?? Promise.resolve([]);
  }

  /** The upload is committed (or given up): nothing more will be taken for it. */
  forget(objectId: string): void {
    this.uploads.delete(objectId);
  }

  private askRun(objectId: string, fromIndex: number, upload: Upload): void {
    const count = upload.runChunks;
    upload.runChunks = Math.min(count * 2, vssLimits.placeAheadChunksMax);
    this.calls += 1;
    const run = this.spm.call("ball.place", { objectId, fromIndex, count, rf: upload.rf });
    for (let offset = 0; offset < count; offset += 1) {
      const index = fromIndex + offset;
      if (upload.pending.has(index)) continue; // asked for by an earlier run; this one goes to garbage
      const placed = run.then(({ placements }) => placements.find((placement) => placement.index === index)?.peers ?? []);
      placed.catch(() => {}); // a run nobody takes from must not be an unhandled rejection; takers see the error
      upload.pending.set(index, placed);
    }
  }
}
