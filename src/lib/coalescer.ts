// Turns many concurrent calls into few: calls made in the same turn of the event loop are sent
// as one batch, and each caller gets its own result or its own error back. Under load a router
// then sends one `commitMany` to the SPM instead of a dozen commits, one `chunk.putMany` per
// peer instead of one message per chunk — fewer messages to encode, parse and write.
import { assert } from "./assert.ts";

export type BatchOutcome<R> = { ok: true; value: R } | { ok: false; error: Error };

interface Waiting<Q, R> {
  request: Q;
  resolve: (value: R) => void;
  reject: (error: Error) => void;
}

export class Coalescer<Q, R> {
  private waiting: Waiting<Q, R>[] = [];
  private scheduled = false;

  constructor(
    private readonly send: (requests: Q[]) => Promise<BatchOutcome<R>[]>,
    private readonly batchMax: number,
    /** A batch also ends before its requests pass `bytesMax` by this measure (always one at least). */
    private readonly bytes?: { of: (request: Q) => number; max: number },
  ) {
    assert(batchMax >= 1, "a batch holds at least one request");
    assert(bytes === undefined || bytes.max >= 1, "a batch holds at least one byte");
  }

  call(request: Q): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.batchLength());
      void this.sendBatch(batch);
    }
  }

  /** How many of the waiting requests go in the next batch: by count, and by bytes when measured. */
  private batchLength(): number {
    const most = Math.min(this.batchMax, this.waiting.length);
    if (!this.bytes) return most;
    let total = 0;
    for (let i = 0; i < most; i += 1) {
      total += this.bytes.of(this.waiting[i]!.request);
      if (i > 0 && total > this.bytes.max) return i;
    }
    return most;
  }

  private async sendBatch(batch: Waiting<Q, R>[]): Promise<void> {
    let outcomes: BatchOutcome<R>[];
    try {
      outcomes = await this.send(batch.map((entry) => entry.request));
      assert(outcomes.length === batch.length, `a batch of ${batch.length} came back with ${outcomes.length} outcomes`);
    } catch (error) {
      // The batch as a whole failed (e.g. the connection broke): every caller hears why.
      for (const entry of batch) entry.reject(error as Error);
      return;
    }
    batch.forEach((entry, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok) entry.resolve(outcome.value);
      else entry.reject(outcome?.error ?? new Error("batch lost an outcome"));
    });
  }
}
