// The catalog when its disk or its server misbehaves, when it comes from an older or newer build,
// and the identity and reader grace it keeps. sqlite's faults are its own (a page limit makes it
// full, a second connection holds the lock, an fsync replaced to fail), on real files in temp
// dirs; PostgreSQL's are a real server's: stopped, killed, a lock held by another client.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { Catalog, type CatalogStore } from "../../src/catalog/index.ts";
import { PostgresStore } from "../../src/catalog/postgres/store.ts";
import { lockKeys } from "../../src/catalog/postgres/db.ts";
import { forEachEngine, type TestEngine } from "../support/catalog-engines.ts";
import { MictlanxError } from "../../src/lib/errors.ts";
import { ballOf, peerRecord } from "./fixtures/catalog-records.ts";
import { rejection, thrown } from "../support/errors.ts";

let dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "mictlanx-catalog-faults-"));
  dirs.push(dir);
  return join(dir, "catalog.sqlite");
}



function withPeers(catalog: Catalog): Catalog {
  for (const id of ["p1", "p2", "p3"]) catalog.upsertPeer(peerRecord(id));
  return catalog;
}

describe("a disk that misbehaves", () => {
  test("a full disk is `full` with a message that says what to do; nothing half-written; writes work again when there is room", () => {
    const path = tempPath();
    const catalog = withPeers(Catalog.open(path));
    const db = (catalog as unknown as { db: Database }).db;
    const pages = db.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count;
    db.run(`PRAGMA max_page_count = ${pages + 1}`);
    let committed = 0;
    let error: MictlanxError | undefined;
    for (let n = 0; n < 500 && !error; n += 1) {
      const { ball, chunks } = ballOf({ key: `k${n}`, objectId: `o${n}`, peers: [["p1", "p2"]], tags: { pad: "x".repeat(900) } });
      try {
        catalog.commitBall(ball, chunks, {});
        committed += 1;
      } catch (caught) {
        error = caught as MictlanxError;
      }
    }
    expect(error?.code).toBe("full");
    expect(error?.message).toContain("free some space");
    expect(catalog.stats().balls).toBe(committed);
    expect(catalog.audit()).toEqual([]);
    db.run("PRAGMA max_page_count = 1073741823");
    const { ball, chunks } = ballOf({ key: "after", objectId: "o-after", peers: [["p1", "p2"]] });
    catalog.commitBall(ball, chunks, {});
    expect(catalog.stats().balls).toBe(committed + 1);
    catalog.close();
  });

  test("a lock held by another process past the busy timeout is `unavailable`, and the catalog serves again after", () => {
    const path = tempPath();
    const catalog = withPeers(Catalog.open(path));
    const other = new Database(path);
    other.run("PRAGMA busy_timeout = 0");
    other.run("BEGIN IMMEDIATE");
    (catalog as unknown as { db: Database }).db.run("PRAGMA busy_timeout = 50");
    const error = thrown(() => catalog.setDraining("p1", true));
    expect(error.code).toBe("unavailable");
    expect(error.message).toContain("locked by another process");
    other.run("ROLLBACK");
    other.close();
    expect(catalog.setDraining("p1", true)).toBe(true);
    catalog.close();
  });

  test("after a failed fsync the catalog takes no more writes until reopened; reads go on; health says why", async () => {
    const path = tempPath();
    let failSync = false;
    const catalog = withPeers(
      Catalog.open(path, {
        deferredSync: true,
        walSync: async (handle) => {
          if (failSync) throw new Error("EIO: i/o error, fdatasync");
          await handle.datasync();
        },
      }),
    );
    const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
    catalog.commitBall(ball, chunks, {});
    await catalog.syncWal();
    failSync = true;
    catalog.setDraining("p3", true);
    const error = await rejection(catalog.syncWal());
    expect(error.code).toBe("unavailable");
    expect(error.message).toContain("restart the SPM");
    expect(catalog.health()).toEqual({ writable: false, problem: error.message });
    failSync = false;
    expect(thrown(() => catalog.setDraining("p2", true)).message).toBe(error.message);
    expect((await rejection(catalog.syncWal())).message).toBe(error.message); // a later fsync is no proof either
    expect(catalog.getBall("bucket", "k")?.objectId).toBe("o1");
    catalog.close();
    const reopened = Catalog.open(path, { deferredSync: true });
    expect(reopened.health()).toEqual({ writable: true });
    reopened.setDraining("p2", true);
    reopened.close();
  });
});

