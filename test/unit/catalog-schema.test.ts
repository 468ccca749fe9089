// Catalog schema versions (docs/formats.md): every layout a build ever wrote
// (test/unit/fixtures/catalog-v*.sql, each taken from the commit that wrote it) migrates at open
// to exactly the layout of a new catalog, keeping its rows; a catalog of a newer version, or a
// file that is not a catalog, is refused with an `incompatible` error before a byte of it changes.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Catalog } from "../../src/catalog/index.ts";
import { schemaVersion, schemaVersionMin } from "../../src/catalog/schema.ts";
import { IncompatibleError } from "../../src/lib/errors.ts";
import { thrown } from "../support/errors.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "mictlanx-catalog-schema-"));
  dirs.push(dir);
  return join(dir, "catalog.sqlite");
}

const fixtures = join(import.meta.dir, "fixtures");
/** Every old layout kept, by file: catalog-v1.sql, catalog-v2-early.sql, … */
const layouts = readdirSync(fixtures).filter((name) => /^catalog-v\d+(-[a-z]+)?\.sql$/.test(name)).sort();

interface Layout {
  /** table → its columns (name, type, not null, pk), by name: ALTER TABLE appends where CREATE placed them. */
  tables: Record<string, string[]>;
  indexes: string[];
  triggers: string[];
}

function layoutOf(path: string): Layout {
  const db = new Database(path, { readonly: true });
  try {
    const names = (type: string) => db.query<{ name: string }, [string]>("SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%' ORDER BY name").all(type).map((row) => row.name);
    const tables: Record<string, string[]> = {};
    for (const table of names("table")) {
      const columns = db.query<{ name: string; type: string; notnull: number; pk: number }, [string]>("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)").all(table);
      tables[table] = columns.map((column) => `${column.name} ${column.type}${column.notnull ? " NOT NULL" : ""}${column.pk ? ` pk${column.pk}` : ""}`).sort();
    }
    return { tables, indexes: names("index"), triggers: names("trigger") };
  } finally {
    db.close();
  }
}

function versionOf(path: string): string | undefined {
  const db = new Database(path, { readonly: true });
  try {
    return db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'schema_version'").get()?.value;
  } finally {
    db.close();
  }
}

/** A catalog file of an old layout, with a peer, a ball (one chunk, one replica) and, where the layout has them, a put request id. */
function oldCatalog(layout: string): string {
  const path = tempPath();
  const db = new Database(path);
  db.run("PRAGMA journal_mode = WAL");
  db.run(readFileSync(join(fixtures, layout), "utf8"));
  db.run(`INSERT INTO peers (id, address, capacity_bytes, used_bytes, free_bytes, chunks, state, last_heartbeat_ms, registered_ms, draining)
          VALUES ('p1', '127.0.0.1:1', 100, 10, 90, 1, 'up', 1, 1, 0)`);
  db.run("INSERT INTO buckets (name, created_ms) VALUES ('b', 1)");
  db.run(`INSERT INTO balls (bucket, key, ball_id, object_id, version, size, checksum, content_type, tags, rf, created_ms, chunk_size, num_chunks)
          VALUES ('b', 'k', 'k', 'o1', 3, 10, zeroblob(32), 'application/octet-stream', '{}', 1, 1, 10, 1)`);
  db.run("INSERT INTO chunks (ball, idx, size, checksum, rf, live) VALUES (1, 0, 10, zeroblob(8), 1, 1)");
  db.run("INSERT INTO replicas (ball, idx, peer) VALUES (1, 0, 1)");
  const requestColumns = db.query<{ name: string }, []>("SELECT name FROM pragma_table_info('requests')").all().map((row) => row.name);
  if (requestColumns.includes("version")) db.run("INSERT INTO requests (request_id, object_id, version, created_ms) VALUES ('r1', 'o1', 3, 1)");
  else if (requestColumns.length > 0) db.run("INSERT INTO requests (request_id, object_id, created_ms) VALUES ('r1', 'o1', 1), ('r-gone', 'o-replaced', 1)");
  db.close();
  return path;
}

