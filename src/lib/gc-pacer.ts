// Keeps a process that moves large buffers inside its memory bound. JavaScriptCore collects
// ArrayBuffers lazily: a router relaying 64 MiB balls at hundreds of MB/s could hold many
// hundreds of MiB of dead chunk buffers before a collection ran on its own (measured with
// /tmp-style runs of `mictlanx bench --size 64MiB --count 16 --concurrency 2`: router 556 MiB
// RSS when every relayed chunk was also copied twice by MessagePack).
//
// So every `everyBytes` of buffers it looks at its resident memory (~10 µs), and only when that
// has passed `rssSoftBytes` does it ask for a synchronous collection. Collecting every 96 MiB
// regardless (as this did first) kept the router at 120-230 MiB but cost it 20-30 % of its CPU:
// each collection also has the allocator hand freed memory back to the OS, so the buffers after
// it are page-faulted in afresh (measured: 540k minor faults per GiB relayed, 250k without
// forced collections). With the copies gone from the wire (split frames) the router stays near
// 150-180 MiB and peers near 150-175 MiB without help; the check is the guarantee for loads
// that would pile up more. When a collection does not bring memory back under the mark (the
// memory is live, e.g. a deep write queue), it looks less often, up to 8 × `everyBytes`, so a
// busy process does not collect in vain on every step.
import { limits } from "./limits.ts";

const backoffMax = 8;

export class GcPacer {
  private sinceLastBytes = 0;
  private interval: number;
  /** Synchronous collections asked for (for tests and metrics). */
  collections = 0;

  constructor(
    private readonly everyBytes: number,
    private readonly rssSoftBytes: number = limits.gcRssSoftBytes,
    private readonly rss: () => number = () => process.memoryUsage.rss(),
    private readonly collect: () => void = () => Bun.gc(true),
  ) {
    this.interval = everyBytes;
  }

  /** Note `bytes` of buffers that are garbage once the current request ends. */
  note(bytes: number): void {
    this.sinceLastBytes += bytes;
    if (this.sinceLastBytes < this.interval) return;
    this.sinceLastBytes = 0;
    if (this.rss() < this.rssSoftBytes) {
      this.interval = this.everyBytes;
      return;
    }
    this.collections += 1;
    this.collect(); // synchronous: the memory bound is a promise, a few ms now and then is the price
    const stillHigh = this.rss() >= this.rssSoftBytes;
    this.interval = stillHigh ? Math.min(this.interval * 2, this.everyBytes * backoffMax) : this.everyBytes;
  }
}
