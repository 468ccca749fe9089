// The PostgreSQL engine behind CatalogStore (src/catalog/api.ts): for SPMs that share one
// catalog, or a catalog that outgrew one machine's disk. Same calls, same results, same typed
// errors and bounds as the sqlite engine; docs/catalog-postgres.md is the operator's view.
//
// Transactions. Every write call is one transaction that first takes the writer advisory lock
// (db.ts lockKeys), so writes run one at a time across every SPM on the catalog, as sqlite's
// BEGIN IMMEDIATE makes them, and the read-then-write inside a call (is the key free? then
// insert) sees nothing change under it. Within this process writes also queue in order before
// they take a connection, so a long group does not leave other writes waiting on the lock
// (and timing out) on connections of their own. Every read call with more than one statement
// is one REPEATABLE READ, READ ONLY transaction, so what it reads comes from one snapshot; a
// read of one statement (a ball with its chunks and their holders is one) runs on the pool
// without BEGIN and COMMIT, since PostgreSQL gives each statement a snapshot of its own.
//
// Durability: a call resolves after COMMIT returns, and every connection runs with
// synchronous_commit on, so the commit's WAL is flushed on the server first.
//
// A group runs its writes in one transaction (one commit, one WAL flush); if one throws, the
// transaction rolls back and the writes run again, each in a savepoint of its own.
import { SQL, type TransactionSQL } from "bun";
import { assert } from "../../lib/assert.ts";
import { BadRequestError, ConflictError, MictlanxError, toMictlanxError } from "../../lib/errors.ts";
import { limits } from "../../lib/limits.ts";
import { catalogCallNames, fencedOut, leaderTermKey, type CatalogCalls, type CatalogStore, type GroupOptions, type GroupOutcome, type GroupWrite } from "../api.ts";
import { loadMasterKey, matchesCheck, masterKeyCheck } from "../secrets.ts";
import type { BucketSummary, CommitItem, CommitResult } from "../types.ts";
import { checkBall, checkBucket, checkChunks, checkDeleteBallsQuery, checkInt, checkKey, checkName, checkObjectId, checkPage } from "../validate.ts";
import { auditPostgresCatalog } from "./audit.ts";
import { checkCounterTake, counterValue, statsOf } from "../rules.ts";
import * as balls from "./balls.ts";
import { all, lockKeys, one, redactedLocation, run as affected, storageError, type Db } from "./db.ts";
import * as garbage from "./garbage.ts";
import * as keys from "./keys.ts";
import * as peers from "./peers.ts";
import * as replication from "./replication.ts";
import { applyPostgresSchema } from "./schema.ts";
import * as settings from "./settings.ts";
import * as staging from "./staging.ts";

/** Commits in one commitBalls call, and intents expired per transaction (as catalog.ts). */
const batchMax = limits.listPageMax;
/** Meta keys and values at most (as catalog.ts). */
const metaKeyBytesMax = 256;
const metaValueBytesMax = 1 << 20;
const vssIdKey = "vss_id";
const secretsCheckKey = "secrets_key_check";

export interface PostgresStoreOptions {
  /** The master key that seals access keys' secrets: secrets.key beside the SPM's data dir; every SPM on the catalog needs the same one. */
  secretsKeyPath: string;
  poolMax?: number;
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
  connectTimeoutMs?: number;
}

/** How a call reaches the database: on its own transaction, or inside a group's. */
interface Runner {
  write<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /** A read of several statements: one snapshot (REPEATABLE READ, READ ONLY). */
  read<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /** A read of one statement, on the pool: PostgreSQL gives each statement one snapshot of its own. */
  read1<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /** Inside a group: a failing commit fails its write (whose savepoint undoes it), not only its item. */
  readonly nested: boolean;
}

