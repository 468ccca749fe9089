import { afterEach, describe, expect, test } from "bun:test";
import { Catalog } from "../../src/catalog/index.ts";
import type { GarbageEntry } from "../../src/catalog/index.ts";
import { BadRequestError, ConflictError, MictlanxError } from "../../src/lib/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import { ballOf, peerRecord, tempCatalog, withVersion } from "./fixtures/catalog-records.ts";
import { thrown } from "../support/errors.ts";

let cleanups: Array<() => void> = [];
afterEach(() => {
  const pending = cleanups;
  cleanups = [];
  for (const cleanup of pending) cleanup();
});

/** A catalog with peers p1..p4 up. Audited (recount of everything kept incrementally) at the end. */
function setup(peers = ["p1", "p2", "p3", "p4"]): Catalog {
  const temp = tempCatalog();
  cleanups.push(() => {
    try {
      expect(temp.catalog.audit()).toEqual([]);
    } finally {
      temp.done();
    }
  });
  for (const id of peers) temp.catalog.upsertPeer(peerRecord(id));
  return temp.catalog;
}

const sortGarbage = (items: GarbageEntry[]) =>
  [...items].sort((a, b) => `${a.objectId}/${a.index}/${a.peerId}`.localeCompare(`${b.objectId}/${b.index}/${b.peerId}`));

describe("commit, get, overwrite", () => {
  test("a committed ball reads back exactly", () => {
    const catalog = setup();
    const { ball, chunks } = ballOf({ key: "docs/a.txt", objectId: "o1", peers: [["p2", "p1"], ["p3", "p1"]] });
    expect(catalog.commitBall(ball, chunks, {})).toEqual({ version: 1 });
    expect(catalog.getBall("bucket", "docs/a.txt")).toEqual({ ...withVersion(ball, 1), chunks });
    expect(catalog.getBall("bucket", "docs/b.txt")).toBeUndefined();
    expect(catalog.getBall("other", "docs/a.txt")).toBeUndefined();
    expect(catalog.stats()).toEqual({
      balls: 1, buckets: 1, bytes: ball.size, chunks: 2, replicas: 4, underReplicated: 0, garbage: 0, intents: 0,
    });
  });

  test("an overwrite bumps the version, sends every old replica to garbage, reads see the new one", () => {
    const catalog = setup();
    const first = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p2", "p3"]] });
    const second = ballOf({ key: "k", objectId: "o2", peers: [["p3", "p4"]], chunkSize: 4096 });
    const third = ballOf({ key: "k", objectId: "o3", peers: [["p1", "p4"]] });
    catalog.commitBall(first.ball, first.chunks, {});
    expect(catalog.commitBall(second.ball, second.chunks, {})).toEqual({ version: 2, replacedObjectId: "o1" });
    expect(catalog.getBall("bucket", "k")).toEqual({ ...withVersion(second.ball, 2), chunks: second.chunks });
    expect(sortGarbage(catalog.takeGarbage({ limit: 100 }))).toEqual([
      { objectId: "o1", index: 0, peerId: "p1", bucket: "bucket" },
      { objectId: "o1", index: 0, peerId: "p2", bucket: "bucket" },
      { objectId: "o1", index: 1, peerId: "p2", bucket: "bucket" },
      { objectId: "o1", index: 1, peerId: "p3", bucket: "bucket" },
    ]);
    expect(catalog.commitBall(third.ball, third.chunks, {})).toEqual({ version: 3, replacedObjectId: "o2" });
    expect(catalog.getBall("bucket", "k")?.version).toBe(3);
    expect(catalog.findChunk("o1", 0)).toBeUndefined();
    expect(catalog.findChunk("o2", 0)).toBeUndefined();
    expect(catalog.stats()).toMatchObject({ balls: 1, bytes: third.ball.size, chunks: 1, replicas: 2, garbage: 6 });
    expect(catalog.listBuckets({ limit: 10 }).buckets).toEqual([
      { name: "bucket", balls: 1, bytes: third.ball.size, createdMs: first.ball.createdMs },
    ]);
  });

  test("the same commit again (a retry) succeeds without a change; other contents under its id conflict", () => {
    const catalog = setup();
    const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
    catalog.commitBall(ball, chunks, {});
    expect(catalog.commitBall(ball, chunks, { ifAbsent: true })).toEqual({ version: 1 });
    expect(catalog.stats()).toMatchObject({ balls: 1, garbage: 0 });
    const other = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p1", "p2"]] });
    expect(thrown(() => catalog.commitBall(other.ball, other.chunks, {}))).toBeInstanceOf(ConflictError);
  });

  test("an object id names one version only", () => {
    const catalog = setup();
    const a = ballOf({ key: "a", objectId: "o1", peers: [["p1"]] });
    const b = ballOf({ key: "b", objectId: "o1", peers: [["p1"]] });
    catalog.commitBall(a.ball, a.chunks, {});
    expect(thrown(() => catalog.commitBall(b.ball, b.chunks, {})).code).toBe("conflict");
    // An overwritten version's id is being garbage-collected: it cannot come back.
    const a2 = ballOf({ key: "a", objectId: "o2", peers: [["p1"]] });
    catalog.commitBall(a2.ball, a2.chunks, {});
    expect(thrown(() => catalog.commitBall(b.ball, b.chunks, {})).code).toBe("conflict");
  });
});

