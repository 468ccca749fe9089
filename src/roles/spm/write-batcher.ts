// Group commit for the catalog: writes queued while the previous group is being written and
// made durable go together as the next group, in one transaction and one flush (for sqlite one
// fsync of the WAL, done in the thread pool, so the SPM keeps serving while the disk flushes;
// for PostgreSQL one COMMIT). One group is in flight at a time: under load the groups grow by
// themselves instead of the disk seeing many small transactions, and a lone write never waits
// for company. Each write still succeeds or fails on its own, and none is answered before the
// transaction that holds it is durable. How a failing write is kept from taking the others
// with it is the store's (`group` in src/catalog/api.ts): writes are catalog calls on `tx`
// only, so running one again after a rollback does the same thing.
import type { CatalogStore, GroupOutcome, GroupWrite } from "../../catalog/index.ts";
import { toMictlanxError } from "../../lib/errors.ts";
import { vssLimits } from "../../lib/limits.ts";

const writeBatchMax = vssLimits.spmWriteBatchMax;

interface Pending {
  write: GroupWrite;
  /** Told the write's value once its transaction committed, before the flush (see `submit`). */
  applied?: ((value: unknown) => void) | undefined;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class WriteBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  private flushing = false;
  /** flushes: groups written; writes: writes in them; failed: writes that failed alone. */
  readonly stats = { flushes: 0, writes: 0, failed: 0 };

  /**
   * `onGroup`: told the size of each group once it is durable (a metric). `term`: the leader
   * term each group is fenced with (several SPMs: see GroupOptions), read as the group goes.
   */
  constructor(
    private readonly store: CatalogStore,
    private readonly onGroup?: (writes: number) => void,
    private readonly term?: () => number | undefined,
  ) {}

  /**
   * Run `write` in the next group transaction; resolves with its result once that is durable.
   * `applied`, when given, hears the result as soon as the transaction committed, while its
   * flush is under way (and even if that flush then fails): for work that may overlap it.
   */
  submit<T>(write: GroupWrite<T>, applied?: (value: T) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ write, resolve: resolve as (value: unknown) => void, reject, applied: applied as ((value: unknown) => void) | undefined });
      this.kick();
    });
  }

  /**
   * Like submit, but resolves as soon as the write's transaction committed, while its flush is
   * under way: only for a write whose answer is safe to lose with the machine (an upload's
   * intent: uploads.reserve says why). A flush that fails after the answer makes the group's
   * other writes fail and is reported through them; a failure before it rejects this one too.
   */
  submitApplied<T>(write: GroupWrite<T>): Promise<T> {
    // A promise settles once: the durable outcome only counts when no answer came before it.
    return new Promise<T>((resolve, reject) => void this.submit(write, resolve).then(resolve, reject));
  }

  /** Writes submitted in this turn join the group; it goes at the next turn unless one is in flight. */
  private kick(): void {
    if (this.scheduled || this.flushing || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    this.flushing = true;
    const batch = this.queue.splice(0, writeBatchMax);
    try {
      const term = this.term?.();
      const onCommitted = (outcomes: GroupOutcome[]) =>
        batch.forEach((pending, i) => {
          const outcome = outcomes[i];
          if (outcome?.ok) pending.applied?.(outcome.value);
        });
      const outcomes = await this.store.group(
        batch.map((pending) => pending.write),
        { onCommitted, ...(term === undefined ? {} : { term }) },
      );
      this.stats.flushes += 1;
      this.stats.writes += batch.length;
      this.onGroup?.(batch.length);
      batch.forEach((pending, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok) pending.resolve(outcome.value);
        else {
          this.stats.failed += 1;
          pending.reject(outcome?.error ?? new Error("write lost its outcome"));
        }
      });
    } catch (error) {
      // The transaction or its flush failed: nothing in it is known to be durable.
      const failure = toMictlanxError(error);
      for (const pending of batch) pending.reject(failure);
    } finally {
      this.flushing = false;
      this.kick();
    }
  }
}