export class PostgresStore {
  readonly engine = "postgres" as const;
  /** Settles when the write queued last is done: writes of this process take the lock in order. */
  private writeQueue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly sql: SQL,
    readonly location: string,
    readonly vssId: string,
    private readonly masterKey: Uint8Array,
  ) {}

  /** Open the catalog at `url` (migrating or creating its schema), as a store. */
  static async open(url: string, options: PostgresStoreOptions): Promise<PostgresStore & CatalogStore> {
    const location = redactedLocation(url);
    const sql = new SQL(url, {
      max: options.poolMax ?? limits.catalogPostgresPoolMax,
      connectionTimeout: Math.ceil((options.connectTimeoutMs ?? limits.catalogPostgresConnectTimeoutMs) / 1000),
      idleTimeout: Math.ceil(limits.catalogPostgresIdleTimeoutMs / 1000),
      connection: {
        statement_timeout: options.statementTimeoutMs ?? limits.catalogPostgresStatementTimeoutMs,
        lock_timeout: options.lockTimeoutMs ?? limits.catalogPostgresLockTimeoutMs,
        synchronous_commit: "on",
        application_name: "mictlanx",
        // Every catalog query has an index to go by. A catalog starts empty, and its statements'
        // cached plans, made while the tables were small (and the per-put tables, intents and
        // their placements, stay small in live rows but fill with dead ones between vacuums),
        // are sequential scans that read every row on every put: 2,000 tuples per put by the
        // time a fresh catalog holds 1,000 balls, until an ANALYZE replans them. Seq scans stay
        // possible where nothing else is (the planner only prices them out); audit turns them on.
        enable_seqscan: "off",
      },
    });
    try {
      await checkServer(sql, location);
      await applyPostgresSchema(sql, location);
      const { vssId, masterKey } = await sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${lockKeys.writer})`;
        return { vssId: await loadOrMakeVssId(tx), masterKey: await loadMasterKeyFor(tx, options.secretsKeyPath, location) };
      });
      const store = new PostgresStore(sql, location, vssId, masterKey);
      return Object.assign(store, callsOn(store.runner(), masterKey)) as PostgresStore & CatalogStore;
    } catch (error) {
      await sql.close({ timeout: 0 }).catch(() => {});
      throw storageError(location, error);
    }
  }

  /** Calls on transactions of their own. */
  private runner(): Runner {
    return {
      nested: false,
      write: (fn) => this.inWriteTransaction(fn),
      read: (fn) => this.mapped(() => this.sql.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY", fn) as Promise<Awaited<ReturnType<typeof fn>>>),
      read1: (fn) => this.mapped(() => fn(this.sql)),
    };
  }

  /** One write transaction under the writer lock, after this process's writes queued before it. */
  private inWriteTransaction<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    const turn = this.writeQueue.then(() =>
      this.mapped(
        () =>
          this.sql.begin(async (tx) => {
            // Sent now and not waited for: PostgreSQL runs a connection's statements in the order
            // they came, so fn's first one (a group's fence read) runs once the lock is held, and
            // travels with it: one round trip less per transaction under the lock.
            const locked = tx`SELECT pg_advisory_xact_lock(${lockKeys.writer})`.execute().then(
              () => undefined,
              (error: unknown) => ({ error }),
            );
            try {
              const value = await fn(tx);
              const failed = await locked;
              if (failed) throw failed.error;
              return value;
            } catch (error) {
              throw (await locked)?.error ?? error; // fn's statements fail after a failed lock: the lock's error says why
            }
          }) as Promise<T>,
      ),
    );
    this.writeQueue = turn.catch(() => {});
    return turn;
  }

  private async mapped<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new MictlanxError("internal", `the catalog at ${this.location} is closed`);
    try {
      return await fn();
    } catch (error) {
      throw storageError(this.location, error);
    }
  }

  async group(writes: readonly GroupWrite[], options: GroupOptions = {}): Promise<GroupOutcome[]> {
    const outcomes = (await this.allOrNothing(writes, options.term)) ?? (await this.oneByOne(writes, options.term));
    assert(outcomes.length === writes.length, "a group lost an outcome");
    options.onCommitted?.(outcomes); // the commit is the flush here: durable already
    return outcomes;
  }

  /**
   * Inside the group's transaction, before its writes (the writer lock held, so no other SPM's
   * group runs between the check and the writes): refuse a term older than the newest the
   * catalog has seen; record a newer one.
   */
  private async fenced(calls: CatalogCalls, term: number | undefined): Promise<void> {
    if (term === undefined) return;
    assert(Number.isSafeInteger(term) && term > 0, `a leader term is a positive integer, got ${term}`);
    const newest = Number((await calls.getMeta(leaderTermKey)) ?? "0");
    if (term < newest) throw fencedOut(term, newest, this.location);
    if (term > newest) await calls.setMeta(leaderTermKey, String(term));
  }

  /** The writes in one transaction without savepoints; undefined (rolled back) if one threw. */
  private async allOrNothing(writes: readonly GroupWrite[], term: number | undefined): Promise<GroupOutcome[] | undefined> {
    let writeFailed = false;
    try {
      return await this.inWriteTransaction(async (tx) => {
        const calls = callsOn(groupRunner(tx), this.masterKey);
        await this.fenced(calls, term);
        const outcomes: GroupOutcome[] = [];
        for (const write of writes) {
          try {
            outcomes.push({ ok: true, value: await write(calls) });
          } catch (error) {
            writeFailed = true;
            throw error;
          }
        }
        return outcomes;
      });
    } catch (error) {
      if (writeFailed) return undefined;
      throw error;
    }
  }

  /** Again, each write in a savepoint: the ones that throw are rolled back alone. */
  private oneByOne(writes: readonly GroupWrite[], term: number | undefined): Promise<GroupOutcome[]> {
    return this.inWriteTransaction(async (tx) => {
      await this.fenced(callsOn(groupRunner(tx), this.masterKey), term);
      const outcomes: GroupOutcome[] = [];
      for (const write of writes) {
        try {
          const value = await inSavepoint(tx, (sp) => write(callsOn(groupRunner(sp), this.masterKey)));
          outcomes.push({ ok: true, value });
        } catch (error) {
          if (isConnectionLoss(error)) throw error; // the transaction itself is gone
          outcomes.push({ ok: false, error: toMictlanxError(storageError(this.location, error)) });
        }
      }
      return outcomes;
    });
  }

  /** Writable when the server answers and is not a standby. */
  async health(): Promise<{ writable: boolean; problem?: string }> {
    try {
      const row = await this.mapped(() => one<{ standby: boolean }>(this.sql`SELECT pg_is_in_recovery() AS standby`));
      if (row?.standby === true) return { writable: false, problem: `the catalog at ${this.location} is a standby (in recovery): it takes no writes; point the SPM at the primary` };
      return { writable: true };
    } catch (error) {
      return { writable: false, problem: error instanceof Error ? error.message : String(error) };
    }
  }

  audit(): Promise<string[]> {
    return this.runner().read((db) => auditPostgresCatalog(db));
  }

  async close(): Promise<void> {
    await this.writeQueue;
    this.closed = true;
    await this.sql.close({ timeout: 5 });
  }
}

/** Calls run on a group's transaction (or a write's savepoint in it): no transaction of their own. */
function groupRunner(db: Db): Runner {
  return { nested: true, write: (fn) => fn(db), read: (fn) => fn(db), read1: (fn) => fn(db) };
}

/** `fn` in a savepoint of `db`, a transaction's client: rolled back to it (and rejecting) if `fn` throws. */
function inSavepoint<T>(db: Db, fn: (sp: Db) => Promise<T>): Promise<T> {
  return (db as TransactionSQL).savepoint(fn) as Promise<T>;
}

/** Bun's own failures (the connection closed, refused, timed out), as opposed to the server's answer. */
function isConnectionLoss(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && code.startsWith("ERR_POSTGRES") && code !== "ERR_POSTGRES_SERVER_ERROR";
}

async function checkServer(sql: SQL, location: string): Promise<void> {
  const row = await one<{ server_encoding: string }>(sql`SHOW server_encoding`);
  if (row?.server_encoding !== "UTF8") {
    throw new MictlanxError("usage", `the database at ${location} has encoding ${row?.server_encoding}; the catalog needs UTF8 (CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0)`);
  }
}

/** The VSS id, made with the catalog (by whichever SPM opened it first) and never changed. */
async function loadOrMakeVssId(tx: Db): Promise<string> {
  await tx`INSERT INTO meta (key, value) VALUES (${vssIdKey}, ${crypto.randomUUID()}) ON CONFLICT DO NOTHING`;
  const found = (await one<{ value: string }>(tx`SELECT value FROM meta WHERE key = ${vssIdKey}`))?.value;
  assert(found !== undefined && found.length > 0 && found.length <= limits.vssIdBytesMax, `catalog holds a bad VSS id ${JSON.stringify(found)}`);
  return found;
}

/**
 * The master key from secrets.key, checked against the check value the catalog records. Every
 * SPM sharing the catalog must hold the same file: one with another key is refused even while
 * the catalog holds no access key, since what it sealed the others could not open.
 */
async function loadMasterKeyFor(tx: Db, path: string, location: string): Promise<Uint8Array> {
  const check = (await one<{ value: string }>(tx`SELECT value FROM meta WHERE key = ${secretsCheckKey}`))?.value;
  const heldKeys = await keys.countAccessKeys(tx);
  const { key } = loadMasterKey(path, { heldKeys, check });
  if (check === undefined) {
    await tx`INSERT INTO meta (key, value) VALUES (${secretsCheckKey}, ${masterKeyCheck(key)})`;
  } else if (!matchesCheck(key, check)) {
    throw new MictlanxError(
      "unavailable",
      `${path} is not the secrets.key the catalog at ${location} was opened with first; every SPM sharing a catalog needs the same secrets.key: copy it from that SPM's data dir`,
    );
  }
  return key;
}