describe("preconditions and validation", () => {
  test("if-absent on an existing key conflicts and writes nothing", () => {
    const catalog = setup();
    const first = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
    catalog.commitBall(first.ball, first.chunks, {});
    catalog.addIntent({ objectId: "o2", bucket: "bucket", key: "k", createdMs: 1, expiresMs: 10, placements: [{ index: 0, peers: ["p3", "p4"] }] });
    const before = { stats: catalog.stats(), ball: catalog.getBall("bucket", "k") };
    const second = ballOf({ key: "k", objectId: "o2", peers: [["p3", "p4"]] });
    const error = thrown(() => catalog.commitBall(second.ball, second.chunks, { ifAbsent: true }));
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.message).toContain("already exists");
    expect(catalog.stats()).toEqual(before.stats);
    expect(catalog.getBall("bucket", "k")).toEqual(before.ball!);
    expect(catalog.getIntent("o2")?.placements).toEqual([{ index: 0, peers: ["p3", "p4"] }]);
    expect(catalog.findChunk("o2", 0)).toBeUndefined();
  });

  test("a failing commit into a new bucket leaves no bucket behind", () => {
    const catalog = setup();
    const { ball, chunks } = ballOf({ bucket: "fresh", key: "k", objectId: "o1", peers: [["p1", "ghost"]] });
    const error = thrown(() => catalog.commitBall(ball, chunks, {}));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error.message).toContain("ghost");
    expect(catalog.listBuckets({ limit: 10 }).buckets).toEqual([]);
    expect(catalog.stats()).toMatchObject({ balls: 0, buckets: 0, chunks: 0, replicas: 0 });
  });

  test("expectedObjectId is compare-and-swap", () => {
    const catalog = setup();
    const v1 = ballOf({ key: "k", objectId: "o1", peers: [["p1"]] });
    const v2 = ballOf({ key: "k", objectId: "o2", peers: [["p2"]] });
    const v3 = ballOf({ key: "k", objectId: "o3", peers: [["p3"]] });
    expect(thrown(() => catalog.commitBall(v1.ball, v1.chunks, { expectedObjectId: "o0" })).code).toBe("conflict");
    catalog.commitBall(v1.ball, v1.chunks, {});
    expect(catalog.commitBall(v2.ball, v2.chunks, { expectedObjectId: "o1" })).toEqual({ version: 2, replacedObjectId: "o1" });
    expect(thrown(() => catalog.commitBall(v3.ball, v3.chunks, { expectedObjectId: "o1" })).code).toBe("conflict");
    expect(catalog.getBall("bucket", "k")?.objectId).toBe("o2");
  });

  test("chunks must be 0..numChunks-1, add up to the size, each held by a registered peer", () => {
    const catalog = setup();
    const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1"], ["p2"], ["p3"]] });
    const cases: Array<[string, unknown[]]> = [
      ["index", [chunks[0], chunks[2], chunks[1]]],
      ["numChunks", chunks.slice(0, 2)],
      ["peer", [chunks[0], { ...chunks[1]!, peers: [] }, chunks[2]]],
      ["twice", [chunks[0], { ...chunks[1]!, peers: ["p1", "p1"] }, chunks[2]]],
      ["size", [chunks[0], { ...chunks[1]!, size: 10 }, chunks[2]]],
      ["checksum", [chunks[0], { ...chunks[1]!, checksum: "XYZ" }, chunks[2]]],
    ];
    for (const [word, bad] of cases) {
      const error = thrown(() => catalog.commitBall(ball, bad as typeof chunks, {}));
      expect(error).toBeInstanceOf(BadRequestError);
      expect(error.message.toLowerCase()).toContain(word.toLowerCase());
    }
    expect(catalog.stats().balls).toBe(0);
  });

  test("names are checked against their limits, at the edge", () => {
    const catalog = setup();
    const at = (bytes: number) => "k".repeat(bytes - 2) + "é"; // é is 2 bytes in UTF-8
    const ok = ballOf({
      key: at(limits.keyBytesMax), bucket: at(limits.bucketNameBytesMax), ballId: at(limits.ballIdBytesMax), objectId: "o1", peers: [["p1"]],
    });
    catalog.commitBall(ok.ball, ok.chunks, {});
    expect(catalog.getBall(ok.ball.bucket, ok.ball.key)?.version).toBe(1);
    const cases = [
      ballOf({ key: at(limits.keyBytesMax + 1), objectId: "o2", peers: [["p1"]] }),
      ballOf({ key: "k", bucket: at(limits.bucketNameBytesMax + 1), objectId: "o3", peers: [["p1"]] }),
      ballOf({ key: "k", ballId: "b".repeat(limits.ballIdBytesMax + 1), objectId: "o4", peers: [["p1"]] }),
      ballOf({ key: "", objectId: "o5", peers: [["p1"]] }),
      ballOf({ key: "bad\u0000key", objectId: "o6", peers: [["p1"]] }),
      ballOf({ key: "lone\ud800", objectId: "o7", peers: [["p1"]] }),
      ballOf({ key: "k", objectId: "o8", peers: [["p1"]], tags: Object.fromEntries(Array.from({ length: limits.tagCountMax + 1 }, (_, i) => [`t${i}`, "v"])) }),
      ballOf({ key: "k", objectId: "o9", peers: [["p1"]], tags: { big: "v".repeat(limits.tagBytesMax + 1) } }),
      ballOf({ key: "k", objectId: "o10", peers: [["p1"]], tags: { ["n".repeat(limits.tagBytesMax + 1)]: "v" } }),
    ];
    for (const { ball, chunks } of cases) {
      const error = thrown(() => catalog.commitBall(ball, chunks, {}));
      expect(error).toBeInstanceOf(BadRequestError);
    }
    expect(thrown(() => catalog.getBall("bucket", "x".repeat(limits.keyBytesMax + 1)))).toBeInstanceOf(BadRequestError);
    expect(thrown(() => catalog.upsertPeer(peerRecord("p".repeat(limits.peerIdBytesMax + 1))))).toBeInstanceOf(BadRequestError);
    expect(thrown(() => catalog.listBalls({ bucket: "bucket", limit: limits.listPageMax + 1 }))).toBeInstanceOf(BadRequestError);
    expect(thrown(() => catalog.listBalls({ bucket: "bucket", limit: 0 }))).toBeInstanceOf(BadRequestError);
    expect(catalog.stats().balls).toBe(1);
  });
});