describe("an older catalog", () => {
  test("a schema 1 catalog is migrated at open: its balls, peers and garbage are kept and the new fields work", () => {
    const path = tempPath();
    const old = new Database(path);
    old.run("PRAGMA journal_mode = WAL");
    old.run(readFileSync(join(import.meta.dir, "fixtures", "catalog-v1.sql"), "utf8"));
    old.run(`INSERT INTO peers (id, address, capacity_bytes, used_bytes, free_bytes, chunks, state, last_heartbeat_ms, registered_ms, draining)
             VALUES ('p1', '127.0.0.1:1', 100, 0, 100, 0, 'up', 1, 1, 0), ('p2', '127.0.0.1:2', 100, 0, 100, 0, 'up', 1, 1, 0)`);
    old.close();
    const catalog = Catalog.open(path);
    expect(catalog.getPeer("p1")?.instanceId).toBeUndefined();
    const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
    catalog.commitBall(ball, chunks, {});
    catalog.deleteBall("bucket", "k", { atMs: 1_000, readerGraceMs: 5_000 });
    expect(catalog.findRetiredChunk("o1", 0)?.peers).toEqual(["p1", "p2"]);
    catalog.upsertPeer({ ...catalog.getPeer("p1")!, instanceId: "i-1" });
    expect(catalog.getPeer("p1")?.instanceId).toBe("i-1");
    expect(catalog.audit()).toEqual([]);
    catalog.close();
  });
});

