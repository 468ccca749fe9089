// Settings kept per bucket (issue 13: the S3 gateway's bucket ACL and lifecycle configuration),
// and the one change of a live version's tags the gateway makes (PutObjectAcl). A setting is a
// (bucket, name) → text row; the catalog stores the text as given (the S3 layer parses it) and
// removes a bucket's settings with the bucket. Callers run the writes in a transaction.
//
//   bucket_settings(bucket, name, value, PK (bucket, name))  WITHOUT ROWID
//     PK                one setting of one bucket (get, put, delete); a bucket's settings are
//                       the range [bucket] of the PK (deleteBucket); bucketsWithSetting pages
//                       the buckets holding one name (the SPM's lifecycle pass) by scanning it:
//                       few buckets have settings, and the pass is background work.
import type { Database, Statement } from "bun:sqlite";
import { assert } from "../lib/assert.ts";
import { BadRequestError, ConflictError } from "../lib/errors.ts";
import { limits } from "../lib/limits.ts";
import { checkBucket, checkKey, checkTags } from "./validate.ts";

/** The names a bucket setting may have. */
export const bucketSettingNames = ["acl", "lifecycle"] as const;
export type BucketSettingName = (typeof bucketSettingNames)[number];

type SettingRow = { value: string };

export class BucketSettings {
  private readonly get: Statement<SettingRow, [{ bucket: string; name: string }]>;
  private readonly put: Statement<unknown, [{ bucket: string; name: string; value: string }]>;
  private readonly remove: Statement<unknown, [{ bucket: string; name: string }]>;
  private readonly removeAll: Statement<unknown, [{ bucket: string }]>;
  private readonly page: Statement<{ bucket: string; value: string }, [{ name: string; from: string; limit: number }]>;
  private readonly bucketExists: Statement<{ one: number }, [{ name: string }]>;
  private readonly ballTags: Statement<{ object_id: string; tags: string }, [{ bucket: string; key: string }]>;
  private readonly setTags: Statement<unknown, [{ object_id: string; tags: string }]>;

  constructor(db: Database) {
    this.get = db.prepare("SELECT value FROM bucket_settings WHERE bucket = $bucket AND name = $name");
    this.put = db.prepare("INSERT OR REPLACE INTO bucket_settings (bucket, name, value) VALUES ($bucket, $name, $value)");
    this.remove = db.prepare("DELETE FROM bucket_settings WHERE bucket = $bucket AND name = $name");
    this.removeAll = db.prepare("DELETE FROM bucket_settings WHERE bucket = $bucket");
    this.page = db.prepare("SELECT bucket, value FROM bucket_settings WHERE name = $name AND bucket >= $from ORDER BY bucket LIMIT $limit");
    this.bucketExists = db.prepare("SELECT 1 AS one FROM buckets WHERE name = $name");
    this.ballTags = db.prepare("SELECT object_id, tags FROM balls WHERE bucket = $bucket AND key = $key"); // balls_key
    this.setTags = db.prepare("UPDATE balls SET tags = $tags WHERE object_id = $object_id"); // balls_object
  }

  /** A setting's value, or undefined when the bucket has none of that name (or there is no bucket). */
  read(bucket: string, name: BucketSettingName): string | undefined {
    checkBucket(bucket);
    checkSettingName(name);
    return this.get.get({ bucket, name })?.value;
  }

  /** Set (a string) or remove (undefined) one setting; false when there is no such bucket. */
  write(bucket: string, name: BucketSettingName, value: string | undefined): boolean {
    checkBucket(bucket);
    checkSettingName(name);
    if (this.bucketExists.get({ name: bucket }) === null) return false;
    if (value === undefined) {
      this.remove.run({ bucket, name });
      return true;
    }
    if (typeof value !== "string" || value.length === 0 || value.length > limits.bucketSettingBytesMax) {
      throw new BadRequestError(`a bucket setting is 1 to ${limits.bucketSettingBytesMax} characters`);
    }
    this.put.run({ bucket, name, value });
    assert(this.get.get({ bucket, name })?.value === value, `bucket ${bucket}'s ${name} setting did not read back as written`);
    return true;
  }

  /** Forget every setting of a bucket (deleteBucket, in its transaction). */
  removeBucket(bucket: string): void {
    this.removeAll.run({ bucket });
  }

  /** A page of the buckets that hold setting `name`, in name order from `from` (itself included). */
  bucketsWith(name: BucketSettingName, from: string, limit: number): Array<{ bucket: string; value: string }> {
    checkSettingName(name);
    assert(Number.isInteger(limit) && limit >= 1 && limit <= limits.listPageMax, `bucketsWith limit ${limit}`);
    return this.page.all({ name, from, limit });
  }

  /**
   * Set (a string) or remove (undefined) one tag of a key's live version. With `objectId`, only
   * of that version: ConflictError when the key now holds another (it was overwritten meanwhile).
   * Undefined when the key holds no ball.
   */
  setBallTag(bucket: string, key: string, tag: string, value: string | undefined, objectId?: string): Record<string, string> | undefined {
    checkBucket(bucket);
    checkKey(key);
    const row = this.ballTags.get({ bucket, key });
    if (row === null) return undefined;
    if (objectId !== undefined && row.object_id !== objectId) throw new ConflictError(`${bucket}/${key} was overwritten meanwhile (it is now object ${row.object_id}); ask again`);
    const tags = JSON.parse(row.tags) as Record<string, string>;
    if (value === undefined) delete tags[tag];
    else tags[tag] = value;
    checkTags(tags);
    this.setTags.run({ object_id: row.object_id, tags: JSON.stringify(tags) });
    return tags;
  }
}

export function checkSettingName(name: string): void {
  if (!(bucketSettingNames as readonly string[]).includes(name)) throw new BadRequestError(`${JSON.stringify(name)} is not a bucket setting (${bucketSettingNames.join(", ")})`);
}