describe("delete and buckets", () => {
  test("delete returns the ball, sends its replicas to garbage; a new put starts at version 1", () => {
    const catalog = setup();
    const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
    catalog.commitBall(ball, chunks, {});
    const v2 = ballOf({ key: "k", objectId: "o2", peers: [["p3", "p4"]] });
    catalog.commitBall(v2.ball, v2.chunks, {});
    expect(catalog.deleteBall("bucket", "k")).toEqual(withVersion(v2.ball, 2));
    expect(catalog.getBall("bucket", "k")).toBeUndefined();
    expect(catalog.deleteBall("bucket", "k")).toBeUndefined();
    expect(sortGarbage(catalog.takeGarbage({ limit: 10 })).filter((item) => item.objectId === "o2")).toEqual([
      { objectId: "o2", index: 0, peerId: "p3", bucket: "bucket" },
      { objectId: "o2", index: 0, peerId: "p4", bucket: "bucket" },
    ]);
    expect(catalog.stats()).toMatchObject({ balls: 0, bytes: 0, chunks: 0, replicas: 0, garbage: 4, buckets: 1 });
    expect(catalog.listBuckets({ limit: 10 }).buckets).toEqual([{ name: "bucket", balls: 0, bytes: 0, createdMs: ball.createdMs }]);
    const v3 = ballOf({ key: "k", objectId: "o3", peers: [["p1"]] });
    expect(catalog.commitBall(v3.ball, v3.chunks, {})).toEqual({ version: 1 });
  });

  test("buckets list in name order, paginated, with exact counts", () => {
    const catalog = setup();
    const names = ["alpha", "beta", "delta", "épsilon", "gamma", "zeta", "Ω"];
    let n = 0;
    const sizes = new Map<string, number>();
    for (const name of names) {
      for (let i = 0; i <= names.indexOf(name); i += 1) {
        const { ball, chunks } = ballOf({ bucket: name, key: `k${i}`, objectId: `o${(n += 1)}`, peers: [["p1"]] });
        catalog.commitBall(ball, chunks, {});
        sizes.set(name, (sizes.get(name) ?? 0) + ball.size);
      }
    }
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page += 1) {
      const result = catalog.listBuckets({ limit: 3, ...(after === undefined ? {} : { after }) });
      for (const bucket of result.buckets) {
        expect(bucket.balls).toBe(names.indexOf(bucket.name) + 1);
        expect(bucket.bytes).toBe(sizes.get(bucket.name)!);
        seen.push(bucket.name);
      }
      if (result.next === undefined) break;
      after = result.next;
    }
    expect(seen).toEqual(["alpha", "beta", "delta", "gamma", "zeta", "épsilon", "Ω"]); // UTF-8 byte order
    expect(catalog.stats().buckets).toBe(names.length);
    expect(thrown(() => catalog.deleteBucket("alpha")).code).toBe("conflict");
    catalog.deleteBall("alpha", "k0");
    expect(catalog.deleteBucket("alpha")).toBe(true);
    expect(catalog.deleteBucket("alpha")).toBe(false);
    expect(catalog.stats().buckets).toBe(names.length - 1);
  });
});

