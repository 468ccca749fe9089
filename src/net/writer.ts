// Backpressure for Bun sockets. socket.write() may take only part of a buffer and returns how
// many bytes it took; the rest must be kept and written on `drain`, or it is silently lost.
// The queue is bounded: a writer awaits `ready()` before sending more, so a slow reader slows
// the writer instead of growing memory.
//
// Corking: sends are queued and written at the end of the current microtask run, small ones
// joined into one buffer, so the many replies or requests a busy event-loop turn produces for
// one socket cost one write system call instead of one each.
import { assert } from "../lib/assert.ts";

export interface WritableSink {
  write(data: Uint8Array): number;
}

/** Small queued buffers are joined up to this size before a write. */
export const corkBytesMax = 256 * 1024;
/**
 * Only buffers under this size are joined (copied); a larger one (a chunk's bytes in a split
 * frame) is written as it is, since a system call costs less than copying it.
 */
export const corkPieceBytesMax = 64 * 1024;

export class BoundedWriter {
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private waiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private closedWith: Error | null = null;
  /** The socket took less than offered: wait for `drain` before writing again. */
  private blocked = false;
  /** When the socket last took less than offered (performance.now()), while it is blocked. */
  private blockedSinceMs = 0;
  private scheduled = false;

  /**
   * `onWritten` is called after the socket took queued bytes (on a flush, not only on drain):
   * a server waiting for its reply bytes to fall looks again then.
   */
  constructor(
    private readonly sink: WritableSink,
    private readonly queueBytesMax: number,
    private readonly onWritten?: () => void,
  ) {
    assert(queueBytesMax > 0, "queueBytesMax must be positive");
  }

  /** Bytes accepted by send() and not yet taken by the socket. */
  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /** Queue bytes; they are written at the end of this microtask run. Never drops bytes. */
  send(bytes: Uint8Array): void {
    if (this.closedWith) throw this.closedWith;
    if (bytes.byteLength === 0) return;
    this.queue.push(bytes);
    this.queuedBytes += bytes.byteLength;
    if (!this.scheduled && !this.blocked) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** How long queued bytes have waited with the socket taking none of them (0 when it is not blocked). */
  blockedForMs(nowMs: number): number {
    return this.blocked ? nowMs - this.blockedSinceMs : 0;
  }

  /** Resolves once the queue is under its bound; rejects if the socket closes first. */
  ready(): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.queuedBytes < this.queueBytesMax) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Write what is queued now, before a socket.end() that would otherwise cut it off. */
  flushNow(): void {
    this.flush();
  }

  /** Call from the socket's drain handler. */
  onDrain(): void {
    this.blocked = false;
    this.flush();
  }

  /** The socket is gone: fail everyone waiting and refuse further sends. */
  close(error: Error): void {
    if (this.closedWith) return;
    this.closedWith = error;
    this.queue = [];
    this.queuedBytes = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  private flush(): void {
    this.scheduled = false;
    let writtenBytes = 0;
    while (!this.blocked && !this.closedWith && this.queue.length > 0) {
      const piece = this.nextPiece();
      const written = this.writeSome(piece);
      this.queuedBytes -= written;
      writtenBytes += written;
      if (written < piece.byteLength) {
        this.queue.unshift(piece.subarray(written));
        this.blocked = true;
        this.blockedSinceMs = performance.now();
      }
    }
    assert(this.queuedBytes >= 0, "queuedBytes went negative");
    if (this.queuedBytes < this.queueBytesMax) this.wakeAll();
    if (writtenBytes > 0) this.onWritten?.();
  }

  /** The next buffer to write: a large one alone, or several small ones joined. */
  private nextPiece(): Uint8Array {
    const head = this.queue[0];
    assert(head !== undefined, "nextPiece on an empty queue");
    let count = 1;
    let bytes = head.byteLength;
    if (bytes < corkPieceBytesMax) {
      for (let next = this.queue[count]; next !== undefined && next.byteLength < corkPieceBytesMax && bytes + next.byteLength <= corkBytesMax; next = this.queue[count]) {
        bytes += next.byteLength;
        count += 1;
      }
    }
    const taken = this.queue.splice(0, count);
    if (count === 1) return head;
    const joined = new Uint8Array(bytes);
    let at = 0;
    for (const buffer of taken) {
      joined.set(buffer, at);
      at += buffer.byteLength;
    }
    return joined;
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
