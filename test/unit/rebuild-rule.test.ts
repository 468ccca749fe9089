// The rule a catalog rebuild applies per (bucket, key) (src/roles/spm/rebuild.ts,
// docs/recovery.md): the newest live manifest above the key's highest tombstone whose chunks all
// survive; the generation a catalog write takes; and the flags that ask for a rebuild.
import { describe, expect, test } from "bun:test";
import { chooseSurvivor, manifestsByKey, type FoundManifest, type Holding } from "../../src/roles/spm/rebuild.ts";
import { generationMetaKey, raiseGeneration, takeGeneration } from "../../src/roles/spm/manifests.ts";
import { rebuildOf } from "../../src/commands/spm.ts";
import { tempCatalog, tempStore } from "./fixtures/catalog-records.ts";
import { seededRandom } from "../support/random.ts";

function live(key: string, objectId: string, generation: number, numChunks = 1): FoundManifest {
  const ball = { ballId: key, version: 1, size: numChunks * 10, checksum: "0".repeat(64), contentType: "", tags: {}, rf: 2, createdMs: 1, chunkSize: 10, numChunks };
  return { bucket: "b", key, objectId, generation, dead: false, ball };
}

function tomb(key: string, objectId: string, generation: number): FoundManifest {
  return { bucket: "b", key, objectId, generation, dead: true };
}

/** Every chunk of these objects held by peer p1. */
function holding(...objectIds: string[]) {
  const all = new Set(objectIds);
  return (objectId: string) => (all.has(objectId) ? new Map<number, Holding>(Array.from({ length: 4 }, (_, i) => [i, { size: 10, checksum: "0".repeat(16), peers: ["p1"] }])) : undefined);
}

describe("the rebuild rule", () => {
  test("the newest surviving live manifest above the tombstone comes back", () => {
    const byKey = manifestsByKey([live("k", "x1", 10), tomb("k", "x1", 11), live("k", "x2", 12), live("k", "x3", 14)]);
    const key = byKey.get("b\u0000k")!;
    expect(key.tombstoneGeneration).toBe(11);
    expect(key.live.map((m) => m.objectId)).toEqual(["x3", "x2"]);
    expect(chooseSurvivor(key, holding("x1", "x2", "x3"))).toMatchObject({ manifest: { objectId: "x3" } });
    // x3's chunks are gone (an unacknowledged overwrite, say): x2 comes back, never x1.
    expect(chooseSurvivor(key, holding("x1", "x2"))).toMatchObject({ manifest: { objectId: "x2" } });
    expect(chooseSurvivor(key, holding("x1"))).toMatchObject({ lost: expect.stringContaining("chunk 0 of 1 is on no peer") });
  });

  test("a delete's tombstone keeps every older version dead, wherever its copies are", () => {
    const key = manifestsByKey([live("k", "x1", 10), live("k", "x2", 12), tomb("k", "x2", 13), tomb("k", "x1", 11)]).get("b\u0000k")!;
    expect(key.live).toEqual([]);
    expect(chooseSurvivor(key, holding("x1", "x2"))).toEqual({ lost: "deleted" });
  });

  test("a ball whose chunk is missing or of many chunks needs every one; a ball of none needs none", () => {
    const key = manifestsByKey([live("k", "x1", 5, 3)]).get("b\u0000k")!;
    const partial = () => new Map<number, Holding>([[0, { size: 10, checksum: "0".repeat(16), peers: ["p2", "p1"] }], [2, { size: 10, checksum: "0".repeat(16), peers: ["p1"] }]]);
    expect(chooseSurvivor(key, partial)).toMatchObject({ lost: expect.stringContaining("chunk 1 of 3") });
    const whole = holding("x1");
    const chosen = chooseSurvivor(key, whole);
    expect("chunks" in chosen && chosen.chunks.map((c) => c.index)).toEqual([0, 1, 2]);
    const empty = manifestsByKey([live("e", "x9", 5, 0)]).get("b\u0000e")!;
    expect(chooseSurvivor(empty, () => undefined)).toMatchObject({ manifest: { objectId: "x9" }, chunks: [] });
  });

  test("the same manifests from several peers, in any order, give the same choice (seeded)", () => {
    const { random, seed } = seededRandom("rebuild-rule");
    const manifests: FoundManifest[] = [];
    let generation = 0;
    for (let n = 0; n < 200; n += 1) {
      generation += 1 + Math.floor(random() * 3);
      const key = `k${Math.floor(random() * 10)}`;
      manifests.push(random() < 0.3 ? tomb(key, `o${n}`, generation) : live(key, `o${n}`, generation));
    }
    const copies = [...manifests, ...manifests.filter(() => random() < 0.5)].sort(() => random() - 0.5);
    const survivors = (all: FoundManifest[]) => [...manifestsByKey(all)].map(([id, key]) => [id, JSON.stringify(chooseSurvivor(key, () => new Map([[0, { size: 10, checksum: "0".repeat(16), peers: ["p1"] }]])))]).sort();
    expect(survivors(copies), `seed ${seed}`).toEqual(survivors(manifests));
    // What a key comes back as is its last write, when that write was a put.
    for (const [id, key] of manifestsByKey(manifests)) {
      const last = manifests.filter((m) => `${m.bucket}\u0000${m.key}` === id).at(-1)!;
      const chosen = chooseSurvivor(key, () => new Map([[0, { size: 10, checksum: "0".repeat(16), peers: ["p1"] }]]));
      if (last.dead) expect(chosen).toEqual({ lost: "deleted" });
      else expect(chosen).toMatchObject({ manifest: { objectId: last.objectId } });
    }
  });
});