type BucketRow = { name: string; created_ms: number; balls: number; bytes: number };
const bucketOf = (row: BucketRow): BucketSummary => ({ name: row.name, balls: row.balls, bytes: row.bytes, createdMs: row.created_ms });

async function bucketRow(db: Db, name: string): Promise<BucketRow | undefined> {
  return one<BucketRow>(db`SELECT name, created_ms, balls, bytes FROM buckets WHERE name = ${name}`);
}

type Totals = { balls: number; bytes: number; buckets: number; chunks: number; replicas: number; under: number; garbage: number; intents: number; intent_bytes: number };
async function totals(db: Db): Promise<Totals> {
  const row = await one<Totals>(db`SELECT balls, bytes, buckets, chunks, replicas, under, garbage, intents, intent_bytes FROM totals WHERE id = 0`);
  assert(row !== undefined, "the catalog has no totals row");
  return row;
}

/** A commit as Catalog.commitBall makes it: checked, with its staged records taken when it names some. */
async function commitOne(db: Db, { ball, chunks, options = {} }: CommitItem): Promise<CommitResult> {
  checkBall(ball);
  const staged = options.stagedChunks ?? 0;
  if (staged === 0) {
    checkChunks(ball, chunks);
    return balls.commitBall(db, ball, chunks, options);
  }
  checkInt("staged chunk records", staged, 1, limits.ballChunksMax);
  // No upload under way: a retry of a commit that went in (or one too late); commitBall says which.
  if ((await garbage.intentRow(db, ball.objectId)) === undefined) return balls.commitBall(db, ball, chunks, options);
  const whole = [...(await staging.takeStaged(db, ball.objectId, staged)), ...chunks];
  checkChunks(ball, whole);
  return balls.commitBall(db, ball, whole, options);
}

