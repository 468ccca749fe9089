// The catalog's bulk operations (issue 11): empty buckets that stay until deleted, counting the
// balls under a prefix up to a bound, and deleting them in bounded batches, each ball retired
// with the readers' grace exactly as deleteBall retires one.
import { describe, expect, test } from "bun:test";
import type { CatalogStore } from "../../src/catalog/index.ts";
import { rejection } from "../support/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import { ballOf } from "./fixtures/catalog-records.ts";
import { auditedSetup, forEachEngine } from "../support/catalog-engines.ts";

let objects = 0;
/** Commit `key` into `bucket` with `chunks` chunks on p1 and p2. */
async function put(catalog: CatalogStore, bucket: string, key: string, chunks = 1): Promise<void> {
  const { ball, chunks: records } = ballOf({ bucket, key, objectId: `obj-${String((objects += 1)).padStart(6, "0")}`, peers: Array.from({ length: chunks }, () => ["p1", "p2"]) });
  await catalog.commitBall(ball, records, {});
}

const keys = async (catalog: CatalogStore, bucket: string) => (await catalog.listBalls({ bucket, limit: limits.listPageMax })).balls.map((ball) => ball.key);

forEachEngine("catalog-bulk", (engine) => {
  /** A catalog with peers p1..p3 up, audited at the end of each test. */
  const setup = auditedSetup(engine);

  describe("buckets that stay until deleted", () => {
    test("createBucket makes an empty bucket, listed with 0 balls; a second create says it exists; it outlives its last ball", async () => {
      const catalog = await setup();
      expect(await catalog.getBucket("photos")).toBeUndefined();
      expect(await catalog.createBucket("photos", 1_234)).toBe(true);
      expect(await catalog.createBucket("photos", 5_678)).toBe(false);
      expect(await catalog.getBucket("photos")).toEqual({ name: "photos", balls: 0, bytes: 0, createdMs: 1_234 });
      expect((await catalog.listBuckets({ limit: 10 })).buckets).toEqual([{ name: "photos", balls: 0, bytes: 0, createdMs: 1_234 }]);
      expect((await catalog.stats()).buckets).toBe(1);
      await put(catalog, "photos", "cat.jpg");
      await catalog.deleteBall("photos", "cat.jpg");
      expect(await catalog.getBucket("photos")).toMatchObject({ balls: 0, bytes: 0 }); // still there
      expect(await catalog.deleteBucket("photos")).toBe(true);
      expect(await catalog.getBucket("photos")).toBeUndefined();
      expect((await rejection(catalog.createBucket("bad\u001bname", 1))).code).toBe("bad_request"); // the rule for new names
    });
  });

  describe("countBalls", () => {
    test("a whole bucket exactly (with bytes, O(1)); under a prefix by the key range, up to a bound; no bucket: undefined", async () => {
      const catalog = await setup();
      for (let i = 0; i < 30; i += 1) await put(catalog, "b", `dir/${String(i).padStart(2, "0")}`);
      await put(catalog, "b", "dir-other/x"); // shares the string "dir" but is not under "dir/"
      await put(catalog, "b", "dir");
      const whole = (await catalog.getBucket("b"))!;
      expect(await catalog.countBalls("b", undefined, 10)).toEqual({ balls: 32, bytes: whole.bytes, more: false });
      expect(await catalog.countBalls("b", "", 10)).toEqual({ balls: 32, bytes: whole.bytes, more: false });
      expect(await catalog.countBalls("b", "dir/", 100)).toEqual({ balls: 30, more: false });
      expect(await catalog.countBalls("b", "dir/", 30)).toEqual({ balls: 30, more: false }); // exactly the bound: nothing more
      expect(await catalog.countBalls("b", "dir/", 29)).toEqual({ balls: 29, more: true });
      expect(await catalog.countBalls("b", "dir/1", 100)).toEqual({ balls: 10, more: false });
      expect(await catalog.countBalls("b", "nothing/", 100)).toEqual({ balls: 0, more: false });
      expect(await catalog.countBalls("none", "dir/", 100)).toBeUndefined();
      expect((await rejection(catalog.countBalls("b", "dir/", limits.ballCountMax + 1))).code).toBe("bad_request");
      expect(await catalog.countBalls("b", "dir/", limits.ballCountMax)).toEqual({ balls: 30, more: false });
    });
  });

  describe("deleteBalls", () => {
    test("batches in key order by the cursor, only under the prefix; each ball retired as deleteBall retires it", async () => {
      const catalog = await setup();
      for (let i = 0; i < 7; i += 1) await put(catalog, "b", `run/${i}`);
      await put(catalog, "b", "run-2/kept");
      await put(catalog, "b", "run");
      await put(catalog, "b", "other/kept");
      const when = { atMs: 50_000, readerGraceMs: 7_000 };
      const seen: number[] = [];
      let after: string | undefined;
      for (let batch = 0; batch < 10; batch += 1) {
        const result = (await catalog.deleteBalls({ bucket: "b", prefix: "run/", limit: 3, chunksMax: limits.deleteBatchChunksMax, ...(after === undefined ? {} : { after }) }, when))!;
        seen.push(result.deleted);
        if (result.next === undefined) break;
        expect(result.next).toBe(`run/${seen.reduce((sum, n) => sum + n, 0) - 1}`);
        after = result.next;
      }
      expect(seen).toEqual([3, 3, 1]);
      expect(await keys(catalog, "b")).toEqual(["other/kept", "run", "run-2/kept"]);
      // Retired as a delete: garbage of both replicas of each, due only after the readers' grace.
      expect(await catalog.takeGarbage({ limit: 100, nowMs: when.atMs + when.readerGraceMs - 1 })).toEqual([]);
      const due = await catalog.takeGarbage({ limit: 100, nowMs: when.atMs + when.readerGraceMs });
      expect(due.length).toBe(7 * 2);
      expect(new Set(due.map((item) => item.objectId)).size).toBe(7);
      for (const objectId of new Set(due.map((item) => item.objectId))) expect(await catalog.retiredObject(objectId)).toEqual({ bucket: "b", reason: "deleted", retiredMs: when.atMs });
      expect(await catalog.getBucket("b")).toMatchObject({ balls: 3 });
    });

    test("a whole bucket (no prefix); the bucket stays, empty; nothing left: 0 and no next; no bucket: undefined", async () => {
      const catalog = await setup();
      for (let i = 0; i < 5; i += 1) await put(catalog, "b", `k${i}`);
      expect(await catalog.deleteBalls({ bucket: "b", limit: 5, chunksMax: 100 })).toEqual({ deleted: 5, bytes: expect.any(Number) });
      expect(await catalog.deleteBalls({ bucket: "b", limit: 5, chunksMax: 100 })).toEqual({ deleted: 0, bytes: 0 });
      expect(await catalog.getBucket("b")).toMatchObject({ balls: 0, bytes: 0 });
      expect(await catalog.stats()).toMatchObject({ balls: 0, chunks: 0, replicas: 0, garbage: 10 });
      expect(await catalog.deleteBalls({ bucket: "none", limit: 5, chunksMax: 100 })).toBeUndefined();
    });

    test("a batch stops once its chunks pass chunksMax, but always takes one ball however many chunks it has", async () => {
      const catalog = await setup();
      await put(catalog, "b", "a", 3);
      await put(catalog, "b", "b", 3);
      await put(catalog, "b", "c", 10);
      await put(catalog, "b", "d", 1);
      const first = (await catalog.deleteBalls({ bucket: "b", limit: 10, chunksMax: 7 }))!;
      expect(first).toMatchObject({ deleted: 2, next: "b" }); // 3 + 3; the next 10 would pass 7
      const second = (await catalog.deleteBalls({ bucket: "b", limit: 10, chunksMax: 7, after: first.next! }))!;
      expect(second).toMatchObject({ deleted: 1, next: "c" }); // alone, over the bound
      expect(await catalog.deleteBalls({ bucket: "b", limit: 10, chunksMax: 7, after: second.next! })).toMatchObject({ deleted: 1 });
      expect(await keys(catalog, "b")).toEqual([]);
    });

    test("the bounds are enforced at their edges", async () => {
      const catalog = await setup();
      await put(catalog, "b", "k");
      expect((await rejection(catalog.deleteBalls({ bucket: "b", limit: limits.deleteBatchBallsMax + 1, chunksMax: 1 }))).code).toBe("bad_request");
      expect((await rejection(catalog.deleteBalls({ bucket: "b", limit: 1, chunksMax: limits.deleteBatchChunksMax + 1 }))).code).toBe("bad_request");
      expect((await rejection(catalog.deleteBalls({ bucket: "b", limit: 0, chunksMax: 1 }))).code).toBe("bad_request");
      expect(await catalog.deleteBalls({ bucket: "b", limit: limits.deleteBatchBallsMax, chunksMax: limits.deleteBatchChunksMax })).toMatchObject({ deleted: 1 });
    });
  });
});
