// Group commit at the SPM: concurrent writes share a transaction, fail alone, and are durable
// when they resolve; while a group is open no other call of the store sees it (sqlite-store.ts).
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Catalog, SqliteStore, leaderTermKey } from "../../src/catalog/index.ts";
import { WriteBatcher } from "../../src/roles/spm/write-batcher.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A sqlite store in a temp dir; `syncs` counts the WAL's fdatasyncs, `slowSync` holds the next one until released. */
function openStore() {
  const dir = mkdtempSync(join(tmpdir(), "mictlanx-batcher-"));
  dirs.push(dir);
  const path = join(dir, "catalog.sqlite");
  const sync = { count: 0, hold: undefined as Promise<void> | undefined };
  const store = SqliteStore.open(path, {
    walSync: async (handle) => {
      sync.count += 1;
      await sync.hold;
      await handle.datasync();
    },
  }) as SqliteStore & Awaited<ReturnType<typeof SqliteStore.open>>;
  return { store, path, sync };
}

test("writes in one turn share one group and one fdatasync; each resolves with its own result once durable", async () => {
  const { store, path, sync } = openStore();
  const batcher = new WriteBatcher(store);
  const writes = Array.from({ length: 50 }, (_, i) => batcher.submit(async (tx) => (await tx.setMeta(`k${i}`, `v${i}`), i)));
  expect(await Promise.all(writes)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  expect(batcher.stats.flushes).toBe(1);
  expect(sync.count).toBe(1);
  await store.close();
  const reopened = Catalog.open(path);
  for (let i = 0; i < 50; i += 1) expect(reopened.getMeta(`k${i}`)).toBe(`v${i}`);
  reopened.close();
});

test("a write that throws fails alone; the others in its group commit, and its own changes are rolled back", async () => {
  const { store } = openStore();
  const batcher = new WriteBatcher(store);
  const good = batcher.submit((tx) => tx.setMeta("good", "yes"));
  const bad = batcher.submit(async (tx) => {
    await tx.setMeta("bad", "half");
    throw new Error("no");
  });
  const after = batcher.submit((tx) => tx.setMeta("after", "yes"));
  await good;
  await after;
  expect(await bad.then(() => "resolved", (error: Error) => error.message)).toBe("no");
  expect(await store.getMeta("good")).toBe("yes");
  expect(await store.getMeta("after")).toBe("yes");
  expect(await store.getMeta("bad")).toBeUndefined(); // rolled back to its savepoint
  expect(batcher.stats).toMatchObject({ flushes: 1, writes: 3, failed: 1 });
  await store.close();
});

test("one group in flight: writes that arrive during its fsync go together as the next group", async () => {
  const { store, sync } = openStore();
  const batcher = new WriteBatcher(store);
  let releaseSync: () => void = () => {};
  sync.hold = new Promise<void>((resolve) => (releaseSync = resolve)); // the disk is slow once
  const first = batcher.submit((tx) => tx.setMeta("first", "1"));
  while (sync.count === 0) await Bun.sleep(1); // the first group is now waiting on its fsync
  sync.hold = undefined;
  let laterDone = 0;
  const later = Array.from({ length: 30 }, (_, i) => batcher.submit((tx) => tx.setMeta(`later${i}`, "1")).then(() => (laterDone += 1)));
  await Bun.sleep(20);
  expect(sync.count).toBe(1); // no second transaction while the first is in flight
  expect(laterDone).toBe(0);
  releaseSync();
  await first;
  await Promise.all(later);
  expect(batcher.stats).toMatchObject({ flushes: 2, writes: 31 });
  await store.close();
});

test("while a group is open, other calls of the store wait for it and never see its uncommitted writes", async () => {
  const { store } = openStore();
  let inside: () => void = () => {};
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const group = store.group([
    async (tx) => {
      await tx.setMeta("grouped", "1");
      inside();
      await held; // a write that waits (tests only): the group stays open
      throw new Error("rolled back");
    },
  ]);
  await new Promise<void>((resolve) => (inside = resolve));
  let read: string | undefined | "pending" = "pending";
  const reading = store.getMeta("grouped").then((value) => (read = value));
  await Bun.sleep(20);
  expect(read).toBe("pending"); // held at the gate
  release();
  const outcomes = await group;
  expect(outcomes.map((outcome) => outcome.ok)).toEqual([false]);
  await reading;
  expect(read).toBeUndefined(); // the group's write was rolled back before the read ran
  await store.close();
});

test("a group whose flush fails fails every write in it, and the next group still runs", async () => {
  const { store } = openStore();
  const batcher = new WriteBatcher(store);
  const original = store.catalog.syncWal.bind(store.catalog);
  let failNext = true;
  store.catalog.syncWal = async () => {
    if (failNext) {
      failNext = false;
      throw new Error("disk went away");
    }
    await original();
  };
  const failed = await Promise.allSettled([batcher.submit((tx) => tx.setMeta("x", "1")), batcher.submit((tx) => tx.setMeta("y", "1"))]);
  expect(failed.map((result) => result.status)).toEqual(["rejected", "rejected"]);
  expect(await batcher.submit(async (tx) => (await tx.setMeta("z", "1"), "ok"))).toBe("ok");
  await store.close();
});

test("a failed fdatasync stops writes until a restart: the catalog says why, reads go on", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mictlanx-batcher-"));
  dirs.push(dir);
  const store = SqliteStore.open(join(dir, "catalog.sqlite"), { walSync: async () => Promise.reject(new Error("EIO")) });
  const batcher = new WriteBatcher(store);
  expect(await batcher.submit((tx) => tx.setMeta("a", "1")).then(() => "ok", (error: Error) => error.message)).toContain("fsync");
  expect((await store.health()).writable).toBe(false);
  expect(await batcher.submit((tx) => tx.setMeta("b", "1")).then(() => "ok", (error: Error) => error.message)).toContain("stopped taking writes");
  expect(await store.getMeta("b")).toBeUndefined();
  await store.close();
});