describe("replication state", () => {
  function threeBalls(catalog: Catalog) {
    const specs = [
      ballOf({ key: "a", objectId: "oa", peers: [["p1", "p2"], ["p2", "p3"]] }),
      ballOf({ key: "b", objectId: "ob", peers: [["p1", "p3"]] }),
      ballOf({ key: "c", objectId: "oc", peers: [["p3", "p4"]], rf: 1 }),
    ];
    for (const { ball, chunks } of specs) catalog.commitBall(ball, chunks, {});
  }
  const underIds = (catalog: Catalog) => catalog.underReplicated({ limit: 100 }).chunks.map((c) => `${c.objectId}/${c.index}`);
  const overIds = (catalog: Catalog) => catalog.overReplicated({ limit: 100 }).chunks.map((c) => `${c.objectId}/${c.index}`);

  test("under-replication follows peers going down, suspect, draining and back up", () => {
    const catalog = setup();
    threeBalls(catalog);
    expect(underIds(catalog)).toEqual([]);
    expect(catalog.countUnderReplicated()).toBe(0);

    catalog.setPeerState("p2", "down");
    expect(underIds(catalog)).toEqual(["oa/0", "oa/1"]);
    expect(catalog.countUnderReplicated()).toBe(2);
    const [first] = catalog.underReplicated({ limit: 1 }).chunks;
    expect(first).toEqual({
      objectId: "oa", index: 0, size: 1024, checksum: catalog.getBall("bucket", "a")!.chunks[0]!.checksum,
      rf: 2, bucket: "bucket", key: "a", livePeers: ["p1"], allPeers: ["p1", "p2"],
    });

    catalog.setPeerState("p3", "suspect"); // a suspect peer's replicas still count
    expect(underIds(catalog)).toEqual(["oa/0", "oa/1"]);
    expect(catalog.countUnderReplicated()).toBe(2);
    catalog.setPeerState("p3", "down"); // a down one's do not
    expect(underIds(catalog)).toEqual(["oa/0", "oa/1", "ob/0"]);
    expect(catalog.countUnderReplicated()).toBe(3);
    catalog.setPeerState("p3", "up");
    catalog.setDraining("p4", true);
    expect(underIds(catalog)).toEqual(["oa/0", "oa/1"]); // oc has rf 1, p3 still holds it
    catalog.setDraining("p3", true);
    expect(underIds(catalog)).toEqual(["oa/0", "oa/1", "ob/0", "oc/0"]);
    expect(catalog.underReplicated({ limit: 100 }).chunks.at(-1)?.livePeers).toEqual([]);

    catalog.setDraining("p3", false);
    catalog.setDraining("p4", false);
    catalog.setPeerState("p2", "up");
    expect(underIds(catalog)).toEqual([]);
    expect(catalog.countUnderReplicated()).toBe(0);
    expect(catalog.setPeerState("ghost", "down")).toBe(false);
  });

  test("heal by addReplica; the lost peer returning makes chunks over-replicated; trim by removeReplica", () => {
    const catalog = setup();
    threeBalls(catalog);
    catalog.setPeerState("p2", "down");
    expect(catalog.addReplica("oa", 0, "p4")).toBe(true);
    expect(catalog.addReplica("oa", 0, "p4")).toBe(true); // idempotent
    expect(underIds(catalog)).toEqual(["oa/1"]);
    catalog.addReplica("oa", 1, "p1");
    expect(underIds(catalog)).toEqual([]);
    expect(catalog.findChunk("oa", 0)?.peers).toEqual(["p1", "p2", "p4"]);

    // Upserting the peer (a heartbeat) is the same as setPeerState.
    catalog.upsertPeer(peerRecord("p2", { usedBytes: 5 }));
    expect(overIds(catalog)).toEqual(["oa/0", "oa/1", "oc/0"]); // oc: rf 1 on two peers from the start
    expect(catalog.overReplicated({ limit: 1 }).chunks).toEqual([
      { objectId: "oa", index: 0, rf: 2, peers: ["p1", "p2", "p4"], allPeers: ["p1", "p2", "p4"] },
    ]);
    expect(catalog.removeReplica("oa", 0, "p2")).toBe(true);
    expect(catalog.removeReplica("oa", 0, "p2")).toBe(false); // idempotent
    expect(catalog.removeReplica("oa", 1, "p2", { garbage: false })).toBe(true);
    expect(overIds(catalog)).toEqual(["oc/0"]);
    expect(catalog.takeGarbage({ limit: 10 })).toEqual([{ objectId: "oa", index: 0, peerId: "p2", bucket: "bucket" }]);
    expect(catalog.stats()).toMatchObject({ replicas: 8, underReplicated: 0 }); // 8 committed + 2 healed - 2 trimmed
  });

  test("removeReplica refuses a chunk's last replica; addReplica on a gone chunk queues garbage", () => {
    const catalog = setup();
    threeBalls(catalog);
    expect(catalog.removeReplica("oc", 0, "p3")).toBe(true);
    const error = thrown(() => catalog.removeReplica("oc", 0, "p4"));
    expect(error).toBeInstanceOf(ConflictError);
    expect(catalog.findChunk("oc", 0)?.peers).toEqual(["p4"]);
    catalog.deleteBall("bucket", "b");
    catalog.ackGarbage(catalog.takeGarbage({ limit: 100 }));
    expect(catalog.addReplica("ob", 0, "p4")).toBe(false); // the copy raced a delete
    expect(catalog.takeGarbage({ limit: 10 })).toEqual([{ objectId: "ob", index: 0, peerId: "p4", bucket: "bucket" }]);
    expect(catalog.removeReplica("ob", 0, "p1")).toBe(false);
    expect(catalog.removeReplica("nothing", 0, "p1")).toBe(false);
    expect(thrown(() => catalog.addReplica("oa", 0, "ghost"))).toBeInstanceOf(BadRequestError);
  });

  test("re-adding a replica that was queued as garbage takes it out of the garbage", () => {
    const catalog = setup();
    threeBalls(catalog);
    catalog.addReplica("ob", 0, "p4");
    catalog.removeReplica("ob", 0, "p4");
    expect(catalog.countGarbage()).toBe(1);
    catalog.addReplica("ob", 0, "p4");
    expect(catalog.countGarbage()).toBe(0);
    expect(thrown(() => catalog.addGarbage([{ objectId: "ob", index: 0, peerId: "p4" }])).code).toBe("conflict");
  });

  test("pagination of under-replicated chunks and of a peer's chunks visits each once", () => {
    const catalog = setup();
    for (let i = 0; i < 57; i += 1) {
      const peers = Array.from({ length: 1 + (i % 4) }, (_, j) => (j % 2 === 0 ? ["p1", "p2"] : ["p2", "p3"]));
      const { ball, chunks } = ballOf({ key: `k${String(i).padStart(3, "0")}`, objectId: `o${i}`, peers });
      catalog.commitBall(ball, chunks, {});
    }
    const collect = (page: (after?: string) => { chunks: { objectId: string; index: number }[]; next?: string }) => {
      const seen: string[] = [];
      let after: string | undefined;
      for (let guard = 0; guard < 1000; guard += 1) {
        const result = page(after);
        seen.push(...result.chunks.map((c) => `${c.objectId}/${c.index}`));
        if (result.next === undefined) return seen;
        after = result.next;
      }
      throw new Error("pagination did not end");
    };
    const onP3 = collect((after) => catalog.chunksOnPeer("p3", { limit: 7, ...(after ? { after } : {}) }));
    const onP1 = collect((after) => catalog.chunksOnPeer("p1", { limit: 1, ...(after ? { after } : {}) }));
    const all = catalog.stats().chunks;
    expect(onP1.length + onP3.length).toBe(all);
    expect(new Set([...onP1, ...onP3]).size).toBe(all);
    expect(catalog.chunksOnPeer("p4", { limit: 10 })).toEqual({ chunks: [] });
    catalog.setPeerState("p2", "down");
    const under = collect((after) => catalog.underReplicated({ limit: 5, ...(after ? { after } : {}) }));
    expect(under.length).toBe(all);
    expect(new Set(under).size).toBe(all);
    expect(catalog.countUnderReplicated()).toBe(all);
    expect(thrown(() => catalog.underReplicated({ limit: 5, after: "garbage" }))).toBeInstanceOf(BadRequestError);
    // Chunks of one peer, fully described.
    const [chunk] = catalog.chunksOnPeer("p3", { limit: 1 }).chunks;
    const found = catalog.findChunk(chunk!.objectId, chunk!.index)!;
    expect(chunk).toEqual({ objectId: chunk!.objectId, index: chunk!.index, bucket: found.bucket, size: found.size, checksum: found.checksum, rf: 2, peers: found.peers });
  });
});