/** A commit of a batch in its own savepoint: a MictlanxError is rolled back alone and returned in its place. */
async function commitInSavepoint(db: Db, item: CommitItem): Promise<CommitResult | MictlanxError> {
  try {
    return await inSavepoint(db, (sp) => commitOne(sp, item));
  } catch (error) {
    if (error instanceof MictlanxError) return error;
    throw error;
  }
}

/** Every catalog call, each reaching the database through `run`. */
function callsOn(run: Runner, masterKey: Uint8Array): CatalogCalls {
  const calls = { ...peerCalls(run), ...ballCalls(run), ...bucketCalls(run), ...settingCalls(run), ...replicaCalls(run), ...garbageCalls(run), ...keyCalls(run, masterKey), ...metaCalls(run) };
  for (const name of catalogCallNames) assert(typeof calls[name] === "function", `the postgres engine lacks ${name}`);
  return calls as CatalogCalls;
}

/** The peers calls. */
function peerCalls(run: Runner): Partial<CatalogCalls> {
  return {
    upsertPeer: async (peer) => run.write((db) => peers.upsertPeer(db, peer)),
    getPeer: async (id) => run.read1((db) => peers.getPeer(db, id)),
    listPeers: async () => run.read1((db) => peers.listPeers(db)),
    setPeerState: async (id, state) => run.write((db) => peers.setPeerState(db, id, state)),
    setDraining: async (id, draining) => run.write((db) => peers.setDraining(db, id, draining)),
    removePeer: async (id, options = {}) => run.write((db) => peers.removePeer(db, id, options.forgetReplicas ?? false)),
    maxRfOnPeer: async (id) => run.read((db) => peers.maxRfOnPeer(db, id)),
    countReplicasOnPeer: async (id) => run.read((db) => peers.countReplicasOnPeer(db, id)),
    replacePeerInstance: async (peer) => run.write((db) => peers.replacePeerInstance(db, peer)),
  };
}

