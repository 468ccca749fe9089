// The catalog's unit suites run against both engines: `forEachEngine` declares the body once
// per engine (a describe named "sqlite" and one named "postgres"), and `engine.open()` gives a
// test a fresh, empty store — a temp dir for sqlite, a new database on the file's own
// PostgreSQL server (started on first use, stopped after the file: test/support/postgres.ts)
// for postgres. Stores a test opened are closed after it, and their temp dirs removed. Without
// PostgreSQL installed, the postgres half is skipped with a line that says why.
import { afterAll, afterEach, describe, expect } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore, type CatalogEngineName, type CatalogStore } from "../../src/catalog/index.ts";
import { SQL } from "bun";
import { applyPostgresSchema } from "../../src/catalog/postgres/schema.ts";
import { PostgresStore } from "../../src/catalog/postgres/store.ts";
import { postgresMissing, startTestPostgres, type TestPostgres } from "./postgres.ts";
import { peerRecord } from "../unit/fixtures/catalog-records.ts";

export interface OpenedCatalog {
  store: CatalogStore;
  /** sqlite: the catalog file; postgres: the database URL. */
  location: string;
  /** A temp dir of the test's (secrets.key lives here). */
  dir: string;
  /** Open the same catalog again (after closing `store`, or beside it: a second SPM). */
  reopen(options?: { secretsKeyPath?: string }): Promise<CatalogStore>;
}

export interface TestEngine {
  name: CatalogEngineName;
  /** A fresh, empty catalog, closed and removed after the test (after the file with `scope: "file"`, for a beforeAll). */
  open(options?: { secretsKeyPath?: string; scope?: "test" | "file" }): Promise<OpenedCatalog>;
  /** The file's PostgreSQL server (postgres only): to stop and start it. */
  server(): Promise<TestPostgres>;
}

export const engineNames: readonly CatalogEngineName[] = ["sqlite", "postgres"];

/** Declare `body` once per engine, each in a describe of the engine's name. */
export function forEachEngine(label: string, body: (engine: TestEngine) => void): void {
  const missing = postgresMissing();
  if (missing !== undefined) console.log(`[${label}] ${missing}`);
  let server: Promise<TestPostgres> | undefined;
  type Opened = { stores: CatalogStore[]; dirs: string[] };
  const perTest: Opened = { stores: [], dirs: [] };
  const perFile: Opened = { stores: [], dirs: [] };
  const release = async (opened: Opened) => {
    for (const store of opened.stores.splice(0)) await store.close().catch(() => {});
    for (const dir of opened.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  };
  afterEach(() => release(perTest));
  afterAll(async () => {
    await release(perFile);
    if (server !== undefined) await (await server).cleanup();
  });
  const serverOf = () => (server ??= startTestPostgres(label));
  // A database with the catalog's schema made once per file: each test's database is a copy of
  // it (~0.4 s), not a new one migrated (~0.9 s). It holds no VSS id yet: each copy makes its own.
  let template: Promise<string> | undefined;
  const templateOf = () =>
    (template ??= (async () => {
      const url = await (await serverOf()).createDatabase(`catalog_template_${process.pid}`);
      const sql = new SQL(url, { max: 1 });
      try {
        await applyPostgresSchema(sql, url);
      } finally {
        await sql.close();
      }
      return new URL(url).pathname.slice(1);
    })());
  for (const name of engineNames) {
    const engine: TestEngine = {
      name,
      server: serverOf,
      async open(options = {}) {
        const scope = options.scope === "file" ? perFile : perTest;
        const track = (store: CatalogStore): CatalogStore => {
          scope.stores.push(store);
          return store;
        };
        const dir = mkdtempSync(join(tmpdir(), `mictlanx-${label}-`));
        scope.dirs.push(dir);
        const secretsKeyPath = options.secretsKeyPath ?? join(dir, "secrets.key");
        const location = name === "sqlite" ? join(dir, "catalog.sqlite") : await (await serverOf()).createDatabase(undefined, await templateOf());
        const openAt = (keyPath: string) => (name === "sqlite" ? Promise.resolve(SqliteStore.open(location, { secretsKeyPath: keyPath })) : PostgresStore.open(location, { secretsKeyPath: keyPath }));
        return { store: track(await openAt(secretsKeyPath)), location, dir, reopen: async (again = {}) => track(await openAt(again.secretsKeyPath ?? secretsKeyPath)) };
      },
    };
    // Skipped only where PostgreSQL is not installed: the line printed above says so and names
    // the Debian package (.ci/run installs it, so CI always runs both halves).
    (name === "postgres" && missing !== undefined ? describe.skip : describe)(name, () => body(engine));
  }
}

/**
 * Inside a forEachEngine body: `setup()` gives a fresh store of `engine` with peers p1..p3 up,
 * audited (everything kept incrementally recounted) after each test.
 */
export function auditedSetup(engine: TestEngine): () => Promise<CatalogStore> {
  const opened: CatalogStore[] = [];
  afterEach(async () => {
    for (const store of opened.splice(0)) expect(await store.audit()).toEqual([]);
  });
  return async () => {
    const { store } = await engine.open();
    opened.push(store);
    for (const id of ["p1", "p2", "p3"]) await store.upsertPeer(peerRecord(id));
    return store;
  };
}
