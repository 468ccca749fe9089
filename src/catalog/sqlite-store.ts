// The sqlite engine behind CatalogStore (api.ts): the embedded default. Calls run at once, in
// process, each its own transaction (catalog.ts). A group opens one transaction by hand and
// runs its writes in it; while it is open every other call waits at the gate, so nothing
// outside the group sees its uncommitted writes or joins its transaction by accident. Then one
// fdatasync of the WAL, in the thread pool, makes the group durable (deferredSync).
import { toMictlanxError } from "../lib/errors.ts";
import { assert } from "../lib/assert.ts";
import { catalogCallNames, fencedOut, leaderTermKey, type CatalogCalls, type CatalogStore, type GroupOptions, type GroupOutcome, type GroupWrite } from "./api.ts";
import { Catalog, type CatalogOpenOptions } from "./catalog.ts";

export class SqliteStore {
  readonly engine = "sqlite" as const;
  readonly vssId: string;
  readonly location: string;
  /** Settles when the open group ends; undefined when none is open. */
  private gate: Promise<void> | undefined;
  /** The calls without the gate: what a group's writes get as `tx`. */
  private readonly inside: CatalogCalls;

  private constructor(readonly catalog: Catalog, path: string) {
    this.vssId = catalog.vssId;
    this.location = `sqlite:${path}`;
    this.inside = callsOf(catalog, now);
  }

  /** Open (creating if needed) the sqlite catalog at `path`, as a store. */
  static open(path: string, options: CatalogOpenOptions = {}): CatalogStore {
    const store = new SqliteStore(Catalog.open(path, { ...options, deferredSync: true }), path);
    return Object.assign(store, callsOf(store.catalog, (call) => store.gated(call))) as SqliteStore & CatalogCalls;
  }

  /** A call now when no group is open, else once it ends. */
  private gated<T>(call: () => T): Promise<T> {
    return this.gate === undefined ? now(call) : this.gate.then(() => this.gated(call));
  }

  async group(writes: readonly GroupWrite[], options: GroupOptions = {}): Promise<GroupOutcome[]> {
    while (this.gate !== undefined) await this.gate;
    let open!: () => void;
    this.gate = new Promise<void>((resolve) => (open = resolve));
    try {
      const outcomes = (await this.allOrNothing(writes, options.term)) ?? (await this.oneByOne(writes, options.term));
      options.onCommitted?.(outcomes);
      await this.catalog.syncWal(); // durable before anyone hears "done"
      return outcomes;
    } finally {
      this.gate = undefined;
      open();
    }
  }

  /** The writes in one transaction without savepoints; undefined (rolled back) if one threw. */
  private async allOrNothing(writes: readonly GroupWrite[], term: number | undefined): Promise<GroupOutcome[] | undefined> {
    this.catalog.beginGroup();
    this.fenced(term);
    const outcomes: GroupOutcome[] = [];
    try {
      for (const write of writes) outcomes.push({ ok: true, value: await write(this.inside) });
    } catch {
      this.catalog.endGroup(false);
      return undefined;
    }
    this.catalog.endGroup(true);
    return outcomes;
  }

  /** Again, each write in a savepoint: the ones that throw are rolled back alone. */
  private async oneByOne(writes: readonly GroupWrite[], term: number | undefined): Promise<GroupOutcome[]> {
    this.catalog.beginGroup();
    this.fenced(term);
    const outcomes: GroupOutcome[] = [];
    try {
      for (const write of writes) {
        this.catalog.savepoint("begin");
        try {
          outcomes.push({ ok: true, value: await write(this.inside) });
          this.catalog.savepoint("release");
        } catch (error) {
          this.catalog.savepoint("rollback");
          outcomes.push({ ok: false, error: toMictlanxError(error) });
        }
      }
    } catch (error) {
      this.catalog.endGroup(false);
      throw error;
    }
    this.catalog.endGroup(true);
    assert(outcomes.length === writes.length, "a group lost an outcome");
    return outcomes;
  }

  /**
   * Inside the group's transaction, before its writes: refuse (rolling the transaction back)
   * a term older than the newest the catalog has seen; record a newer one.
   */
  private fenced(term: number | undefined): void {
    if (term === undefined) return;
    assert(Number.isSafeInteger(term) && term > 0, `a leader term is a positive integer, got ${term}`);
    const newest = Number(this.catalog.getMeta(leaderTermKey) ?? "0");
    if (term < newest) {
      this.catalog.endGroup(false);
      throw fencedOut(term, newest, this.location);
    }
    if (term > newest) this.catalog.setMeta(leaderTermKey, String(term));
  }

  flush(): Promise<void> {
    return this.gated(() => this.catalog.syncWal()).then((sync) => sync);
  }

  health(): Promise<{ writable: boolean; problem?: string }> {
    return this.gated(() => this.catalog.health());
  }

  audit(): Promise<string[]> {
    return this.gated(() => this.catalog.audit());
  }

  async close(): Promise<void> {
    while (this.gate !== undefined) await this.gate;
    this.catalog.close();
  }
}

/** The calls of a sync Catalog run at once, as promises, with no gate (tests, and tools that own the catalog alone). */
export function catalogCalls(catalog: Catalog): CatalogCalls {
  return callsOf(catalog, now);
}

/** Run a sync call now; its result or its throw as a promise. */
function now<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Every catalog call of `catalog`, each run through `run` and answered as a promise. */
function callsOf(catalog: Catalog, run: <T>(call: () => T) => Promise<T>): CatalogCalls {
  const calls: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of catalogCallNames) {
    // Looked up at each call, not bound once: a test may replace a method to inject a fault.
    calls[name] = (...args) => run(() => (catalog[name] as (...args: unknown[]) => unknown).apply(catalog, args));
  }
  return calls as unknown as CatalogCalls;
}
