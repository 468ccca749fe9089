// The catalog's bucket settings (the S3 gateway's bucket ACL and lifecycle configuration) and
// the one-tag change of a live version (PutObjectAcl): kept across a reopen, removed with their
// bucket, bounded, and a tag change refused on a version the key no longer holds.
import { describe, expect, test } from "bun:test";
import type { CatalogStore } from "../../src/catalog/index.ts";
import { limits } from "../../src/lib/limits.ts";
import { ballOf, peerRecord } from "./fixtures/catalog-records.ts";
import { rejection } from "../support/errors.ts";
import { forEachEngine, type OpenedCatalog } from "../support/catalog-engines.ts";

forEachEngine("catalog-settings", (engine) => {
  async function fresh(): Promise<OpenedCatalog & { catalog: CatalogStore }> {
    const opened = await engine.open();
    for (const id of ["p1", "p2"]) await opened.store.upsertPeer(peerRecord(id));
    return { ...opened, catalog: opened.store };
  }

  describe("bucket settings", () => {
    test("set, read, replace and remove; survive a reopen", async () => {
      const temp = await fresh();
      expect(await temp.catalog.createBucket("photos", 1_000)).toBe(true);
      expect(await temp.catalog.getBucketSetting("photos", "acl")).toBeUndefined();
      expect(await temp.catalog.setBucketSetting("photos", "acl", "public-read")).toBe(true);
      expect(await temp.catalog.setBucketSetting("photos", "lifecycle", '{"rules":[]}')).toBe(true);
      expect(await temp.catalog.setBucketSetting("photos", "lifecycle", '{"rules":[1]}')).toBe(true);
      await temp.catalog.close();
      const reopened = await temp.reopen();
      {
        expect(await reopened.getBucketSetting("photos", "acl")).toBe("public-read");
        expect(await reopened.getBucketSetting("photos", "lifecycle")).toBe('{"rules":[1]}');
        expect(await reopened.setBucketSetting("photos", "acl", undefined)).toBe(true);
        expect(await reopened.getBucketSetting("photos", "acl")).toBeUndefined();
        expect(await reopened.audit()).toEqual([]);
      }
    });

    test("a bucket that does not exist holds none and takes none", async () => {
      const temp = await fresh();
      expect(await temp.catalog.setBucketSetting("nothing", "acl", "public-read")).toBe(false);
      expect(await temp.catalog.getBucketSetting("nothing", "acl")).toBeUndefined();
    });

    test("deleting a bucket removes its settings: a bucket made again under its name starts with none", async () => {
      const temp = await fresh();
      await temp.catalog.createBucket("gone", 1_000);
      await temp.catalog.setBucketSetting("gone", "acl", "public-read");
      await temp.catalog.setBucketSetting("gone", "lifecycle", "{}");
      expect(await temp.catalog.deleteBucket("gone")).toBe(true);
      await temp.catalog.createBucket("gone", 2_000);
      expect(await temp.catalog.getBucketSetting("gone", "acl")).toBeUndefined();
      expect(await temp.catalog.bucketsWithSetting("lifecycle", "", limits.listPageMax)).toEqual([]);
    });

    test("a value is 1 to bucketSettingBytesMax characters; an unknown name is refused", async () => {
      const temp = await fresh();
      await temp.catalog.createBucket("edge", 1_000);
      expect(await temp.catalog.setBucketSetting("edge", "lifecycle", "x".repeat(limits.bucketSettingBytesMax))).toBe(true);
      expect((await rejection(temp.catalog.setBucketSetting("edge", "lifecycle", "x".repeat(limits.bucketSettingBytesMax + 1)))).code).toBe("bad_request");
      expect((await rejection(temp.catalog.setBucketSetting("edge", "lifecycle", ""))).code).toBe("bad_request");
      expect((await rejection(temp.catalog.setBucketSetting("edge", "policy" as "acl", "x"))).code).toBe("bad_request");
    });

    test("bucketsWithSetting pages the buckets holding one name, in name order, from a bucket on", async () => {
      const temp = await fresh();
      for (const name of ["b-3", "b-1", "b-2", "b-4"]) await temp.catalog.createBucket(name, 1_000);
      for (const name of ["b-3", "b-1", "b-4"]) await temp.catalog.setBucketSetting(name, "lifecycle", `rules of ${name}`);
      await temp.catalog.setBucketSetting("b-2", "acl", "public-read");
      expect((await temp.catalog.bucketsWithSetting("lifecycle", "", 10)).map((row) => row.bucket)).toEqual(["b-1", "b-3", "b-4"]);
      expect(await temp.catalog.bucketsWithSetting("lifecycle", "b-3", 1)).toEqual([{ bucket: "b-3", value: "rules of b-3" }]);
      expect((await temp.catalog.bucketsWithSetting("acl", "", 10)).map((row) => row.bucket)).toEqual(["b-2"]);
    });
  });

  describe("setBallTag", () => {
    test("sets and removes one tag of the live version, only of the version named", async () => {
      const temp = await fresh();
      const first = ballOf({ key: "k", objectId: "object-one", peers: [["p1", "p2"]] });
      await temp.catalog.commitBall(first.ball, first.chunks, {});
      expect((await temp.catalog.setBallTag("bucket", "k", "s3:acl", "public-read", "object-one"))?.["s3:acl"]).toBe("public-read");
      expect((await temp.catalog.getBallMeta("bucket", "k"))?.tags).toEqual({ ...first.ball.tags, "s3:acl": "public-read" });
      expect(await temp.catalog.setBallTag("bucket", "k", "s3:acl", undefined)).toEqual(first.ball.tags);
      const second = ballOf({ key: "k", objectId: "object-two", peers: [["p1", "p2"]] });
      await temp.catalog.commitBall(second.ball, second.chunks, {});
      expect((await rejection(temp.catalog.setBallTag("bucket", "k", "s3:acl", "public-read", "object-one"))).code).toBe("conflict");
      expect((await temp.catalog.getBallMeta("bucket", "k"))?.tags["s3:acl"]).toBeUndefined();
      expect(await temp.catalog.setBallTag("bucket", "missing", "s3:acl", "public-read")).toBeUndefined();
      expect(await temp.catalog.audit()).toEqual([]);
    });

    test("a ball with tagCountMax tags takes no more", async () => {
      const temp = await fresh();
      const tags = Object.fromEntries(Array.from({ length: limits.tagCountMax }, (_, i) => [`t${i}`, "v"]));
      const full = ballOf({ key: "full", objectId: "object-full", peers: [["p1", "p2"]], tags });
      await temp.catalog.commitBall(full.ball, full.chunks, {});
      expect((await temp.catalog.setBallTag("bucket", "full", "t0", "replaced"))?.t0).toBe("replaced"); // replacing one is no more
      expect((await rejection(temp.catalog.setBallTag("bucket", "full", "s3:acl", "public-read"))).code).toBe("bad_request");
    });
  });
});
