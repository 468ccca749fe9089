// abortMultipartUploadsBefore: the catalog's side of S3 multipart (the lifecycle rule
// AbortIncompleteMultipartUpload calls it): uploads begun before a time, under a key prefix, of
// one bucket or all, lose their parts and record; every chunk of theirs becomes garbage. On both
// engines through abortMultipartUploadsBefore (on CatalogCalls); the lifecycle rule's test
// runs the SPM's abortIncompleteUploadsIn over sqlite's calls.
import { afterEach, describe, expect, test } from "bun:test";
import type { Catalog, CatalogCalls, CatalogStore } from "../../src/catalog/index.ts";
import { abortMultipartUploadsBefore, catalogCalls } from "../../src/catalog/index.ts";
import { multipartDoneTag, multipartPartKey, multipartStagingBucket, multipartUploadKey, multipartUploadKeyTag } from "../../src/lib/s3-multipart-layout.ts";
import { ballOf, peerRecord, tempCatalog } from "./fixtures/catalog-records.ts";
import { abortIncompleteUploadsIn } from "../../src/roles/spm/multipart.ts";
import { auditedSetup, forEachEngine } from "../support/catalog-engines.ts";

let cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A sync sqlite Catalog (for the lifecycle pass), audited at the end. */
function setupSync(): Catalog {
  const temp = tempCatalog("catalog-multipart");
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

let serial = 0;
/** An upload of bucket/key begun at createdMs, with `parts` parts of two chunks each (sync or async catalog alike). */
async function addUpload(catalog: Catalog | CatalogCalls, bucket: string, key: string, createdMs: number, parts: number): Promise<string> {
  serial += 1;
  const uploadId = serial.toString(16).padStart(32, "0");
  const record = ballOf({ bucket: multipartStagingBucket, key: multipartUploadKey(bucket, uploadId), objectId: `u${serial}`, peers: [["p1", "p2"]], tags: { [multipartUploadKeyTag]: key } });
  await catalog.commitBall({ ...record.ball, createdMs }, record.chunks, {});
  for (let n = 1; n <= parts; n += 1) {
    const part = ballOf({ bucket: multipartStagingBucket, key: multipartPartKey(uploadId, n), objectId: `p${serial}-${n}`, peers: [["p1", "p2"], ["p2", "p3"]] });
    await catalog.commitBall(part.ball, part.chunks, {});
  }
  return uploadId;
}

forEachEngine("catalog-multipart", (engine) => {
  /** A catalog with peers p1..p3 up, audited at the end of each test. */
  const setup = auditedSetup(engine);

  describe("abortMultipartUploadsBefore", () => {
    test("no staging bucket yet: nothing to abort", async () => {
      expect(await abortMultipartUploadsBefore(await setup(), { keyPrefix: "", beforeMs: Date.now() })).toBe(0);
    });

    test("only uploads begun before the time, under the prefix, of the bucket; their parts' chunks become garbage", async () => {
      const catalog = await setup();
      const old = await addUpload(catalog, "photos", "logs/a", 1_000, 2);
      const young = await addUpload(catalog, "photos", "logs/b", 5_000, 1);
      const otherPrefix = await addUpload(catalog, "photos", "keep/c", 1_000, 1);
      const otherBucket = await addUpload(catalog, "photos-2", "logs/d", 1_000, 1);
      const before = await catalog.stats();
      // beforeMs is exclusive: an upload begun at exactly 5000 stays.
      expect(await abortMultipartUploadsBefore(catalog, { bucket: "photos", keyPrefix: "logs/", beforeMs: 5_000 })).toBe(1);
      expect(await catalog.getBallMeta(multipartStagingBucket, multipartUploadKey("photos", old))).toBeUndefined();
      expect(await catalog.getBallMeta(multipartStagingBucket, multipartPartKey(old, 1))).toBeUndefined();
      expect(await catalog.getBallMeta(multipartStagingBucket, multipartPartKey(old, 2))).toBeUndefined();
      for (const [bucket, uploadId] of [["photos", young], ["photos", otherPrefix], ["photos-2", otherBucket]] as const) {
        expect(await catalog.getBallMeta(multipartStagingBucket, multipartUploadKey(bucket, uploadId))).toBeDefined();
        expect(await catalog.getBallMeta(multipartStagingBucket, multipartPartKey(uploadId, 1))).toBeDefined();
      }
      const after = await catalog.stats();
      expect(before.balls - after.balls).toBe(3); // the record and two parts
      expect(before.chunks - after.chunks).toBe(1 + 2 * 2);
      expect(after.garbage - before.garbage).toBe(2 + 2 * 2 * 2); // every replica of every chunk
    });

    test("every bucket when none is named; a completed upload's record goes too, uncounted", async () => {
      const catalog = await setup();
      const done = ballOf({ bucket: multipartStagingBucket, key: multipartUploadKey("c-bucket", "f".repeat(32)), objectId: "done", peers: [["p1", "p2"]], tags: { [multipartUploadKeyTag]: "z", [multipartDoneTag]: "e-1" } });
      await catalog.commitBall({ ...done.ball, createdMs: 1_000 }, done.chunks, {});
      await addUpload(catalog, "a-bucket", "x", 1_000, 1);
      await addUpload(catalog, "b-bucket", "y", 1_000, 1);
      expect(await abortMultipartUploadsBefore(catalog, { keyPrefix: "", beforeMs: 2_000 })).toBe(2);
      expect((await catalog.listBalls({ bucket: multipartStagingBucket, limit: 10 })).balls).toEqual([]);
    });
  });
});

describe("the lifecycle rule AbortIncompleteMultipartUpload (the SPM's lifecycle pass)", () => {
  const dayMs = 86_400_000;
  test("each enabled rule aborts the uploads under its prefix begun DaysAfterInitiation days before; disabled rules and other prefixes keep theirs", async () => {
    const catalog = setupSync();
    const beganMs = 10 * dayMs + 3_600_000; // day 10, 01:00 UTC
    const due = await addUpload(catalog, "logs-bucket", "tmp/a", beganMs, 1);
    const otherPrefix = await addUpload(catalog, "logs-bucket", "keep/b", beganMs, 1);
    const calls = catalogCalls(catalog);
    const abort = abortIncompleteUploadsIn((write) => write(calls), () => ({}));
    const rules = [
      { id: "tmp", enabled: true, prefix: "tmp/", abortIncompleteDays: 2 },
      { id: "off", enabled: false, prefix: "keep/", abortIncompleteDays: 1 },
    ];
    // S3 counts days to the next midnight UTC: begun on day 10, 2 days are up at the start of day 13.
    expect(await abort("logs-bucket", { rules }, 13 * dayMs - 1)).toBe(0);
    expect(await abort("logs-bucket", { rules }, 13 * dayMs)).toBe(1);
    expect(catalog.getBallMeta(multipartStagingBucket, multipartUploadKey("logs-bucket", due))).toBeUndefined();
    expect(catalog.getBallMeta(multipartStagingBucket, multipartUploadKey("logs-bucket", otherPrefix))).toBeDefined();
    expect(await abort("logs-bucket", { rules }, 100 * dayMs)).toBe(0);
  });
});
