// Access keys in the catalog: sealed secrets (a wrong master key, a changed blob and a blob
// moved to another key's row all fail to open), secrets.key beside the catalog (made 0600,
// required once keys exist, checked at open), the key methods at their bounds — on both
// engines — and sqlite's migration from the schema before keys.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { SQL } from "bun";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Catalog, type AccessKeyRecord } from "../../src/catalog/index.ts";
import { seal, unseal } from "../../src/catalog/secrets.ts";
import { accessKeyIdAlphabet, newAccessKeyId, newSecretKey } from "../../src/lib/access-keys.ts";
import { limits } from "../../src/lib/limits.ts";
import { ballOf, peerRecord } from "./fixtures/catalog-records.ts";
import { rejection, thrown } from "../support/errors.ts";
import { forEachEngine, type OpenedCatalog } from "../support/catalog-engines.ts";
import { findPostgres } from "../support/postgres.ts";

let dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "mictlanx-catalog-keys-"));
  dirs.push(dir);
  return dir;
}

function keyOf(overrides: Partial<AccessKeyRecord> = {}): AccessKeyRecord {
  return { accessKey: newAccessKeyId(), secretKey: newSecretKey(), grants: [{ bucket: "photos", allow: ["read", "list"] }], admin: false, createdMs: 1_000, ...overrides };
}

/** The i-th id of a sequence (i in base 32, in the ids' alphabet). */
function idNumbered(i: number): string {
  let digits = "";
  for (let rest = i, place = 0; place < 18; place += 1, rest = Math.floor(rest / 32)) digits = accessKeyIdAlphabet[rest % 32] + digits;
  return `MX${digits}`;
}

const masterKey = () => crypto.getRandomValues(new Uint8Array(32));

describe("sealing", () => {
  test("a sealed secret opens with its master key and id, and holds no plaintext", async () => {
    const key = masterKey();
    const sealed = seal(key, "MXA2B3C4D5E6F7G2H3I4", "the secret");
    expect(unseal(key, "MXA2B3C4D5E6F7G2H3I4", sealed)).toBe("the secret");
    expect(Buffer.from(sealed).includes(Buffer.from("the secret"))).toBe(false);
    expect(Buffer.from(seal(key, "MXA2B3C4D5E6F7G2H3I4", "the secret")).equals(Buffer.from(sealed))).toBe(false); // a fresh nonce each time
  });

  test("another master key does not open it", async () => {
    const sealed = seal(masterKey(), "MXA2B3C4D5E6F7G2H3I4", "the secret");
    expect(unseal(masterKey(), "MXA2B3C4D5E6F7G2H3I4", sealed)).toBeUndefined();
  });

  test("a blob changed anywhere (version, nonce, ciphertext, tag) or cut short does not open", async () => {
    const key = masterKey();
    const sealed = seal(key, "MXA2B3C4D5E6F7G2H3I4", "the secret");
    for (const at of [0, 1, 13, sealed.byteLength - 1]) {
      const changed = new Uint8Array(sealed);
      changed[at] = changed[at]! ^ 0x01;
      expect(unseal(key, "MXA2B3C4D5E6F7G2H3I4", changed)).toBeUndefined();
    }
    expect(unseal(key, "MXA2B3C4D5E6F7G2H3I4", sealed.subarray(0, sealed.byteLength - 1))).toBeUndefined();
    expect(unseal(key, "MXA2B3C4D5E6F7G2H3I4", sealed.subarray(0, 20))).toBeUndefined();
  });

  test("the id is bound in: a secret sealed for one key does not open as another's", async () => {
    const key = masterKey();
    const sealed = seal(key, "MXA2B3C4D5E6F7G2H3I4", "the secret");
    expect(unseal(key, "MXA2B3C4D5E6F7G2H3I5", sealed)).toBeUndefined();
  });
});

