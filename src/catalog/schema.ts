// The catalog's SQLite schema. Why each table and index exists is written at the top of
// src/catalog/catalog.ts; keep the two in step.
//
// Versions (docs/formats.md): meta `schema_version` names the layout a catalog has. A build
// opens every older version by migrating it forward, step by step, in the transaction that
// opens it (a crash midway leaves the old version whole), and refuses a newer one before it
// writes a byte: a catalog is never migrated down nor read by a build that does not know its
// layout. Change the layout only with a new version and a step in `migrations`, and add the
// old layout to test/unit/fixtures/catalog-vN.sql (test/unit/catalog-schema.test.ts checks that
// every one of them migrates to exactly what a new catalog is).
import type { Database } from "bun:sqlite";
import { IncompatibleError, MictlanxError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";

/** The layout this build writes; older catalogs are migrated at open (see `migrations`). */
export const schemaVersion = 4;
/** The oldest layout this build migrates from: every version there ever was. */
export const schemaVersionMin = 1;

const pragmas = [
  "PRAGMA journal_mode = WAL",
  "PRAGMA synchronous = FULL",
  `PRAGMA busy_timeout = ${limits.catalogBusyTimeoutMs}`,
  "PRAGMA foreign_keys = ON",
  "PRAGMA temp_store = MEMORY",
  "PRAGMA cache_size = -65536", // 64 MiB of page cache
];

const tables = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS peers (
  num INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  address TEXT NOT NULL,
  capacity_bytes INTEGER NOT NULL,
  used_bytes INTEGER NOT NULL,
  free_bytes INTEGER NOT NULL,
  chunks INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('up', 'suspect', 'down')),
  last_heartbeat_ms INTEGER NOT NULL,
  registered_ms INTEGER NOT NULL,
  draining INTEGER NOT NULL CHECK (draining IN (0, 1)),
  instance_id TEXT
);

