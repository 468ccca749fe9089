// Keeps a process that moves large buffers inside its memory bound. JavaScriptCore collects
// ArrayBuffers lazily: a router relaying 64 MiB balls at hundreds of MB/s can hold many
// hundreds of MiB of dead chunk buffers before a collection runs on its own (measured with
// /tmp-style runs of `mictlanx bench --size 64MiB --count 16 --concurrency 2`: router 556 MiB
// RSS). A synchronous collection after every `everyBytes` of buffers keeps the garbage to about
// that much (router 141-188 MiB, peer 103-120 MiB) for ~10 % of throughput; an asynchronous
// request (Bun.gc(false)) left the router at 215-250 MiB.
export class GcPacer {
  private sinceLastBytes = 0;

  constructor(private readonly everyBytes: number) {}

  /** Note `bytes` of buffers that are garbage once the current request ends. */
  note(bytes: number): void {
    this.sinceLastBytes += bytes;
    if (this.sinceLastBytes < this.everyBytes) return;
    this.sinceLastBytes = 0;
    Bun.gc(true); // synchronous: the memory bound is a promise, a few ms per ~100 MiB is the price
  }
}
