// Shards roll, deletes leave garbage, compaction reclaims it without losing or resurrecting a chunk.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NotFoundError } from "../../src/lib/errors.ts";
import { ChunkStore, type ChunkRef, type StoreOptions } from "../../src/storage/index.ts";
import { quiet, storeFixture } from "../support/storage.ts";
import { overwriteAt } from "../support/corrupt.ts";

const { tempDir, openStore, closeAll } = storeFixture("compaction");

const ref = (i: number, ball = "c"): ChunkRef => ({ bucket: "b", ball, index: i });
const payload = (i: number, v = 0) => new Uint8Array(500 + ((i * 37) % 1500)).map((_, j) => (i * 13 + j + v * 101) % 256);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const shardFiles = (dir: string) => fs.readdirSync(path.join(dir, "shards")).sort();
/** Close every store, delete the index, rebuild it from the shards alone and open again. */
async function reopenFromShards(options: { dir: string; shardBytes: number }) {
  await closeAll();
  for (const s of ["", "-wal", "-shm"]) fs.rmSync(path.join(options.dir, `index.sqlite${s}`), { force: true });
  const rebuilt = await ChunkStore.rebuildIndex({ ...options, log: quiet });
  return { rebuilt, store: await openStore(options) };
}
const shardBytes = 16 * 1024;

async function fill(store: ChunkStore, count: number): Promise<void> {
  for (let i = 0; i < count; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, k) => store.put(ref(i + k), payload(i + k))));
  }
}

describe("shard lifecycle", () => {
  test("shards roll at shardBytes: one active, the rest read-only, ids growing", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes });
    await fill(store, 300);
    const { shards } = store.stats();
    expect(shards.length).toBeGreaterThan(5);
    expect(shards.filter((s) => s.state === "active").map((s) => s.id)).toEqual([shards.at(-1)?.id ?? -1]);
    for (const s of shards.slice(0, -1)) {
      expect(s.state).toBe("read_only");
      // A flush never spans shards: a shard rolls when the next write would not fit.
      expect(s.bytes).toBeLessThanOrEqual(shardBytes);
      expect(s.bytes).toBeGreaterThan(shardBytes - 2100);
    }
    expect(shardFiles(dir)).toEqual(shards.map((s) => `${String(s.id).padStart(8, "0")}.shard`));
  });
});

