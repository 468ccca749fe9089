// Canned ACLs on the S3 endpoint (issue 13): Get/Put Bucket Acl and Object Acl, x-amz-acl on
// CreateBucket and PutObject (and on CopyObject / CreateMultipartUpload through `objectAclTags`),
// and the one way in without a signature: an anonymous GET/HEAD of a public-read object, or an
// anonymous listing of a public-read bucket. Every other anonymous request is AccessDenied, and
// so is one of those when the ACL is private or the object is not there (an anonymous caller
// learns nothing of what exists).
//
// A bucket's ACL is kept in the SPM's catalog (bucket_settings), an object's in its ball's
// `s3:acl` tag, per version: a new version of a key starts private unless its put says otherwise.
// A router caches bucket ACLs for limits.s3BucketAclCacheMs, for anonymous listings only.
import { limits } from "../../../lib/limits.ts";
import { Lru } from "../../../lib/lru.ts";
import { aclPolicyXml, cannedAclOf, cannedAclOfPolicy, type CannedAcl } from "../../../s3/acl.ts";
import { objectAclTag } from "../../../protocol/bucket-settings.ts";
import { requireGrant, routerCall, type RouterCall, type S3Request } from "./context.ts";
import { readSmallBody } from "./small-body.ts";
import { s3Errors, S3Reply } from "./xml.ts";

export { cannedAclOf };

/** The tags a new object's canned ACL adds to its ball: none for private, the default. */
export function objectAclTags(acl: CannedAcl | undefined): Record<string, string> {
  return acl === "public-read" ? { [objectAclTag]: acl } : {};
}

function objectAclOf(tags: Record<string, string>): CannedAcl {
  return tags[objectAclTag] === "public-read" ? "public-read" : "private";
}

/** Who GetAcl names as the owner: the gateway has one owner, shown as the key asking (as ListBuckets shows it). */
function ownerOf(s3: S3Request): string {
  return s3.record?.accessKey ?? "anonymous";
}

const xmlHeaders = { "Content-Type": "application/xml" };

// --- the bucket ACL cache (anonymous listings) -------------------------------------------------
type AclCache = Lru<string, { acl: CannedAcl; atMs: number }>;
/** One cache per gateway (its `call`), so gateways in one process never share answers. */
const caches = new WeakMap<RouterCall, AclCache>();

function cacheOf(s3: S3Request): AclCache {
  let cache = caches.get(s3.call);
  if (!cache) caches.set(s3.call, (cache = new Lru(limits.s3BucketAclCacheEntriesMax)));
  return cache;
}

function remember(s3: S3Request, acl: CannedAcl): void {
  cacheOf(s3).set(s3.bucket, { acl, atMs: Date.now() }); // the least recently used goes past s3BucketAclCacheEntriesMax
}

async function bucketAcl(s3: S3Request, options: { cached: boolean }): Promise<CannedAcl> {
  const hit = options.cached ? cacheOf(s3).get(s3.bucket) : undefined;
  if (hit && Date.now() - hit.atMs < limits.s3BucketAclCacheMs) return hit.acl;
  const { value } = await routerCall(s3, "bucket.getSetting", { bucket: s3.bucket, name: "acl" }, { bucket: s3.bucket });
  const acl: CannedAcl = value === "public-read" ? "public-read" : "private";
  remember(s3, acl);
  return acl;
}

async function storeBucketAcl(s3: S3Request, acl: CannedAcl): Promise<void> {
  await routerCall(s3, "bucket.setSetting", { bucket: s3.bucket, name: "acl", ...(acl === "private" ? {} : { value: acl }) }, { bucket: s3.bucket });
  remember(s3, acl);
}

/** CreateBucket's x-amz-acl, once the bucket is made (private needs nothing stored). */
export async function applyBucketAcl(s3: S3Request, acl: CannedAcl | undefined): Promise<void> {
  if (acl === "public-read") await storeBucketAcl(s3, acl);
}

/** The ACL a PutAcl asks for: its x-amz-acl, or an AccessControlPolicy body saying a canned one. */
async function requestedAcl(s3: S3Request): Promise<CannedAcl> {
  const fromHeader = cannedAclOf(s3.request.headers);
  const body = await readSmallBody(s3, limits.s3SettingsBodyBytesMax);
  if (fromHeader !== undefined) {
    if (body.trim() !== "") throw new S3Reply("UnexpectedContent", 400, "This request does not support content with x-amz-acl: send the canned ACL in x-amz-acl or an AccessControlPolicy body, not both");
    return fromHeader;
  }
  if (body.trim() === "") throw new S3Reply("MissingSecurityHeader", 400, "Your request was missing a required header: x-amz-acl (private or public-read), or an AccessControlPolicy body");
  return cannedAclOfPolicy(body);
}