/** The balls calls. */
function ballCalls(run: Runner): Partial<CatalogCalls> {
  return {
    commitBall: async (ball, chunks, options = {}) => {
      checkBall(ball);
      if ((options.stagedChunks ?? 0) === 0) checkChunks(ball, chunks);
      return run.write((db) => commitOne(db, { ball, chunks, options }));
    },
    stageChunks: async (objectId, chunks, expiresMs) => run.write((db) => staging.stageChunks(db, objectId, chunks, expiresMs)),
    commitBalls: async (items) => {
      checkInt("batch size", items.length, 0, batchMax);
      return run.write(async (db) => {
        // The plain new balls first, all at once, then the rest one by one, in order. The bulk
        // insert cannot fail on what its facts checked (the writer lock is held), so a throw
        // there is a fault: it fails the whole call, as any fault inside a transaction does.
        const bulk = await balls.commitNewBalls(db, items);
        const results: Array<CommitResult | MictlanxError> = [];
        for (const [n, item] of items.entries()) {
          if (bulk[n] === true) results.push({ version: 1 });
          else results.push(run.nested ? await commitOne(db, item) : await commitInSavepoint(db, item));
        }
        return results;
      });
    },
    getBall: async (bucket, key) => run.read1((db) => balls.getBall(db, bucket, key)),
    getBallMeta: async (bucket, key) => run.read1((db) => balls.getBallMeta(db, bucket, key)),
    getBallHead: async (bucket, key) => run.read1((db) => balls.getBallHead(db, bucket, key)),
    chunksPage: async (objectId, fromIndex, limit = limits.chunkRecordsPageMax) => {
      checkObjectId(objectId);
      checkInt("fromIndex", fromIndex, 0, limits.ballChunksMax);
      checkInt("limit", limit, 1, limits.chunkRecordsPageMax);
      return run.read1((db) => balls.chunksPage(db, objectId, fromIndex, limit));
    },
    deleteBall: async (bucket, key, when = {}) => run.write((db) => balls.deleteBall(db, bucket, key, when)),
    listBalls: async (q) => run.read1((db) => balls.listBalls(db, q)),
  };
}

/** The buckets calls. */
function bucketCalls(run: Runner): Partial<CatalogCalls> {
  return {
    listBuckets: async (q) => {
      checkPage(q);
      const rows = await run.read1((db) =>
        all<BucketRow>(
          q.after === undefined
            ? db`SELECT name, created_ms, balls, bytes FROM buckets ORDER BY name LIMIT ${q.limit + 1}`
            : db`SELECT name, created_ms, balls, bytes FROM buckets WHERE name > ${q.after} ORDER BY name LIMIT ${q.limit + 1}`,
        ),
      );
      const buckets = rows.slice(0, q.limit).map(bucketOf);
      return rows.length > q.limit ? { buckets, next: buckets[buckets.length - 1]!.name } : { buckets };
    },
    getBucket: async (name) => {
      checkBucket(name);
      const row = await run.read1((db) => bucketRow(db, name));
      return row === undefined ? undefined : bucketOf(row);
    },
    createBucket: async (name, createdMs) => {
      checkName("bucket name", name, limits.bucketNameBytesMax, "new");
      checkInt("createdMs", createdMs);
      return run.write(async (db) => (await affected(db`INSERT INTO buckets (name, created_ms) VALUES (${name}, ${createdMs}) ON CONFLICT DO NOTHING`)) === 1);
    },
    countBalls: async (bucket, prefix, max) => {
      checkBucket(bucket);
      return run.read(async (db) => {
        const whole = await bucketRow(db, bucket);
        if (whole === undefined) return undefined;
        if (prefix === undefined || prefix === "") return { balls: whole.balls, bytes: whole.bytes, more: false };
        checkKey(prefix);
        checkInt("max", max, 1, limits.ballCountMax);
        return balls.countUnder(db, bucket, prefix, max);
      });
    },
    deleteBalls: async (q, when = {}) => {
      checkDeleteBallsQuery(q);
      return run.write(async (db) => ((await bucketRow(db, q.bucket)) === undefined ? undefined : balls.deleteBalls(db, q, when)));
    },
    deleteBucket: async (name) => {
      checkBucket(name);
      return run.write(async (db) => {
        const row = await bucketRow(db, name);
        if (row === undefined) return false;
        if (row.balls > 0) throw new ConflictError(`bucket ${name} holds ${row.balls} balls; delete them first`);
        await settings.removeBucketSettings(db, name);
        return (await affected(db`DELETE FROM buckets WHERE name = ${name} AND balls = 0`)) === 1;
      });
    },
  };
}

