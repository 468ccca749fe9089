// Group commit at the SPM: concurrent writes share a transaction, fail alone, and are durable
// when they resolve.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Catalog } from "../../src/catalog/index.ts";
import { WriteBatcher } from "../../src/roles/spm/write-batcher.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function openCatalog(): { catalog: Catalog; path: string } {
  const dir = mkdtempSync(join(tmpdir(), "mictlanx-batcher-"));
  dirs.push(dir);
  const path = join(dir, "catalog.sqlite");
  return { catalog: Catalog.open(path), path };
}

test("writes in one turn share one flush; each resolves with its own result", async () => {
  const { catalog, path } = openCatalog();
  const batcher = new WriteBatcher(catalog);
  const writes = Array.from({ length: 50 }, (_, i) => batcher.submit(() => (catalog.setMeta(`k${i}`, `v${i}`), i)));
  expect(await Promise.all(writes)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  expect(batcher.stats.flushes).toBe(1);
  catalog.close();
  const reopened = Catalog.open(path);
  for (let i = 0; i < 50; i += 1) expect(reopened.getMeta(`k${i}`)).toBe(`v${i}`);
  reopened.close();
});

test("a write that throws fails alone; the others in its batch commit", async () => {
  const { catalog } = openCatalog();
  const batcher = new WriteBatcher(catalog);
  const good = batcher.submit(() => catalog.setMeta("good", "yes"));
  const bad = batcher.submit(() => {
    catalog.setMeta("bad", "half");
    throw new Error("no");
  });
  const after = batcher.submit(() => catalog.setMeta("after", "yes"));
  await good;
  await after;
  expect(bad).rejects.toThrow("no");
  await bad.catch(() => {});
  expect(catalog.getMeta("good")).toBe("yes");
  expect(catalog.getMeta("after")).toBe("yes");
  expect(catalog.getMeta("bad")).toBeUndefined(); // rolled back to its savepoint
  expect(batcher.stats).toMatchObject({ flushes: 1, writes: 3, replays: 1 }); // all-or-nothing failed, then write by write
  catalog.close();
});

test("a group without failures runs once, with no replay", async () => {
  const { catalog } = openCatalog();
  const batcher = new WriteBatcher(catalog);
  await Promise.all(Array.from({ length: 5 }, (_, i) => batcher.submit(() => catalog.setMeta(`ok${i}`, "1"))));
  expect(batcher.stats).toMatchObject({ flushes: 1, writes: 5, replays: 0 });
  catalog.close();
});

test("one group in flight: writes that arrive during its fsync go together as the next group", async () => {
  const { catalog } = openCatalog();
  const batcher = new WriteBatcher(catalog);
  let releaseSync: () => void = () => {};
  let syncs = 0;
  const original = catalog.syncWal.bind(catalog);
  catalog.syncWal = async () => {
    syncs += 1;
    if (syncs === 1) await new Promise<void>((resolve) => (releaseSync = resolve)); // the disk is slow once
    await original();
  };
  const first = batcher.submit(() => catalog.setMeta("first", "1"));
  while (syncs === 0) await Bun.sleep(1); // the first group is now waiting on its fsync
  let laterDone = 0;
  const later = Array.from({ length: 30 }, (_, i) => batcher.submit(() => catalog.setMeta(`later${i}`, "1")).then(() => (laterDone += 1)));
  await Bun.sleep(20);
  expect(syncs).toBe(1); // no second transaction while the first is in flight
  expect(laterDone).toBe(0);
  releaseSync();
  await first;
  await Promise.all(later);
  expect(batcher.stats).toMatchObject({ flushes: 2, writes: 31 });
  catalog.close();
});

test("a group that cannot commit fails every write in it, and the next group still runs", async () => {
  const { catalog } = openCatalog();
  const batcher = new WriteBatcher(catalog);
  const original = catalog.syncWal.bind(catalog);
  let failNext = true;
  catalog.syncWal = async () => {
    if (failNext) {
      failNext = false;
      throw new Error("disk went away");
    }
    await original();
  };
  const failed = await Promise.allSettled([batcher.submit(() => catalog.setMeta("x", "1")), batcher.submit(() => catalog.setMeta("y", "1"))]);
  expect(failed.map((result) => result.status)).toEqual(["rejected", "rejected"]);
  expect(await batcher.submit(() => (catalog.setMeta("z", "1"), "ok"))).toBe("ok");
  catalog.close();
});

test("deferred sync: commits skip the inline fsync; syncWal makes them durable off the event loop", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mictlanx-batcher-"));
  dirs.push(dir);
  const path = join(dir, "catalog.sqlite");
  const catalog = Catalog.open(path, { deferredSync: true });
  const batcher = new WriteBatcher(catalog);
  let synced = 0;
  const original = catalog.syncWal.bind(catalog);
  catalog.syncWal = async () => {
    synced += 1;
    await original();
  };
  await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.submit(() => catalog.setMeta(`d${i}`, "x"))));
  expect(synced).toBe(1); // one WAL fsync for the whole batch, awaited before the writes resolved
  catalog.close();
  const reopened = Catalog.open(path);
  expect(reopened.getMeta("d9")).toBe("x");
  reopened.close();
});