forEachEngine("catalog-keys", (engine) => {
  /** Run SQL on the catalog behind the store's back (a damaged row, keys made in bulk): `sqlite` with ?, `postgres` with $n. */
  async function behindItsBack(opened: OpenedCatalog, statements: { sqlite: string; postgres: string }, rows: unknown[][]): Promise<void> {
    if (engine.name === "sqlite") {
      const db = new Database(opened.location);
      db.transaction(() => {
        for (const row of rows) db.run(statements.sqlite, row as string[]);
      })();
      db.close();
      return;
    }
    const sql = new SQL(opened.location, { max: 1 });
    try {
      await sql.begin(async (tx) => {
        for (const row of rows) await tx.unsafe(statements.postgres, row);
      });
    } finally {
      await sql.close();
    }
  }

  describe("secrets.key", () => {
    test("is made with the catalog, 32 bytes, mode 0600, and the same one is used on every open", async () => {
      const opened = await engine.open();
      const key = keyOf();
      await opened.store.createAccessKey(key);
      await opened.store.close();
      const file = join(opened.dir, "secrets.key");
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readFileSync(file).byteLength).toBe(32);
      const again = await opened.reopen();
      expect((await again.getAccessKey(key.accessKey))?.secretKey).toBe(key.secretKey);
    });

    test("a copy of the catalog alone (the sqlite file, a pg_dump) does not hold any secret in the clear", async () => {
      const opened = await engine.open();
      const keys = [keyOf(), keyOf(), keyOf()];
      for (const key of keys) await opened.store.createAccessKey(key);
      await opened.store.close(); // sqlite: checkpoints the WAL into the file
      let bytes: Buffer;
      if (engine.name === "sqlite") {
        const path = opened.location;
        bytes = Buffer.concat([readFileSync(path), ...(existsSync(`${path}-wal`) ? [readFileSync(`${path}-wal`)] : [])]);
      } else {
        const dump = Bun.spawnSync([join(findPostgres()!.dir, "pg_dump"), "--dbname", opened.location], { stderr: "pipe" });
        expect(dump.exitCode).toBe(0);
        bytes = dump.stdout;
        expect(bytes.includes(Buffer.from("CREATE TABLE public.access_keys"))).toBe(true);
      }
      for (const key of keys) {
        expect(bytes.includes(Buffer.from(key.accessKey))).toBe(true);
        expect(bytes.includes(Buffer.from(key.secretKey))).toBe(false);
      }
    });

    test("a catalog that holds keys refuses to open without its secrets.key, and never makes a new one", async () => {
      const opened = await engine.open();
      await opened.store.createAccessKey(keyOf());
      await opened.store.close();
      rmSync(join(opened.dir, "secrets.key"));
      const error = await rejection(opened.reopen());
      expect(error.message).toContain("holds 1 access keys but their master key");
      expect(error.message).toContain("restore secrets.key");
      expect(existsSync(join(opened.dir, "secrets.key"))).toBe(false);
    });

    test("another secrets.key (a wrong master key) is refused at open, with what to do", async () => {
      const opened = await engine.open();
      await opened.store.createAccessKey(keyOf());
      await opened.store.close();
      writeFileSync(join(opened.dir, "secrets.key"), masterKey());
      expect((await rejection(opened.reopen())).message).toContain("is not the master key this catalog's 1 access keys were sealed with");
      writeFileSync(join(opened.dir, "secrets.key"), masterKey().subarray(0, 31));
      expect((await rejection(opened.reopen())).message).toContain("holds 31 bytes");
    });

    test.if(engine.name === "sqlite")("a catalog without keys makes itself a new secrets.key when it has none", async () => {
      const opened = await engine.open();
      await opened.store.close();
      rmSync(join(opened.dir, "secrets.key"));
      const catalog = await opened.reopen();
      expect(readFileSync(join(opened.dir, "secrets.key")).byteLength).toBe(32);
      const key = keyOf();
      await await catalog.createAccessKey(key);
      expect((await await catalog.getAccessKey(key.accessKey))?.secretKey).toBe(key.secretKey);
    });

    // Several SPMs share a PostgreSQL catalog: one with another secrets.key would seal secrets
    // the others cannot open, so it is refused even before any key exists.
    test.if(engine.name === "postgres")("every SPM on a catalog needs the same secrets.key: another one is refused even while it holds no key", async () => {
      const opened = await engine.open();
      const other = join(tempDir(), "secrets.key");
      const error = await rejection(opened.reopen({ secretsKeyPath: other })); // a second SPM beside the first, its own new key
      expect(error.message).toContain("every SPM sharing a catalog needs the same secrets.key");
      writeFileSync(other, readFileSync(join(opened.dir, "secrets.key")));
      const second = await opened.reopen({ secretsKeyPath: other }); // the same file copied over: it opens
      const key = keyOf();
      await opened.store.createAccessKey(key);
      expect((await second.getAccessKey(key.accessKey))?.secretKey).toBe(key.secretKey);
      expect(second.vssId).toBe(opened.store.vssId);
    });

    test("a sealed secret moved onto another key's row does not open (the id is the associated data)", async () => {
      const opened = await engine.open();
      const [a, b] = [keyOf(), keyOf()];
      await opened.store.createAccessKey(a);
      await opened.store.createAccessKey(b);
      await opened.store.close();
      await behindItsBack(
        opened,
        {
          sqlite: "UPDATE access_keys SET secret_sealed = (SELECT secret_sealed FROM access_keys WHERE access_key = ?) WHERE access_key = ?",
          postgres: "UPDATE access_keys SET secret_sealed = (SELECT secret_sealed FROM access_keys WHERE access_key = $1) WHERE access_key = $2",
        },
        [[a.accessKey, b.accessKey]],
      );
      const reopened = await opened.reopen();
      expect((await reopened.getAccessKey(a.accessKey))?.secretKey).toBe(a.secretKey);
      const error = await rejection(reopened.getAccessKey(b.accessKey));
      expect(error.code).toBe("internal");
      expect(error.message).toContain(`sealed secret of access key ${b.accessKey} does not open`);
    });
  });

  describe("key methods", () => {
    test("create, get (with the secret), revoke (idempotent), unknown ids", async () => {
      const { store: catalog } = await engine.open();
      const key = keyOf({ grants: [{ bucket: "photos", allow: ["list", "read", "list"] }, { bucket: "photos", allow: ["delete"] }], admin: true });
      expect(await catalog.createAccessKey(key)).toEqual({ accessKey: key.accessKey, grants: [{ bucket: "photos", allow: ["read", "list", "delete"] }], admin: true, createdMs: 1_000 });
      expect(await catalog.getAccessKey(key.accessKey)).toEqual({ ...key, grants: [{ bucket: "photos", allow: ["read", "list", "delete"] }] });
      expect((await rejection(catalog.createAccessKey({ ...key, secretKey: newSecretKey() }))).code).toBe("conflict");
      expect((await catalog.revokeAccessKey(key.accessKey, 2_000))?.revokedMs).toBe(2_000);
      expect((await catalog.revokeAccessKey(key.accessKey, 3_000))?.revokedMs).toBe(2_000); // the first revocation stands
      expect((await catalog.getAccessKey(key.accessKey))?.revokedMs).toBe(2_000);
      const unknown = newAccessKeyId();
      expect(await catalog.getAccessKey(unknown)).toBeUndefined();
      expect(await catalog.revokeAccessKey(unknown, 2_000)).toBeUndefined();
      expect(await catalog.countAccessKeys()).toBe(1);
    });

    test("what is not a key is refused: bad ids, secrets, grants; a key of nothing", async () => {
      const { store: catalog } = await engine.open();
      expect((await rejection(catalog.createAccessKey(keyOf({ accessKey: "AKIA0000" })))).message).toContain("is not an access key id");
      expect((await rejection(catalog.createAccessKey(keyOf({ secretKey: "short" })))).message).toContain("40 letters and digits");
      expect((await rejection(catalog.createAccessKey(keyOf({ grants: [{ bucket: "a*b", allow: ["read"] }] })))).message).toContain("a * may only end");
      expect((await rejection(catalog.createAccessKey(keyOf({ grants: [{ bucket: "a", allow: [] }] })))).code).toBe("bad_request");
      expect((await rejection(catalog.createAccessKey(keyOf({ grants: [], admin: false })))).message).toContain("could do nothing");
      expect((await catalog.createAccessKey(keyOf({ grants: [], admin: true }))).grants).toEqual([]); // admin alone is something
      expect((await rejection(catalog.getAccessKey("nope"))).code).toBe("bad_request");
      expect(await catalog.countAccessKeys()).toBe(1);
    });

    test(`pages in id order, never a secret, at most the limit (accessKeysPageMax ${limits.accessKeysPageMax})`, async () => {
      const { store: catalog } = await engine.open();
      const ids = Array.from({ length: 25 }, () => newAccessKeyId());
      for (const accessKey of ids) await catalog.createAccessKey(keyOf({ accessKey }));
      const seen: string[] = [];
      let after: string | undefined;
      do {
        const page = await catalog.listAccessKeys({ ...(after === undefined ? {} : { after }), limit: 10 });
        expect(page.keys.length).toBeLessThanOrEqual(10);
        for (const key of page.keys) expect(Object.keys(key).sort()).toEqual(["accessKey", "admin", "createdMs", "grants"]);
        seen.push(...page.keys.map((key) => key.accessKey));
        after = page.next;
      } while (after !== undefined);
      expect(seen).toEqual([...ids].sort());
      expect((await catalog.listAccessKeys({ limit: limits.accessKeysPageMax })).keys).toHaveLength(25);
      expect((await rejection(catalog.listAccessKeys({ limit: limits.accessKeysPageMax + 1 }))).code).toBe("bad_request");
      expect((await rejection(catalog.listAccessKeys({ limit: 0 }))).code).toBe("bad_request");
    });

    test("a page of keys with many long grants ends at metadataPageBytesMax, however many keys the limit would take", async () => {
      const { store: catalog } = await engine.open();
      const grants = Array.from({ length: limits.grantsPerKeyMax }, (_, i) => ({ bucket: `${String(i).padStart(3, "0")}${"b".repeat(limits.grantBucketPatternBytesMax - 4)}*`, allow: ["read" as const, "list" as const, "write" as const, "delete" as const] }));
      const count = 300; // ~13 KiB a key: ~4 MiB in all, twice a page
      for (let i = 0; i < count; i += 1) await catalog.createAccessKey(keyOf({ grants }));
      const first = await catalog.listAccessKeys({ limit: limits.accessKeysPageMax });
      expect(first.keys.length).toBeLessThan(count);
      expect(first.keys.length).toBeGreaterThan(100);
      expect(Buffer.byteLength(JSON.stringify(first.keys))).toBeLessThanOrEqual(limits.metadataPageBytesMax);
      let total = first.keys.length;
      for (let after = first.next; after !== undefined; ) {
        const page = await catalog.listAccessKeys({ after, limit: limits.accessKeysPageMax });
        total += page.keys.length;
        after = page.next;
      }
      expect(total).toBe(count);
    });

    test(`accessKeysMax (${limits.accessKeysMax}) keys at most, revoked ones included`, async () => {
      const opened = await engine.open();
      await behindItsBack(
        opened,
        {
          sqlite: "INSERT INTO access_keys (access_key, secret_sealed, grants, admin, created_ms, revoked_ms) VALUES (?, x'00', '[]', 1, 0, 1)",
          postgres: "INSERT INTO access_keys (access_key, secret_sealed, grants, admin, created_ms, revoked_ms) SELECT unnest($1::text[]), '\\x00', '[]', 1, 0, 1",
        },
        engine.name === "sqlite" ? Array.from({ length: limits.accessKeysMax - 1 }, (_, i) => [idNumbered(i)]) : [[Array.from({ length: limits.accessKeysMax - 1 }, (_, i) => idNumbered(i))]],
      );
      const catalog = opened.store;
      expect(await await catalog.countAccessKeys()).toBe(limits.accessKeysMax - 1);
      await await catalog.createAccessKey(keyOf()); // the last one that fits
      expect((await rejection(catalog.createAccessKey(keyOf()))).message).toContain("accessKeysMax");
      expect(await await catalog.countAccessKeys()).toBe(limits.accessKeysMax);
    });
  });
});

