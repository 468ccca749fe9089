// ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation and ListObjectsV2, on
// the router's bucket and listing operations. The walk in key order (byte order of UTF-8) that
// folds keys under a delimiter into CommonPrefixes is listing.ts's; V2's continuation token says
// where it stopped and which common prefix it last returned, so a page never repeats one.
import { limits } from "../../../lib/limits.ts";
import { bucketExists, hasAnyGrant, requireGrant, routerCall, type S3Request } from "./context.ts";
import { element, s3Errors, s3Namespace, S3Reply, xmlHeader, xmlText } from "./xml.ts";
import { commonPrefixesXml, encoderOf, listingHeadXml, listParams, objectsXml, walkListing } from "./listing.ts";
import { applyBucketAcl, cannedAclOf } from "./acl.ts";
import { stagingBucket } from "./multipart.ts";

const xmlHeaders = { "Content-Type": "application/xml" };

/**
 * ListBuckets: the buckets the key holds any grant on (read, list, write or delete), as the
 * issue asks, not only those it may list. The router's bucket.list shows a key only the buckets
 * it may list, so the gateway asks it as an in-process caller that is no key (every bucket) and
 * filters by the key's grants itself.
 */
export async function listBuckets(s3: S3Request): Promise<Response> {
  const shown: { name: string; createdMs: number }[] = [];
  let after: string | undefined;
  do {
    const page = await routerCall({ ...s3, record: undefined }, "bucket.list", { limit: limits.listPageMax, ...(after === undefined ? {} : { after }) });
    shown.push(...page.buckets.filter((bucket) => bucket.name !== stagingBucket && hasAnyGrant({ record: s3.record, bucket: bucket.name }))); // multipart's staging bucket is no S3 bucket;
    after = page.next;
  } while (after !== undefined);
  const owner = `<Owner>${element("ID", s3.record?.accessKey ?? "anonymous")}${element("DisplayName", s3.record?.accessKey ?? "anonymous")}</Owner>`;
  const buckets = shown.map((bucket) => `<Bucket>${element("Name", bucket.name)}${element("CreationDate", new Date(bucket.createdMs).toISOString())}</Bucket>`).join("");
  return new Response(`${xmlHeader}<ListAllMyBucketsResult xmlns="${s3Namespace}">${owner}<Buckets>${buckets}</Buckets></ListAllMyBucketsResult>`, { headers: xmlHeaders });
}

/** S3's rule for a new bucket's name: 3–63 lowercase letters, digits, dots and hyphens, a letter or digit at each end. */
const s3BucketName = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export async function createBucket(s3: S3Request): Promise<Response> {
  requireGrant(s3, "write", "CreateBucket");
  if (!s3BucketName.test(s3.bucket) || s3.bucket.includes("..")) {
    throw new S3Reply("InvalidBucketName", 400, `The specified bucket is not valid: ${s3.bucket} (3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit)`, { BucketName: s3.bucket });
  }
  const acl = cannedAclOf(s3.request.headers);
  await drainBounded(s3.request); // a CreateBucketConfiguration (LocationConstraint): there is one region
  try {
    await routerCall(s3, "bucket.create", { bucket: s3.bucket }, { bucket: s3.bucket });
  } catch (error) {
    if (error instanceof S3Reply && error.httpStatus === 409) throw new S3Reply("BucketAlreadyOwnedByYou", 409, `Your previous request to create the named bucket succeeded and you already own it: ${s3.bucket}`, { BucketName: s3.bucket });
    throw error;
  }
  await applyBucketAcl(s3, acl);
  return new Response(null, { status: 200, headers: { Location: `/${s3.bucket}` } });
}

async function drainBounded(request: Request): Promise<void> {
  if (!request.body) return;
  let bytes = 0;
  for await (const piece of request.body as AsyncIterable<Uint8Array>) {
    bytes += piece.byteLength;
    if (bytes > limits.s3BucketBodyBytesMax) throw new S3Reply("MaxMessageLengthExceeded", 400, `A bucket request's body is at most ${limits.s3BucketBodyBytesMax} bytes`);
  }
}

export async function deleteBucket(s3: S3Request): Promise<Response> {
  requireGrant(s3, "delete", "DeleteBucket");
  try {
    await routerCall(s3, "bucket.delete", { bucket: s3.bucket }, { bucket: s3.bucket });
  } catch (error) {
    if (error instanceof S3Reply && error.httpStatus === 409) throw new S3Reply("BucketNotEmpty", 409, `The bucket you tried to delete is not empty: ${s3.bucket} (delete its objects first)`, { BucketName: s3.bucket });
    throw error;
  }
  return new Response(null, { status: 204 });
}

export async function headBucket(s3: S3Request): Promise<Response> {
  requireGrant(s3, "list", "HeadBucket");
  if (!(await bucketExists(s3))) throw s3Errors.noSuchBucket(s3.bucket);
  return new Response(null, { status: 200, headers: { "x-amz-bucket-region": s3.region } });
}

/** GetBucketLocation: S3 answers an empty LocationConstraint for us-east-1, else the region's name. Any grant on the bucket may ask. */
export async function getBucketLocation(s3: S3Request): Promise<Response> {
  if (!hasAnyGrant(s3)) requireGrant(s3, "list", "GetBucketLocation");
  if (!(await bucketExists(s3))) throw s3Errors.noSuchBucket(s3.bucket);
  const constraint = s3.region === "us-east-1" ? "" : xmlText(s3.region);
  return new Response(`${xmlHeader}<LocationConstraint xmlns="${s3Namespace}">${constraint}</LocationConstraint>`, { headers: xmlHeaders });
}

interface Token {
  /** Keys after this one. */
  a: string;
  /** The common prefix last returned: keys under it are skipped. */
  p?: string;
}

function parseToken(text: string): Token {
  try {
    const token = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as unknown;
    if (typeof token === "object" && token !== null && "a" in token && typeof token.a === "string") {
      return { a: token.a, ...("p" in token && typeof token.p === "string" ? { p: token.p } : {}) };
    }
  } catch {
    // answered below
  }
  throw s3Errors.invalidArgument("The continuation token provided is incorrect (pass NextContinuationToken as it came)");
}

export async function listObjectsV2(s3: S3Request): Promise<Response> {
  requireGrant(s3, "list", "ListObjectsV2");
  const q = s3.query;
  const params = listParams(s3);
  const encode = encoderOf(params);
  const tokenText = q.get("continuation-token");
  const startAfter = q.get("start-after") ?? "";
  const token = tokenText === null ? { a: startAfter } : parseToken(tokenText);
  const walked = await walkListing(s3, params, { after: token.a, skipPrefix: token.p });
  const last = walked.next;
  const next = walked.truncated && last ? element("NextContinuationToken", Buffer.from(JSON.stringify({ a: last.after, ...(last.skipPrefix === undefined ? {} : { p: last.skipPrefix }) })).toString("base64url")) : "";
  const body =
    `${xmlHeader}<ListBucketResult xmlns="${s3Namespace}">${listingHeadXml(s3, params)}` +
    `${element("MaxKeys", params.maxKeys)}${element("KeyCount", walked.entries.length)}${element("IsTruncated", walked.truncated)}` +
    (tokenText === null ? "" : element("ContinuationToken", tokenText)) +
    (q.has("start-after") ? element("StartAfter", encode(startAfter)) : "") +
    (params.urlEncoded ? element("EncodingType", "url") : "") +
    `${next}${objectsXml(walked, encode, false)}${commonPrefixesXml(walked, encode)}</ListBucketResult>`;
  return new Response(body, { headers: xmlHeaders });
}
