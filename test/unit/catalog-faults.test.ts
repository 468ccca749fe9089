// The catalog when its disk misbehaves, when it comes from an older build, and the identity and
// reader grace it keeps. Real SQLite files in temp dirs; the faults are SQLite's own (a page
// limit makes it full, a second connection holds the lock) or an fsync replaced to fail.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Catalog } from "../../src/catalog/index.ts";
import { MictlanxError } from "../../src/lib/errors.ts";
import { ballOf, peerRecord } from "./fixtures/catalog-records.ts";
import { thrown } from "../support/errors.ts";

let dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "mictlanx-catalog-faults-"));
  dirs.push(dir);
  return join(dir, "catalog.sqlite");
}

async function rejection(promise: Promise<unknown>): Promise<MictlanxError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(MictlanxError);
    return error as MictlanxError;
  }
  throw new Error("expected a rejection");
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

  test("a catalog from a newer build is refused, with what to do", () => {
    const path = tempPath();
    Catalog.open(path).close();
    const db = new Database(path);
    db.run("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    db.close();
    expect(thrown(() => Catalog.open(path)).message).toContain("run a newer mictlanx");
  });
});

describe("identity", () => {
  test("a catalog's VSS id is made once and kept across reopens; another catalog has another", () => {
    const path = tempPath();
    const first = Catalog.open(path);
    const id = first.vssId;
    first.close();
    const again = Catalog.open(path);
    expect(again.vssId).toBe(id);
    again.close();
    const other = Catalog.open(tempPath());
    expect(other.vssId).not.toBe(id);
    other.close();
  });
});

describe("readers' grace", () => {
  test("a retired version's replicas are found and kept until the grace is over, then collected", () => {
    const catalog = withPeers(Catalog.open(tempPath()));
    const first = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p2", "p3"]] });
    const second = ballOf({ key: "k", objectId: "o2", peers: [["p1", "p3"]] });
    catalog.commitBall(first.ball, first.chunks, {});
    catalog.commitBall(second.ball, second.chunks, { retire: { atMs: 10_000, readerGraceMs: 60_000 } });
    expect(catalog.findChunk("o1", 1)).toBeUndefined();
    expect(catalog.findRetiredChunk("o1", 1)).toEqual({
      bucket: "bucket", size: first.chunks[1]!.size, checksum: first.chunks[1]!.checksum, peers: ["p2", "p3"], reason: "overwritten", retiredMs: 10_000,
    });
    expect(catalog.takeGarbage({ peerIds: ["p1", "p2", "p3"], limit: 100, nowMs: 69_999 })).toEqual([]);
    expect(catalog.takeGarbage({ peerIds: ["p1", "p2", "p3"], limit: 100, nowMs: 70_000 })).toHaveLength(4);
    // Garbage that needs no grace (a trimmed replica) is due at once, ahead of the waiting kind.
    catalog.addReplica("o2", 0, "p2");
    catalog.removeReplica("o2", 0, "p2");
    expect(catalog.takeGarbage({ peerIds: ["p2"], limit: 100, nowMs: 0 })).toEqual([{ objectId: "o2", index: 0, peerId: "p2", bucket: "bucket" }]);
    catalog.ackGarbage(catalog.takeGarbage({ limit: 100 }));
    expect(catalog.findRetiredChunk("o1", 1)).toBeUndefined();
    expect(catalog.retiredObject("o1")).toEqual({ bucket: "bucket", reason: "overwritten", retiredMs: 10_000 });
    expect(catalog.audit()).toEqual([]);
    catalog.close();
  });

  test("a placement never written (same chunk, another peer) does not hide a retired version's replicas", () => {
    const catalog = withPeers(Catalog.open(tempPath()));
    const first = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
    // The upload was first placed on p3 and p1; p3 failed and p2 took its place.
    catalog.addIntent({ objectId: "o1", bucket: "bucket", key: "k", createdMs: 1, expiresMs: 1_000_000, placements: [{ index: 0, peers: ["p1", "p3"] }] });
    catalog.addIntentPlacements("o1", [{ index: 0, peers: ["p2"] }]);
    catalog.commitBall(first.ball, first.chunks, {});
    catalog.commitBall(ballOf({ key: "k", objectId: "o2", peers: [["p1", "p3"]] }).ball, ballOf({ key: "k", objectId: "o2", peers: [["p1", "p3"]] }).chunks, {
      retire: { atMs: 10, readerGraceMs: 60_000 },
    });
    expect(catalog.findRetiredChunk("o1", 0)?.peers).toEqual(["p1", "p2"]);
    catalog.close();
  });
});

describe("a commit is checked against what the SPM placed", () => {
  function underWay(catalog: Catalog, objectId: string, placements: Array<{ index: number; peers: string[] }>) {
    catalog.addIntent({ objectId, bucket: "bucket", key: "k", createdMs: 1, expiresMs: 1_000_000, placements });
  }

  test("a replica on a peer never placed for that chunk is a bad request that changes nothing", () => {
    const catalog = withPeers(Catalog.open(tempPath()));
    underWay(catalog, "o1", [{ index: 0, peers: ["p1", "p2"] }, { index: 1, peers: ["p1", "p2"] }]);
    const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p1", "p3"]] });
    const before = catalog.stats();
    const error = thrown(() => catalog.commitBall(ball, chunks, { requirePlacements: true }));
    expect(error.code).toBe("bad_request");
    expect(error.message).toContain("chunk 1");
    expect(error.message).toContain("p3");
    expect(catalog.stats()).toEqual(before);
    expect(catalog.getIntent("o1")).toBeDefined(); // the upload may still commit what it really wrote
    const fixed = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p1", "p2"]] });
    expect(catalog.commitBall(fixed.ball, fixed.chunks, { requirePlacements: true }).version).toBe(1);
    catalog.close();
  });

  test("a commit with no upload under way is refused, saying why", () => {
    const catalog = withPeers(Catalog.open(tempPath()));
    const { ball, chunks } = ballOf({ key: "k", objectId: "never-begun", peers: [["p1", "p2"]] });
    expect(thrown(() => catalog.commitBall(ball, chunks, { requirePlacements: true })).code).toBe("conflict");
    expect(catalog.stats().balls).toBe(0);
    catalog.close();
  });

  test("a compressed ball cannot declare more bytes than its chunks can hold: totals stay exact", () => {
    const catalog = withPeers(Catalog.open(tempPath()));
    underWay(catalog, "o1", [{ index: 0, peers: ["p1", "p2"] }]);
    const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]], tags: { compression: "zstd" } });
    const huge = { ...ball, size: Number.MAX_SAFE_INTEGER };
    expect(thrown(() => catalog.commitBall(huge, chunks, { requirePlacements: true })).code).toBe("bad_request");
    expect(catalog.stats().bytes).toBe(0);
    expect(catalog.commitBall({ ...ball, size: ball.chunkSize }, chunks, { requirePlacements: true }).version).toBe(1);
    expect(Number.isSafeInteger(catalog.stats().bytes)).toBe(true);
    catalog.close();
  });
});

