// The catalog as the SPM sees it: one interface, two engines behind it — bun:sqlite
// (sqlite-store.ts, the embedded default) and PostgreSQL (postgres/, for several SPMs sharing
// one catalog). Every call is async, since PostgreSQL answers over the network; the calls and
// their meaning are the sqlite Catalog's (catalog.ts documents each), so the two engines pass
// the same unit suite.
//
// Transactions: each call is one transaction of its own, committed when it resolves — and
// durable then on PostgreSQL, at the next `flush` (or group) on sqlite, whose WAL is fsynced
// off the event loop — except the writes of a `group`: those share one transaction, durable
// when the group resolves (the SPM's group commit). A
// group first runs all-or-nothing; if a write throws, it rolls back whole and runs again with
// each write in a savepoint of its own, so only the failing writes fail. So a group write must
// call only `tx` (never the store itself, never anything else that waits): run again, it does
// the same thing. While a group is open no other call of the same store sees its writes.
import { UnavailableError, type MictlanxError } from "../lib/errors.ts";
import type { Catalog } from "./catalog.ts";

/** What only an engine does: transactions, durability, its health; not catalog calls. */
type EngineMembers = "batch" | "batchAllOrNothing" | "beginGroup" | "endGroup" | "savepoint" | "syncWal" | "close" | "health" | "vssId" | "audit";
type Calls = Omit<Catalog, EngineMembers>;
type Async<F> = F extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;

/** Every catalog call, as either engine answers it. */
export type CatalogCalls = { [K in keyof Calls]: Async<Calls[K]> };

/** Every call's name: each engine implements these. */
export const catalogCallNames = [
  "upsertPeer", "getPeer", "listPeers", "setPeerState", "setDraining", "removePeer", "maxRfOnPeer", "countReplicasOnPeer", "replacePeerInstance",
  "commitBall", "stageChunks", "commitBalls", "getBall", "getBallMeta", "getBallHead", "chunksPage", "deleteBall", "listBalls",
  "listBuckets", "getBucket", "createBucket", "countBalls", "deleteBalls", "deleteBucket",
  "getBucketSetting", "setBucketSetting", "bucketsWithSetting", "setBallTag",
  "addReplica", "removeReplica", "underReplicated", "countUnderReplicated", "overReplicated", "chunksOnPeer", "findChunk", "classifyHolding",
  "addIntent", "addIntents", "addIntentPlacements", "touchIntent", "extendAllIntents", "findRequest", "getIntent", "abandonIntent", "expireIntents",
  "addGarbage", "takeGarbage", "findRetiredChunk", "retiredChunksPage", "bucketOfObject", "retiredObject", "ackGarbage", "countGarbage",
  "createAccessKey", "getAccessKey", "listAccessKeys", "revokeAccessKey", "countAccessKeys", "appendAudit", "listAudit",
  "stats", "getMeta", "setMeta", "nextMetaCounter",
] as const satisfies ReadonlyArray<keyof CatalogCalls>;
// Compile-time: the list names every call (a call added to Catalog and not here fails to build).
type Unlisted = Exclude<keyof CatalogCalls, (typeof catalogCallNames)[number]>;
const everyCallListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyCallListed;

/**
 * Fencing (several SPMs, docs/ha.md): a group run with `term` first checks, in its own
 * transaction, the newest leader term the catalog has seen (meta `leaderTermKey`). An older
 * term fails the whole group with `unavailable` and changes nothing; a newer one is recorded.
 * So an old leader that was paused or cut off while a new one was elected cannot change the
 * catalog after the new one's first write (it claims its term with an empty group at once).
 */
export interface GroupOptions {
  term?: number;
  /**
   * Told the outcomes once the transaction committed, before the flush that makes it durable
   * (sqlite's fdatasync; on PostgreSQL the commit is the flush): for work that may overlap it.
   */
  onCommitted?: (outcomes: GroupOutcome[]) => void;
}
export const leaderTermKey = "leader_term";

/** The error of a write by a leader whose term is over (both engines say it alike). */
export function fencedOut(term: number, newest: number, location: string): UnavailableError {
  return new UnavailableError(
    `this SPM led at term ${term}, but the catalog ${location} has seen term ${newest}: another SPM leads now, so this write is refused and nothing changed; ask the leader`,
  );
}


/** One write of a group: catalog calls on `tx` only (it may run twice: see above). */
export type GroupWrite<T = unknown> = (tx: CatalogCalls) => Promise<T>;
export type GroupOutcome = { ok: true; value: unknown } | { ok: false; error: MictlanxError };

export type CatalogEngineName = "sqlite" | "postgres";

export interface CatalogStore extends CatalogCalls {
  readonly engine: CatalogEngineName;
  /** This VSS's identity, made with the catalog and never changed. */
  readonly vssId: string;
  /** Where it is, to name in messages: `sqlite:PATH` or `postgres://host:port/db` (never a password). */
  readonly location: string;
  /**
   * Run `writes` as one transaction, durable (fsynced, or committed by PostgreSQL) before it
   * resolves; each write's outcome in order. Rejects only when the transaction itself failed,
   * and then none of the writes is known to be durable.
   */
  group(writes: readonly GroupWrite[], options?: GroupOptions): Promise<GroupOutcome[]>;
  /** Make every write committed so far durable (sqlite: one fdatasync of the WAL; PostgreSQL: nothing to do). */
  flush(): Promise<void>;
  /** Whether it takes writes, and why not. */
  health(): Promise<{ writable: boolean; problem?: string }>;
  /** Recount everything kept by triggers or counters; the problems found, [] if none. O(catalog). */
  audit(): Promise<string[]>;
  close(): Promise<void>;
}
