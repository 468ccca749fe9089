// Bucket settings and a live version's tag, on PostgreSQL: src/catalog/bucket-settings.ts call
// for call (what a setting is, and who uses them, is written there).
import { assert } from "../../lib/assert.ts";
import { BadRequestError, ConflictError } from "../../lib/errors.ts";
import { limits } from "../../lib/limits.ts";
import { checkSettingName, type BucketSettingName } from "../bucket-settings.ts";
import { checkBucket, checkKey, checkTags } from "../validate.ts";
import { all, one, type Db } from "./db.ts";

async function read(db: Db, bucket: string, name: string): Promise<string | undefined> {
  return (await one<{ value: string }>(db`SELECT value FROM bucket_settings WHERE bucket = ${bucket} AND name = ${name}`))?.value;
}

export async function getBucketSetting(db: Db, bucket: string, name: BucketSettingName): Promise<string | undefined> {
  checkBucket(bucket);
  checkSettingName(name);
  return read(db, bucket, name);
}

export async function setBucketSetting(db: Db, bucket: string, name: BucketSettingName, value: string | undefined): Promise<boolean> {
  checkBucket(bucket);
  checkSettingName(name);
  if ((await one(db`SELECT 1 AS one FROM buckets WHERE name = ${bucket}`)) === undefined) return false;
  if (value === undefined) {
    await db`DELETE FROM bucket_settings WHERE bucket = ${bucket} AND name = ${name}`;
    return true;
  }
  if (typeof value !== "string" || value.length === 0 || value.length > limits.bucketSettingBytesMax) {
    throw new BadRequestError(`a bucket setting is 1 to ${limits.bucketSettingBytesMax} characters`);
  }
  await db`INSERT INTO bucket_settings (bucket, name, value) VALUES (${bucket}, ${name}, ${value}) ON CONFLICT (bucket, name) DO UPDATE SET value = excluded.value`;
  assert((await read(db, bucket, name)) === value, `bucket ${bucket}'s ${name} setting did not read back as written`);
  return true;
}

export async function removeBucketSettings(db: Db, bucket: string): Promise<void> {
  await db`DELETE FROM bucket_settings WHERE bucket = ${bucket}`;
}

export async function bucketsWithSetting(db: Db, name: BucketSettingName, from: string, limit: number): Promise<Array<{ bucket: string; value: string }>> {
  checkSettingName(name);
  assert(Number.isInteger(limit) && limit >= 1 && limit <= limits.listPageMax, `bucketsWith limit ${limit}`);
  return all(db`SELECT bucket, value FROM bucket_settings WHERE name = ${name} AND bucket >= ${from} ORDER BY bucket LIMIT ${limit}`);
}

export async function setBallTag(db: Db, bucket: string, key: string, tag: string, value: string | undefined, objectId?: string): Promise<Record<string, string> | undefined> {
  checkBucket(bucket);
  checkKey(key);
  const row = await one<{ object_id: string; tags: string }>(db`SELECT object_id, tags FROM balls WHERE bucket = ${bucket} AND key = ${key}`);
  if (row === undefined) return undefined;
  if (objectId !== undefined && row.object_id !== objectId) throw new ConflictError(`${bucket}/${key} was overwritten meanwhile (it is now object ${row.object_id}); ask again`);
  const tags = JSON.parse(row.tags) as Record<string, string>;
  if (value === undefined) delete tags[tag];
  else tags[tag] = value;
  checkTags(tags);
  await db`UPDATE balls SET tags = ${JSON.stringify(tags)} WHERE object_id = ${row.object_id}`;
  return tags;
}
