// The S3 gateway's bucket settings and object ACLs (issue 13): the same ops on the SPM, which
// keeps them in its catalog, and on routers, which pass them on as they are. Settings are text
// the S3 layer wrote (src/s3/acl.ts, src/s3/lifecycle.ts); the catalog does not read them.
import { z } from "zod";
import { limits } from "../lib/limits.ts";
import { ballKey, bucketName } from "./schemas.ts";
import { objectId } from "./ball.ts";

/** What a bucket keeps beside its balls: its canned ACL (absent: private) and its lifecycle configuration. */
export const bucketSettingName = z.enum(["acl", "lifecycle"]);
export type BucketSettingNameWire = z.infer<typeof bucketSettingName>;

/** The tag a ball's canned ACL is kept in (absent: private). In the s3: namespace, which the native client may not set. */
export const objectAclTag = "s3:acl";
export const objectAcl = z.enum(["private", "public-read"]);

export const bucketSettingOps = {
  /** A bucket's setting; no `value` when it has none. not_found when there is no such bucket. */
  "bucket.getSetting": {
    args: z.object({ bucket: bucketName, name: bucketSettingName }),
    result: z.object({ value: z.string().optional() }),
  },
  /** Set a bucket's setting, or remove it (no `value`). not_found when there is no such bucket. */
  "bucket.setSetting": {
    args: z.object({ bucket: bucketName, name: bucketSettingName, value: z.string().min(1).max(limits.bucketSettingBytesMax).optional() }),
    result: z.object({ bucket: z.string() }),
    replyBytesMax: limits.smallReplyBytesMax,
  },
  /**
   * The canned ACL of a key's live version (PutObjectAcl); only of version `objectId` when given
   * (conflict when the key was overwritten meanwhile). not_found when the key holds no ball.
   */
  "ball.setAcl": {
    args: z.object({ bucket: bucketName, key: ballKey, acl: objectAcl, objectId: objectId.optional() }),
    result: z.object({ bucket: z.string(), key: z.string() }),
    replyBytesMax: limits.smallReplyBytesMax,
  },
} as const;