/** The bucket settings calls. */
function settingCalls(run: Runner): Partial<CatalogCalls> {
  return {
    getBucketSetting: async (bucket, name) => run.read1((db) => settings.getBucketSetting(db, bucket, name)),
    setBucketSetting: async (bucket, name, value) => run.write((db) => settings.setBucketSetting(db, bucket, name, value)),
    bucketsWithSetting: async (name, from, limit) => run.read1((db) => settings.bucketsWithSetting(db, name, from, limit)),
    setBallTag: async (bucket, key, tag, value, objectId) => run.write((db) => settings.setBallTag(db, bucket, key, tag, value, objectId)),
  };
}

/** The replicas calls. */
function replicaCalls(run: Runner): Partial<CatalogCalls> {
  return {
    addReplica: async (objectId, index, peerId) => run.write((db) => replication.addReplica(db, objectId, index, peerId)),
    removeReplica: async (objectId, index, peerId, options = {}) => run.write((db) => replication.removeReplica(db, objectId, index, peerId, options.garbage ?? true)),
    underReplicated: async (q) => run.read1((db) => replication.underReplicated(db, q)),
    countUnderReplicated: async () => (await run.read1(totals)).under,
    overReplicated: async (q) => run.read1((db) => replication.overReplicated(db, q)),
    chunksOnPeer: async (peerId, q) => run.read((db) => replication.chunksOnPeer(db, peerId, q)),
    findChunk: async (objectId, index) => run.read((db) => replication.findChunk(db, objectId, index)),
    classifyHolding: async (objectId, index, peerId) => run.read((db) => replication.classifyHolding(db, objectId, index, peerId)),
  };
}

