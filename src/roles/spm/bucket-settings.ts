// The SPM's side of the S3 gateway's bucket settings (canned ACL, lifecycle configuration) and
// object ACLs: kept in the catalog, so they survive restarts and every router sees the same.
// Writes go through the write batcher: durable before the reply, like every other write.
import type { CatalogStore } from "../../catalog/index.ts";
import type { Handlers } from "../../net/server.ts";
import { NotFoundError } from "../../lib/errors.ts";
import { objectAclTag } from "../../protocol/bucket-settings.ts";
import type { SpmOps } from "../../protocol/spm.ts";
import type { WriteBatcher } from "./write-batcher.ts";
import type { Manifests } from "./manifests.ts";

type SettingHandlers = Pick<Handlers<SpmOps>, "bucket.getSetting" | "bucket.setSetting" | "ball.setAcl">;

function noSuchBucket(bucket: string): NotFoundError {
  return new NotFoundError(`no such bucket ${bucket}; mictlanx ls lists the buckets, mictlanx mb ${bucket} makes it`);
}

export function bucketSettingHandlers(deps: { catalog: CatalogStore; writes: WriteBatcher; manifests: Manifests }): SettingHandlers {
  const { catalog, writes, manifests } = deps;
  return {
    "bucket.getSetting": async ({ bucket, name }) => {
      if ((await catalog.getBucket(bucket)) === undefined) throw noSuchBucket(bucket);
      const value = await catalog.getBucketSetting(bucket, name);
      return value === undefined ? {} : { value };
    },
    "bucket.setSetting": async ({ bucket, name, value }) => {
      if (!(await writes.submit((tx) => tx.setBucketSetting(bucket, name, value)))) throw noSuchBucket(bucket);
      return { bucket };
    },
    "ball.setAcl": async ({ bucket, key, acl, objectId }) => {
      // private is the default: no tag, so a ball read back looks as it would had it never been set.
      const done = await writes.submit(async (tx) => {
        const tags = await tx.setBallTag(bucket, key, objectAclTag, acl === "private" ? undefined : acl, objectId);
        // The ball's tags changed: its manifest is written again, so a rebuilt catalog has them.
        return tags === undefined ? undefined : manifests.live(tx, bucket, key);
      });
      if (done === undefined) throw new NotFoundError((await catalog.getBucket(bucket)) === undefined ? `no such bucket ${bucket}` : `${bucket}/${key} does not exist`);
      await manifests.deliver([done]);
      return { bucket, key };
    },
  };
}