describe("peers", () => {
  test("upsert, get, list, remove; removing a peer with replicas conflicts", () => {
    const catalog = setup(["p2", "p1"]);
    expect(catalog.listPeers().map((peer) => peer.id)).toEqual(["p1", "p2"]);
    const updated = peerRecord("p1", { usedBytes: 77, freeBytes: 5, chunks: 3, lastHeartbeatMs: 99, draining: true, state: "suspect" });
    catalog.upsertPeer(updated);
    expect(catalog.getPeer("p1")).toEqual(updated);
    expect(catalog.getPeer("nobody")).toBeUndefined();
    catalog.upsertPeer(peerRecord("p1"));
    const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
    catalog.commitBall(ball, chunks, {});
    catalog.addGarbage([{ objectId: "old", index: 0, peerId: "p1", bucket: "bucket" }]);
    expect(thrown(() => catalog.removePeer("p1"))).toBeInstanceOf(ConflictError);
    catalog.removeReplica("o1", 0, "p1", { garbage: false });
    expect(catalog.removePeer("p1")).toBe(true);
    expect(catalog.removePeer("p1")).toBe(false);
    expect(catalog.getPeer("p1")).toBeUndefined();
    expect(catalog.countGarbage()).toBe(0); // nobody can delete from a removed peer
    expect(catalog.listPeers().map((peer) => peer.id)).toEqual(["p2"]);
    expect(thrown(() => catalog.upsertPeer({ ...peerRecord("p3"), state: "gone" as "up" }))).toBeInstanceOf(BadRequestError);
    expect(thrown(() => catalog.upsertPeer({ ...peerRecord("p3"), usedBytes: -1 }))).toBeInstanceOf(BadRequestError);
  });
});