describe("compaction", () => {
  test("a chunk bigger than shardBytes gets a shard of its own", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes: 4096 });
    await store.put(ref(1), payload(1));
    const big = new Uint8Array(20_000).map((_, i) => i % 253);
    const meta = await store.put(ref(2), big);
    await store.put(ref(3), payload(3));
    expect(meta.shardId).toBe(2);
    expect(meta.offset).toBe(0);
    expect(store.stat(ref(3)).shardId).toBe(3);
    expect(same(await store.get(ref(2)), big)).toBe(true);
  });

  test("a shard whose live record is damaged is left alone; the others are compacted", async () => {
    const dir = tempDir();
    const logs: string[] = [];
    const store = await openStore({ dir, shardBytes, log: (m) => logs.push(m) });
    await fill(store, 300);
    for (let i = 0; i < 300; i += 2) await store.delete(ref(i));
    const victim = store.stat(ref(1));
    expect(victim.shardId).toBe(1);
    overwriteAt(path.join(dir, "shards", "00000001.shard"), victim.offset + 16, Buffer.from([0xff, 0xff])); // the seq in its header
    const first = await store.compact({ force: true });
    expect(first.shardsCompacted).toBeGreaterThan(0);
    expect(shardFiles(dir)).toContain("00000001.shard");
    expect(logs.filter((m) => m.includes("damaged"))).toHaveLength(1);
    await store.compact({ force: true }); // not retried (and not logged again) until the store reopens
    expect(logs.filter((m) => m.includes("damaged"))).toHaveLength(1);
    for (let i = 3; i < 300; i += 2) expect(same(await store.get(ref(i)), payload(i))).toBe(true);
  });


  test("delete half, compact: live chunks exact, files removed, usedBytes drops, SQLite agrees", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes });
    await fill(store, 400);
    for (let i = 0; i < 400; i += 2) expect(await store.delete(ref(i))).toBe(true);
    const before = store.stats();
    const filesBefore = shardFiles(dir);
    const result = await store.compact();
    const after = store.stats();
    expect(result.shardsCompacted).toBeGreaterThan(0);
    expect(result.recordsMoved).toBeGreaterThan(0);
    expect(result.bytesReclaimed).toBeGreaterThan(0);
    expect(after.usedBytes).toBeLessThan(before.usedBytes);
    expect(after.usedBytes).toBe(shardFiles(dir).reduce((sum, f) => sum + fs.statSync(path.join(dir, "shards", f)).size, 0));
    const gone = filesBefore.filter((f) => !shardFiles(dir).includes(f));
    expect(gone.length).toBe(result.shardsCompacted);
    expect(after.chunks).toBe(200);
    for (let i = 0; i < 400; i += 1) {
      if (i % 2 === 0) await expect(store.get(ref(i))).rejects.toThrow(NotFoundError);
      else expect(same(await store.get(ref(i)), payload(i))).toBe(true);
    }
    await closeAll();
    const db = new Database(path.join(dir, "index.sqlite"), { readonly: true });
    const deleted = db.query("SELECT id FROM shards WHERE state = 'deleted' ORDER BY id").all() as { id: number }[];
    const pointing = db.query("SELECT count(*) AS n FROM chunks WHERE shard IN (SELECT id FROM shards WHERE state = 'deleted')").get() as { n: number };
    const dead = db.query("SELECT count(*) AS n FROM dead WHERE shard IN (SELECT id FROM shards WHERE state = 'deleted')").get() as { n: number };
    db.close();
    expect(deleted.map((r) => `${String(r.id).padStart(8, "0")}.shard`)).toEqual(gone);
    expect(pointing.n).toBe(0);
    expect(dead.n).toBe(0);
  });

  test("deleted chunks stay deleted after compaction and rebuildIndex (tombstone rule)", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes });
    await fill(store, 400);
    for (let i = 0; i < 400; i += 2) await store.delete(ref(i));
    // More writes so the tombstones' own shards become read-only and compactable too.
    await fill(store, 0);
    for (let i = 1000; i < 1300; i += 1) await store.put(ref(i), payload(i));
    for (let round = 0; round < 3; round += 1) await store.compact({ force: true });
    const { rebuilt, store: again } = await reopenFromShards({ dir, shardBytes });
    expect(rebuilt.chunks).toBe(200 + 300);
    for (let i = 0; i < 400; i += 1) {
      if (i % 2 === 0) await expect(again.get(ref(i))).rejects.toThrow(NotFoundError);
      else expect(same(await again.get(ref(i)), payload(i))).toBe(true);
    }
  });

  test("a tombstone outlives every older version of its chunk, whatever order shards are compacted in", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes: 4096, compactionGarbageRatio: 0.01 });
    // v0 of each chunk in early shards, v1 (overwrite) in later ones, then the tombstones.
    for (let i = 0; i < 20; i += 1) await store.put(ref(i, "t"), payload(i, 0));
    for (let i = 0; i < 20; i += 1) await store.put(ref(i, "t"), payload(i, 1));
    for (let i = 0; i < 20; i += 1) await store.put(ref(i, "keep"), payload(i, 2));
    for (let i = 0; i < 20; i += 3) await store.delete(ref(i, "t"));
    for (let i = 0; i < 40; i += 1) await store.put(ref(i, "pad"), payload(i, 3));
    // Compact only the newest read-only shards first (the ones holding tombstones) by forcing
    // passes while older garbage remains; then everything.
    await store.compact({ force: true });
    await store.compact({ force: true });
    const expectState = async (s: ChunkStore) => {
      for (let i = 0; i < 20; i += 1) {
        if (i % 3 === 0) await expect(s.get(ref(i, "t"))).rejects.toThrow(NotFoundError);
        else expect(same(await s.get(ref(i, "t")), payload(i, 1))).toBe(true);
        expect(same(await s.get(ref(i, "keep")), payload(i, 2))).toBe(true);
      }
    };
    await expectState(store);
    const { store: again } = await reopenFromShards({ dir, shardBytes: 4096 });
    await expectState(again);
  });

  test("a tombstone is kept while an older shard that is not compacted still holds what it deleted", async () => {
    const dir = tempDir();
    const options = { dir, shardBytes: 8192, log: quiet };
    const store = await openStore(options);
    const kb = (v: number) => new Uint8Array(1000).fill(v);
    await store.put(ref(0, "victim"), kb(1)); // shard 1: the victim and data that stays live
    for (let i = 0; i < 6; i += 1) await store.put(ref(i, "keep"), kb(2));
    for (let i = 0; i < 7; i += 1) await store.put(ref(i, "junk"), kb(3)); // shard 2
    expect(store.stat(ref(0, "junk")).shardId).toBe(2);
    await store.delete(ref(0, "victim")); // its tombstone lands in shard 2
    for (let i = 0; i < 7; i += 1) await store.delete(ref(i, "junk"));
    for (let i = 0; i < 8; i += 1) await store.put(ref(i, "fill"), kb(4)); // shard 2 goes read-only
    const result = await store.compact(); // default ratio: shard 2 (mostly junk) yes, shard 1 no
    expect(result.shardsCompacted).toBe(1);
    expect(shardFiles(dir)).not.toContain("00000002.shard");
    expect(shardFiles(dir)).toContain("00000001.shard");
    const { store: again } = await reopenFromShards(options);
    await expect(again.get(ref(0, "victim"))).rejects.toThrow(NotFoundError);
    for (let i = 0; i < 7; i += 1) await expect(again.get(ref(i, "junk"))).rejects.toThrow(NotFoundError);
    for (let i = 0; i < 6; i += 1) expect(same(await again.get(ref(i, "keep")), kb(2))).toBe(true);
  });

  test("compacting one shard of a deleted chunk's versions does not release its tombstone early", async () => {
    const dir = tempDir();
    const options = { dir, shardBytes: 8192, log: quiet };
    const store = await openStore(options);
    const kb = (v: number) => new Uint8Array(1000).fill(v);
    await store.put(ref(0, "victim"), kb(1)); // shard 1: v1, and data that stays live
    for (let i = 0; i < 6; i += 1) await store.put(ref(i, "keep"), kb(2));
    await store.put(ref(0, "victim"), kb(5)); // shard 2: v2, and junk
    for (let i = 0; i < 6; i += 1) await store.put(ref(i, "junk"), kb(3));
    expect(store.stat(ref(0, "victim")).shardId).toBe(2);
    for (let i = 0; i < 6; i += 1) await store.delete(ref(i, "junk"));
    await store.put(ref(0, "fill"), kb(4)); // rolls: shard 3
    await store.delete(ref(0, "victim")); // the tombstone lands in shard 3
    for (let i = 0; i < 6; i += 1) await store.put(ref(i, "junk2"), kb(6));
    for (let i = 0; i < 6; i += 1) await store.delete(ref(i, "junk2"));
    for (let i = 0; i < 8; i += 1) await store.put(ref(i, "fill2"), kb(7)); // shard 3 goes read-only
    await store.compact();
    await store.compact();
    expect(shardFiles(dir)).not.toContain("00000002.shard");
    expect(shardFiles(dir)).not.toContain("00000003.shard");
    expect(shardFiles(dir)).toContain("00000001.shard");
    const { store: again } = await reopenFromShards(options);
    await expect(again.get(ref(0, "victim"))).rejects.toThrow(NotFoundError);
    for (let i = 0; i < 6; i += 1) expect(same(await again.get(ref(i, "keep")), kb(2))).toBe(true);
  });

  test("tombstones are released once nothing they shadow is left, so garbage does not pile up", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes: 4096 });
    for (let round = 0; round < 10; round += 1) {
      for (let i = 0; i < 60; i += 1) await store.put(ref(i, `r${round}`), payload(i));
      for (let i = 0; i < 60; i += 1) await store.delete(ref(i, `r${round}`));
      // Not forced: a shard of tombstones only becomes garbage once they are released.
      for (let k = 0; k < 3; k += 1) await store.compact();
    }
    const { usedBytes, chunks, shards } = store.stats();
    expect(chunks).toBe(0);
    // 600 tombstones would fill ~9 shards; released, at most the newest few are left.
    expect(usedBytes).toBeLessThan(3 * 4096);
    expect(shards.reduce((sum, s) => sum + s.liveBytes, 0)).toBeLessThan(2 * 4096);
  });

  test("reads racing a compaction still get the right bytes; writes keep working", async () => {
    const dir = tempDir();
    const store = await openStore({ dir, shardBytes });
    await fill(store, 300);
    for (let i = 0; i < 300; i += 3) await store.delete(ref(i));
    let stop = false;
    let reads = 0;
    const readers = Array.from({ length: 8 }, async (_, w) => {
      for (let k = w; !stop; k += 1) {
        const i = (k * 7) % 300;
        if (i % 3 === 0) continue;
        expect(same(await store.get(ref(i)), payload(i))).toBe(true);
        reads += 1;
      }
    });
    const writer = (async () => {
      for (let i = 2000; !stop; i += 1) {
        await store.put(ref(i), payload(i));
        expect(same(await store.get(ref(i)), payload(i))).toBe(true);
      }
    })();
    const result = await store.compact({ force: true });
    stop = true;
    await Promise.all([...readers, writer]);
    expect(result.shardsCompacted).toBeGreaterThan(0);
    expect(reads).toBeGreaterThan(0);
  });

  test("compaction copies no faster than compactionBytesPerSecond", async () => {
    const dir = tempDir();
    const rate = 200 * 1024; // bytes per second
    const store = await openStore({ dir, shardBytes, compactionBytesPerSecond: rate });
    await fill(store, 300);
    for (let i = 0; i < 300; i += 2) await store.delete(ref(i));
    const liveToMove = store
      .stats()
      .shards.filter((s) => s.state === "read_only" && s.liveBytes < s.bytes)
      .reduce((sum, s) => sum + s.liveBytes, 0);
    expect(liveToMove).toBeGreaterThan(rate / 4);
    const t0 = performance.now();
    const result = await store.compact({ force: true });
    const elapsedS = (performance.now() - t0) / 1000;
    expect(result.recordsMoved).toBeGreaterThan(0);
    expect(elapsedS).toBeGreaterThanOrEqual((0.95 * liveToMove) / rate);
  });

  test("background compaction reclaims space while the store serves reads and writes", async () => {
    const dir = tempDir();
    const logs: string[] = [];
    const store = await openStore({ dir, shardBytes, log: (m) => logs.push(m) });
    await fill(store, 400);
    for (let i = 0; i < 400; i += 4) await store.delete(ref(i));
    for (let i = 1; i < 400; i += 4) await store.delete(ref(i));
    const before = store.stats().usedBytes;
    const t0 = performance.now();
    store.startBackgroundCompaction(10);
    let i = 5000;
    const compacted = () => logs.some((m) => m.startsWith("compacted "));
    while ((store.stats().usedBytes >= before * 0.8 || !compacted()) && performance.now() - t0 < 10_000) {
      expect(same(await store.get(ref(3)), payload(3))).toBe(true);
      await store.put(ref(i), payload(i));
      i += 1;
      await Bun.sleep(5);
    }
    expect(store.stats().usedBytes).toBeLessThan(before * 0.8);
    expect(compacted()).toBe(true);
    for (let k = 0; k < 400; k += 1) {
      if (k % 4 < 2) await expect(store.get(ref(k))).rejects.toThrow(NotFoundError);
      else expect(same(await store.get(ref(k)), payload(k))).toBe(true);
    }
  });
});
