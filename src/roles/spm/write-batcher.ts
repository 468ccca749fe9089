// Group commit for the catalog: writes that arrive in the same turn of the event loop share
// one transaction and one fsync of the WAL, done in the thread pool so the SPM keeps serving
// while the disk flushes. Each write still succeeds or fails on its own (the catalog
// wraps each in a savepoint), and none is answered before the transaction that holds it is
// durable. Under load this turns N commits into one disk flush instead of N.
import type { Catalog } from "../../catalog/index.ts";
import { toMictlanxError } from "../../lib/errors.ts";
import { vssLimits } from "../../lib/limits.ts";

const writeBatchMax = vssLimits.spmWriteBatchMax;

interface Pending {
  write: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class WriteBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  readonly stats = { flushes: 0, writes: 0 };

  constructor(private readonly catalog: Catalog) {}

  /** Run `write` in the next group transaction; resolves with its result once that is durable. */
  submit<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ write, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.queue.splice(0, writeBatchMax);
    if (this.queue.length > 0) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: Error }> = [];
    try {
      this.catalog.batch(() => {
        for (const pending of batch) {
          try {
            // Nested: a savepoint, so a write that throws halfway is undone whole.
            outcomes.push({ ok: true, value: this.catalog.batch(pending.write) });
          } catch (error) {
            outcomes.push({ ok: false, error: toMictlanxError(error) });
          }
        }
      });
    } catch (error) {
      // The transaction itself failed to commit: nothing in it is durable.
      const failure = toMictlanxError(error);
      for (const pending of batch) pending.reject(failure);
      return;
    }
    try {
      await this.catalog.syncWal(); // durable before anyone hears "done"
    } catch (error) {
      const failure = toMictlanxError(error);
      for (const pending of batch) pending.reject(failure);
      return;
    }
    this.stats.flushes += 1;
    this.stats.writes += batch.length;
    batch.forEach((pending, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok) pending.resolve(outcome.value);
      else pending.reject(outcome?.error ?? new Error("write lost its outcome"));
    });
  }
}
