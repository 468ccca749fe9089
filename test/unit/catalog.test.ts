// The catalog's calls, run against both engines (test/support/catalog-engines.ts): the same
// results, errors and counters from bun:sqlite and from PostgreSQL. Every test ends with an
// audit (a recount of everything kept incrementally).
import { afterEach, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { committedBall, type CatalogStore, type CommitItem, type CommitResult, type GarbageEntry } from "../../src/catalog/index.ts";
import { BadRequestError, ConflictError, MictlanxError } from "../../src/lib/errors.ts";
import { seededRandom } from "../support/random.ts";
import { join } from "node:path";
import { PostgresStore } from "../../src/catalog/postgres/store.ts";
import { limits } from "../../src/lib/limits.ts";
import { ballOf, peerRecord, withVersion } from "./fixtures/catalog-records.ts";
import { rejection } from "../support/errors.ts";
import { forEachEngine, type OpenedCatalog } from "../support/catalog-engines.ts";

const sortGarbage = (items: GarbageEntry[]) =>
  [...items].sort((a, b) => `${a.objectId}/${a.index}/${a.peerId}`.localeCompare(`${b.objectId}/${b.index}/${b.peerId}`));

forEachEngine("catalog", (engine) => {
  let opened: OpenedCatalog[] = [];
  /** A catalog with peers p1..p4 up. */
  async function setup(peers = ["p1", "p2", "p3", "p4"]): Promise<CatalogStore> {
    const catalog = await engine.open();
    opened.push(catalog);
    for (const id of peers) await catalog.store.upsertPeer(peerRecord(id));
    return catalog.store;
  }
  afterEach(async () => {
    for (const catalog of opened.splice(0)) expect(await catalog.store.audit()).toEqual([]);
  });

  describe("commit, get, overwrite", () => {
    test("a committed ball reads back exactly", async () => {
      const catalog = await setup();
      const { ball, chunks } = ballOf({ key: "docs/a.txt", objectId: "o1", peers: [["p2", "p1"], ["p3", "p1"]] });
      expect(await catalog.commitBall(ball, chunks, {})).toEqual({ version: 1 });
      expect(await catalog.getBall("bucket", "docs/a.txt")).toEqual({ ...withVersion(ball, 1), chunks });
      expect(await catalog.getBall("bucket", "docs/b.txt")).toBeUndefined();
      expect(await catalog.getBall("other", "docs/a.txt")).toBeUndefined();
      expect(await catalog.stats()).toEqual({
        balls: 1, buckets: 1, bytes: ball.size, chunks: 2, replicas: 4, underReplicated: 0, garbage: 0, intents: 0, intentBytes: 0,
      });
    });

    test("what a commit wrote reads back as committedBall(input, version) and chunk 0's holders as the ones it named (the SPM's manifest reads neither)", async () => {
      const catalog = await setup();
      const inputs = [
        ballOf({ key: "k", objectId: "o1", peers: [["p2", "p1"], ["p3", "p1"]] }),
        ballOf({ key: "k", objectId: "o2", peers: [["p4", "p3", "p2"]], tags: {}, rf: 3 }),
        ballOf({ key: "ünï/\u{1F600}", objectId: "o3", peers: [["p1"]], tags: { "clé": "välue \u{1F600}" }, rf: 1 }),
      ];
      inputs[1]!.ball.contentType = "text/plain; charset=utf-8";
      for (const { ball, chunks } of inputs) {
        const { version } = await catalog.commitBall(ball, chunks, {});
        expect(await catalog.getBallMeta(ball.bucket, ball.key)).toEqual(committedBall(ball, version));
        expect((await catalog.findChunk(ball.objectId, 0))?.peers).toEqual([...chunks[0]!.peers].sort());
      }
      expect((await catalog.getBallMeta("bucket", "k"))?.version).toBe(2);
    });

    test.if(engine.name === "postgres")("a fresh catalog's put path reads by the right index, never a whole table (cached plans made while the tables were empty)", async () => {
      const first = await engine.open();
      for (const id of ["p1", "p2", "p3"]) await first.store.upsertPeer(peerRecord(id));
      await first.store.close(); // a backend's table statistics are flushed when it ends
      const perPut = ["balls", "chunks", "replicas", "intents", "intent_placements", "requests", "retired"];
      const observer = new SQL(first.location, { max: 1 });
      const scans = async () => {
        const rows: Array<{ relname: string; seq_scan: string; idx_scan: string | null }> = await observer`SELECT relname, seq_scan, idx_scan FROM pg_stat_user_tables WHERE relname = ANY(${observer.array(perPut, "TEXT")}::text[])`;
        const groups: Array<{ idx_scan: string }> = await observer`SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'balls_group'`;
        return new Map([...rows.map((row) => [row.relname, { seq: Number(row.seq_scan), idx: Number(row.idx_scan ?? 0) }] as const), ["balls_group", { seq: 0, idx: Number(groups[0]?.idx_scan ?? 0) }] as const]);
      };
      try {
        // As autovacuum leaves a catalog's tables when it finds them empty (the per-put intents
        // tables nearly always): planner statistics of empty tables, on which a seq scan is cheapest.
        await observer.unsafe(`VACUUM ANALYZE ${perPut.join(", ")}`);
        const before = await scans();
        const store = await first.reopen();
        const puts = 120;
        for (let i = 0; i < puts; i += 1) {
          const { ball, chunks } = ballOf({ key: `k${i % 40}`, objectId: `o${i}`, peers: [["p1", "p2"], ["p2", "p3"]] }); // a third are overwrites
          await store.addIntent({ objectId: ball.objectId, bucket: ball.bucket, key: ball.key, createdMs: 1, expiresMs: 1e15, placements: chunks, requestId: `r${i}` });
          await store.commitBall(ball, chunks, { requirePlacements: true });
          expect((await store.getBallMeta(ball.bucket, ball.key))?.objectId).toBe(ball.objectId);
        }
        await store.close();
        const touched = async () => ((await scans()).get("balls")?.idx ?? 0) - (before.get("balls")?.idx ?? 0);
        for (let waited = 0; (await touched()) < puts && waited < 10_000; waited += 100) await Bun.sleep(100); // the ended backends' flush
        const after = await scans();
        const seqScans = Object.fromEntries(perPut.map((table) => [table, (after.get(table)?.seq ?? 0) - (before.get(table)?.seq ?? 0)]));
        expect(seqScans).toEqual(Object.fromEntries(perPut.map((table) => [table, 0])));
        // Nor by the ball-group index, whose key is no bound for a lookup by key (schema.ts,
        // migration 2): with it the puts above scanned it 180 times, one and a half per put.
        expect((after.get("balls_group")?.idx ?? 0) - (before.get("balls_group")?.idx ?? 0)).toBeLessThan(puts / 10);
        expect(await touched()).toBeGreaterThanOrEqual(puts);
      } finally {
        await observer.close();
      }
    });

    test("right after an overwrite, findRetiredChunk(old, 0) names the holders the old chunk 0 had, with or without readers' grace (its tombstone goes to them)", async () => {
      const catalog = await setup();
      for (const [n, retire] of [[0, {}], [1, { atMs: 1_000, readerGraceMs: 0 }], [2, { atMs: 1_000, readerGraceMs: 60_000 }]] as const) {
        const old = ballOf({ key: `k${n}`, objectId: `old${n}`, peers: [["p3", "p1"], ["p2"]] });
        await catalog.commitBall(old.ball, old.chunks, {});
        const next = ballOf({ key: `k${n}`, objectId: `new${n}`, peers: [["p4"]] });
        const [outcome] = await catalog.group([
          async (tx) => {
            const { replacedObjectId } = await tx.commitBall(next.ball, next.chunks, { retire });
            return { replacedObjectId, holders: (await tx.findRetiredChunk(replacedObjectId!, 0))?.peers };
          },
        ]);
        expect(outcome).toEqual({ ok: true, value: { replacedObjectId: `old${n}`, holders: ["p1", "p3"] } });
      }
      const empty = ballOf({ key: "e", objectId: "old-empty", peers: [] });
      await catalog.commitBall({ ...empty.ball, size: 0 }, [], {});
      const replaced = ballOf({ key: "e", objectId: "new-empty", peers: [["p1"]] });
      const { replacedObjectId } = await catalog.commitBall(replaced.ball, replaced.chunks, {});
      expect(await catalog.findRetiredChunk(replacedObjectId!, 0)).toBeUndefined(); // no chunk 0: its tombstone goes to any up peer
    });

    test("a chunk's holders come back in peer id order (byte order of UTF-8), whatever order the peers joined in", async () => {
      // Joined last-first, so the engine's own peer numbers run against id order; "p\u{1F600}"
      // (past the surrogates) sorts after "p\uFFFD" in UTF-8 and before it in UTF-16.
      const catalog = await setup(["p\u{1F600}", "p\uFFFD", "p3", "p2", "p1"]);
      const holders = ["p\u{1F600}", "p\uFFFD", "p3", "p1"];
      const expected = ["p1", "p3", "p\uFFFD", "p\u{1F600}"];
      const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [holders, ["p2", "p\u{1F600}"]] });
      await catalog.commitBall(ball, chunks, {});
      const read = await catalog.getBall("bucket", "k");
      expect(read?.chunks.map((chunk) => chunk.peers)).toEqual([expected, ["p2", "p\u{1F600}"]]);
      expect((await catalog.findChunk("o1", 0))?.peers).toEqual(expected);
      expect((await catalog.getBallMeta("bucket", "k"))?.numChunks).toBe(2);
      const page = await catalog.chunksPage("o1", 0, 10);
      expect(page?.chunks.map((chunk) => chunk.peers)).toEqual([expected, ["p2", "p\u{1F600}"]]);
    });

    test("an overwrite bumps the version, sends every old replica to garbage, reads see the new one", async () => {
      const catalog = await setup();
      const first = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p2", "p3"]] });
      const second = ballOf({ key: "k", objectId: "o2", peers: [["p3", "p4"]], chunkSize: 4096 });
      const third = ballOf({ key: "k", objectId: "o3", peers: [["p1", "p4"]] });
      await catalog.commitBall(first.ball, first.chunks, {});
      expect(await catalog.commitBall(second.ball, second.chunks, {})).toEqual({ version: 2, replacedObjectId: "o1" });
      expect(await catalog.getBall("bucket", "k")).toEqual({ ...withVersion(second.ball, 2), chunks: second.chunks });
      expect(sortGarbage(await catalog.takeGarbage({ limit: 100 }))).toEqual([
        { objectId: "o1", index: 0, peerId: "p1", bucket: "bucket" },
        { objectId: "o1", index: 0, peerId: "p2", bucket: "bucket" },
        { objectId: "o1", index: 1, peerId: "p2", bucket: "bucket" },
        { objectId: "o1", index: 1, peerId: "p3", bucket: "bucket" },
      ]);
      expect(await catalog.commitBall(third.ball, third.chunks, {})).toEqual({ version: 3, replacedObjectId: "o2" });
      expect((await catalog.getBall("bucket", "k"))?.version).toBe(3);
      expect(await catalog.findChunk("o1", 0)).toBeUndefined();
      expect(await catalog.findChunk("o2", 0)).toBeUndefined();
      expect(await catalog.stats()).toMatchObject({ balls: 1, bytes: third.ball.size, chunks: 1, replicas: 2, garbage: 6 });
      expect((await catalog.listBuckets({ limit: 10 })).buckets).toEqual([
        { name: "bucket", balls: 1, bytes: third.ball.size, createdMs: first.ball.createdMs },
      ]);
    });

    test("the same commit again (a retry) succeeds without a change; other contents under its id conflict", async () => {
      const catalog = await setup();
      const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
      await catalog.commitBall(ball, chunks, {});
      expect(await catalog.commitBall(ball, chunks, { ifAbsent: true })).toEqual({ version: 1 });
      expect(await catalog.stats()).toMatchObject({ balls: 1, garbage: 0 });
      const other = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p1", "p2"]] });
      expect(await rejection(catalog.commitBall(other.ball, other.chunks, {}))).toBeInstanceOf(ConflictError);
    });

    test("an object id names one version only", async () => {
      const catalog = await setup();
      const a = ballOf({ key: "a", objectId: "o1", peers: [["p1"]] });
      const b = ballOf({ key: "b", objectId: "o1", peers: [["p1"]] });
      await catalog.commitBall(a.ball, a.chunks, {});
      expect((await rejection(catalog.commitBall(b.ball, b.chunks, {}))).code).toBe("conflict");
      // An overwritten version's id is being garbage-collected: it cannot come back.
      const a2 = ballOf({ key: "a", objectId: "o2", peers: [["p1"]] });
      await catalog.commitBall(a2.ball, a2.chunks, {});
      expect((await rejection(catalog.commitBall(b.ball, b.chunks, {}))).code).toBe("conflict");
    });
  });

  describe("preconditions and validation", () => {
    test("if-absent on an existing key conflicts and writes nothing", async () => {
      const catalog = await setup();
      const first = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
      await catalog.commitBall(first.ball, first.chunks, {});
      await catalog.addIntent({ objectId: "o2", bucket: "bucket", key: "k", createdMs: 1, expiresMs: 10, placements: [{ index: 0, peers: ["p3", "p4"] }] });
      const before = { stats: await catalog.stats(), ball: await catalog.getBall("bucket", "k") };
      const second = ballOf({ key: "k", objectId: "o2", peers: [["p3", "p4"]] });
      const error = await rejection(catalog.commitBall(second.ball, second.chunks, { ifAbsent: true }));
      expect(error).toBeInstanceOf(ConflictError);
      expect(error.message).toContain("already exists");
      expect(await catalog.stats()).toEqual(before.stats);
      expect(await catalog.getBall("bucket", "k")).toEqual(before.ball!);
      expect((await catalog.getIntent("o2"))?.placements).toEqual([{ index: 0, peers: ["p3", "p4"] }]);
      expect(await catalog.findChunk("o2", 0)).toBeUndefined();
    });

    test("a failing commit into a new bucket leaves no bucket behind", async () => {
      const catalog = await setup();
      const { ball, chunks } = ballOf({ bucket: "fresh", key: "k", objectId: "o1", peers: [["p1", "ghost"]] });
      const error = await rejection(catalog.commitBall(ball, chunks, {}));
      expect(error).toBeInstanceOf(BadRequestError);
      expect(error.message).toContain("ghost");
      expect((await catalog.listBuckets({ limit: 10 })).buckets).toEqual([]);
      expect(await catalog.stats()).toMatchObject({ balls: 0, buckets: 0, chunks: 0, replicas: 0 });
    });

    test("expectedObjectId is compare-and-swap", async () => {
      const catalog = await setup();
      const v1 = ballOf({ key: "k", objectId: "o1", peers: [["p1"]] });
      const v2 = ballOf({ key: "k", objectId: "o2", peers: [["p2"]] });
      const v3 = ballOf({ key: "k", objectId: "o3", peers: [["p3"]] });
      expect((await rejection(catalog.commitBall(v1.ball, v1.chunks, { expectedObjectId: "o0" }))).code).toBe("conflict");
      await catalog.commitBall(v1.ball, v1.chunks, {});
      expect(await catalog.commitBall(v2.ball, v2.chunks, { expectedObjectId: "o1" })).toEqual({ version: 2, replacedObjectId: "o1" });
      expect((await rejection(catalog.commitBall(v3.ball, v3.chunks, { expectedObjectId: "o1" }))).code).toBe("conflict");
      expect((await catalog.getBall("bucket", "k"))?.objectId).toBe("o2");
    });

    test("chunks must be 0..numChunks-1, add up to the size, each held by a registered peer", async () => {
      const catalog = await setup();
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
        const error = await rejection(catalog.commitBall(ball, bad as typeof chunks, {}));
        expect(error).toBeInstanceOf(BadRequestError);
        expect(error.message.toLowerCase()).toContain(word.toLowerCase());
      }
      expect((await catalog.stats()).balls).toBe(0);
    });

    test("names are checked against their limits, at the edge", async () => {
      const catalog = await setup();
      const at = (bytes: number) => "k".repeat(bytes - 2) + "é"; // é is 2 bytes in UTF-8
      const ok = ballOf({
        key: at(limits.keyBytesMax), bucket: at(limits.bucketNameBytesMax), ballId: at(limits.ballIdBytesMax), objectId: "o1", peers: [["p1"]],
      });
      await catalog.commitBall(ok.ball, ok.chunks, {});
      expect((await catalog.getBall(ok.ball.bucket, ok.ball.key))?.version).toBe(1);
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
        const error = await rejection(catalog.commitBall(ball, chunks, {}));
        expect(error).toBeInstanceOf(BadRequestError);
      }
      expect(await rejection(catalog.getBall("bucket", "x".repeat(limits.keyBytesMax + 1)))).toBeInstanceOf(BadRequestError);
      expect(await rejection(catalog.upsertPeer(peerRecord("p".repeat(limits.peerIdBytesMax + 1))))).toBeInstanceOf(BadRequestError);
      expect(await rejection(catalog.listBalls({ bucket: "bucket", limit: limits.listPageMax + 1 }))).toBeInstanceOf(BadRequestError);
      expect(await rejection(catalog.listBalls({ bucket: "bucket", limit: 0 }))).toBeInstanceOf(BadRequestError);
      expect((await catalog.stats()).balls).toBe(1);
    });
  });

  describe("delete and buckets", () => {
    test("delete returns the ball, sends its replicas to garbage; a new put starts at version 1", async () => {
      const catalog = await setup();
      const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
      await catalog.commitBall(ball, chunks, {});
      const v2 = ballOf({ key: "k", objectId: "o2", peers: [["p3", "p4"]] });
      await catalog.commitBall(v2.ball, v2.chunks, {});
      expect(await catalog.deleteBall("bucket", "k")).toEqual(withVersion(v2.ball, 2));
      expect(await catalog.getBall("bucket", "k")).toBeUndefined();
      expect(await catalog.deleteBall("bucket", "k")).toBeUndefined();
      expect(sortGarbage(await catalog.takeGarbage({ limit: 10 })).filter((item) => item.objectId === "o2")).toEqual([
        { objectId: "o2", index: 0, peerId: "p3", bucket: "bucket" },
        { objectId: "o2", index: 0, peerId: "p4", bucket: "bucket" },
      ]);
      expect(await catalog.stats()).toMatchObject({ balls: 0, bytes: 0, chunks: 0, replicas: 0, garbage: 4, buckets: 1 });
      expect((await catalog.listBuckets({ limit: 10 })).buckets).toEqual([{ name: "bucket", balls: 0, bytes: 0, createdMs: ball.createdMs }]);
      const v3 = ballOf({ key: "k", objectId: "o3", peers: [["p1"]] });
      expect(await catalog.commitBall(v3.ball, v3.chunks, {})).toEqual({ version: 1 });
    });

    test("buckets list in name order, paginated, with exact counts", async () => {
      const catalog = await setup();
      const names = ["alpha", "beta", "delta", "épsilon", "gamma", "zeta", "Ω"];
      let n = 0;
      const sizes = new Map<string, number>();
      for (const name of names) {
        for (let i = 0; i <= names.indexOf(name); i += 1) {
          const { ball, chunks } = ballOf({ bucket: name, key: `k${i}`, objectId: `o${(n += 1)}`, peers: [["p1"]] });
          await catalog.commitBall(ball, chunks, {});
          sizes.set(name, (sizes.get(name) ?? 0) + ball.size);
        }
      }
      const seen: string[] = [];
      let after: string | undefined;
      for (let page = 0; page < 10; page += 1) {
        const result = await catalog.listBuckets({ limit: 3, ...(after === undefined ? {} : { after }) });
        for (const bucket of result.buckets) {
          expect(bucket.balls).toBe(names.indexOf(bucket.name) + 1);
          expect(bucket.bytes).toBe(sizes.get(bucket.name)!);
          seen.push(bucket.name);
        }
        if (result.next === undefined) break;
        after = result.next;
      }
      expect(seen).toEqual(["alpha", "beta", "delta", "gamma", "zeta", "épsilon", "Ω"]); // UTF-8 byte order
      expect((await catalog.stats()).buckets).toBe(names.length);
      expect((await rejection(catalog.deleteBucket("alpha"))).code).toBe("conflict");
      await catalog.deleteBall("alpha", "k0");
      expect(await catalog.deleteBucket("alpha")).toBe(true);
      expect(await catalog.deleteBucket("alpha")).toBe(false);
      expect((await catalog.stats()).buckets).toBe(names.length - 1);
    });
  });

  describe("replication state", () => {
    async function threeBalls(catalog: CatalogStore) {
      const specs = [
        ballOf({ key: "a", objectId: "oa", peers: [["p1", "p2"], ["p2", "p3"]] }),
        ballOf({ key: "b", objectId: "ob", peers: [["p1", "p3"]] }),
        ballOf({ key: "c", objectId: "oc", peers: [["p3", "p4"]], rf: 1 }),
      ];
      for (const { ball, chunks } of specs) await catalog.commitBall(ball, chunks, {});
    }
    const underIds = async (catalog: CatalogStore) => (await catalog.underReplicated({ limit: 100 })).chunks.map((c) => `${c.objectId}/${c.index}`);
    const overIds = async (catalog: CatalogStore) => (await catalog.overReplicated({ limit: 100 })).chunks.map((c) => `${c.objectId}/${c.index}`);

    test("under-replication follows peers going down, suspect, draining and back up", async () => {
      const catalog = await setup();
      await threeBalls(catalog);
      expect(await underIds(catalog)).toEqual([]);
      expect(await catalog.countUnderReplicated()).toBe(0);

      await catalog.setPeerState("p2", "down");
      expect(await underIds(catalog)).toEqual(["oa/0", "oa/1"]);
      expect(await catalog.countUnderReplicated()).toBe(2);
      const [first] = (await catalog.underReplicated({ limit: 1 })).chunks;
      expect(first).toEqual({
        objectId: "oa", index: 0, size: 1024, checksum: (await catalog.getBall("bucket", "a"))!.chunks[0]!.checksum,
        rf: 2, bucket: "bucket", key: "a", livePeers: ["p1"], allPeers: ["p1", "p2"],
      });

      await catalog.setPeerState("p3", "suspect"); // a suspect peer's replicas still count
      expect(await underIds(catalog)).toEqual(["oa/0", "oa/1"]);
      expect(await catalog.countUnderReplicated()).toBe(2);
      await catalog.setPeerState("p3", "down"); // a down one's do not
      expect(await underIds(catalog)).toEqual(["oa/0", "oa/1", "ob/0"]);
      expect(await catalog.countUnderReplicated()).toBe(3);
      await catalog.setPeerState("p3", "up");
      await catalog.setDraining("p4", true);
      expect(await underIds(catalog)).toEqual(["oa/0", "oa/1"]); // oc has rf 1, p3 still holds it
      await catalog.setDraining("p3", true);
      expect(await underIds(catalog)).toEqual(["oa/0", "oa/1", "ob/0", "oc/0"]);
      expect((await catalog.underReplicated({ limit: 100 })).chunks.at(-1)?.livePeers).toEqual([]);

      await catalog.setDraining("p3", false);
      await catalog.setDraining("p4", false);
      await catalog.setPeerState("p2", "up");
      expect(await underIds(catalog)).toEqual([]);
      expect(await catalog.countUnderReplicated()).toBe(0);
      expect(await catalog.setPeerState("ghost", "down")).toBe(false);
    });

    test("heal by addReplica; the lost peer returning makes chunks over-replicated; trim by removeReplica", async () => {
      const catalog = await setup();
      await threeBalls(catalog);
      await catalog.setPeerState("p2", "down");
      expect(await catalog.addReplica("oa", 0, "p4")).toBe(true);
      expect(await catalog.addReplica("oa", 0, "p4")).toBe(true); // idempotent
      expect(await underIds(catalog)).toEqual(["oa/1"]);
      await catalog.addReplica("oa", 1, "p1");
      expect(await underIds(catalog)).toEqual([]);
      expect((await catalog.findChunk("oa", 0))?.peers).toEqual(["p1", "p2", "p4"]);

      // Upserting the peer (a heartbeat) is the same as setPeerState.
      await catalog.upsertPeer(peerRecord("p2", { usedBytes: 5 }));
      expect(await overIds(catalog)).toEqual(["oa/0", "oa/1", "oc/0"]); // oc: rf 1 on two peers from the start
      expect((await catalog.overReplicated({ limit: 1 })).chunks).toEqual([
        { objectId: "oa", index: 0, rf: 2, peers: ["p1", "p2", "p4"], allPeers: ["p1", "p2", "p4"] },
      ]);
      expect(await catalog.removeReplica("oa", 0, "p2")).toBe(true);
      expect(await catalog.removeReplica("oa", 0, "p2")).toBe(false); // idempotent
      expect(await catalog.removeReplica("oa", 1, "p2", { garbage: false })).toBe(true);
      expect(await overIds(catalog)).toEqual(["oc/0"]);
      expect(await catalog.takeGarbage({ limit: 10 })).toEqual([{ objectId: "oa", index: 0, peerId: "p2", bucket: "bucket" }]);
      expect(await catalog.stats()).toMatchObject({ replicas: 8, underReplicated: 0 }); // 8 committed + 2 healed - 2 trimmed
    });

    test("removeReplica refuses a chunk's last replica; addReplica on a gone chunk queues garbage", async () => {
      const catalog = await setup();
      await threeBalls(catalog);
      expect(await catalog.removeReplica("oc", 0, "p3")).toBe(true);
      const error = await rejection(catalog.removeReplica("oc", 0, "p4"));
      expect(error).toBeInstanceOf(ConflictError);
      expect((await catalog.findChunk("oc", 0))?.peers).toEqual(["p4"]);
      await catalog.deleteBall("bucket", "b");
      await catalog.ackGarbage(await catalog.takeGarbage({ limit: 100 }));
      expect(await catalog.addReplica("ob", 0, "p4")).toBe(false); // the copy raced a delete
      expect(await catalog.takeGarbage({ limit: 10 })).toEqual([{ objectId: "ob", index: 0, peerId: "p4", bucket: "bucket" }]);
      expect(await catalog.removeReplica("ob", 0, "p1")).toBe(false);
      expect(await catalog.removeReplica("nothing", 0, "p1")).toBe(false);
      expect(await rejection(catalog.addReplica("oa", 0, "ghost"))).toBeInstanceOf(BadRequestError);
    });

    test("re-adding a replica that was queued as garbage takes it out of the garbage", async () => {
      const catalog = await setup();
      await threeBalls(catalog);
      await catalog.addReplica("ob", 0, "p4");
      await catalog.removeReplica("ob", 0, "p4");
      expect(await catalog.countGarbage()).toBe(1);
      await catalog.addReplica("ob", 0, "p4");
      expect(await catalog.countGarbage()).toBe(0);
      expect((await rejection(catalog.addGarbage([{ objectId: "ob", index: 0, peerId: "p4" }]))).code).toBe("conflict");
    });

    test("pagination of under-replicated chunks and of a peer's chunks visits each once", async () => {
      const catalog = await setup();
      for (let i = 0; i < 57; i += 1) {
        const peers = Array.from({ length: 1 + (i % 4) }, (_, j) => (j % 2 === 0 ? ["p1", "p2"] : ["p2", "p3"]));
        const { ball, chunks } = ballOf({ key: `k${String(i).padStart(3, "0")}`, objectId: `o${i}`, peers });
        await catalog.commitBall(ball, chunks, {});
      }
      const collect = async (page: (after?: string) => Promise<{ chunks: { objectId: string; index: number }[]; next?: string }>) => {
        const seen: string[] = [];
        let after: string | undefined;
        for (let guard = 0; guard < 1000; guard += 1) {
          const result = await page(after);
          seen.push(...result.chunks.map((c) => `${c.objectId}/${c.index}`));
          if (result.next === undefined) return seen;
          after = result.next;
        }
        throw new Error("pagination did not end");
      };
      const onP3 = await collect((after) => catalog.chunksOnPeer("p3", { limit: 7, ...(after ? { after } : {}) }));
      const onP1 = await collect((after) => catalog.chunksOnPeer("p1", { limit: 1, ...(after ? { after } : {}) }));
      const all = (await catalog.stats()).chunks;
      expect(onP1.length + onP3.length).toBe(all);
      expect(new Set([...onP1, ...onP3]).size).toBe(all);
      expect(await catalog.chunksOnPeer("p4", { limit: 10 })).toEqual({ chunks: [] });
      await catalog.setPeerState("p2", "down");
      const under = await collect((after) => catalog.underReplicated({ limit: 5, ...(after ? { after } : {}) }));
      expect(under.length).toBe(all);
      expect(new Set(under).size).toBe(all);
      expect(await catalog.countUnderReplicated()).toBe(all);
      expect(await rejection(catalog.underReplicated({ limit: 5, after: "garbage" }))).toBeInstanceOf(BadRequestError);
      // Chunks of one peer, fully described.
      const [chunk] = (await catalog.chunksOnPeer("p3", { limit: 1 })).chunks;
      const found = (await catalog.findChunk(chunk!.objectId, chunk!.index))!;
      expect(chunk).toEqual({ objectId: chunk!.objectId, index: chunk!.index, bucket: found.bucket, size: found.size, checksum: found.checksum, rf: 2, peers: found.peers });
    });
  });

  describe("peers", () => {
    test("upsert, get, list, remove; removing a peer with replicas conflicts", async () => {
      const catalog = await setup(["p2", "p1"]);
      expect((await catalog.listPeers()).map((peer) => peer.id)).toEqual(["p1", "p2"]);
      const updated = peerRecord("p1", { usedBytes: 77, freeBytes: 5, chunks: 3, lastHeartbeatMs: 99, draining: true, state: "suspect" });
      await catalog.upsertPeer(updated);
      expect(await catalog.getPeer("p1")).toEqual(updated);
      expect(await catalog.getPeer("nobody")).toBeUndefined();
      await catalog.upsertPeer(peerRecord("p1"));
      const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"]] });
      await catalog.commitBall(ball, chunks, {});
      await catalog.addGarbage([{ objectId: "old", index: 0, peerId: "p1", bucket: "bucket" }]);
      expect(await rejection(catalog.removePeer("p1"))).toBeInstanceOf(ConflictError);
      await catalog.removeReplica("o1", 0, "p1", { garbage: false });
      expect(await catalog.removePeer("p1")).toBe(true);
      expect(await catalog.removePeer("p1")).toBe(false);
      expect(await catalog.getPeer("p1")).toBeUndefined();
      expect(await catalog.countGarbage()).toBe(0); // nobody can delete from a removed peer
      expect((await catalog.listPeers()).map((peer) => peer.id)).toEqual(["p2"]);
      expect(await rejection(catalog.upsertPeer({ ...peerRecord("p3"), state: "gone" as "up" }))).toBeInstanceOf(BadRequestError);
      expect(await rejection(catalog.upsertPeer({ ...peerRecord("p3"), usedBytes: -1 }))).toBeInstanceOf(BadRequestError);
    });
  });

  describe("intents and garbage", () => {
    test("an intent whose object id is under way, committed or retired is refused and writes nothing, placements included", async () => {
      const catalog = await setup();
      await catalog.addIntent({ objectId: "busy", bucket: "bucket", key: "a", createdMs: 1, expiresMs: 1e15, placements: [{ index: 0, peers: ["p1"] }], chunkBytes: 3 });
      const old = ballOf({ key: "b", objectId: "used", peers: [["p1", "p2"]] });
      await catalog.commitBall(old.ball, old.chunks, {});
      const next = ballOf({ key: "b", objectId: "newer", peers: [["p3"]] });
      await catalog.commitBall(next.ball, next.chunks, {}); // "used" is retired now
      const live = ballOf({ key: "c", objectId: "live", peers: [["p4"]] });
      await catalog.commitBall(live.ball, live.chunks, {});
      const before = { stats: await catalog.stats(), busy: await catalog.getIntent("busy") };
      const placements = [{ index: 0, peers: ["p2", "p3"] }, { index: 1, peers: ["p4"] }];
      for (const [objectId, says] of [["busy", "under way"], ["live", "already used by bucket/c"], ["used", "overwritten"]] as const) {
        const error = await rejection(catalog.addIntent({ objectId, bucket: "bucket", key: "z", createdMs: 2, expiresMs: 1e15, placements, chunkBytes: 100 }));
        expect({ code: error.code, said: error.message.includes(says) }).toEqual({ code: "conflict", said: true });
      }
      expect(await catalog.stats()).toEqual(before.stats);
      expect(await catalog.getIntent("busy")).toEqual(before.busy!);
      expect(await catalog.getIntent("used")).toBeUndefined();
      expect(await catalog.getIntent("live")).toBeUndefined();
      // A repeated (index, peer) in a new intent's placements is placed once: its bytes count once.
      await catalog.addIntent({ objectId: "twice", bucket: "bucket", key: "t", createdMs: 1, expiresMs: 1e15, placements: [{ index: 0, peers: ["p1", "p2"] }, { index: 0, peers: ["p2"] }], chunkBytes: 5 });
      expect((await catalog.stats()).intentBytes).toBe(before.stats.intentBytes + 10);
    });

    test("expired intents become garbage for all their placements; a late commit is refused", async () => {
      const catalog = await setup();
      await catalog.addIntent({ objectId: "o1", bucket: "bucket", key: "k", createdMs: 100, expiresMs: 200, placements: [] });
      await catalog.addIntentPlacements("o1", [{ index: 0, peers: ["p1", "p2"] }, { index: 1, peers: ["p2", "p3"] }]);
      await catalog.addIntent({ objectId: "o2", bucket: "bucket", key: "j", createdMs: 100, expiresMs: 300, placements: [{ index: 0, peers: ["p4"] }] });
      expect((await rejection(catalog.addIntent({ objectId: "o2", bucket: "b", key: "j", createdMs: 1, expiresMs: 2, placements: [] }))).code).toBe("conflict");
      expect((await catalog.stats()).intents).toBe(2);
      expect(await catalog.expireIntents(199)).toBe(0);
      expect(await catalog.expireIntents(200)).toBe(1);
      expect(await catalog.getIntent("o1")).toBeUndefined();
      expect(sortGarbage(await catalog.takeGarbage({ limit: 10 }))).toEqual([
        { objectId: "o1", index: 0, peerId: "p1", bucket: "bucket" },
        { objectId: "o1", index: 0, peerId: "p2", bucket: "bucket" },
        { objectId: "o1", index: 1, peerId: "p2", bucket: "bucket" },
        { objectId: "o1", index: 1, peerId: "p3", bucket: "bucket" },
      ]);
      const late = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p2", "p3"]] });
      expect((await rejection(catalog.commitBall(late.ball, late.chunks, {}))).message).toContain("expired");
      await catalog.ackGarbage(await catalog.takeGarbage({ limit: 10 }));
      expect((await rejection(catalog.commitBall(late.ball, late.chunks, {}))).message).toContain("expired"); // still remembered
      expect((await rejection(catalog.addIntentPlacements("o1", [{ index: 2, peers: ["p1"] }]))).code).toBe("conflict");
      expect(await catalog.stats()).toMatchObject({ intents: 1, garbage: 0, balls: 0 });
      expect(await catalog.expireIntents(300 + limits.retiredObjectRetainMs)).toBe(1);
    });

    test("a commit ends its intent; placements it did not use become garbage", async () => {
      const catalog = await setup();
      await catalog.addIntent({
        objectId: "o1", bucket: "bucket", key: "k", createdMs: 1, expiresMs: 10,
        placements: [{ index: 0, peers: ["p1", "p2"] }, { index: 1, peers: ["p3", "p4"] }],
      });
      await catalog.addIntentPlacements("o1", [{ index: 1, peers: ["p1"] }], 50); // p4 failed; the router asked for p1
      expect(await catalog.getIntent("o1")).toEqual({
        objectId: "o1", bucket: "bucket", key: "k", createdMs: 1, expiresMs: 50,
        placements: [{ index: 0, peers: ["p1", "p2"] }, { index: 1, peers: ["p1", "p3", "p4"] }],
      });
      const { ball, chunks } = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p1", "p3"]] });
      await catalog.commitBall(ball, chunks, {});
      expect(await catalog.getIntent("o1")).toBeUndefined();
      expect(await catalog.takeGarbage({ limit: 10 })).toEqual([{ objectId: "o1", index: 1, peerId: "p4", bucket: "bucket" }]);
      expect(await catalog.expireIntents(1_000)).toBe(0);
      expect((await catalog.stats()).intents).toBe(0);
    });

    test("retired object ids: garbage keeps their bucket, they cannot come back, they are forgotten after the retention", async () => {
      const catalog = await setup();
      const v1 = ballOf({ bucket: "photos", key: "k", objectId: "o1", peers: [["p1", "p2"]] });
      const v2 = ballOf({ bucket: "photos", key: "k", objectId: "o2", peers: [["p3"]] });
      await catalog.commitBall(v1.ball, v1.chunks, {});
      await catalog.commitBall(v2.ball, v2.chunks, {});
      await catalog.deleteBall("photos", "k");
      expect(sortGarbage(await catalog.takeGarbage({ limit: 10 }))).toEqual([
        { objectId: "o1", index: 0, peerId: "p1", bucket: "photos" },
        { objectId: "o1", index: 0, peerId: "p2", bucket: "photos" },
        { objectId: "o2", index: 0, peerId: "p3", bucket: "photos" },
      ]);
      await catalog.ackGarbage(await catalog.takeGarbage({ limit: 10 }));
      expect((await rejection(catalog.commitBall(v1.ball, v1.chunks, {}))).message).toContain("overwritten");
      expect((await rejection(catalog.commitBall(v2.ball, v2.chunks, {}))).message).toContain("deleted");
      // A copy made for a retired object is filed as garbage under its bucket; so is a manual add.
      expect(await catalog.addReplica("o2", 0, "p4")).toBe(false);
      await catalog.addGarbage([{ objectId: "o1", index: 0, peerId: "p4" }]);
      expect(sortGarbage(await catalog.takeGarbage({ limit: 10 }))).toEqual([
        { objectId: "o1", index: 0, peerId: "p4", bucket: "photos" },
        { objectId: "o2", index: 0, peerId: "p4", bucket: "photos" },
      ]);
      await catalog.ackGarbage(await catalog.takeGarbage({ limit: 10 }));
      await catalog.expireIntents(Date.now() + limits.retiredObjectRetainMs + 1);
      expect(await catalog.addReplica("o2", 0, "p4")).toBe(false);
      expect(await catalog.countGarbage()).toBe(0); // nothing known to file it under
      expect(await catalog.commitBall(v1.ball, v1.chunks, {})).toEqual({ version: 1 });
    });

    test("an abandoned upload ends at once: its placements are garbage due now, its object id is retired, a late commit is refused", async () => {
      const catalog = await setup();
      const chunkBytes = 1024;
      await catalog.addIntent({ objectId: "o1", bucket: "bucket", key: "k", createdMs: 100, expiresMs: 10_000, placements: [{ index: 0, peers: ["p1", "p2"] }], chunkBytes, requestId: "req-00001" });
      await catalog.addIntentPlacements("o1", [{ index: 1, peers: ["p2", "p3"] }, { index: 0, peers: ["p1"] }]); // a repeat counts once
      await catalog.addIntent({ objectId: "o2", bucket: "bucket", key: "j", createdMs: 100, expiresMs: 10_000, placements: [{ index: 0, peers: ["p4"] }], chunkBytes: 10 });
      expect(await catalog.stats()).toMatchObject({ intents: 2, intentBytes: 4 * chunkBytes + 10, garbage: 0 });
      expect(await catalog.abandonIntent("o1", 200)).toEqual({ replicas: 4, requestId: "req-00001" });
      expect(await catalog.stats()).toMatchObject({ intents: 1, intentBytes: 10, garbage: 4 });
      expect(await catalog.getIntent("o1")).toBeUndefined();
      // Due now, long before the intent would have expired, and with no readers' grace.
      expect(sortGarbage(await catalog.takeGarbage({ limit: 10, nowMs: 200 }))).toEqual([
        { objectId: "o1", index: 0, peerId: "p1", bucket: "bucket" },
        { objectId: "o1", index: 0, peerId: "p2", bucket: "bucket" },
        { objectId: "o1", index: 1, peerId: "p2", bucket: "bucket" },
        { objectId: "o1", index: 1, peerId: "p3", bucket: "bucket" },
      ]);
      expect(await catalog.retiredObject("o1")).toEqual({ bucket: "bucket", reason: "abandoned", retiredMs: 200 });
      const late = ballOf({ key: "k", objectId: "o1", peers: [["p1", "p2"], ["p2", "p3"]] });
      expect((await rejection(catalog.commitBall(late.ball, late.chunks, {}))).message).toContain("abandoned");
      expect((await rejection(catalog.touchIntent("o1", 20_000))).message).toContain("start the put again");
      expect(await catalog.findRequest("req-00001")).toBeUndefined(); // a retry of that put begins a new upload
      // Asking again (a retry after a lost reply) changes nothing; an unknown id is not found.
      expect(await catalog.abandonIntent("o1", 300)).toEqual({ replicas: 0 });
      expect(await catalog.countGarbage()).toBe(4);
      expect((await rejection(catalog.abandonIntent("o9", 300))).code).toBe("not_found");
      // A committed upload is not abandoned: its ball stays whole.
      const { ball, chunks } = ballOf({ key: "j", objectId: "o2", peers: [["p4"]] });
      await catalog.commitBall(ball, chunks, {});
      expect(await catalog.stats()).toMatchObject({ intents: 0, intentBytes: 0 });
      expect((await rejection(catalog.abandonIntent("o2", 400))).code).toBe("conflict");
      expect((await catalog.getBall("bucket", "j"))?.objectId).toBe("o2");
      expect(await catalog.countGarbage()).toBe(4);
    });

    test("an intent expiring or committing takes its placed bytes out of the total; one begun without a chunk size counts none", async () => {
      const catalog = await setup();
      await catalog.addIntent({ objectId: "o1", bucket: "bucket", key: "k", createdMs: 1, expiresMs: 10, placements: [{ index: 0, peers: ["p1", "p2"] }], chunkBytes: 100 });
      await catalog.addIntent({ objectId: "o2", bucket: "bucket", key: "j", createdMs: 1, expiresMs: 50, placements: [{ index: 0, peers: ["p3"] }], chunkBytes: 7 });
      await catalog.addIntent({ objectId: "o3", bucket: "bucket", key: "m", createdMs: 1, expiresMs: 50, placements: [{ index: 0, peers: ["p4"] }] });
      expect(await catalog.stats()).toMatchObject({ intents: 3, intentBytes: 207 });
      expect((await catalog.getIntent("o1"))?.chunkBytes).toBe(100);
      expect(await catalog.expireIntents(10)).toBe(1);
      expect(await catalog.stats()).toMatchObject({ intents: 2, intentBytes: 7 });
      const { ball, chunks } = ballOf({ key: "j", objectId: "o2", peers: [["p3"]] });
      await catalog.commitBall(ball, chunks, {});
      expect(await catalog.stats()).toMatchObject({ intents: 1, intentBytes: 0 });
      expect(await rejection(catalog.addIntent({ objectId: "o4", bucket: "bucket", key: "n", createdMs: 1, expiresMs: 50, placements: [], chunkBytes: limits.chunkBytesMax + 1 }))).toBeInstanceOf(BadRequestError);
    });

    test("garbage: take is oldest first and filters by peer, does not remove; ack removes", async () => {
      const catalog = await setup();
      const items = Array.from({ length: 12 }, (_, i) => ({ objectId: `g${i}`, index: i % 3, peerId: `p${1 + (i % 4)}`, bucket: `b${i % 2}` }));
      await catalog.addGarbage(items.slice(0, 6));
      await catalog.addGarbage(items.slice(4)); // overlaps: deduplicated
      expect(await catalog.countGarbage()).toBe(12);
      expect(await catalog.takeGarbage({ limit: 5 })).toEqual(items.slice(0, 5));
      expect(await catalog.takeGarbage({ limit: 5 })).toEqual(items.slice(0, 5));
      expect(await catalog.takeGarbage({ peerIds: ["p2", "p4"], limit: 4 })).toEqual([1, 3, 5, 7].map((i) => items[i]!));
      expect(await catalog.takeGarbage({ peerIds: ["p3"], limit: 100 })).toEqual([2, 6, 10].map((i) => items[i]!));
      expect(await catalog.takeGarbage({ peerIds: [], limit: 100 })).toEqual([]);
      await catalog.ackGarbage([items[1]!, items[3]!]);
      await catalog.ackGarbage([items[1]!]); // idempotent
      expect(await catalog.countGarbage()).toBe(10);
      expect(await catalog.takeGarbage({ peerIds: ["p2", "p4"], limit: 2 })).toEqual([5, 7].map((i) => items[i]!));
      expect(await rejection(catalog.addGarbage([{ objectId: "x", index: 0, peerId: "ghost", bucket: "b" }]))).toBeInstanceOf(BadRequestError);
      // Without a bucket, the catalog must know the object to file the garbage under its bucket.
      expect((await rejection(catalog.addGarbage([{ objectId: "unknown", index: 0, peerId: "p1" }]))).message).toContain("bucket");
      expect(await rejection(catalog.takeGarbage({ limit: 0 }))).toBeInstanceOf(BadRequestError);
    });
  });

  describe("batches, meta, reopen", () => {
    test("commitBalls: one transaction, a failing item is rolled back alone", async () => {
      const catalog = await setup();
      const a = ballOf({ key: "a", objectId: "oa", peers: [["p1", "p2"]] });
      const b = ballOf({ key: "b", objectId: "ob", peers: [["p1", "ghost"]] });
      const c = ballOf({ key: "a", objectId: "oc", peers: [["p3"]] });
      const results = await catalog.commitBalls([
        { ball: a.ball, chunks: a.chunks },
        { ball: b.ball, chunks: b.chunks },
        { ball: c.ball, chunks: c.chunks, options: { ifAbsent: true } },
      ]);
      expect(results[0]).toEqual({ version: 1 });
      expect(results[1]).toBeInstanceOf(BadRequestError);
      expect(results[2]).toBeInstanceOf(ConflictError);
      expect(await catalog.stats()).toMatchObject({ balls: 1, chunks: 1, replicas: 2 });
    });

    test("commitBalls answers and leaves exactly what the same commits one by one do (seeded mixes of new balls, uploads, overwrites, repeats, reused ids, bad items)", async () => {
      const { random, seed } = seededRandom("commit-balls-mix");
      const pick = <T,>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
      const batched = await setup();
      const single = await setup();
      let made = 0;
      const uploaded: string[] = [];
      for (let round = 0; round < 6; round += 1) {
        // Some state to collide with: live balls, a retired object id, an upload under way.
        const items: CommitItem[] = [];
        const used: string[] = [];
        for (let n = 0; n < 40; n += 1) {
          const roll = random();
          const key = roll < 0.6 ? `new-${round}-${n}` : `k${Math.floor(random() * 12)}`; // else a key that may hold a ball, or repeat in the batch
          const objectId = roll < 0.9 || used.length === 0 ? `o${(made += 1)}` : pick(used); // else an id used before
          used.push(objectId);
          const peers = random() < 0.05 ? [["p1", "ghost"]] : Array.from({ length: 1 + Math.floor(random() * 3) }, () => [pick(["p1", "p2"]), pick(["p3", "p4"])]);
          const { ball, chunks } = ballOf({ key, objectId, peers, bucket: pick(["b1", "b2", `fresh-${round}`]) });
          if (random() < 0.03) ball.checksum = "not hex";
          let options = pick<CommitItem["options"]>([{}, {}, {}, { ifAbsent: true }, { replicasMin: 2 }, { expectedObjectId: pick(used) }, { requirePlacements: true }]);
          if (random() < 0.35 && !uploaded.includes(objectId)) {
            // An upload under way: its intent placed what the commit names (now and then one
            // replica less, which the commit then names unplaced) and sometimes more (garbage
            // at the commit), with a request id now and then.
            uploaded.push(objectId);
            const unplaced = random() < 0.1;
            const placements = chunks.map((chunk, i) => ({ index: chunk.index, peers: [...(unplaced && i === 0 ? chunk.peers.slice(1) : chunk.peers), ...(random() < 0.3 ? ["p5"] : [])] }));
            const intent = { objectId, bucket: ball.bucket, key, createdMs: 1, expiresMs: 1e15, placements, chunkBytes: 64, ...(random() < 0.5 ? { requestId: `req-${objectId}` } : {}) };
            for (const catalog of [batched, single]) await catalog.addIntent(intent).catch(() => undefined); // refused alike in both (a reused id)
            options = pick<CommitItem["options"]>([{ requirePlacements: true }, { requirePlacements: true, replicasMin: 2 }, { requirePlacements: true, ifAbsent: true }, {}]);
          }
          items.push({ ball, chunks, options: { ...options, retire: { atMs: 1_800_000_000_000 + round } } }); // a retire time of its own: the same in both
        }
        const results = await batched.commitBalls(items);
        const one: Array<CommitResult | MictlanxError> = [];
        for (const { ball, chunks, options } of items) one.push(await single.commitBall(ball, chunks, options).catch((error: unknown) => error as MictlanxError));
        const answer = (r: CommitResult | MictlanxError) => (r instanceof MictlanxError ? `${r.code}: ${r.message}` : r);
        expect({ seed, round, results: results.map(answer) }).toEqual({ seed, round, results: one.map(answer) });
        if (round === 2) await Promise.all([batched, single].map((c) => c.addIntent({ objectId: `o${made + 1}`, bucket: "b1", key: "up", createdMs: 1, expiresMs: 1e15, placements: [] })));
      }
      const everything = async (catalog: CatalogStore) => {
        const balls: unknown[] = [];
        for (const bucket of ["b1", "b2", ...Array.from({ length: 6 }, (_, r) => `fresh-${r}`)]) {
          for (const meta of (await catalog.listBalls({ bucket, limit: 1000 })).balls) balls.push(await catalog.getBall(bucket, meta.key));
        }
        const intents = await Promise.all(uploaded.map((objectId) => catalog.getIntent(objectId)));
        const requests = await Promise.all(uploaded.map((objectId) => catalog.findRequest(`req-${objectId}`)));
        return { balls, stats: await catalog.stats(), garbage: sortGarbage(await catalog.takeGarbage({ limit: 1000 })), buckets: await catalog.listBuckets({ limit: 100 }), intents, requests };
      };
      expect(await everything(batched)).toEqual(await everything(single));
      expect((await batched.stats()).intents).toBeLessThan(uploaded.length); // uploads were committed, not all refused
      console.log(`[commitBalls mix] seed ${seed}: ${(await batched.stats()).balls} balls`);
    });

    test("addIntents answers and leaves exactly what the same intents one by one do (seeded: new, reused and duplicate ids, known request ids, bad items)", async () => {
      const { random, seed } = seededRandom("add-intents-mix");
      const pick = <T,>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
      const batched = await setup();
      const single = await setup();
      // Something to collide with, alike in both: a live ball, a retired id, an upload under way,
      // a committed put's request id and an uploading one's.
      for (const catalog of [batched, single]) {
        const live = ballOf({ key: "live", objectId: "o-live", peers: [["p1", "p2"]] });
        await catalog.commitBall(live.ball, live.chunks, {});
        const old = ballOf({ key: "gone", objectId: "o-gone", peers: [["p1"]] });
        await catalog.commitBall(old.ball, old.chunks, {});
        await catalog.deleteBall("bucket", "gone", { atMs: 5 });
        await catalog.addIntent({ objectId: "o-up", bucket: "bucket", key: "up", createdMs: 1, expiresMs: 1e15, placements: [{ index: 0, peers: ["p3"] }], requestId: "req-up" });
        await catalog.addIntent({ objectId: "o-done", bucket: "bucket", key: "done", createdMs: 1, expiresMs: 1e15, placements: [{ index: 0, peers: ["p1"] }], requestId: "req-done" });
        const done = ballOf({ key: "done", objectId: "o-done", peers: [["p1"]] });
        await catalog.commitBall(done.ball, done.chunks, { requirePlacements: true });
      }
      let made = 0;
      const objectIds = new Set(["o-live", "o-gone", "o-up", "o-done"]);
      for (let round = 0; round < 5; round += 1) {
        const intents = Array.from({ length: 30 }, (_, n) => {
          const roll = random();
          const objectId = roll < 0.75 ? `o${(made += 1)}` : pick([...objectIds]);
          objectIds.add(objectId);
          const requestId = pick([undefined, undefined, `req-${round}-${n}`, `req-${round}-${Math.floor(random() * 5)}`, "req-up", "req-done"]);
          const placements = Array.from({ length: Math.floor(random() * 3) }, (_, index) => ({ index, peers: [pick(["p1", "p2"]), pick(["p3", "p4"])] }));
          const bucket = random() < 0.05 ? "bad\u001bname" : pick(["bucket", `b${round}`]);
          return { objectId, bucket, key: `k${n}`, createdMs: 10 + round, expiresMs: 1e15, placements, chunkBytes: 100, ...(requestId === undefined ? {} : { requestId }) };
        });
        const results = await batched.addIntents(intents);
        const one: unknown[] = [];
        for (const intent of intents) {
          const known = intent.requestId === undefined || intent.bucket.includes("\u001b") ? undefined : await single.findRequest(intent.requestId);
          one.push(known !== undefined ? "request_known" : await single.addIntent(intent).then(() => "added", (error: MictlanxError) => error));
        }
        const answer = (r: unknown) => (r instanceof MictlanxError ? `${r.code}: ${r.message}` : r);
        expect({ seed, round, results: results.map(answer) }).toEqual({ seed, round, results: one.map(answer) });
      }
      const everything = async (catalog: CatalogStore) => ({
        intents: await Promise.all([...objectIds].map((objectId) => catalog.getIntent(objectId))),
        stats: await catalog.stats(),
      });
      expect(await everything(batched)).toEqual(await everything(single));
      expect((await batched.stats()).intents).toBeGreaterThan(50); // many were added, not all refused
      console.log(`[addIntents mix] seed ${seed}: ${(await batched.stats()).intents} intents`);
    });

    test("group: all or nothing first, then write by write; a failing write is rolled back alone, commitBalls inside included", async () => {
      const catalog = await setup();
      const a = ballOf({ key: "a", objectId: "oa", peers: [["p1", "p2"]] });
      const b = ballOf({ key: "b", objectId: "ob", peers: [["p1", "ghost"]] });
      const c = ballOf({ key: "c", objectId: "oc", peers: [["p3"]] });
      const outcomes = await catalog.group([
        (tx) => tx.commitBall(a.ball, a.chunks),
        async (tx) => {
          await tx.setMeta("half", "written"); // undone with its write
          return tx.commitBall(b.ball, b.chunks); // unknown peer: throws
        },
        // commitBalls returns a failed item in its place only when a savepoint of its own undid it; in a group the write fails
        (tx) => tx.commitBalls([{ ball: c.ball, chunks: c.chunks }, { ball: b.ball, chunks: b.chunks }]),
      ]);
      expect(outcomes[0]).toEqual({ ok: true, value: { version: 1 } });
      expect(outcomes[1]?.ok).toBe(false);
      expect(outcomes[1]).toMatchObject({ error: { code: "bad_request" } });
      expect(outcomes[2]).toMatchObject({ ok: false, error: { code: "bad_request" } });
      expect(await catalog.getMeta("half")).toBeUndefined();
      expect(await catalog.getBall("bucket", "c")).toBeUndefined();
      expect(await catalog.stats()).toMatchObject({ balls: 1, chunks: 1, replicas: 2 });
      // Without failures the group commits as one; each outcome in order.
      expect(await catalog.group([(tx) => tx.commitBall(c.ball, c.chunks), (tx) => tx.getBallMeta("bucket", "c")])).toEqual([
        { ok: true, value: { version: 1 } },
        { ok: true, value: withVersion(c.ball, 1) },
      ]);
      expect(await catalog.stats()).toMatchObject({ balls: 2, chunks: 2, replicas: 3 });
    });

    test("while a group is open, other calls do not see its writes; they see all of them once it resolves", async () => {
      const catalog = await setup();
      const a = ballOf({ key: "a", objectId: "oa", peers: [["p1", "p2"]] });
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let written!: () => void;
      const inside = new Promise<void>((resolve) => (written = resolve));
      const group = catalog.group([
        async (tx) => {
          const result = await tx.commitBall(a.ball, a.chunks);
          written();
          await held;
          return result;
        },
      ]);
      await inside;
      const seen = catalog.getBall("bucket", "a");
      const settled = await Promise.race([seen.then(() => "answered"), Bun.sleep(100).then(() => "waiting")]);
      if (settled === "answered") expect(await seen).toBeUndefined(); // postgres answers from before the group
      release();
      expect(await group).toEqual([{ ok: true, value: { version: 1 } }]);
      const after = await seen;
      if (engine.name === "sqlite") expect(after?.objectId).toBe("oa"); // sqlite held it at the gate until the group ended
      expect((await catalog.getBall("bucket", "a"))?.objectId).toBe("oa");
    });

    test("meta keeps small strings", async () => {
      const catalog = await setup();
      expect(await catalog.getMeta("healed")).toBeUndefined();
      await catalog.setMeta("healed", "41");
      await catalog.setMeta("healed", "42");
      expect(await catalog.getMeta("healed")).toBe("42");
    });

    test("a meta counter only grows: one past its value, or its floor when that is more; a rolled-back take is not kept", async () => {
      const catalog = await setup();
      expect(await catalog.nextMetaCounter("n", 0)).toBe(1); // absent: as if 0
      expect(await catalog.nextMetaCounter("n", 0)).toBe(2);
      expect(await catalog.nextMetaCounter("n", 5_000_000_000_000)).toBe(5_000_000_000_000);
      expect(await catalog.nextMetaCounter("n", 7)).toBe(5_000_000_000_001); // a lower floor changes nothing
      expect(await catalog.getMeta("n")).toBe("5000000000001");
      expect(await catalog.nextMetaCounter("fresh", 1_700_000_000_000_000)).toBe(1_700_000_000_000_000);
      await catalog.setMeta("m", "41"); // a value set as text counts on from it
      expect(await catalog.nextMetaCounter("m", 0)).toBe(42);
      const [outcome] = await catalog.group([
        async (tx) => {
          await tx.nextMetaCounter("n", 0);
          throw new Error("the write failed");
        },
      ]);
      expect(outcome?.ok).toBe(false);
      expect(await catalog.nextMetaCounter("n", 0)).toBe(5_000_000_000_002);
      // The edges: the largest floor, then the last safe integer, then a refusal that keeps the value.
      expect(await rejection(catalog.nextMetaCounter("n", -1))).toBeInstanceOf(BadRequestError);
      expect(await rejection(catalog.nextMetaCounter("n", Number.MAX_SAFE_INTEGER))).toBeInstanceOf(BadRequestError);
      expect(await catalog.nextMetaCounter("n", Number.MAX_SAFE_INTEGER - 1)).toBe(Number.MAX_SAFE_INTEGER - 1);
      expect(await catalog.nextMetaCounter("n", 0)).toBe(Number.MAX_SAFE_INTEGER);
      await expect(catalog.nextMetaCounter("n", 0)).rejects.toThrow("not a counter");
      expect(await catalog.getMeta("n")).toBe(String(Number.MAX_SAFE_INTEGER));
    });

    test("a meta counter takes count values at once: the first as one take would, the counter at the last; count and floor at their edges", async () => {
      const catalog = await setup();
      expect(await catalog.nextMetaCounter("g", 0, 3)).toBe(1); // absent: 1, 2, 3
      expect(await catalog.getMeta("g")).toBe("3");
      expect(await catalog.nextMetaCounter("g", 0)).toBe(4);
      expect(await catalog.nextMetaCounter("g", 100, 5)).toBe(100); // the floor first: 100..104
      expect(await catalog.nextMetaCounter("g", 7, 2)).toBe(105); // a lower floor changes nothing
      expect(await catalog.getMeta("g")).toBe("106");
      expect(await catalog.nextMetaCounter("g", 0, limits.listPageMax)).toBe(107);
      expect(await catalog.getMeta("g")).toBe(String(106 + limits.listPageMax));
      for (const count of [0, -1, 1.5, limits.listPageMax + 1]) expect(await rejection(catalog.nextMetaCounter("g", 0, count))).toBeInstanceOf(BadRequestError);
      // The floor leaves room for the whole take: its last value is the last safe integer at most.
      expect(await rejection(catalog.nextMetaCounter("h", Number.MAX_SAFE_INTEGER - 2, 3))).toBeInstanceOf(BadRequestError);
      expect(await catalog.nextMetaCounter("h", Number.MAX_SAFE_INTEGER - 3, 3)).toBe(Number.MAX_SAFE_INTEGER - 3);
      expect(await catalog.getMeta("h")).toBe(String(Number.MAX_SAFE_INTEGER - 1));
      await expect(catalog.nextMetaCounter("h", 0, 2)).rejects.toThrow("not a counter"); // would pass it: refused, the value kept
      expect(await catalog.getMeta("h")).toBe(String(Number.MAX_SAFE_INTEGER - 1));
      expect(await catalog.getMeta("g")).toBe(String(106 + limits.listPageMax));
    });

    test.if(engine.name === "postgres")("a peer's liveness flip may run past the statement bound (it updates every chunk the peer holds); the next statement has the bound again", async () => {
      const opened = await engine.open();
      for (const id of ["p1", "p2", "p3"]) await opened.store.upsertPeer(peerRecord(id));
      for (let i = 0; i < 3; i += 1) {
        const { ball, chunks } = ballOf({ key: `k${i}`, objectId: `o${i}`, peers: [["p1", "p2"]] });
        await opened.store.commitBall(ball, chunks, {});
      }
      await opened.store.close();
      // Every UPDATE of chunks takes 0.6 s, twice the bound this store runs with.
      const sql = new SQL(opened.location, { max: 1 });
      await sql.unsafe(`CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.6); RETURN NULL; END $$;
        CREATE TRIGGER test_slow AFTER UPDATE ON chunks FOR EACH STATEMENT EXECUTE FUNCTION test_slow();`).simple();
      await sql.close();
      const store = await PostgresStore.open(opened.location, { secretsKeyPath: join(opened.dir, "secrets.key"), statementTimeoutMs: 300 });
      try {
        expect(await store.setPeerState("p1", "down")).toBe(true);
        expect(await store.countUnderReplicated()).toBe(3);
        const [flip, after] = await store.group([(tx) => tx.setPeerState("p2", "down"), (tx) => tx.addReplica("o0", 0, "p3")]);
        expect(flip).toEqual({ ok: true, value: true });
        expect(after?.ok === false && after.error.code).toBe("unavailable"); // its UPDATE of chunks ran into the 300 ms bound
        expect((await store.findChunk("o0", 0))?.peers).toEqual(["p1", "p2"]);
      } finally {
        await store.close();
      }
    });

    test.if(engine.name === "postgres")("a schema-1 PostgreSQL catalog is migrated at open: balls_group led by ball_id, its balls and group listings as they were", async () => {
      const opened = await engine.open();
      for (const id of ["p1", "p2"]) await opened.store.upsertPeer(peerRecord(id));
      for (let i = 0; i < 6; i += 1) {
        const { ball, chunks } = ballOf({ key: `k${i}`, objectId: `o${i}`, ballId: `g${i % 2}`, peers: [["p1", "p2"]] });
        await opened.store.commitBall(ball, chunks, {});
      }
      await opened.store.close();
      const sql = new SQL(opened.location, { max: 1 });
      const indexOf = async () => ((await sql`SELECT indexdef FROM pg_indexes WHERE indexname = 'balls_group'`) as Array<{ indexdef: string }>)[0]?.indexdef;
      try {
        // Back to schema 1's layout, as a catalog made by an earlier build has it.
        await sql.unsafe("DROP INDEX balls_group; CREATE INDEX balls_group ON balls (bucket, ball_id, key); UPDATE meta SET value = '1' WHERE key = 'schema_version'").simple();
        expect(await indexOf()).toContain("(bucket, ball_id, key)");
        const store = await opened.reopen();
        expect(await indexOf()).toContain("(ball_id, bucket, key)");
        expect(((await sql`SELECT value FROM meta WHERE key = 'schema_version'`) as Array<{ value: string }>)[0]?.value).toBe("2");
        expect((await store.listBalls({ bucket: "bucket", ballId: "g1", limit: 10 })).balls.map((ball) => ball.key)).toEqual(["k1", "k3", "k5"]);
        expect((await store.stats()).balls).toBe(6);
        expect(await store.audit()).toEqual([]);
        await store.close();
      } finally {
        await sql.close();
      }
    });

    test("reopen after close keeps everything", async () => {
      const opened = await engine.open();
      let catalog = opened.store;
      for (const id of ["p1", "p2", "p3"]) await catalog.upsertPeer(peerRecord(id));
      for (let i = 0; i < 20; i += 1) {
        const { ball, chunks } = ballOf({ bucket: `b${i % 3}`, key: `k${i % 5}`, objectId: `o${i}`, peers: [["p1", "p2"], ["p3"]] });
        await catalog.commitBall(ball, chunks, {});
      }
      await catalog.setPeerState("p3", "down");
      await catalog.addIntent({ objectId: "oi", bucket: "b0", key: "x", createdMs: 1, expiresMs: 9, placements: [{ index: 0, peers: ["p1"] }] });
      await catalog.setMeta("m", "v");
      const snapshot = async (c: CatalogStore) => ({
        vssId: c.vssId,
        stats: await c.stats(),
        peers: await c.listPeers(),
        buckets: await c.listBuckets({ limit: 100 }),
        balls: await Promise.all(["b0", "b1", "b2"].map(async (bucket) => Promise.all((await c.listBalls({ bucket, limit: 100 })).balls.map((b) => c.getBall(b.bucket, b.key))))),
        under: await c.underReplicated({ limit: 1000 }),
        garbage: await c.takeGarbage({ limit: 1000 }),
        intent: await c.getIntent("oi"),
        meta: await c.getMeta("m"),
      });
      const before = await snapshot(catalog);
      expect(before.stats.balls).toBe(15);
      await catalog.close();
      catalog = await opened.reopen();
      expect(await snapshot(catalog)).toEqual(before);
      expect(await catalog.audit()).toEqual([]);
    });

    test.if(engine.name === "sqlite")("durability settings: WAL, synchronous=FULL, a busy timeout, foreign keys", async () => {
      const catalog = await setup();
      const db = (catalog as unknown as { catalog: { db: import("bun:sqlite").Database } }).catalog.db;
      const pragma = (name: string) => Object.values(db.query<Record<string, unknown>, []>(`PRAGMA ${name}`).get()!)[0];
      expect(pragma("journal_mode")).toBe("wal");
      expect(pragma("synchronous")).toBe(1); // NORMAL: the store fsyncs the WAL itself before a group resolves (deferredSync)
      expect(pragma("busy_timeout")).toBe(limits.catalogBusyTimeoutMs);
      expect(pragma("foreign_keys")).toBe(1);
    });

    test.if(engine.name === "sqlite")("the statements that must stay cheap use their indexes", async () => {
      const catalog = await setup();
      const db = (catalog as unknown as { catalog: { db: import("bun:sqlite").Database } }).catalog.db;
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

    // PostgreSQL's planner takes a sequential scan of tables this small; with those off, each
    // statement must still find its index (the index exists and fits the query).
    test.if(engine.name === "postgres")("the statements that must stay cheap have indexes that serve them", async () => {
      const opened = await engine.open();
      for (const id of ["p1", "p2"]) await opened.store.upsertPeer(peerRecord(id));
      for (let i = 0; i < 50; i += 1) {
        const { ball, chunks } = ballOf({ key: `k${i}`, ballId: `g${i % 7}`, objectId: `o${i}`, peers: [["p1", "p2"]] });
        await opened.store.commitBall(ball, chunks);
      }
      const sql = new SQL(opened.location, { max: 1 });
      try {
        await sql`ANALYZE`;
        const plan = async (query: string) =>
          sql.begin(async (tx) => {
            await tx`SET LOCAL enable_seqscan = off`;
            await tx`SET LOCAL enable_bitmapscan = off`;
            return ((await tx.unsafe(`EXPLAIN ${query}`)) as Array<{ "QUERY PLAN": string }>).map((row) => row["QUERY PLAN"]).join("; ");
          });
        expect(await plan("SELECT * FROM balls WHERE bucket = 'bucket' AND key = 'k3'")).toContain("balls_key");
        expect(await plan("SELECT * FROM balls WHERE object_id = 'o3'")).toContain("balls_object");
        expect(await plan("SELECT * FROM balls WHERE bucket = 'bucket' AND ball_id = 'g3' AND key > 'k' ORDER BY key LIMIT 5")).toContain("balls_group");
        expect(await plan("SELECT count(*) FROM chunks WHERE live < rf")).toContain("chunks_under");
        expect(await plan("SELECT 1 FROM replicas WHERE peer = 1 LIMIT 1")).toContain("replicas_peer");
        const due = await plan("SELECT seq FROM garbage WHERE peer_id = 'p' AND not_before_ms <= 5 ORDER BY not_before_ms, seq LIMIT 5");
        expect(due).toContain("garbage_due");
        expect(due).not.toContain("Sort");
      } finally {
        await sql.close();
      }
    });
  });
});
