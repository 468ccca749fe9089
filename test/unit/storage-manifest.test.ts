// Manifests in the peer's engine (docs/recovery.md), and data dirs an older build wrote: a
// version 1 shard file opens and serves beside version 2 records; a key's tombstone covers
// every manifest at or below its generation, whatever order the records arrive in, through
// compaction and an index rebuilt from the shards alone.
import { describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as path from "node:path";
import { chunkChecksum } from "../../src/lib/checksum.ts";
import { limits } from "../../src/lib/limits.ts";
import { ChunkStore, type ManifestWrite } from "../../src/storage/index.ts";
import { RecordKind, tombstoneChecksum } from "../../src/storage/record.ts";
import { shardPath, shardsDir } from "../../src/storage/shard-file.ts";
import { encodeRecordV1, quiet, storeFixture } from "../support/storage.ts";
import { seededRandom } from "../support/random.ts";

const { tempDir, openStore, forget } = storeFixture("manifest");
const text = (value: string) => new TextEncoder().encode(value);

function manifest(key: string, objectId: string, generation: number, dead = false, bucket = "b"): ManifestWrite {
  return { bucket, key, objectId, generation, dead, body: text(`${key}@${generation}`) };
}

async function listAll(store: ChunkStore, limit = 1000) {
  const out: Array<{ key: string; objectId: string; generation: number; dead: boolean; body: string }> = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.listManifests({ limit, ...(after === undefined ? {} : { after }) });
    for (const m of page.manifests) out.push({ key: m.key, objectId: m.objectId, generation: m.generation, dead: m.dead, body: new TextDecoder().decode(m.body) });
    if (page.next === undefined) return out;
    after = page.next;
  }
}

describe("a data dir written by record version 1", () => {
  test("opens, serves its chunks and tombstones, takes version 2 writes, and rebuilds its index", async () => {
    const dir = tempDir();
    fs.mkdirSync(shardsDir(dir), { recursive: true });
    const a = text("chunk a, version 1");
    const b = text("chunk b, deleted later");
    const put = (ball: string, seq: number, data: Uint8Array) =>
      encodeRecordV1({ kind: RecordKind.put, bucket: "old", ball, index: 0, seq, createdMs: 1_700_000_000_000, dataBytes: data.byteLength, dataChecksum: chunkChecksum(data) }, data);
    const tomb = encodeRecordV1({ kind: RecordKind.tombstone, bucket: "old", ball: "b", index: 0, seq: 3, createdMs: 1_700_000_000_001, dataBytes: 0, dataChecksum: tombstoneChecksum() }, new Uint8Array(0));
    fs.writeFileSync(shardPath(dir, 1), Buffer.concat([put("a", 1, a), put("b", 2, b), tomb]));

    const check = async (store: ChunkStore) => {
      expect(Buffer.from(await store.get({ bucket: "old", ball: "a", index: 0 })).equals(Buffer.from(a))).toBe(true);
      await expect(store.get({ bucket: "old", ball: "b", index: 0 })).rejects.toMatchObject({ code: "not_found" });
    };
    const store = await openStore({ dir });
    await check(store);
    const fresh = text("a version 2 chunk, with its key");
    await store.putMany([{ ref: { bucket: "new", ball: "obj-1", index: 0 }, bytes: fresh, key: "photos/cat.jpg" }]);
    await store.putManifests([manifest("photos/cat.jpg", "obj-1", 5)]);
    await store.close();
    forget(store);

    expect(await ChunkStore.rebuildIndex({ dir, log: quiet })).toMatchObject({ chunks: 2 });
    const again = await openStore({ dir });
    await check(again);
    expect(Buffer.from(await again.get({ bucket: "new", ball: "obj-1", index: 0 })).equals(Buffer.from(fresh))).toBe(true);
    expect(await listAll(again)).toEqual([{ key: "photos/cat.jpg", objectId: "obj-1", generation: 5, dead: false, body: "photos/cat.jpg@5" }]);
  });
});

