// `mictlanx catalog migrate --from sqlite:DIR --to postgres://…`: copy a sqlite catalog into
// PostgreSQL, table by table, page by page, and prove the copy.
//
//   1. The source is opened as its SPM would open it (an older layout is migrated, secrets.key
//      checked), then read in one transaction that holds its write lock: the copy is one
//      consistent snapshot, and an SPM still running on it cannot write meanwhile (it is told
//      the catalog is locked) — stop the SPM first.
//   2. The target is opened as an SPM would (schema made or migrated) and must hold nothing yet
//      (`replace` empties it first).
//   3. Every table is copied in its primary key's order, catalogMigratePageRows rows a page, in
//      one PostgreSQL transaction under the writer lock: memory stays one page, and a copy that
//      fails half-way leaves the target as it was. Rows go as they are (internal ids, sealed
//      secrets untouched: they open with the same secrets.key). The counters are not copied:
//      the target's triggers count what arrives, so the check in 4 compares two countings.
//   4. Before that transaction commits: per table, the rows in the target equal the rows in the
//      source; the target's counters equal the source's; a full recount of the target is clean.
//      A copy that does not match is rolled back whole.
import { Database, type SQLQueryBindings } from "bun:sqlite";
import { SQL } from "bun";
import { assert } from "../lib/assert.ts";
import { ConflictError, MictlanxError, UsageError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { Catalog, secretsKeyFile } from "./catalog.ts";
import { parseCatalogUrl } from "./open.ts";
import { auditPostgresCatalog } from "./postgres/audit.ts";
import { all, lockKeys, storageError } from "./postgres/db.ts";
import { PostgresStore } from "./postgres/store.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { CatalogStats } from "./types.ts";

type ColumnType = "bigint" | "integer" | "smallint" | "text" | "bytea";
/** A table to copy: its primary key (the pages' order) and columns; `only`: which of the source's rows. */
type TableSpec = { table: string; key: string[]; columns: Array<[string, ColumnType]>; only?: string };

/** Every table, parents before children (foreign keys); `totals` is not copied (the triggers count). */
const tableSpecs: TableSpec[] = [
  // the layout's version is each engine's own; the VSS id and the secrets.key check are the source's
  { table: "meta", key: ["key"], columns: [["key", "text"], ["value", "text"]], only: "key <> 'schema_version'" },
  {
    table: "peers",
    key: ["num"],
    columns: [["num", "bigint"], ["id", "text"], ["address", "text"], ["capacity_bytes", "bigint"], ["used_bytes", "bigint"], ["free_bytes", "bigint"], ["chunks", "bigint"], ["state", "text"], ["last_heartbeat_ms", "bigint"], ["registered_ms", "bigint"], ["draining", "smallint"], ["instance_id", "text"]],
  },
  // balls and bytes start at 0: the balls' insert trigger counts them in
  { table: "buckets", key: ["name"], columns: [["name", "text"], ["created_ms", "bigint"]] },
  {
    table: "balls",
    key: ["id"],
    columns: [["id", "bigint"], ["bucket", "text"], ["key", "text"], ["ball_id", "text"], ["object_id", "text"], ["version", "bigint"], ["size", "bigint"], ["checksum", "bytea"], ["content_type", "text"], ["tags", "text"], ["rf", "integer"], ["created_ms", "bigint"], ["chunk_size", "integer"], ["num_chunks", "integer"]],
  },
  { table: "chunks", key: ["ball", "idx"], columns: [["ball", "bigint"], ["idx", "integer"], ["size", "bigint"], ["checksum", "bytea"], ["rf", "integer"], ["live", "integer"]] },
  { table: "replicas", key: ["ball", "idx", "peer"], columns: [["ball", "bigint"], ["idx", "integer"], ["peer", "bigint"]] },
  {
    table: "intents",
    key: ["object_id"],
    columns: [["object_id", "text"], ["bucket", "text"], ["key", "text"], ["created_ms", "bigint"], ["expires_ms", "bigint"], ["request_id", "text"], ["chunk_bytes", "bigint"], ["placed_bytes", "bigint"]],
  },
  { table: "intent_chunks", key: ["object_id", "idx"], columns: [["object_id", "text"], ["idx", "integer"], ["size", "bigint"], ["checksum", "bytea"], ["peers", "text"]] },
  { table: "intent_placements", key: ["object_id", "idx", "peer_id"], columns: [["object_id", "text"], ["idx", "integer"], ["peer_id", "text"]] },
  { table: "requests", key: ["request_id"], columns: [["request_id", "text"], ["object_id", "text"], ["version", "bigint"], ["created_ms", "bigint"]] },
  { table: "retired", key: ["object_id"], columns: [["object_id", "text"], ["bucket", "text"], ["retired_ms", "bigint"], ["reason", "text"]] },
  {
    table: "garbage",
    key: ["seq"],
    columns: [["seq", "bigint"], ["object_id", "text"], ["idx", "integer"], ["peer_id", "text"], ["bucket", "text"], ["not_before_ms", "bigint"], ["size", "bigint"], ["checksum", "bytea"]],
  },
  { table: "access_keys", key: ["access_key"], columns: [["access_key", "text"], ["secret_sealed", "bytea"], ["grants", "text"], ["admin", "smallint"], ["created_ms", "bigint"], ["revoked_ms", "bigint"]] },
  { table: "audit_log", key: ["seq"], columns: [["seq", "bigint"], ["at_ms", "bigint"], ["access_key", "text"], ["remote", "text"], ["action", "text"], ["target", "text"], ["outcome", "text"]] },
  { table: "bucket_settings", key: ["bucket", "name"], columns: [["bucket", "text"], ["name", "text"], ["value", "text"]] },
];

/** Tables whose identity column must continue past the copied ids. */
const identities: Array<[string, string]> = [["peers", "num"], ["balls", "id"], ["garbage", "seq"]];
/** Meta rows the target makes itself on open; the source's replace them (the VSS keeps its id). */
const metaMadeAtOpen = ["schema_version", "vss_id", "secrets_key_check"];

export interface MigrateOptions {
  /** Empty a target that holds a catalog already (default: refuse it). */
  replace?: boolean;
  /** secrets.key; default DIR/secrets.key of the source. */
  secretsKeyPath?: string;
  pageRows?: number;
  /** Told each table as it is copied. */
  progress?: (line: string) => void;
}

export interface MigrateReport {
  from: string;
  to: string;
  vssId: string;
  tables: Array<{ table: string; rows: number }>;
  stats: CatalogStats;
  elapsedMs: number;
}

/** Copy the sqlite catalog `from` into the PostgreSQL catalog `to` (see the header). */
export async function migrateCatalog(from: string, to: string, options: MigrateOptions = {}): Promise<MigrateReport> {
  const started = performance.now();
  const source = parseCatalogUrl(from);
  const target = parseCatalogUrl(to);
  if (source.engine !== "sqlite") throw new UsageError(`--from must be a sqlite:DIR catalog (got ${from.startsWith("postgres") ? "a PostgreSQL one" : from})`);
  if (target.engine !== "postgres") throw new UsageError("--to must be a postgres://… catalog");
  const secretsKeyPath = options.secretsKeyPath ?? join(source.dir, secretsKeyFile);
  if (!existsSync(source.path)) throw new UsageError(`there is no catalog at ${source.path}`);
  probeSourceUnlocked(source.path);
  const sourceStats = openSourceAsItsSpmWould(source.path, secretsKeyPath);
  const store = await PostgresStore.open(target.url, { secretsKeyPath });
  await store.close();
  const db = new Database(source.path, { readwrite: true, create: false, strict: true });
  const sql = new SQL(target.url, { max: 1, connection: { synchronous_commit: "on", application_name: "mictlanx catalog migrate" } });
  try {
    lockSource(db, source.path);
    const tables = await copyAll(db, sql, sourceStats, target.location, options);
    const vssId = (db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'vss_id'").get()?.value) ?? "";
    return { from: `sqlite:${source.dir}`, to: target.location, vssId, tables, stats: sourceStats, elapsedMs: Math.round(performance.now() - started) };
  } catch (error) {
    throw storageError(target.location, error);
  } finally {
    if (db.inTransaction) db.run("ROLLBACK");
    db.close();
    await sql.close();
  }
}

/** Open the source as the SPM would (migrating an older layout, checking secrets.key); its stats. */
function openSourceAsItsSpmWould(path: string, secretsKeyPath: string): CatalogStats {
  const catalog = Catalog.open(path, { secretsKeyPath });
  try {
    return catalog.stats();
  } finally {
    catalog.close();
  }
}

/** Fail at once, not after the busy timeout, when another process is writing the source. */
function probeSourceUnlocked(path: string): void {
  const db = new Database(path, { readwrite: true, create: false });
  try {
    lockSource(db, path);
    db.run("ROLLBACK");
  } finally {
    db.close();
  }
}

/** The write lock for the whole copy, so nothing changes the source under it. */
function lockSource(db: Database, path: string): void {
  db.run("PRAGMA busy_timeout = 0");
  try {
    db.run("BEGIN IMMEDIATE");
  } catch (error) {
    throw new ConflictError(`the catalog ${path} is being written by another process (${error instanceof Error ? error.message : String(error)}); stop its SPM, then migrate`);
  }
}

async function copyAll(db: Database, sql: SQL, sourceStats: CatalogStats, location: string, options: MigrateOptions): Promise<Array<{ table: string; rows: number }>> {
  const pageRows = options.pageRows ?? limits.catalogMigratePageRows;
  assert(Number.isSafeInteger(pageRows) && pageRows >= 1, `a migrate page of ${pageRows} rows`);
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${lockKeys.writer})`;
    await emptyTarget(tx, location, options.replace === true);
    const copied: Array<{ table: string; rows: number }> = [];
    for (const spec of tableSpecs) {
      const rows = await copyTable(db, tx, spec, pageRows);
      copied.push({ table: spec.table, rows });
      options.progress?.(`${spec.table}: ${rows} rows`);
    }
    for (const [table, column] of identities) {
      await tx.unsafe(`SELECT setval(pg_get_serial_sequence('${table}', '${column}'), coalesce((SELECT max(${column}) FROM ${table}), 0) + 1, false)`);
    }
    await verify(db, tx, copied, sourceStats, location);
    return copied;
  });
}

/** Refuse a target holding anything but what an open makes; with `replace`, empty it. */
async function emptyTarget(tx: SQL, location: string, replace: boolean): Promise<void> {
  const held = await all<{ table: string; n: number }>(
    tx.unsafe(
      tableSpecs
        .map((spec) => (spec.table === "meta" ? `SELECT 'meta' AS table, count(*) AS n FROM meta WHERE key NOT IN (${metaMadeAtOpen.map((key) => `'${key}'`).join(", ")})` : `SELECT '${spec.table}' AS table, count(*) AS n FROM ${spec.table}`))
        .join(" UNION ALL "),
    ),
  );
  const nonEmpty = held.filter((row) => row.n > 0);
  if (nonEmpty.length > 0 && !replace) {
    throw new ConflictError(
      `the catalog at ${location} is not empty (${nonEmpty.map((row) => `${row.table}: ${row.n} rows`).join(", ")}); migrate into an empty database, or pass --replace to empty it first`,
    );
  }
  await tx.unsafe(`TRUNCATE ${tableSpecs.filter((spec) => spec.table !== "meta").map((spec) => spec.table).join(", ")} RESTART IDENTITY`);
  await tx`DELETE FROM meta WHERE key <> 'schema_version'`;
  await tx`UPDATE totals SET balls = 0, bytes = 0, buckets = 0, chunks = 0, replicas = 0, under = 0, garbage = 0, intents = 0, intent_bytes = 0 WHERE id = 0`;
}

/** One table, in pages by its primary key; how many rows. */
async function copyTable(db: Database, tx: SQL, spec: TableSpec, pageRows: number): Promise<number> {
  const names = spec.columns.map(([name]) => name);
  const selected = spec.columns.map(([name, type]) => (type === "bytea" ? `hex(${name}) AS ${name}` : name)).join(", ");
  const keyList = spec.key.join(", ");
  const only = spec.only === undefined ? "" : ` AND ${spec.only}`;
  const first = db.query<Record<string, SQLQueryBindings>, [number]>(`SELECT ${selected} FROM ${spec.table} WHERE 1 = 1${only} ORDER BY ${keyList} LIMIT ?`);
  const next = db.query<Record<string, SQLQueryBindings>, SQLQueryBindings[]>(`SELECT ${selected} FROM ${spec.table} WHERE (${keyList}) > (${spec.key.map(() => "?").join(", ")})${only} ORDER BY ${keyList} LIMIT ?`);
  const insert = `INSERT INTO ${spec.table} (${names.join(", ")})
    SELECT ${spec.columns.map(([name, type]) => (type === "bytea" ? `decode(r.${name}, 'hex')` : `r.${name}`)).join(", ")}
    FROM json_to_recordset($1::text::json) AS r (${spec.columns.map(([name, type]) => `${name} ${type === "bytea" ? "text" : type}`).join(", ")})`;
  let rows = 0;
  let page = first.all(pageRows);
  while (page.length > 0) {
    await tx.unsafe(insert, [JSON.stringify(page)]);
    rows += page.length;
    if (page.length < pageRows) break;
    const last = page[page.length - 1]!;
    page = next.all(...spec.key.map((column) => last[column] ?? null), pageRows);
  }
  return rows;
}

/**
 * Inside the copy's transaction, so a copy that does not match is rolled back: row counts per
 * table, the counters the target's triggers made against the source's, and a full recount.
 */
async function verify(db: Database, tx: SQL, copied: Array<{ table: string; rows: number }>, sourceStats: CatalogStats, location: string): Promise<void> {
  const problems: string[] = [];
  for (const { table, rows } of copied) {
    const only = tableSpecs.find((spec) => spec.table === table)?.only;
    const where = only === undefined ? "" : ` WHERE ${only}`;
    const inSource = db.query<{ n: number }, []>(`SELECT count(*) AS n FROM ${table}${where}`).get()!.n;
    const inTarget = (await all<{ n: number }>(tx.unsafe(`SELECT count(*) AS n FROM ${table}${where}`)))[0]?.n;
    if (inSource !== rows || inTarget !== rows) problems.push(`${table}: ${inSource} rows in the source, ${rows} copied, ${inTarget} in the target`);
  }
  const [t] = await all<Record<string, number>>(tx`SELECT balls, bytes, buckets, chunks, replicas, under, garbage, intents, intent_bytes FROM totals WHERE id = 0`);
  const stats: CatalogStats = { balls: t!.balls!, buckets: t!.buckets!, bytes: t!.bytes!, chunks: t!.chunks!, replicas: t!.replicas!, underReplicated: t!.under!, garbage: t!.garbage!, intents: t!.intents!, intentBytes: t!.intent_bytes! };
  for (const [name, value] of Object.entries(sourceStats) as Array<[keyof CatalogStats, number]>) {
    if (stats[name] !== value) problems.push(`stats.${name}: ${value} in the source, ${stats[name]} in the target`);
  }
  problems.push(...(await auditPostgresCatalog(tx)).map((problem) => `the target's recount: ${problem}`));
  if (problems.length > 0) throw new MictlanxError("internal", `the copy into ${location} does not match its source, so nothing was kept: ${problems.join("; ")}`);
}
