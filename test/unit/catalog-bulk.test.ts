// The catalog's bulk operations (issue 11): empty buckets that stay until deleted, counting the
// balls under a prefix up to a bound, and deleting them in bounded batches, each ball retired
// with the readers' grace exactly as deleteBall retires one.
import { afterEach, describe, expect, test } from "bun:test";
import type { Catalog } from "../../src/catalog/index.ts";
import { thrown } from "../support/errors.ts";
import { limits } from "../../src/lib/limits.ts";
import { ballOf, peerRecord, tempCatalog } from "./fixtures/catalog-records.ts";

let cleanups: Array<() => void> = [];
afterEach(() => {
  const pending = cleanups;
  cleanups = [];
  for (const cleanup of pending) cleanup();
});

/** A catalog with peers p1..p3 up, audited (everything kept incrementally recounted) at the end. */
function setup(): Catalog {
  const temp = tempCatalog("catalog-bulk");
  cleanups.push(() => {
    try {
      expect(temp.catalog.audit()).toEqual([]);
    } finally {
      temp.done();
    }
  });
  for (const id of ["p1", "p2", "p3"]) temp.catalog.upsertPeer(peerRecord(id));
  return temp.catalog;
}

let objects = 0;
/** Commit `key` into `bucket` with `chunks` chunks on p1 and p2. */
function put(catalog: Catalog, bucket: string, key: string, chunks = 1): void {
  const { ball, chunks: records } = ballOf({ bucket, key, objectId: `obj-${String((objects += 1)).padStart(6, "0")}`, peers: Array.from({ length: chunks }, () => ["p1", "p2"]) });
  catalog.commitBall(ball, records, {});
}

const keys = (catalog: Catalog, bucket: string) => catalog.listBalls({ bucket, limit: limits.listPageMax }).balls.map((ball) => ball.key);

describe("buckets that stay until deleted", () => {
  test("createBucket makes an empty bucket, listed with 0 balls; a second create says it exists; it outlives its last ball", () => {
    const catalog = setup();
    expect(catalog.getBucket("photos")).toBeUndefined();
    expect(catalog.createBucket("photos", 1_234)).toBe(true);
    expect(catalog.createBucket("photos", 5_678)).toBe(false);
    expect(catalog.getBucket("photos")).toEqual({ name: "photos", balls: 0, bytes: 0, createdMs: 1_234 });
    expect(catalog.listBuckets({ limit: 10 }).buckets).toEqual([{ name: "photos", balls: 0, bytes: 0, createdMs: 1_234 }]);
    expect(catalog.stats().buckets).toBe(1);
    put(catalog, "photos", "cat.jpg");
    catalog.deleteBall("photos", "cat.jpg");
    expect(catalog.getBucket("photos")).toMatchObject({ balls: 0, bytes: 0 }); // still there
    expect(catalog.deleteBucket("photos")).toBe(true);
    expect(catalog.getBucket("photos")).toBeUndefined();
    expect(thrown(() => catalog.createBucket("bad\u001bname", 1)).code).toBe("bad_request"); // the rule for new names
  });
});

describe("countBalls", () => {
  test("a whole bucket exactly (with bytes, O(1)); under a prefix by the key range, up to a bound; no bucket: undefined", () => {
    const catalog = setup();
    for (let i = 0; i < 30; i += 1) put(catalog, "b", `dir/${String(i).padStart(2, "0")}`);
    put(catalog, "b", "dir-other/x"); // shares the string "dir" but is not under "dir/"
    put(catalog, "b", "dir");
    const whole = catalog.getBucket("b")!;
    expect(catalog.countBalls("b", undefined, 10)).toEqual({ balls: 32, bytes: whole.bytes, more: false });
    expect(catalog.countBalls("b", "", 10)).toEqual({ balls: 32, bytes: whole.bytes, more: false });
    expect(catalog.countBalls("b", "dir/", 100)).toEqual({ balls: 30, more: false });
    expect(catalog.countBalls("b", "dir/", 30)).toEqual({ balls: 30, more: false }); // exactly the bound: nothing more
    expect(catalog.countBalls("b", "dir/", 29)).toEqual({ balls: 29, more: true });
    expect(catalog.countBalls("b", "dir/1", 100)).toEqual({ balls: 10, more: false });
    expect(catalog.countBalls("b", "nothing/", 100)).toEqual({ balls: 0, more: false });
    expect(catalog.countBalls("none", "dir/", 100)).toBeUndefined();
    expect(thrown(() => catalog.countBalls("b", "dir/", limits.ballCountMax + 1)).code).toBe("bad_request");
    expect(catalog.countBalls("b", "dir/", limits.ballCountMax)).toEqual({ balls: 30, more: false });
  });
});

