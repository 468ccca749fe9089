// The catalog's bucket settings (the S3 gateway's bucket ACL and lifecycle configuration) and
// the one-tag change of a live version (PutObjectAcl): kept across a reopen, removed with their
// bucket, bounded, and a tag change refused on a version the key no longer holds.
import { afterEach, describe, expect, test } from "bun:test";
import { Catalog } from "../../src/catalog/index.ts";
import { limits } from "../../src/lib/limits.ts";
import { ballOf, peerRecord, tempCatalog } from "./fixtures/catalog-records.ts";
import { thrown } from "../support/errors.ts";

const temps: Array<ReturnType<typeof tempCatalog>> = [];
afterEach(() => {
  for (const temp of temps.splice(0)) temp.done();
});

function fresh(): ReturnType<typeof tempCatalog> {
  const temp = tempCatalog("catalog-settings");
  temps.push(temp);
  for (const id of ["p1", "p2"]) temp.catalog.upsertPeer(peerRecord(id));
  return temp;
}

describe("bucket settings", () => {
  test("set, read, replace and remove; survive a reopen", () => {
    const temp = fresh();
    expect(temp.catalog.createBucket("photos", 1_000)).toBe(true);
    expect(temp.catalog.getBucketSetting("photos", "acl")).toBeUndefined();
    expect(temp.catalog.setBucketSetting("photos", "acl", "public-read")).toBe(true);
    expect(temp.catalog.setBucketSetting("photos", "lifecycle", '{"rules":[]}')).toBe(true);
    expect(temp.catalog.setBucketSetting("photos", "lifecycle", '{"rules":[1]}')).toBe(true);
    temp.catalog.close();
    const reopened = Catalog.open(temp.path);
    try {
      expect(reopened.getBucketSetting("photos", "acl")).toBe("public-read");
      expect(reopened.getBucketSetting("photos", "lifecycle")).toBe('{"rules":[1]}');
      expect(reopened.setBucketSetting("photos", "acl", undefined)).toBe(true);
      expect(reopened.getBucketSetting("photos", "acl")).toBeUndefined();
      expect(reopened.audit()).toEqual([]);
    } finally {
      reopened.close();
    }
  });

  test("a bucket that does not exist holds none and takes none", () => {
    const temp = fresh();
    expect(temp.catalog.setBucketSetting("nothing", "acl", "public-read")).toBe(false);
    expect(temp.catalog.getBucketSetting("nothing", "acl")).toBeUndefined();
  });

  test("deleting a bucket removes its settings: a bucket made again under its name starts with none", () => {
    const temp = fresh();
    temp.catalog.createBucket("gone", 1_000);
    temp.catalog.setBucketSetting("gone", "acl", "public-read");
    temp.catalog.setBucketSetting("gone", "lifecycle", "{}");
    expect(temp.catalog.deleteBucket("gone")).toBe(true);
    temp.catalog.createBucket("gone", 2_000);
    expect(temp.catalog.getBucketSetting("gone", "acl")).toBeUndefined();
    expect(temp.catalog.bucketsWithSetting("lifecycle", "", limits.listPageMax)).toEqual([]);
  });

  test("a value is 1 to bucketSettingBytesMax characters; an unknown name is refused", () => {
    const temp = fresh();
    temp.catalog.createBucket("edge", 1_000);
    expect(temp.catalog.setBucketSetting("edge", "lifecycle", "x".repeat(limits.bucketSettingBytesMax))).toBe(true);
    expect(thrown(() => temp.catalog.setBucketSetting("edge", "lifecycle", "x".repeat(limits.bucketSettingBytesMax + 1))).code).toBe("bad_request");
    expect(thrown(() => temp.catalog.setBucketSetting("edge", "lifecycle", "")).code).toBe("bad_request");
    expect(thrown(() => temp.catalog.setBucketSetting("edge", "policy" as "acl", "x")).code).toBe("bad_request");
  });

  test("bucketsWithSetting pages the buckets holding one name, in name order, from a bucket on", () => {
    const temp = fresh();
    for (const name of ["b-3", "b-1", "b-2", "b-4"]) temp.catalog.createBucket(name, 1_000);
    for (const name of ["b-3", "b-1", "b-4"]) temp.catalog.setBucketSetting(name, "lifecycle", `rules of ${name}`);
    temp.catalog.setBucketSetting("b-2", "acl", "public-read");
    expect(temp.catalog.bucketsWithSetting("lifecycle", "", 10).map((row) => row.bucket)).toEqual(["b-1", "b-3", "b-4"]);
    expect(temp.catalog.bucketsWithSetting("lifecycle", "b-3", 1)).toEqual([{ bucket: "b-3", value: "rules of b-3" }]);
    expect(temp.catalog.bucketsWithSetting("acl", "", 10).map((row) => row.bucket)).toEqual(["b-2"]);
  });
});

describe("setBallTag", () => {
  test("sets and removes one tag of the live version, only of the version named", () => {
    const temp = fresh();
    const first = ballOf({ key: "k", objectId: "object-one", peers: [["p1", "p2"]] });
    temp.catalog.commitBall(first.ball, first.chunks, {});
    expect(temp.catalog.setBallTag("bucket", "k", "s3:acl", "public-read", "object-one")?.["s3:acl"]).toBe("public-read");
    expect(temp.catalog.getBallMeta("bucket", "k")?.tags).toEqual({ ...first.ball.tags, "s3:acl": "public-read" });
    expect(temp.catalog.setBallTag("bucket", "k", "s3:acl", undefined)).toEqual(first.ball.tags);
    const second = ballOf({ key: "k", objectId: "object-two", peers: [["p1", "p2"]] });
    temp.catalog.commitBall(second.ball, second.chunks, {});
    expect(thrown(() => temp.catalog.setBallTag("bucket", "k", "s3:acl", "public-read", "object-one")).code).toBe("conflict");
    expect(temp.catalog.getBallMeta("bucket", "k")?.tags["s3:acl"]).toBeUndefined();
    expect(temp.catalog.setBallTag("bucket", "missing", "s3:acl", "public-read")).toBeUndefined();
    expect(temp.catalog.audit()).toEqual([]);
  });

  test("a ball with tagCountMax tags takes no more", () => {
    const temp = fresh();
    const tags = Object.fromEntries(Array.from({ length: limits.tagCountMax }, (_, i) => [`t${i}`, "v"]));
    const full = ballOf({ key: "full", objectId: "object-full", peers: [["p1", "p2"]], tags });
    temp.catalog.commitBall(full.ball, full.chunks, {});
    expect(temp.catalog.setBallTag("bucket", "full", "t0", "replaced")?.t0).toBe("replaced"); // replacing one is no more
    expect(thrown(() => temp.catalog.setBallTag("bucket", "full", "s3:acl", "public-read")).code).toBe("bad_request");
  });
});
