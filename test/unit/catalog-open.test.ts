// openCatalogStore: the URL picks the engine (sqlite:DIR or postgres://…), anything else is a
// usage error that shows both forms and never echoes a password.
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { openCatalogStore, parseCatalogUrl } from "../../src/catalog/open.ts";
import { storageError } from "../../src/catalog/postgres/db.ts";
import { MictlanxError } from "../../src/lib/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import { rejection, thrown } from "../support/errors.ts";
import { postgresMissing, startTestPostgres, type TestPostgres } from "../support/postgres.ts";
import { tempDir } from "../support/vss.ts";

const missing = postgresMissing();
if (missing !== undefined) console.log(`[catalog-open] ${missing}`);
let server: TestPostgres | undefined;
const dirs: string[] = [];
afterAll(async () => {
  await server?.cleanup();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("parseCatalogUrl", () => {
  test("sqlite:DIR in its spellings; postgres:// and postgresql://", () => {
    expect(parseCatalogUrl("sqlite:/var/lib/spm")).toEqual({ engine: "sqlite", dir: "/var/lib/spm", path: "/var/lib/spm/catalog.sqlite" });
    expect(parseCatalogUrl("sqlite:///var/lib/spm")).toMatchObject({ dir: "/var/lib/spm" });
    expect(parseCatalogUrl("sqlite:rel/spm")).toMatchObject({ dir: resolve("rel/spm") });
    expect(parseCatalogUrl("postgres://u:secret@db.internal:6543/mx?sslmode=require")).toEqual({
      engine: "postgres",
      url: "postgres://u:secret@db.internal:6543/mx?sslmode=require",
      location: "postgres://db.internal:6543/mx",
    });
    expect(parseCatalogUrl("postgresql://db/mx")).toMatchObject({ engine: "postgres", url: "postgres://db/mx", location: "postgres://db:5432/mx" });
  });

  test("anything else is a usage error naming both forms, without the password", () => {
    for (const text of ["mysql://u:hunter2@h/db", "sqlite:", "postgres://u:hunter2@h", "postgres://u:hunter2@h/", "/var/lib/spm", ""]) {
      const error = thrown(() => parseCatalogUrl(text));
      expect(error.code).toBe("usage");
      expect(error.message).toContain("sqlite:DIR");
      expect(error.message).toContain("postgres://");
      expect(error.message).not.toContain("hunter2");
    }
  });
});

describe("PostgreSQL's failures as typed errors", () => {
  const location = "postgres://db.internal:5432/mictlanx";
  const failure = (message: string, code: string, errno?: string) => Object.assign(new Error(message), { code, ...(errno === undefined ? {} : { errno }) });
  test("each kind of failure by its SQLSTATE or Bun's code; a query of ours that was wrong stays what it was", () => {
    const cases: Array<[Error, string, string]> = [
      [failure("canceling statement due to statement timeout", "ERR_POSTGRES_SERVER_ERROR", "57014"), "unavailable", `statement timeout (${limits.catalogPostgresStatementTimeoutMs} ms)`],
      [failure("canceling statement due to lock timeout", "ERR_POSTGRES_SERVER_ERROR", "55P03"), "unavailable", `more than ${limits.catalogPostgresLockTimeoutMs} ms`],
      [failure("could not extend file: No space left on device", "ERR_POSTGRES_SERVER_ERROR", "53100"), "full", "free some space"],
      [failure("terminating connection due to administrator command", "ERR_POSTGRES_SERVER_ERROR", "57P01"), "unavailable", "shutting down"],
      [failure("cannot execute INSERT in a read-only transaction", "ERR_POSTGRES_SERVER_ERROR", "25006"), "unavailable", "standby"],
      [failure("password authentication failed for user \"mx\"", "ERR_POSTGRES_SERVER_ERROR", "28P01"), "unavailable", "refused the login"],
      [failure("Connection closed", "ERR_POSTGRES_CONNECTION_CLOSED"), "unavailable", "could not be reached"],
      [failure("Failed to connect", "ERR_POSTGRES_CONNECTION_REFUSED"), "unavailable", "could not be reached"],
    ];
    for (const [error, code, words] of cases) {
      const typed = storageError(location, error) as MictlanxError;
      expect(typed).toBeInstanceOf(MictlanxError);
      expect(typed.code).toBe(code as MictlanxError["code"]);
      expect(typed.message).toContain(location);
      expect(typed.message).toContain(words);
    }
    const ours = failure("syntax error at or near", "ERR_POSTGRES_SERVER_ERROR", "42601");
    expect(storageError(location, ours)).toBe(ours);
    const bug = failure("a query was not awaited", "ERR_POSTGRES_INVALID_TRANSACTION_STATE");
    expect(storageError(location, bug)).toBe(bug);
  });
});

describe("openCatalogStore", () => {
  test("sqlite:DIR opens DIR/catalog.sqlite with secrets.key beside it", async () => {
    const dir = tempDir("catalog-open");
    dirs.push(dir);
    const store = await openCatalogStore(`sqlite:${dir}`);
    expect(store.engine).toBe("sqlite");
    expect(store.location).toBe(`sqlite:${join(dir, "catalog.sqlite")}`);
    await store.close();
    expect((await Bun.file(join(dir, "secrets.key")).bytes()).byteLength).toBe(32);
  });

  test.skipIf(missing !== undefined)("postgres:// opens the database; it needs a secrets.key path", async () => {
    server = await startTestPostgres("catalog-open");
    const url = await server.createDatabase();
    const error = await rejection(openCatalogStore(url));
    expect(error.code).toBe("usage");
    expect(error.message).toContain("needs a secrets.key");
    const dir = tempDir("catalog-open");
    dirs.push(dir);
    const store = await openCatalogStore(url.replace("postgres:", "postgresql:"), { secretsKeyPath: join(dir, "secrets.key") });
    expect(store.engine).toBe("postgres");
    expect(store.location).toBe(`postgres://127.0.0.1:${server.port}${new URL(url).pathname}`);
    expect(await store.health()).toEqual({ writable: true });
    await store.close();
    const absent = await rejection(openCatalogStore(server.url("no_such_db"), { secretsKeyPath: join(dir, "secrets.key") }));
    expect(absent.code).toBe("unavailable");
    expect(absent.message).toContain(`the catalog at postgres://127.0.0.1:${server.port}/no_such_db could not be reached`);
    expect(absent.message).toContain("createdb");
  });
});