describe("intents and garbage", () => {
  test("expired intents become garbage for all their placements; a late commit is refused", () => {
    const catalog = setup();
    catalog.addIntent({ objectId: "o1", bucket: "bucket", key: "k", createdMs: 100, expiresMs: 200, placements: [] });
    catalog.addIntentPlacements("o1", [{ index: 0, peers: ["p1", "p2"] }, { index: 1, peers: ["p2", "p3"] }]);
    catalog.addIntent({ objectId: "o2", bucket: "bucket", key: "j", createdMs: 100, expiresMs: 300, placements: [{ index: 0, peers: ["p4"] }] });
    expect(thrown(() => catalog.addIntent({ objectId: "o2", bucket: "b", key: "j", createdMs: 1, expiresMs: 2, placements: [] })).code).toBe("conflict");
    expect(catalog.stats().intents).toBe(2);
    expect(catalog.expireIntents(199)).toBe(0);
    expect(catalog.expireIntents(200)).toBe(1);
    expect(catalog.getIntent("o1")).toBeUndefined();
    expect(sortGarbage(catalog.takeGarbage({ limit: 10 }))).toEqual([
      { objectId: "o1", index: 0, peerId: "p1", bucket: "bucket" },
      { objectId: "o1", index: 0, peerId: "p2", bucket: "bucket" },
      { objectId: "o1", index: 1, peerId: "p2", bucket: "bucket" },
      { objectId: "o1", index: 1, peerId: "p3", bucket: "bucket" },
    ]);
    const late = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p2", "p3"]] });
    expect(thrown(() => catalog.commitBall(late.ball, late.chunks, {})).message).toContain("expired");
    catalog.ackGarbage(catalog.takeGarbage({ limit: 10 }));
    expect(thrown(() => catalog.commitBall(late.ball, late.chunks, {})).message).toContain("expired"); // still remembered
    expect(thrown(() => catalog.addIntentPlacements("o1", [{ index: 2, peers: ["p1"] }])).code).toBe("conflict");
    expect(catalog.stats()).toMatchObject({ intents: 1, garbage: 0, balls: 0 });
    expect(catalog.expireIntents(300 + limits.retiredObjectRetainMs)).toBe(1);
  });

  test("a commit ends its intent; placements it did not use become garbage", () => {
    const catalog = setup();
    catalog.addIntent({
      objectId: "o1", bucket: "bucket", key: "k", createdMs: 1, expiresMs: 10,
      placements: [{ index: 0, peers: ["p1", "p2"] }, { index: 1, peers: ["p3", "p4"] }],
    });
    catalog.addIntentPlacements("o1", [{ index: 1, peers: ["p1"] }], 50); // p4 failed; the router asked for p1
    expect(catalog.getIntent("o1")).toEqual({
      objectId: "o1", bucket: "bucket", key: "k", createdMs: 1, expiresMs: 50,
      placements: [{ index: 0, peers: ["p1", "p2"] }, { index: 1, peers: ["p1", "p3", "p4"] }],
    });
    const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p1", "p3"]] });
    catalog.commitBall(ball, chunks, {});
    expect(catalog.getIntent("o1")).toBeUndefined();
    expect(catalog.takeGarbage({ limit: 10 })).toEqual([{ objectId: "o1", index: 1, peerId: "p4", bucket: "bucket" }]);
    expect(catalog.expireIntents(1_000)).toBe(0);
    expect(catalog.stats().intents).toBe(0);
  });

  test("retired object ids: garbage keeps their bucket, they cannot come back, they are forgotten after the retention", () => {
    const catalog = setup();
    const v1 = ballOf({ bucket: "photos", key: "k", objectId: "o1", peers: [["p1", "p2"]] });
    const v2 = ballOf({ bucket: "photos", key: "k", objectId: "o2", peers: [["p3"]] });
    catalog.commitBall(v1.ball, v1.chunks, {});
    catalog.commitBall(v2.ball, v2.chunks, {});
    catalog.deleteBall("photos", "k");
    expect(sortGarbage(catalog.takeGarbage({ limit: 10 }))).toEqual([
      { objectId: "o1", index: 0, peerId: "p1", bucket: "photos" },
      { objectId: "o1", index: 0, peerId: "p2", bucket: "photos" },
      { objectId: "o2", index: 0, peerId: "p3", bucket: "photos" },
    ]);
    catalog.ackGarbage(catalog.takeGarbage({ limit: 10 }));
    expect(thrown(() => catalog.commitBall(v1.ball, v1.chunks, {})).message).toContain("overwritten");
    expect(thrown(() => catalog.commitBall(v2.ball, v2.chunks, {})).message).toContain("deleted");
    // A copy made for a retired object is filed as garbage under its bucket; so is a manual add.
    expect(catalog.addReplica("o2", 0, "p4")).toBe(false);
    catalog.addGarbage([{ objectId: "o1", index: 0, peerId: "p4" }]);
    expect(sortGarbage(catalog.takeGarbage({ limit: 10 }))).toEqual([
      { objectId: "o1", index: 0, peerId: "p4", bucket: "photos" },
      { objectId: "o2", index: 0, peerId: "p4", bucket: "photos" },
    ]);
    catalog.ackGarbage(catalog.takeGarbage({ limit: 10 }));
    catalog.expireIntents(Date.now() + limits.retiredObjectRetainMs + 1);
    expect(catalog.addReplica("o2", 0, "p4")).toBe(false);
    expect(catalog.countGarbage()).toBe(0); // nothing known to file it under
    expect(catalog.commitBall(v1.ball, v1.chunks, {})).toEqual({ version: 1 });
  });

  test("garbage: take is oldest first and filters by peer, does not remove; ack removes", () => {
    const catalog = setup();
    const items = Array.from({ length: 12 }, (_, i) => ({ objectId: `g${i}`, index: i % 3, peerId: `p${1 + (i % 4)}`, bucket: `b${i % 2}` }));
    catalog.addGarbage(items.slice(0, 6));
    catalog.addGarbage(items.slice(4)); // overlaps: deduplicated
    expect(catalog.countGarbage()).toBe(12);
    expect(catalog.takeGarbage({ limit: 5 })).toEqual(items.slice(0, 5));
    expect(catalog.takeGarbage({ limit: 5 })).toEqual(items.slice(0, 5));
    expect(catalog.takeGarbage({ peerIds: ["p2", "p4"], limit: 4 })).toEqual([1, 3, 5, 7].map((i) => items[i]!));
    expect(catalog.takeGarbage({ peerIds: ["p3"], limit: 100 })).toEqual([2, 6, 10].map((i) => items[i]!));
    expect(catalog.takeGarbage({ peerIds: [], limit: 100 })).toEqual([]);
    catalog.ackGarbage([items[1]!, items[3]!]);
    catalog.ackGarbage([items[1]!]); // idempotent
    expect(catalog.countGarbage()).toBe(10);
    expect(catalog.takeGarbage({ peerIds: ["p2", "p4"], limit: 2 })).toEqual([5, 7].map((i) => items[i]!));
    expect(thrown(() => catalog.addGarbage([{ objectId: "x", index: 0, peerId: "ghost", bucket: "b" }]))).toBeInstanceOf(BadRequestError);
    // Without a bucket, the catalog must know the object to file the garbage under its bucket.
    expect(thrown(() => catalog.addGarbage([{ objectId: "unknown", index: 0, peerId: "p1" }])).message).toContain("bucket");
    expect(thrown(() => catalog.takeGarbage({ limit: 0 }))).toBeInstanceOf(BadRequestError);
  });
});