/** The intents and garbage calls. */
function garbageCalls(run: Runner): Partial<CatalogCalls> {
  return {
    addIntent: async (intent) => run.write((db) => garbage.addIntent(db, intent)),
    addIntents: async (intents) => {
      checkInt("batch size", intents.length, 0, batchMax);
      return run.write((db) => garbage.addIntents(db, intents));
    },
    addIntentPlacements: async (objectId, placements, expiresMs) => run.write((db) => garbage.addIntentPlacements(db, objectId, placements, expiresMs)),
    touchIntent: async (objectId, expiresMs) => run.write((db) => garbage.touchIntent(db, objectId, expiresMs)),
    extendAllIntents: async (expiresMs) => run.write((db) => garbage.extendAllIntents(db, expiresMs)),
    findRequest: async (requestId) => {
      checkName("request id", requestId, limits.requestIdBytesMax);
      // Inside a group, one snapshot already; alone, the common answers need no transaction.
      if (run.nested) return run.read((db) => garbage.findRequest(db, requestId));
      const probed = await run.read1((db) => garbage.probeRequest(db, requestId));
      return probed !== undefined && "uploading" in probed ? run.read((db) => garbage.findRequest(db, requestId)) : probed;
    },
    getIntent: async (objectId) => run.read((db) => garbage.getIntent(db, objectId)),
    abandonIntent: async (objectId, nowMs) => {
      checkInt("nowMs", nowMs);
      return run.write((db) => garbage.abandonIntent(db, objectId, nowMs));
    },
    expireIntents: async (nowMs) => {
      checkInt("nowMs", nowMs);
      let total = 0;
      for (;;) {
        const expired = await run.write((db) => garbage.expireIntentBatch(db, nowMs, batchMax));
        total += expired;
        if (expired < batchMax) break;
      }
      await run.write((db) => garbage.pruneRetired(db, nowMs));
      return total;
    },
    addGarbage: async (items) => run.write((db) => garbage.addGarbage(db, items)),
    takeGarbage: async (q) => run.read((db) => garbage.takeGarbage(db, q)),
    findRetiredChunk: async (objectId, index) => run.read((db) => garbage.findRetiredChunk(db, objectId, index)),
    retiredChunksPage: async (objectId, fromIndex, limit = limits.chunkRecordsPageMax) => {
      checkInt("fromIndex", fromIndex, 0, limits.ballChunksMax);
      checkInt("limit", limit, 1, limits.chunkRecordsPageMax);
      return run.read((db) => garbage.retiredChunksPage(db, objectId, fromIndex, limit));
    },
    bucketOfObject: async (objectId) => {
      checkObjectId(objectId);
      const row = await run.read1((db) =>
        one<{ bucket: string | null }>(db`SELECT coalesce(
          (SELECT bucket FROM balls WHERE object_id = ${objectId}),
          (SELECT bucket FROM intents WHERE object_id = ${objectId}),
          (SELECT bucket FROM retired WHERE object_id = ${objectId})) AS bucket`),
      );
      return row?.bucket ?? undefined;
    },
    retiredObject: async (objectId) => run.read1((db) => garbage.retiredObject(db, objectId)),
    ackGarbage: async (items) => run.write((db) => garbage.ackGarbage(db, items)),
    countGarbage: async () => (await run.read1(totals)).garbage,
  };
}

/** The access keys and the audit log calls. */
function keyCalls(run: Runner, masterKey: Uint8Array): Partial<CatalogCalls> {
  return {
    createAccessKey: async (key) => run.write((db) => keys.createAccessKey(db, masterKey, key)),
    getAccessKey: async (accessKey) => run.read1((db) => keys.getAccessKey(db, masterKey, accessKey)),
    listAccessKeys: async (q) => run.read1((db) => keys.listAccessKeys(db, q)),
    revokeAccessKey: async (accessKey, revokedMs) => run.write((db) => keys.revokeAccessKey(db, accessKey, revokedMs)),
    countAccessKeys: async () => run.read1((db) => keys.countAccessKeys(db)),
    appendAudit: async (record) => run.write((db) => keys.appendAudit(db, record)),
    listAudit: async (q) => run.read1((db) => keys.listAudit(db, q)),
  };
}

/** The numbers and meta calls. */
function metaCalls(run: Runner): Partial<CatalogCalls> {
  return {
    stats: async () => statsOf(await run.read1(totals)),
    getMeta: async (key) => {
      checkName("meta key", key, metaKeyBytesMax);
      return (await run.read1((db) => one<{ value: string }>(db`SELECT value FROM meta WHERE key = ${key}`)))?.value;
    },
    setMeta: async (key, value) => {
      checkName("meta key", key, metaKeyBytesMax);
      if (typeof value !== "string" || value.length > metaValueBytesMax) {
        throw new BadRequestError(`meta value must be a string of at most ${metaValueBytesMax} characters`);
      }
      await run.write((db) => db`INSERT INTO meta (key, value) VALUES (${key}, ${value}) ON CONFLICT (key) DO UPDATE SET value = excluded.value`);
    },
    nextMetaCounter: async (key, floor, count = 1) => {
      checkName("meta key", key, metaKeyBytesMax);
      checkCounterTake(floor, count);
      return run.write(async (db) => {
        const row = await one<{ value: string }>(db`INSERT INTO meta (key, value) VALUES (${key}, (GREATEST(1, ${floor}::bigint) + ${count}::bigint - 1)::text)
          ON CONFLICT (key) DO UPDATE SET value = (GREATEST(meta.value::bigint + 1, ${floor}::bigint) + ${count}::bigint - 1)::text RETURNING value`);
        return counterValue(key, row?.value, count); // a bad value rolls back
      });
    },
  };
}