describe("generations", () => {
  test("only grow: past the last one, past the wall clock, past a rebuilt catalog's floor", async () => {
    const temp = tempStore("generations");
    const { store } = temp;
    try {
      const first = await takeGeneration(store, 1_000);
      expect(first).toBe(1_000_000);
      expect(await takeGeneration(store, 1_000)).toBe(1_000_001); // the same millisecond
      expect(await takeGeneration(store, 500)).toBe(1_000_002); // the clock went back
      await raiseGeneration(store, 5_000_000_000);
      expect(await takeGeneration(store, 1_000)).toBe(5_000_000_001);
      await raiseGeneration(store, 10); // never lowers
      expect(Number(await store.getMeta(generationMetaKey))).toBe(5_000_000_001);
      // A rolled-back write's generation is not kept.
      const [outcome] = await store.group([
        async (tx) => {
          await takeGeneration(tx, 1_000);
          throw new Error("the write failed");
        },
      ]);
      expect(outcome?.ok).toBe(false);
      expect(await takeGeneration(store, 1_000)).toBe(5_000_000_002);
    } finally {
      temp.done();
    }
  });
});

describe("spm --rebuild-catalog flags", () => {
  test("need --from-peers and --peers; --peers are host:port, named once", () => {
    expect(rebuildOf({})).toBeUndefined();
    expect(rebuildOf({ rebuildCatalog: true, fromPeers: true, peers: "127.0.0.1:7210, 127.0.0.1:7211" })).toEqual({ peers: ["127.0.0.1:7210", "127.0.0.1:7211"], force: false });
    expect(rebuildOf({ rebuildCatalog: true, fromPeers: true, peers: "a:1", force: true })).toEqual({ peers: ["a:1"], force: true });
    expect(() => rebuildOf({ rebuildCatalog: true })).toThrow("--from-peers");
    expect(() => rebuildOf({ rebuildCatalog: true, fromPeers: true })).toThrow("--peers host:port");
    expect(() => rebuildOf({ rebuildCatalog: true, fromPeers: true, peers: "nohost" })).toThrow("not host:port");
    expect(() => rebuildOf({ rebuildCatalog: true, fromPeers: true, peers: "a:1,a:1" })).toThrow("twice");
    expect(() => rebuildOf({ force: true })).toThrow("go with --rebuild-catalog");
  });
});