describe("batches, meta, reopen", () => {
  test("commitBalls: one transaction, a failing item is rolled back alone", () => {
    const catalog = setup();
    const a = ballOf({ key: "a", objectId: "oa", peers: [["p1", "p2"]] });
    const b = ballOf({ key: "b", objectId: "ob", peers: [["p1", "ghost"]] });
    const c = ballOf({ key: "a", objectId: "oc", peers: [["p3"]] });
    const results = catalog.commitBalls([
      { ball: a.ball, chunks: a.chunks },
      { ball: b.ball, chunks: b.chunks },
      { ball: c.ball, chunks: c.chunks, options: { ifAbsent: true } },
    ]);
    expect(results[0]).toEqual({ version: 1 });
    expect(results[1]).toBeInstanceOf(BadRequestError);
    expect(results[2]).toBeInstanceOf(ConflictError);
    expect(catalog.stats()).toMatchObject({ balls: 1, chunks: 1, replicas: 2 });
  });

  test("batchAllOrNothing: a write that throws rolls the whole group back, commitBalls included", () => {
    const catalog = setup();
    const a = ballOf({ key: "a", objectId: "oa", peers: [["p1", "p2"]] });
    const b = ballOf({ key: "b", objectId: "ob", peers: [["p1", "ghost"]] });
    expect(
      thrown(() =>
        catalog.batchAllOrNothing(() => {
          catalog.commitBall(a.ball, a.chunks); // would commit on its own
          catalog.commitBall(b.ball, b.chunks); // unknown peer: throws
        }),
      ),
    ).toBeInstanceOf(BadRequestError);
    expect(catalog.stats()).toMatchObject({ balls: 0, chunks: 0, replicas: 0 });
    // commitBalls returns a failed item in its place only when a savepoint undid it; here none does.
    expect(thrown(() => catalog.batchAllOrNothing(() => catalog.commitBalls([{ ball: a.ball, chunks: a.chunks }, { ball: b.ball, chunks: b.chunks }])))).toBeInstanceOf(
      BadRequestError,
    );
    expect(catalog.stats()).toMatchObject({ balls: 0, chunks: 0, replicas: 0 });
    // Without failures the group commits as one.
    catalog.batchAllOrNothing(() => catalog.commitBall(a.ball, a.chunks));
    expect(catalog.stats()).toMatchObject({ balls: 1, chunks: 1, replicas: 2 });
    expect(() => catalog.batch(() => catalog.batchAllOrNothing(() => 1))).toThrow("does not nest"); // a bug, not a user error
  });

  test("meta keeps small strings", () => {
    const catalog = setup();
    expect(catalog.getMeta("healed")).toBeUndefined();
    catalog.setMeta("healed", "41");
    catalog.setMeta("healed", "42");
    expect(catalog.getMeta("healed")).toBe("42");
  });

  test("reopen after close keeps everything", () => {
    const temp = tempCatalog();
    cleanups.push(temp.done);
    let catalog = temp.catalog;
    for (const id of ["p1", "p2", "p3"]) catalog.upsertPeer(peerRecord(id));
    for (let i = 0; i < 20; i += 1) {
      const { ball, chunks } = ballOf({ bucket: `b${i % 3}`, key: `k${i % 5}`, objectId: `o${i}`, peers: [["p1", "p2"], ["p3"]] });
      catalog.commitBall(ball, chunks, {});
    }
    catalog.setPeerState("p3", "down");
    catalog.addIntent({ objectId: "oi", bucket: "b0", key: "x", createdMs: 1, expiresMs: 9, placements: [{ index: 0, peers: ["p1"] }] });
    catalog.setMeta("m", "v");
    const snapshot = (c: Catalog) => ({
      stats: c.stats(),
      peers: c.listPeers(),
      buckets: c.listBuckets({ limit: 100 }),
      balls: ["b0", "b1", "b2"].map((bucket) => c.listBalls({ bucket, limit: 100 }).balls.map((b) => c.getBall(b.bucket, b.key))),
      under: c.underReplicated({ limit: 1000 }),
      garbage: c.takeGarbage({ limit: 1000 }),
      intent: c.getIntent("oi"),
      meta: c.getMeta("m"),
    });
    const before = snapshot(catalog);
    expect(before.stats.balls).toBe(15);
    catalog.close();
    catalog = Catalog.open(temp.path);
    expect(snapshot(catalog)).toEqual(before);
    expect(catalog.audit()).toEqual([]);
    catalog.close();
  });

  test("durability settings: WAL, synchronous=FULL, a busy timeout, foreign keys", () => {
    const catalog = setup();
    const db = (catalog as unknown as { db: import("bun:sqlite").Database }).db;
    const pragma = (name: string) => Object.values(db.query<Record<string, unknown>, []>(`PRAGMA ${name}`).get()!)[0];
    expect(pragma("journal_mode")).toBe("wal");
    expect(pragma("synchronous")).toBe(2); // FULL
    expect(pragma("busy_timeout")).toBe(limits.catalogBusyTimeoutMs);
    expect(pragma("foreign_keys")).toBe(1);
  });

  test("the statements that must stay cheap use their indexes", () => {
    const catalog = setup();
    const db = (catalog as unknown as { db: import("bun:sqlite").Database }).db;
    const plan = (sql: string) => db.query<{ detail: string }, []>(`EXPLAIN QUERY PLAN ${sql}`).all().map((r) => r.detail).join("; ");
    expect(plan("SELECT * FROM balls WHERE bucket = 'b' AND key = 'k'")).toContain("USING INDEX balls_key");
    expect(plan("SELECT * FROM balls WHERE object_id = 'o'")).toContain("USING INDEX balls_object");
    expect(plan("SELECT count(*) FROM chunks WHERE live < rf")).toContain("chunks_under");
    expect(plan("SELECT 1 FROM replicas WHERE peer = 1 LIMIT 1")).toContain("replicas_peer");
    expect(plan("UPDATE chunks SET live = live + 1 WHERE (ball, idx) IN (SELECT ball, idx FROM replicas WHERE peer = 1)")).not.toMatch(/SCAN chunks/);
    const due = plan("SELECT seq FROM garbage WHERE peer_id = 'p' AND not_before_ms <= 5 ORDER BY not_before_ms, seq LIMIT 5");
    expect(due).toContain("garbage_due");
    expect(due).not.toContain("TEMP B-TREE");
  });
});