test("fencing: a group under an older leader term than the catalog has seen changes nothing; a newer term is recorded", async () => {
  const { store } = openStore();
  let term = 5;
  const batcher = new WriteBatcher(store, undefined, () => term);
  await batcher.submit((tx) => tx.setMeta("by-5", "1"));
  expect(await store.getMeta(leaderTermKey)).toBe("5");
  term = 7; // a new leader's first group
  await batcher.submit((tx) => tx.setMeta("by-7", "1"));
  expect(await store.getMeta(leaderTermKey)).toBe("7");
  // The old leader (term 5) comes back and writes: refused, nothing of it kept.
  const old = new WriteBatcher(store, undefined, () => 5);
  const refused = await old.submit((tx) => tx.setMeta("by-5-late", "1")).then(() => "written", (error: Error & { code?: string }) => `${error.code}: ${error.message}`);
  expect(refused).toStartWith("unavailable: this SPM led at term 5, but the catalog sqlite:");
  expect(refused).toContain("has seen term 7");
  expect(await store.getMeta("by-5-late")).toBeUndefined();
  expect(await store.getMeta(leaderTermKey)).toBe("7");
  // The same term again, and no term at all (a single SPM), both write.
  await batcher.submit((tx) => tx.setMeta("by-7-again", "1"));
  await new WriteBatcher(store).submit((tx) => tx.setMeta("unfenced", "1"));
  expect(await store.getMeta("by-7-again")).toBe("1");
  await store.close();
});

test("submitApplied answers once its transaction committed, before the flush; submit still waits for the flush; a write that throws still fails", async () => {
  const { store, path, sync } = openStore();
  const batcher = new WriteBatcher(store);
  let release!: () => void;
  sync.hold = new Promise<void>((resolve) => (release = resolve));
  let durable = false;
  const early = batcher.submitApplied(async (tx) => (await tx.setMeta("intent", "1"), "applied"));
  const late = batcher.submit((tx) => tx.setMeta("commit", "1")).then(() => (durable = true));
  const failing = batcher.submitApplied(async () => {
    throw new Error("refused");
  });
  const failed = failing.then(() => "resolved", (error: Error) => error.message);
  expect(await early).toBe("applied"); // before the group's fdatasync (held) has finished
  expect(durable).toBe(false);
  release();
  await late;
  expect(sync.count).toBe(1);
  expect(await failed).toBe("refused"); // a failed write is told with its group's outcome
  expect(durable).toBe(true);
  await store.close();
  const reopened = Catalog.open(path);
  expect([reopened.getMeta("intent"), reopened.getMeta("commit")]).toEqual(["1", "1"]);
  reopened.close();
});