forEachEngine("catalog-faults", (engine) => {
  async function withPeersStore(on: TestEngine): Promise<CatalogStore> {
    const { store } = await on.open();
    for (const id of ["p1", "p2", "p3"]) await store.upsertPeer(peerRecord(id));
    return store;
  }

  describe("identity", () => {
    test("a catalog's VSS id is made once and kept across reopens; another catalog has another", async () => {
      const opened = await engine.open();
      const id = opened.store.vssId;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      await opened.store.close();
      expect((await opened.reopen()).vssId).toBe(id);
      expect((await engine.open()).store.vssId).not.toBe(id);
    });

    test("a catalog from a newer build is refused, with what to do", async () => {
      const opened = await engine.open();
      await opened.store.close();
      if (engine.name === "sqlite") {
        const db = new Database(opened.location);
        db.run("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
        db.close();
      } else {
        const sql = new SQL(opened.location, { max: 1 });
        await sql`UPDATE meta SET value = '99' WHERE key = 'schema_version'`;
        await sql.close();
      }
      expect((await rejection(opened.reopen())).message).toContain("run a newer mictlanx");
    });
  });

  describe("readers' grace", () => {
    test("a retired version's replicas are found and kept until the grace is over, then collected", async () => {
      const catalog = await withPeersStore(engine);
      const first = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p2", "p3"]] });
      const second = ballOf({ key: "k", objectId: "o2", peers: [["p1", "p3"]] });
      await catalog.commitBall(first.ball, first.chunks, {});
      await catalog.commitBall(second.ball, second.chunks, { retire: { atMs: 10_000, readerGraceMs: 60_000 } });
      expect(await catalog.findChunk("o1", 1)).toBeUndefined();
      expect(await catalog.findRetiredChunk("o1", 1)).toEqual({
        bucket: "bucket", size: first.chunks[1]!.size, checksum: first.chunks[1]!.checksum, peers: ["p2", "p3"], reason: "overwritten", retiredMs: 10_000,
      });
      expect(await catalog.takeGarbage({ peerIds: ["p1", "p2", "p3"], limit: 100, nowMs: 69_999 })).toEqual([]);
      expect(await catalog.takeGarbage({ peerIds: ["p1", "p2", "p3"], limit: 100, nowMs: 70_000 })).toHaveLength(4);
      // Garbage that needs no grace (a trimmed replica) is due at once, ahead of the waiting kind.
      await catalog.addReplica("o2", 0, "p2");
      await catalog.removeReplica("o2", 0, "p2");
      expect(await catalog.takeGarbage({ peerIds: ["p2"], limit: 100, nowMs: 0 })).toEqual([{ objectId: "o2", index: 0, peerId: "p2", bucket: "bucket" }]);
      await catalog.ackGarbage(await catalog.takeGarbage({ limit: 100 }));
      expect(await catalog.findRetiredChunk("o1", 1)).toBeUndefined();
      expect(await catalog.retiredObject("o1")).toEqual({ bucket: "bucket", reason: "overwritten", retiredMs: 10_000 });
      expect(await catalog.audit()).toEqual([]);
      await catalog.close();
    });

    test("a placement never written (same chunk, another peer) does not hide a retired version's replicas", async () => {
      const catalog = await withPeersStore(engine);
      const first = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
      // The upload was first placed on p3 and p1; p3 failed and p2 took its place.
      await catalog.addIntent({ objectId: "o1", bucket: "bucket", key: "k", createdMs: 1, expiresMs: 1_000_000, placements: [{ index: 0, peers: ["p1", "p3"] }] });
      await catalog.addIntentPlacements("o1", [{ index: 0, peers: ["p2"] }]);
      await catalog.commitBall(first.ball, first.chunks, {});
      await catalog.commitBall(ballOf({ key: "k", objectId: "o2", peers: [["p1", "p3"]] }).ball, ballOf({ key: "k", objectId: "o2", peers: [["p1", "p3"]] }).chunks, {
        retire: { atMs: 10, readerGraceMs: 60_000 },
      });
      expect((await catalog.findRetiredChunk("o1", 0))?.peers).toEqual(["p1", "p2"]);
      await catalog.close();
    });
  });

  describe("a commit is checked against what the SPM placed", () => {
    async function underWay(catalog: CatalogStore, objectId: string, placements: Array<{ index: number; peers: string[] }>) {
      await catalog.addIntent({ objectId, bucket: "bucket", key: "k", createdMs: 1, expiresMs: 1_000_000, placements });
    }

    test("a replica on a peer never placed for that chunk is a bad request that changes nothing", async () => {
      const catalog = await withPeersStore(engine);
      await underWay(catalog, "o1", [{ index: 0, peers: ["p1", "p2"] }, { index: 1, peers: ["p1", "p2"] }]);
      const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p1", "p3"]] });
      const before = await catalog.stats();
      const error = await rejection(catalog.commitBall(ball, chunks, { requirePlacements: true }));
      expect(error.code).toBe("bad_request");
      expect(error.message).toContain("chunk 1");
      expect(error.message).toContain("p3");
      expect(await catalog.stats()).toEqual(before);
      expect(await catalog.getIntent("o1")).toBeDefined(); // the upload may still commit what it really wrote
      const fixed = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p1", "p2"]] });
      expect((await catalog.commitBall(fixed.ball, fixed.chunks, { requirePlacements: true })).version).toBe(1);
      await catalog.close();
    });

    test("a commit with no upload under way is refused, saying why", async () => {
      const catalog = await withPeersStore(engine);
      const { ball, chunks } = ballOf({ key: "k", objectId: "never-begun", peers: [["p1", "p2"]] });
      expect((await rejection(catalog.commitBall(ball, chunks, { requirePlacements: true }))).code).toBe("conflict");
      expect((await catalog.stats()).balls).toBe(0);
      await catalog.close();
    });

    test("a compressed ball cannot declare more bytes than its chunks can hold: totals stay exact", async () => {
      const catalog = await withPeersStore(engine);
      await underWay(catalog, "o1", [{ index: 0, peers: ["p1", "p2"] }]);
      const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]], tags: { compression: "zstd" } });
      const huge = { ...ball, size: Number.MAX_SAFE_INTEGER };
      expect((await rejection(catalog.commitBall(huge, chunks, { requirePlacements: true }))).code).toBe("bad_request");
      expect((await catalog.stats()).bytes).toBe(0);
      expect((await catalog.commitBall({ ...ball, size: ball.chunkSize }, chunks, { requirePlacements: true })).version).toBe(1);
      expect(Number.isSafeInteger((await catalog.stats()).bytes)).toBe(true);
      await catalog.close();
    });
  });
  const put = (n: number) => ballOf({ key: `k${n}`, objectId: `o${n}`, peers: [["p1", "p2"]] });

  describe.if(engine.name === "postgres")("a server that misbehaves", () => {
    test("a stopped server: calls are `unavailable` and name the database (never a password); health says why; all works again once it is back", async () => {
      const server = await engine.server();
      const opened = await engine.open();
      const url = new URL(opened.location);
      url.password = "hunter2"; // the test server trusts loopback; the password must show nowhere all the same
      const catalog = await PostgresStore.open(url.href, { secretsKeyPath: `${opened.dir}/secrets.key` });
      for (const id of ["p1", "p2"]) await catalog.upsertPeer(peerRecord(id));
      await catalog.commitBall(put(1).ball, put(1).chunks);
      expect(catalog.location).toBe(`postgres://127.0.0.1:${server.port}${new URL(opened.location).pathname}`);
      await server.stop();
      try {
        for (const call of [catalog.getBall("bucket", "k1"), catalog.commitBall(put(2).ball, put(2).chunks), catalog.group([(tx) => tx.setMeta("m", "v")])]) {
          const error = await rejection(call);
          expect(error.code).toBe("unavailable");
          expect(error.message).toContain(`the catalog at ${catalog.location} could not be reached`);
          expect(error.message).not.toContain("hunter2");
        }
        const health = await catalog.health();
        expect(health.writable).toBe(false);
        expect(health.problem).toContain(catalog.location);
      } finally {
        await server.start();
      }
      await eventuallyOk(() => catalog.getBall("bucket", "k1"));
      expect((await catalog.getBall("bucket", "k1"))?.objectId).toBe("o1");
      expect(await catalog.commitBall(put(2).ball, put(2).chunks)).toEqual({ version: 1 });
      expect(await catalog.health()).toEqual({ writable: true });
      expect(await catalog.audit()).toEqual([]);
      await catalog.close();
    });

    test("what a call acknowledged survives the server's crash (stopped at once, no checkpoint): commit returns only once it is durable", async () => {
      const server = await engine.server();
      const opened = await engine.open();
      for (const id of ["p1", "p2"]) await opened.store.upsertPeer(peerRecord(id));
      const acked: number[] = [];
      const writes = Array.from({ length: 40 }, (_, n) => opened.store.commitBall(put(n).ball, put(n).chunks).then(() => acked.push(n)));
      await Promise.all(writes);
      await opened.store.group([(tx) => tx.setMeta("after", "group")]);
      await server.stop(); // pg_ctl stop -m immediate: like a crash, recovery replays the WAL
      await server.start();
      const again = await opened.reopen();
      for (const n of acked) expect((await again.getBallMeta("bucket", `k${n}`))?.objectId).toBe(`o${n}`);
      expect(await again.getMeta("after")).toBe("group");
      expect((await again.stats()).balls).toBe(40);
      expect(await again.audit()).toEqual([]);
    });

    test("a write lock held by another client past the lock timeout is `unavailable`; the catalog writes again once it is let go", async () => {
      const opened = await engine.open();
      const catalog = await PostgresStore.open(opened.location, { secretsKeyPath: `${opened.dir}/secrets.key`, lockTimeoutMs: 100 });
      try {
        await catalog.upsertPeer(peerRecord("p1"));
        const other = new SQL(opened.location, { max: 1 });
        const held = await other.reserve();
        await held`SELECT pg_advisory_lock(${lockKeys.writer})`;
        const error = await rejection(catalog.setDraining("p1", true));
        expect(error.code).toBe("unavailable");
        expect(error.message).toContain("another SPM writing to this catalog");
        expect((await catalog.getPeer("p1"))?.draining).toBe(false); // reads go on meanwhile
        await held`SELECT pg_advisory_unlock(${lockKeys.writer})`;
        held.release();
        await other.close();
        expect(await catalog.setDraining("p1", true)).toBe(true);
      } finally {
        await catalog.close();
      }
    });

    test("SPMs opening an empty database at once migrate it once and agree on its VSS id; a database of other tables is refused", async () => {
      const opened = await engine.open();
      const url = await (await engine.server()).createDatabase();
      const stores = await Promise.all([0, 1, 2].map(() => PostgresStore.open(url, { secretsKeyPath: `${opened.dir}/secrets.key` })));
      try {
        expect(new Set(stores.map((store) => store.vssId)).size).toBe(1);
        expect(await stores[0]!.audit()).toEqual([]);
      } finally {
        for (const store of stores) await store.close();
      }
      const foreign = await (await engine.server()).createDatabase();
      const sql = new SQL(foreign, { max: 1 });
      await sql`CREATE TABLE invoices (id INTEGER)`;
      await sql.close();
      const error = await rejection(PostgresStore.open(foreign, { secretsKeyPath: `${opened.dir}/secrets.key` }));
      expect(error.code).toBe("usage");
      expect(error.message).toContain("holds tables but no mictlanx catalog");
    });
  });
});

/** Until `call` resolves (the pool reconnects on its own once the server is back). */
async function eventuallyOk(call: () => Promise<unknown>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await call();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await Bun.sleep(100);
    }
  }
}
