// Backpressure for Bun sockets. socket.write() may take only part of a buffer and returns how
// many bytes it took; the rest must be kept and written on `drain`, or it is silently lost.
// The queue is bounded: a writer awaits `ready()` before sending more, so a slow reader slows
// the writer instead of growing memory.
import { assert } from "../lib/assert.ts";

export interface WritableSink {
  write(data: Uint8Array): number;
}

export class BoundedWriter {
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private waiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private closedWith: Error | null = null;

  constructor(
    private readonly sink: WritableSink,
    private readonly queueBytesMax: number,
  ) {
    assert(queueBytesMax > 0, "queueBytesMax must be positive");
  }

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /** Queue bytes and write what the socket takes now. Never drops bytes. */
  send(bytes: Uint8Array): void {
    if (this.closedWith) throw this.closedWith;
    if (bytes.byteLength === 0) return;
    if (this.queue.length === 0) {
      const written = this.writeSome(bytes);
      if (written === bytes.byteLength) return;
      bytes = bytes.subarray(written);
    }
    this.queue.push(bytes);
    this.queuedBytes += bytes.byteLength;
  }

  /** Resolves once the queue is under its bound; rejects if the socket closes first. */
  ready(): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.queuedBytes < this.queueBytesMax) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Call from the socket's drain handler. */
  onDrain(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      assert(head !== undefined, "queue head missing");
      const written = this.writeSome(head);
      this.queuedBytes -= written;
      if (written < head.byteLength) {
        this.queue[0] = head.subarray(written);
        break;
      }
      this.queue.shift();
    }
    assert(this.queuedBytes >= 0, "queuedBytes went negative");
    if (this.queuedBytes < this.queueBytesMax) this.wakeAll();
  }

  /** The socket is gone: fail everyone waiting and refuse further sends. */
  close(error: Error): void {
    if (this.closedWith) return;
    this.closedWith = error;
    this.queue.length = 0;
    this.queuedBytes = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  private writeSome(bytes: Uint8Array): number {
    const written = this.sink.write(bytes);
    // Bun returns -1 (or 0) when the socket is closed or cannot take anything right now.
    return written > 0 ? written : 0;
  }

  private wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.resolve();
  }
}
