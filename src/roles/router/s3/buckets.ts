// ListBuckets, CreateBucket, DeleteBucket, HeadBucket and ListObjectsV2, on the router's bucket
// and listing operations. Listing walks the catalog's pages in key order (byte order of UTF-8)
// and folds keys under a delimiter into CommonPrefixes; a continuation token says where the
// walk stopped and which common prefix it last returned, so a page never repeats one.
import { limits } from "../../../lib/limits.ts";
import { bucketExists, requireGrant, routerCall, type S3Request } from "./context.ts";
import { element, s3Errors, s3Namespace, S3Reply, xmlHeader } from "./xml.ts";
import { etagOf } from "./objects.ts";
import { applyBucketAcl, cannedAclOf } from "./acl.ts";

const xmlHeaders = { "Content-Type": "application/xml" };

export async function listBuckets(s3: S3Request): Promise<Response> {
  const shown: { name: string; createdMs: number }[] = [];
  let after: string | undefined;
  do {
    const page = await routerCall(s3, "bucket.list", { limit: limits.listPageMax, ...(after === undefined ? {} : { after }) });
    shown.push(...page.buckets); // the router's bucket.list shows a key the buckets it may list
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
  return new Response(null, { status: 200, headers: { "x-amz-bucket-region": "us-east-1" } });
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

/** S3's encoding-type=url: each byte percent-encoded except unreserved characters and '/'. */
function urlEncodeKey(key: string): string {
  return encodeURIComponent(key).replace(/%2F/g, "/").replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export async function listObjectsV2(s3: S3Request): Promise<Response> {
  requireGrant(s3, "list", "ListObjectsV2");
  const q = s3.query;
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") ?? "";
  const maxKeysText = q.get("max-keys");
  const maxKeys = maxKeysText === null ? limits.s3ListKeysMax : Math.min(Number(maxKeysText), limits.s3ListKeysMax);
  if (!Number.isInteger(maxKeys) || maxKeys < 0) throw s3Errors.invalidArgument(`max-keys must be a whole number from 0; got ${maxKeysText}`);
  const encoding = q.get("encoding-type");
  if (encoding !== null && encoding !== "url") throw s3Errors.invalidArgument(`Invalid Encoding Method specified in Request: ${encoding}`);
  const encode = encoding === "url" ? urlEncodeKey : (text: string) => text;
  const tokenText = q.get("continuation-token");
  const startAfter = q.get("start-after") ?? "";
  const token = tokenText === null ? { a: startAfter } : parseToken(tokenText);
  const contents: string[] = [];
  const prefixes: string[] = [];
  let skipPrefix = token.p;
  let after = token.a === "" ? undefined : token.a;
  let truncated = false;
  let lastEntry: Token | undefined;
  walk: for (;;) {
    const page = await routerCall(s3, "ball.list", { bucket: s3.bucket, limit: limits.listPageMax, ...(prefix === "" ? {} : { prefix }), ...(after === undefined ? {} : { after }) }, { bucket: s3.bucket });
    for (const ball of page.balls) {
      if (skipPrefix !== undefined && ball.key.startsWith(skipPrefix)) continue;
      const cut = delimiter === "" ? -1 : ball.key.indexOf(delimiter, prefix.length);
      if (contents.length + prefixes.length >= maxKeys) {
        truncated = true;
        break walk;
      }
      if (cut >= 0) {
        const common = ball.key.slice(0, cut + delimiter.length);
        prefixes.push(`<CommonPrefixes>${element("Prefix", encode(common))}</CommonPrefixes>`);
        skipPrefix = common;
        lastEntry = { a: ball.key, p: common };
      } else {
        contents.push(`<Contents>${element("Key", encode(ball.key))}${element("LastModified", new Date(ball.createdMs).toISOString())}${element("ETag", etagOf(ball))}${element("Size", ball.size)}${element("StorageClass", "STANDARD")}</Contents>`);
        lastEntry = { a: ball.key };
      }
    }
    if (page.next === undefined) break;
    after = page.next;
  }
  const next = truncated && lastEntry ? element("NextContinuationToken", Buffer.from(JSON.stringify(lastEntry)).toString("base64url")) : "";
  const body =
    `${xmlHeader}<ListBucketResult xmlns="${s3Namespace}">${element("Name", s3.bucket)}${element("Prefix", encode(prefix))}` +
    (delimiter === "" ? "" : element("Delimiter", encode(delimiter))) +
    `${element("MaxKeys", maxKeys)}${element("KeyCount", contents.length + prefixes.length)}${element("IsTruncated", truncated)}` +
    (tokenText === null ? "" : element("ContinuationToken", tokenText)) +
    (q.has("start-after") ? element("StartAfter", encode(startAfter)) : "") +
    (encoding === null ? "" : element("EncodingType", encoding)) +
    `${next}${contents.join("")}${prefixes.join("")}</ListBucketResult>`;
  return new Response(body, { headers: xmlHeaders });
}