function checkNoVersion(s3: S3Request): void {
  if (s3.query.has("versionId")) throw s3Errors.notImplemented("an ACL of one version (versionId): buckets are not versioned");
}

/** GET and PUT /bucket?acl. */
export async function bucketAclRequest(s3: S3Request): Promise<Response> {
  const method = s3.request.method;
  if (method === "GET") {
    requireGrant(s3, "read", "GetBucketAcl");
    return new Response(aclPolicyXml(await bucketAcl(s3, { cached: false }), ownerOf(s3)), { headers: xmlHeaders });
  }
  if (method === "PUT") {
    requireGrant(s3, "write", "PutBucketAcl");
    await storeBucketAcl(s3, await requestedAcl(s3));
    return new Response(null, { status: 200 });
  }
  throw s3Errors.notImplemented(`${method} /${s3.bucket}?acl`);
}

/** GET and PUT /bucket/key?acl. */
export async function objectAclRequest(s3: S3Request): Promise<Response> {
  const method = s3.request.method;
  checkNoVersion(s3);
  const target = { bucket: s3.bucket, key: s3.key };
  if (method === "GET") {
    requireGrant(s3, "read", "GetObjectAcl");
    const ball = await routerCall(s3, "ball.stat", target, target);
    return new Response(aclPolicyXml(objectAclOf(ball.tags), ownerOf(s3)), { headers: xmlHeaders });
  }
  if (method === "PUT") {
    requireGrant(s3, "write", "PutObjectAcl");
    const acl = await requestedAcl(s3);
    await routerCall(s3, "ball.setAcl", { ...target, acl }, target);
    return new Response(null, { status: 200 });
  }
  throw s3Errors.notImplemented(`${method} /${s3.bucket}/…?acl`);
}

// --- anonymous requests ---------------------------------------------------------------------
/** The query parameters of a listing (ListObjects V1 and V2): anything else is a subresource, never anonymous. */
const listParameters = new Set(["list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after", "encoding-type", "marker", "fetch-owner"]);

function refuseAnonymous(what: string): S3Reply {
  return s3Errors.accessDenied(`Anonymous requests are refused (${what}): sign the request with an access key, or make the object or bucket public-read (x-amz-acl: public-read)`);
}

/** Whether the key's live version is public-read; false when it is not there (AccessDenied follows, as S3 answers anonymous callers). */
async function objectIsPublic(s3: S3Request): Promise<boolean> {
  try {
    const ball = await routerCall(s3, "ball.stat", { bucket: s3.bucket, key: s3.key }, { bucket: s3.bucket, key: s3.key });
    return objectAclOf(ball.tags) === "public-read";
  } catch (error) {
    if (error instanceof S3Reply && error.httpStatus === 404) return false;
    throw error;
  }
}

async function bucketIsPublic(s3: S3Request): Promise<boolean> {
  try {
    return (await bucketAcl(s3, { cached: true })) === "public-read";
  } catch (error) {
    if (error instanceof S3Reply && error.httpStatus === 404) return false;
    throw error;
  }
}

/**
 * An anonymous request (no Authorization, no X-Amz-Signature, on a VSS with keys): handed to
 * `route` with what a public-read ACL opens, or AccessDenied.
 */
export async function routeAnonymous(s3: S3Request, route: (s3: S3Request) => Promise<Response>): Promise<Response> {
  const method = s3.request.method;
  const names = [...s3.query.keys()];
  if (s3.bucket !== "" && s3.key !== "" && (method === "GET" || method === "HEAD")) {
    if (names.some((name) => !name.startsWith("response-"))) throw refuseAnonymous(`${method} of an object with ?${names.join("&")}`);
    if (await objectIsPublic(s3)) return route({ ...s3, publicAction: "read" });
    throw refuseAnonymous(`${s3.bucket}/${s3.key} is not public-read`);
  }
  if (s3.bucket !== "" && s3.key === "" && method === "GET") {
    if (names.some((name) => !listParameters.has(name))) throw refuseAnonymous(`GET of a bucket with ?${names.join("&")}`);
    if (await bucketIsPublic(s3)) return route({ ...s3, publicAction: "list" });
    throw refuseAnonymous(`bucket ${s3.bucket} is not public-read`);
  }
  throw refuseAnonymous(`${method} ${s3.bucket === "" ? "/" : s3.key === "" ? "of a bucket" : "of an object"}`);
}