describe("the catalog from before keys (schema 3)", () => {
  test("is migrated at open: its balls and peers are kept, keys and the audit log work", async () => {
    const dir = tempDir();
    const path = join(dir, "catalog.sqlite");
    const before = Catalog.open(path);
    for (const id of ["p1", "p2"]) before.upsertPeer(peerRecord(id));
    const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
    before.commitBall(ball, chunks, {});
    before.close();
    // Take it back to schema 3: what this build added is only the two tables and the check value.
    const db = new Database(path);
    db.run("DROP TABLE access_keys");
    db.run("DROP TABLE audit_log");
    db.run("DELETE FROM meta WHERE key = 'secrets_key_check'");
    db.run("UPDATE meta SET value = '3' WHERE key = 'schema_version'");
    db.close();
    rmSync(join(dir, "secrets.key"));

    const catalog = Catalog.open(path);
    expect((await catalog.getBall("bucket", "k"))?.objectId).toBe("o1");
    expect((await catalog.getPeer("p2"))?.id).toBe("p2");
    expect(await catalog.countAccessKeys()).toBe(0);
    const key = keyOf();
    await catalog.createAccessKey(key);
    expect((await catalog.getAccessKey(key.accessKey))?.secretKey).toBe(key.secretKey);
    await catalog.appendAudit({ atMs: 5, accessKey: key.accessKey, remote: "10.0.0.1", action: "key.create", target: key.accessKey, outcome: "ok" });
    expect((await catalog.listAudit({ limit: 10 })).records.map((record) => record.action)).toEqual(["key.create"]);
    expect(await catalog.audit()).toEqual([]);
    await catalog.close();
    const version = new Database(path);
    expect(version.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'schema_version'").get()?.value).toBe("4");
    version.close();
  });
});