describe("deleteBalls", () => {
  test("batches in key order by the cursor, only under the prefix; each ball retired as deleteBall retires it", () => {
    const catalog = setup();
    for (let i = 0; i < 7; i += 1) put(catalog, "b", `run/${i}`);
    put(catalog, "b", "run-2/kept");
    put(catalog, "b", "run");
    put(catalog, "b", "other/kept");
    const when = { atMs: 50_000, readerGraceMs: 7_000 };
    const seen: number[] = [];
    let after: string | undefined;
    for (let batch = 0; batch < 10; batch += 1) {
      const result = catalog.deleteBalls({ bucket: "b", prefix: "run/", limit: 3, chunksMax: limits.deleteBatchChunksMax, ...(after === undefined ? {} : { after }) }, when)!;
      seen.push(result.deleted);
      if (result.next === undefined) break;
      expect(result.next).toBe(`run/${seen.reduce((sum, n) => sum + n, 0) - 1}`);
      after = result.next;
    }
    expect(seen).toEqual([3, 3, 1]);
    expect(keys(catalog, "b")).toEqual(["other/kept", "run", "run-2/kept"]);
    // Retired as a delete: garbage of both replicas of each, due only after the readers' grace.
    expect(catalog.takeGarbage({ limit: 100, nowMs: when.atMs + when.readerGraceMs - 1 })).toEqual([]);
    const due = catalog.takeGarbage({ limit: 100, nowMs: when.atMs + when.readerGraceMs });
    expect(due.length).toBe(7 * 2);
    expect(new Set(due.map((item) => item.objectId)).size).toBe(7);
    for (const objectId of new Set(due.map((item) => item.objectId))) expect(catalog.retiredObject(objectId)).toEqual({ bucket: "b", reason: "deleted", retiredMs: when.atMs });
    expect(catalog.getBucket("b")).toMatchObject({ balls: 3 });
  });

  test("a whole bucket (no prefix); the bucket stays, empty; nothing left: 0 and no next; no bucket: undefined", () => {
    const catalog = setup();
    for (let i = 0; i < 5; i += 1) put(catalog, "b", `k${i}`);
    expect(catalog.deleteBalls({ bucket: "b", limit: 5, chunksMax: 100 })).toEqual({ deleted: 5, bytes: expect.any(Number) });
    expect(catalog.deleteBalls({ bucket: "b", limit: 5, chunksMax: 100 })).toEqual({ deleted: 0, bytes: 0 });
    expect(catalog.getBucket("b")).toMatchObject({ balls: 0, bytes: 0 });
    expect(catalog.stats()).toMatchObject({ balls: 0, chunks: 0, replicas: 0, garbage: 10 });
    expect(catalog.deleteBalls({ bucket: "none", limit: 5, chunksMax: 100 })).toBeUndefined();
  });

  test("a batch stops once its chunks pass chunksMax, but always takes one ball however many chunks it has", () => {
    const catalog = setup();
    put(catalog, "b", "a", 3);
    put(catalog, "b", "b", 3);
    put(catalog, "b", "c", 10);
    put(catalog, "b", "d", 1);
    const first = catalog.deleteBalls({ bucket: "b", limit: 10, chunksMax: 7 })!;
    expect(first).toMatchObject({ deleted: 2, next: "b" }); // 3 + 3; the next 10 would pass 7
    const second = catalog.deleteBalls({ bucket: "b", limit: 10, chunksMax: 7, after: first.next! })!;
    expect(second).toMatchObject({ deleted: 1, next: "c" }); // alone, over the bound
    expect(catalog.deleteBalls({ bucket: "b", limit: 10, chunksMax: 7, after: second.next! })).toMatchObject({ deleted: 1 });
    expect(keys(catalog, "b")).toEqual([]);
  });

  test("the bounds are enforced at their edges", () => {
    const catalog = setup();
    put(catalog, "b", "k");
    expect(thrown(() => catalog.deleteBalls({ bucket: "b", limit: limits.deleteBatchBallsMax + 1, chunksMax: 1 })).code).toBe("bad_request");
    expect(thrown(() => catalog.deleteBalls({ bucket: "b", limit: 1, chunksMax: limits.deleteBatchChunksMax + 1 })).code).toBe("bad_request");
    expect(thrown(() => catalog.deleteBalls({ bucket: "b", limit: 0, chunksMax: 1 })).code).toBe("bad_request");
    expect(catalog.deleteBalls({ bucket: "b", limit: limits.deleteBatchBallsMax, chunksMax: limits.deleteBatchChunksMax })).toMatchObject({ deleted: 1 });
  });
});