CREATE TABLE IF NOT EXISTS buckets (
  name TEXT PRIMARY KEY,
  created_ms INTEGER NOT NULL,
  balls INTEGER NOT NULL DEFAULT 0 CHECK (balls >= 0),
  bytes INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS balls (
  id INTEGER PRIMARY KEY,
  bucket TEXT NOT NULL REFERENCES buckets (name),
  key TEXT NOT NULL,
  ball_id TEXT NOT NULL,
  object_id TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 1),
  size INTEGER NOT NULL,
  checksum BLOB NOT NULL,
  content_type TEXT NOT NULL,
  tags TEXT NOT NULL,
  rf INTEGER NOT NULL CHECK (rf >= 1),
  created_ms INTEGER NOT NULL,
  chunk_size INTEGER NOT NULL,
  num_chunks INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS balls_key ON balls (bucket, key);
CREATE UNIQUE INDEX IF NOT EXISTS balls_object ON balls (object_id);
CREATE INDEX IF NOT EXISTS balls_group ON balls (bucket, ball_id, key);

CREATE TABLE IF NOT EXISTS chunks (
  ball INTEGER NOT NULL REFERENCES balls (id),
  idx INTEGER NOT NULL,
  size INTEGER NOT NULL,
  checksum BLOB NOT NULL,
  rf INTEGER NOT NULL,
  live INTEGER NOT NULL CHECK (live >= 0),
  PRIMARY KEY (ball, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_under ON chunks (ball, idx) WHERE live < rf;
CREATE INDEX IF NOT EXISTS chunks_over ON chunks (ball, idx) WHERE live > rf;

CREATE TABLE IF NOT EXISTS replicas (
  ball INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  peer INTEGER NOT NULL REFERENCES peers (num),
  PRIMARY KEY (ball, idx, peer),
  FOREIGN KEY (ball, idx) REFERENCES chunks (ball, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS replicas_peer ON replicas (peer, ball, idx);

CREATE TABLE IF NOT EXISTS intents (
  object_id TEXT PRIMARY KEY,
  bucket TEXT NOT NULL,
  key TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  request_id TEXT,
  chunk_bytes INTEGER NOT NULL DEFAULT 0,
  placed_bytes INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS intents_expiry ON intents (expires_ms);
CREATE INDEX IF NOT EXISTS intents_request ON intents (request_id) WHERE request_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS intent_chunks (
  object_id TEXT NOT NULL REFERENCES intents (object_id),
  idx INTEGER NOT NULL,
  size INTEGER NOT NULL,
  checksum BLOB NOT NULL,
  peers TEXT NOT NULL,
  PRIMARY KEY (object_id, idx)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS requests (
  request_id TEXT PRIMARY KEY,
  object_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  created_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS requests_age ON requests (created_ms);

CREATE TABLE IF NOT EXISTS intent_placements (
  object_id TEXT NOT NULL REFERENCES intents (object_id),
  idx INTEGER NOT NULL,
  peer_id TEXT NOT NULL,
  PRIMARY KEY (object_id, idx, peer_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS retired (
  object_id TEXT PRIMARY KEY,
  bucket TEXT NOT NULL,
  retired_ms INTEGER NOT NULL,
  reason TEXT NOT NULL CHECK (reason IN ('overwritten', 'deleted', 'abandoned'))
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS retired_age ON retired (retired_ms);

CREATE TABLE IF NOT EXISTS garbage (
  seq INTEGER PRIMARY KEY,
  object_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  peer_id TEXT NOT NULL,
  bucket TEXT NOT NULL,
  not_before_ms INTEGER NOT NULL DEFAULT 0,
  size INTEGER,
  checksum BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS garbage_replica ON garbage (object_id, idx, peer_id);
CREATE INDEX IF NOT EXISTS garbage_due ON garbage (peer_id, not_before_ms, seq);

CREATE TABLE IF NOT EXISTS totals (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  balls INTEGER NOT NULL, bytes INTEGER NOT NULL, buckets INTEGER NOT NULL,
  chunks INTEGER NOT NULL, replicas INTEGER NOT NULL, under INTEGER NOT NULL,
  garbage INTEGER NOT NULL, intents INTEGER NOT NULL,
  intent_bytes INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO totals VALUES (0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

CREATE TABLE IF NOT EXISTS access_keys (
  access_key TEXT PRIMARY KEY,
  secret_sealed BLOB NOT NULL,
  grants TEXT NOT NULL,
  admin INTEGER NOT NULL CHECK (admin IN (0, 1)),
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS audit_log (
  seq INTEGER PRIMARY KEY,
  at_ms INTEGER NOT NULL,
  access_key TEXT,
  remote TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  outcome TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS bucket_settings (
  bucket TEXT NOT NULL REFERENCES buckets (name),
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (bucket, name)
) WITHOUT ROWID;
`;

/** Triggers keep `totals` and the per-bucket counts exact in the same transaction as the change. */
const triggers = `
CREATE TRIGGER IF NOT EXISTS balls_insert AFTER INSERT ON balls BEGIN
  UPDATE totals SET balls = balls + 1, bytes = bytes + NEW.size WHERE id = 0;
  UPDATE buckets SET balls = balls + 1, bytes = bytes + NEW.size WHERE name = NEW.bucket;
END;
CREATE TRIGGER IF NOT EXISTS balls_delete AFTER DELETE ON balls BEGIN
  UPDATE totals SET balls = balls - 1, bytes = bytes - OLD.size WHERE id = 0;
  UPDATE buckets SET balls = balls - 1, bytes = bytes - OLD.size WHERE name = OLD.bucket;
END;
CREATE TRIGGER IF NOT EXISTS buckets_insert AFTER INSERT ON buckets BEGIN
  UPDATE totals SET buckets = buckets + 1 WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS buckets_delete AFTER DELETE ON buckets BEGIN
  UPDATE totals SET buckets = buckets - 1 WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS chunks_insert AFTER INSERT ON chunks BEGIN
  UPDATE totals SET chunks = chunks + 1, under = under + (NEW.live < NEW.rf) WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS chunks_delete AFTER DELETE ON chunks BEGIN
  UPDATE totals SET chunks = chunks - 1, under = under - (OLD.live < OLD.rf) WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS chunks_live AFTER UPDATE OF live ON chunks
WHEN (OLD.live < OLD.rf) <> (NEW.live < NEW.rf) BEGIN
  UPDATE totals SET under = under + (NEW.live < NEW.rf) - (OLD.live < OLD.rf) WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS replicas_insert AFTER INSERT ON replicas BEGIN
  UPDATE totals SET replicas = replicas + 1 WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS replicas_delete AFTER DELETE ON replicas BEGIN
  UPDATE totals SET replicas = replicas - 1 WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS garbage_insert AFTER INSERT ON garbage BEGIN
  UPDATE totals SET garbage = garbage + 1 WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS garbage_delete AFTER DELETE ON garbage BEGIN
  UPDATE totals SET garbage = garbage - 1 WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS intents_insert AFTER INSERT ON intents BEGIN
  UPDATE totals SET intents = intents + 1 WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS intents_delete AFTER DELETE ON intents BEGIN
  UPDATE totals SET intents = intents - 1 WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS intents_bytes_insert AFTER INSERT ON intents BEGIN
  UPDATE totals SET intent_bytes = intent_bytes + NEW.placed_bytes WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS intents_bytes_update AFTER UPDATE OF placed_bytes ON intents BEGIN
  UPDATE totals SET intent_bytes = intent_bytes + NEW.placed_bytes - OLD.placed_bytes WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS intents_bytes_delete AFTER DELETE ON intents BEGIN
  UPDATE totals SET intent_bytes = intent_bytes - OLD.placed_bytes WHERE id = 0;
END;
`;

/**
 * Each step takes a catalog of the version before it to its own version, in the transaction
 * that opens it; `tables` then adds whatever new tables and indexes the latest layout has.
 * A step only adds (columns with defaults, tables, indexes) or moves data: never a lossy change.
 * A step is SQL, or code where what it finds decides what it does.
 */
const migrations: Record<number, string | ((db: Database) => void)> = {
  // 2: peer instances (a data dir's identity), garbage kept for readers until a time (and what
  //    a reader needs to find it), put request ids remembered across restarts.
  2: `
    ALTER TABLE peers ADD COLUMN instance_id TEXT;
    ALTER TABLE intents ADD COLUMN request_id TEXT;
    ALTER TABLE garbage ADD COLUMN not_before_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE garbage ADD COLUMN size INTEGER;
    ALTER TABLE garbage ADD COLUMN checksum BLOB;
    DROP INDEX IF EXISTS garbage_peer;
  `,
  // 3: the bytes uploads under way have placed (status: pending uploads). Intents begun before
  //    count 0 bytes: the chunk size they would need was not recorded.
  3: (db) => {
    db.run(`
      ALTER TABLE intents ADD COLUMN chunk_bytes INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE intents ADD COLUMN placed_bytes INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE totals ADD COLUMN intent_bytes INTEGER NOT NULL DEFAULT 0;
    `);
    addRequestVersions(db);
  },
  // 4: access keys (secrets sealed under DIR/secrets.key) and the audit log: new tables only,
  //    which `tables` creates; a catalog from before holds no keys, so the SPM makes the first.
  4: "SELECT 1",
};

/**
 * Schema 2 had two layouts: builds from 18c5bf4 to before 95a095f kept put request ids without
 * the version they were given, and said 2 all the same. Such a catalog gets the column here,
 * each row's version from the ball its object id names (rows of versions since replaced, which
 * a retry can no longer be answered from, are dropped: the retry makes a new version).
 */
function addRequestVersions(db: Database): void {
  const columns = db.query<{ name: string }, []>("SELECT name FROM pragma_table_info('requests')").all();
  if (columns.length === 0 || columns.some((column) => column.name === "version")) return; // none yet (schema 1), or the later layout
  db.run(`
    ALTER TABLE requests ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    UPDATE requests SET version = COALESCE((SELECT balls.version FROM balls WHERE balls.object_id = requests.object_id), 0);
    DELETE FROM requests WHERE version = 0;
  `);
}

/**
 * Refuse a catalog this build cannot read, before anything (a pragma included) writes to it.
 * `name` is for messages: the catalog's path.
 */
export function checkSchemaVersion(db: Database, name: string): number | undefined {
  const found = storedVersion(db, name);
  if (found !== undefined && found > schemaVersion) {
    throw new IncompatibleError(
      `the catalog ${name} has schema version ${found}, written by a newer mictlanx; this build reads versions ${schemaVersionMin} to ${schemaVersion} and never migrates a catalog down: ` +
        "run a newer mictlanx (the build that wrote it, or a later one), or restore a backup made before that upgrade (docs/formats.md)",
    );
  }
  return found;
}

/** Set the pragmas, migrate an older catalog, create whatever is missing; refuses a newer one. */
export function applySchema(db: Database, options: { deferredSync?: boolean; name?: string } = {}): void {
  const name = options.name ?? "(unnamed)";
  checkSchemaVersion(db, name);
  for (const pragma of pragmas) db.run(pragma);
  // Deferred: commits reach the OS (a kill -9 keeps them) and the caller makes them durable
  // against power loss with Catalog.syncWal() — off the event loop — before it acknowledges.
  if (options.deferredSync) db.run("PRAGMA synchronous = NORMAL");
  const mode = db.query<{ journal_mode: string }, []>("PRAGMA journal_mode").get();
  if (mode?.journal_mode !== "wal") throw new MictlanxError("internal", `catalog could not switch to WAL (got ${mode?.journal_mode})`);
  db.transaction(() => {
    // Again inside the write lock: another process may have opened it since the check above.
    const found = checkSchemaVersion(db, name);
    if (found !== undefined) migrate(db, found);
    db.run(tables);
    db.run(triggers);
    db.run("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", [String(schemaVersion)]);
  }).immediate();
}

/**
 * The catalog's layout version, or undefined for a new, empty file. A file with tables but no
 * version is not a catalog (every build wrote one from its first start): refused, not adopted.
 */
function storedVersion(db: Database, name: string): number | undefined {
  const tables = db.query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table'").all();
  if (tables.length === 0) return undefined;
  const hasMeta = tables.some((table) => table.name === "meta");
  const row = hasMeta ? db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'schema_version'").get() : null;
  if (row === null) {
    throw new IncompatibleError(`${name} holds tables (${tables.slice(0, 3).map((table) => table.name).join(", ")}…) but no catalog schema version: it is not a mictlanx catalog; give the SPM its own --data directory`);
  }
  const version = Number(row.value);
  if (!Number.isSafeInteger(version) || version < schemaVersionMin) {
    throw new IncompatibleError(`the catalog ${name} says schema version ${JSON.stringify(row.value)}, which no mictlanx wrote; restore it from a backup`);
  }
  return version;
}

function migrate(db: Database, from: number): void {
  for (let version = from + 1; version <= schemaVersion; version += 1) {
    const step = migrations[version];
    if (step === undefined) throw new MictlanxError("internal", `no migration to catalog schema version ${version}`);
    if (typeof step === "string") db.run(step);
    else step(db);
  }
}