describe("every older catalog migrates forward", () => {
  test(`the fixtures cover every version from ${schemaVersionMin} to ${schemaVersion - 1}`, () => {
    const versions = new Set(layouts.map((name) => Number(/^catalog-v(\d+)/.exec(name)![1])));
    for (let version = schemaVersionMin; version < schemaVersion; version += 1) expect([...versions]).toContain(version);
  });

  const fresh = (() => {
    const path = join(mkdtempSync(join(tmpdir(), "mictlanx-catalog-fresh-")), "catalog.sqlite");
    Catalog.open(path).close();
    const layout = layoutOf(path);
    rmSync(join(path, ".."), { recursive: true, force: true });
    return layout;
  })();

  for (const layout of layouts) {
    test(`${layout}: opens as schema ${schemaVersion}, with the layout of a new catalog and its rows kept`, () => {
      const path = oldCatalog(layout);
      const catalog = Catalog.open(path);
      expect(catalog.getBall("b", "k")).toMatchObject({ objectId: "o1", version: 3, size: 10 });
      expect(catalog.getPeer("p1")).toMatchObject({ address: "127.0.0.1:1", usedBytes: 10 });
      expect(catalog.stats()).toMatchObject({ balls: 1, buckets: 1, chunks: 1 });
      if (layout !== "catalog-v1.sql") {
        // A retried put is still answered with the version it was given; one whose version is gone is forgotten.
        expect(catalog.findRequest("r1")).toEqual({ committed: { objectId: "o1", version: 3 } });
        expect(catalog.findRequest("r-gone")).toBeUndefined();
      }
      catalog.close();
      expect(versionOf(path)).toBe(String(schemaVersion));
      expect(layoutOf(path)).toEqual(fresh);
      Catalog.open(path).close(); // and it opens again as it is
    });
  }
});

describe("a catalog this build cannot read is refused, and left as it was", () => {
  /** The catalog's files but its -shm (a reader's shared-memory index of the WAL, not data). */
  function bytesOf(path: string): Record<string, string> {
    const files: Record<string, string> = {};
    for (const name of readdirSync(join(path, "..")).filter((file) => !file.endsWith("-shm"))) files[name] = new Bun.CryptoHasher("sha256").update(readFileSync(join(path, "..", name))).digest("hex");
    return files;
  }

  test("a newer schema version: incompatible, naming both versions and what to do", () => {
    const path = tempPath();
    Catalog.open(path).close();
    const db = new Database(path);
    db.run("UPDATE meta SET value = ? WHERE key = 'schema_version'", [String(schemaVersion + 1)]);
    db.close();
    const before = bytesOf(path);
    const error = thrown(() => Catalog.open(path));
    expect(error).toBeInstanceOf(IncompatibleError);
    expect(error.message).toContain(`the catalog ${path} has schema version ${schemaVersion + 1}, written by a newer mictlanx; this build reads versions ${schemaVersionMin} to ${schemaVersion} and never migrates a catalog down`);
    expect(error.message).toContain("run a newer mictlanx");
    expect(bytesOf(path)).toEqual(before);
  });

  test("a version no build wrote, and a database that is not a catalog", () => {
    const path = tempPath();
    Catalog.open(path).close();
    const db = new Database(path);
    db.run("UPDATE meta SET value = 'two' WHERE key = 'schema_version'");
    db.close();
    expect(thrown(() => Catalog.open(path)).message).toContain('says schema version "two", which no mictlanx wrote');
    const other = tempPath();
    const foreign = new Database(other);
    foreign.run("CREATE TABLE photos (id INTEGER PRIMARY KEY)");
    foreign.close();
    const refused = thrown(() => Catalog.open(other));
    expect(refused.code).toBe("incompatible");
    expect(refused.message).toContain("holds tables (photos…) but no catalog schema version: it is not a mictlanx catalog");
  });
});
