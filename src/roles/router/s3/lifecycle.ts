// Put/Get/Delete BucketLifecycleConfiguration (`?lifecycle`, issue 13). The configuration is
// parsed and checked here (src/s3/lifecycle.ts: what is not built is NotImplemented), kept in
// the SPM's catalog as JSON, and applied by the SPM's lifecycle pass (src/roles/spm/lifecycle.ts).
import { limits } from "../../../lib/limits.ts";
import { lifecycleConfiguration, lifecycleXml, parseLifecycleXml } from "../../../s3/lifecycle.ts";
import { requireGrant, routerCall, type S3Request } from "./context.ts";
import { readSmallBody } from "./small-body.ts";
import { s3Errors, S3Reply } from "./xml.ts";

export async function bucketLifecycleRequest(s3: S3Request): Promise<Response> {
  const method = s3.request.method;
  const target = { bucket: s3.bucket };
  if (method === "PUT") {
    requireGrant(s3, "write", "PutBucketLifecycleConfiguration");
    const config = parseLifecycleXml(await readSmallBody(s3, limits.s3SettingsBodyBytesMax));
    await routerCall(s3, "bucket.setSetting", { bucket: s3.bucket, name: "lifecycle", value: JSON.stringify(config) }, target);
    return new Response(null, { status: 200 });
  }
  if (method === "GET") {
    requireGrant(s3, "read", "GetBucketLifecycleConfiguration");
    const { value } = await routerCall(s3, "bucket.getSetting", { bucket: s3.bucket, name: "lifecycle" }, target);
    if (value === undefined) throw new S3Reply("NoSuchLifecycleConfiguration", 404, `The lifecycle configuration does not exist: bucket ${s3.bucket} has none (PutBucketLifecycleConfiguration sets one)`, { BucketName: s3.bucket });
    return new Response(lifecycleXml(lifecycleConfiguration.parse(JSON.parse(value))), { headers: { "Content-Type": "application/xml" } });
  }
  if (method === "DELETE") {
    requireGrant(s3, "write", "DeleteBucketLifecycle");
    await routerCall(s3, "bucket.setSetting", { bucket: s3.bucket, name: "lifecycle" }, target);
    return new Response(null, { status: 204 });
  }
  throw s3Errors.notImplemented(`${method} /${s3.bucket}?lifecycle`);
}
