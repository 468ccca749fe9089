// Group commit for the catalog: writes queued while the previous group is being written and
// fsynced go together as the next group, in one transaction and one fsync of the WAL (done in
// the thread pool, so the SPM keeps serving while the disk flushes). One group is in flight at
// a time: under load the groups grow by themselves instead of the disk seeing many small
// transactions, and a lone write never waits for company. Each write still succeeds or fails
// on its own, and none is answered before the transaction that holds it is durable.
//
// A group is first run all-or-nothing, without a savepoint per write (a savepoint journals
// every page it touches, which costs more than the write). If a write throws, that
// transaction rolls back whole and the group runs again with each write in its own savepoint,
// so only the failing writes fail. Writes are closures over catalog calls only, so running
// one again after a rollback does the same thing.
import type { Catalog } from "../../catalog/index.ts";
import { toMictlanxError } from "../../lib/errors.ts";
import { vssLimits } from "../../lib/limits.ts";

const writeBatchMax = vssLimits.spmWriteBatchMax;

interface Pending {
  write: () => unknown;
  /** Told the write's value once its transaction committed, before the fsync (see `submit`). */
  applied?: ((value: unknown) => void) | undefined;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: Error };

export class WriteBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  private flushing = false;
  /** flushes: groups written; writes: writes in them; replays: groups run again write by write. */
  readonly stats = { flushes: 0, writes: 0, replays: 0 };

  /** `onGroup`: told the size of each group once it is durable (a metric). */
  constructor(
    private readonly catalog: Catalog,
    private readonly onGroup?: (writes: number) => void,
  ) {}

  /**
   * Run `write` in the next group transaction; resolves with its result once that is durable.
   * `applied`, when given, hears the result as soon as the transaction committed, while its
   * fsync is under way (and even if that fsync then fails): for work that may overlap it.
   */
  submit<T>(write: () => T, applied?: (value: T) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ write, resolve: resolve as (value: unknown) => void, reject, applied: applied as ((value: unknown) => void) | undefined });
      this.kick();
    });
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
      const outcomes = this.apply(batch);
      batch.forEach((pending, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok) pending.applied?.(outcome.value);
      });
      await this.catalog.syncWal(); // durable before anyone hears "done"
      this.stats.flushes += 1;
      this.stats.writes += batch.length;
      this.onGroup?.(batch.length);
      batch.forEach((pending, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok) pending.resolve(outcome.value);
        else pending.reject(outcome?.error ?? new Error("write lost its outcome"));
      });
    } catch (error) {
      // The transaction or its fsync failed: nothing in it is known to be durable.
      const failure = toMictlanxError(error);
      for (const pending of batch) pending.reject(failure);
    } finally {
      this.flushing = false;
      this.kick();
    }
  }

  /** The group's outcomes, in order; throws only when the transaction itself could not commit. */
  private apply(batch: Pending[]): Outcome[] {
    try {
      return this.catalog.batchAllOrNothing(() => batch.map((pending): Outcome => ({ ok: true, value: pending.write() })));
    } catch {
      // Some write failed and took the group's transaction with it: run it again write by write.
      this.stats.replays += 1;
      return this.catalog.batch(() =>
        batch.map((pending): Outcome => {
          try {
            return { ok: true, value: this.catalog.batch(pending.write) };
          } catch (error) {
            return { ok: false, error: toMictlanxError(error) };
          }
        }),
      );
    }
  }
}