describe("manifests", () => {
  test("an overwrite's tombstone covers the old version; a delete's covers the last; a later put is live again", async () => {
    const store = await openStore();
    await store.putManifests([manifest("k", "x1", 10)]);
    await store.putManifests([manifest("k", "x1", 11, true), manifest("k", "x2", 12)]); // overwrite: x1 dead, x2 live
    expect(await listAll(store)).toEqual([
      { key: "k", objectId: "x1", generation: 11, dead: true, body: "k@11" },
      { key: "k", objectId: "x2", generation: 12, dead: false, body: "k@12" },
    ]);
    await store.putManifests([manifest("k", "x2", 13, true)]); // delete
    expect(await listAll(store)).toEqual([{ key: "k", objectId: "x2", generation: 13, dead: true, body: "k@13" }]);
    await store.putManifests([manifest("k", "x0", 9), manifest("k", "x3", 14)]); // a late, covered one; a new put
    expect(await listAll(store)).toEqual([
      { key: "k", objectId: "x2", generation: 13, dead: true, body: "k@13" },
      { key: "k", objectId: "x3", generation: 14, dead: false, body: "k@14" },
    ]);
    // A manifest written again for the same object (new tags) replaces the older one.
    await store.putManifests([manifest("k", "x3", 15)]);
    expect((await listAll(store)).at(-1)).toMatchObject({ objectId: "x3", generation: 15 });
  });

  test("the outcome does not depend on the order records are applied in (seeded), nor on compaction or a rebuild", async () => {
    const { random, seed } = seededRandom("manifest-order");
    const writes: ManifestWrite[] = [];
    let generation = 0;
    for (let n = 0; n < 300; n += 1) {
      const key = `key-${Math.floor(random() * 12)}`;
      generation += 1 + Math.floor(random() * 3);
      writes.push(manifest(key, `obj-${n}`, generation, random() < 0.35));
    }
    const shuffled = [...writes].sort(() => random() - 0.5);
    const inOrder = await openStore({ shardBytes: 4096 });
    for (const w of writes) await inOrder.putManifests([w]);
    const dir = tempDir();
    const outOfOrder = await openStore({ dir, shardBytes: 4096 });
    for (let i = 0; i < shuffled.length; i += 7) await outOfOrder.putManifests(shuffled.slice(i, i + 7));
    const expected = await listAll(inOrder);
    expect(await listAll(outOfOrder, 13), `seed ${seed}`).toEqual(expected);
    // Each key: at most one tombstone, and only live manifests above it.
    const byKey = Map.groupBy(expected, (m) => m.key);
    for (const [, rows] of byKey) {
      const tombs = rows.filter((m) => m.dead);
      expect(tombs.length).toBeLessThanOrEqual(1);
      for (const live of rows.filter((m) => !m.dead)) expect(live.generation).toBeGreaterThan(tombs[0]?.generation ?? 0);
    }
    // Garbage-heavy shards are compacted away, and the index rebuilt from the shards alone agrees.
    const result = await outOfOrder.compact({ force: true });
    expect(result.shardsCompacted).toBeGreaterThan(0);
    expect(await listAll(outOfOrder)).toEqual(expected);
    await outOfOrder.close();
    forget(outOfOrder);
    await ChunkStore.rebuildIndex({ dir, log: quiet, shardBytes: 4096 });
    const rebuilt = await openStore({ dir, shardBytes: 4096 });
    expect(await listAll(rebuilt), `seed ${seed}`).toEqual(expected);
  });

  test("listing pages are bounded by count and bytes; bad batches and cursors are refused", async () => {
    const store = await openStore();
    const big = new Uint8Array(200 * 1024).fill(1);
    await store.putManifests(Array.from({ length: 12 }, (_, n) => ({ ...manifest(`big-${String(n).padStart(2, "0")}`, "o", n + 1), body: big })));
    const first = await store.listManifests({ limit: 1000 });
    expect(first.manifests.length).toBe(10); // 2 MiB of 200 KiB bodies
    expect(first.next).toBeDefined();
    const second = await store.listManifests({ limit: 1000, after: first.next! });
    expect(second.manifests.length).toBe(2);
    expect(second.next).toBeUndefined();
    await expect(store.putManifests([])).rejects.toMatchObject({ code: "bad_request" });
    await expect(store.putManifests([{ ...manifest("k", "o", 1), body: new Uint8Array(limits.manifestRecordBytesMax) }])).rejects.toMatchObject({ code: "bad_request" });
    await expect(store.putManifests([manifest("k", "o", 0)])).rejects.toMatchObject({ code: "bad_request" });
    await expect(store.listManifests({ limit: 10, after: "not-a-cursor" })).rejects.toMatchObject({ code: "bad_request" });
    await expect(store.listManifests({ limit: 1001 })).rejects.toMatchObject({ code: "bad_request" });
  });

  test("a put record names its ball's key on disk", async () => {
    const dir = tempDir();
    const store = await openStore({ dir });
    await store.put({ bucket: "b", ball: "obj", index: 0 }, text("bytes"));
    await store.putMany([{ ref: { bucket: "b", ball: "obj", index: 1 }, bytes: text("more"), key: "dir/name.txt" }]);
    await store.close();
    forget(store);
    const files = fs.readdirSync(shardsDir(dir)).map((name) => fs.readFileSync(path.join(shardsDir(dir), name)));
    expect(Buffer.concat(files).includes(Buffer.from("dir/name.txt"))).toBe(true);
  });
});
