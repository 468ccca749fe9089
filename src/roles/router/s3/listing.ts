// The one walk under every S3 listing (ListObjectsV2, ListObjects V1, ListObjectVersions): the
// catalog's pages of a bucket in key order (byte order of UTF-8), keys under a delimiter folded
// into CommonPrefixes, stopped after max-keys entries. Where a page starts is given as a key to
// go past and, optionally, a common prefix already returned (its keys are skipped, so a page
// never repeats one); each listing turns its own markers or token into these.
import { assert } from "../../../lib/assert.ts";
import { limits } from "../../../lib/limits.ts";
import type { BallMetaWire } from "../../../protocol/ball.ts";
import { requireGrant, routerCall, type S3Request } from "./context.ts";
import { element, s3Errors, s3Namespace, xmlHeader } from "./xml.ts";
import { etagOf } from "./objects.ts";

export interface WalkFrom {
  /** Keys after this one ("" or undefined: from the first). */
  after?: string | undefined;
  /** A common prefix already returned: keys under it are skipped. */
  skipPrefix?: string | undefined;
}

export type ListEntry = { kind: "object"; ball: BallMetaWire } | { kind: "prefix"; prefix: string };

export interface Walked {
  entries: ListEntry[];
  /** More entries follow the last one returned. */
  truncated: boolean;
  /** Where the next page starts: after the last entry returned (undefined when none was). */
  next: { after: string; skipPrefix?: string } | undefined;
}

export interface ListParams {
  prefix: string;
  delimiter: string;
  maxKeys: number;
  /** encoding-type=url asked for. */
  urlEncoded: boolean;
}

/** prefix, delimiter, max-keys and encoding-type as every listing takes them. */
export function listParams(s3: S3Request): ListParams {
  const q = s3.query;
  const maxKeysText = q.get("max-keys");
  const maxKeys = maxKeysText === null ? limits.s3ListKeysMax : /^[0-9]{1,10}$/.test(maxKeysText) ? Math.min(Number(maxKeysText), limits.s3ListKeysMax) : Number.NaN;
  if (!Number.isInteger(maxKeys)) throw s3Errors.invalidArgument(`max-keys must be a whole number from 0; got ${maxKeysText}`);
  const encoding = q.get("encoding-type");
  if (encoding !== null && encoding !== "url") throw s3Errors.invalidArgument(`Invalid Encoding Method specified in Request: ${encoding} (only url is)`);
  return { prefix: q.get("prefix") ?? "", delimiter: q.get("delimiter") ?? "", maxKeys, urlEncoded: encoding === "url" };
}

/** The common prefix `key` falls under, or undefined when it falls under none. */
export function commonPrefixOf(key: string, prefix: string, delimiter: string): string | undefined {
  if (delimiter === "" || !key.startsWith(prefix)) return undefined;
  const cut = key.indexOf(delimiter, prefix.length);
  return cut < 0 ? undefined : key.slice(0, cut + delimiter.length);
}

/**
 * A V1 marker or a key-marker: keys after it, and when it falls under a common prefix, none
 * under that prefix (the marker came from it, as NextMarker, or from a key already folded into it).
 */
export function walkFromMarker(marker: string, params: ListParams): WalkFrom {
  return { after: marker, skipPrefix: commonPrefixOf(marker, params.prefix, params.delimiter) };
}

export async function walkListing(s3: S3Request, params: ListParams, from: WalkFrom): Promise<Walked> {
  const { prefix, delimiter, maxKeys } = params;
  assert(maxKeys >= 0 && maxKeys <= limits.s3ListKeysMax, "walkListing: max-keys within its bound");
  const entries: ListEntry[] = [];
  let skipPrefix = from.skipPrefix;
  let after = from.after === "" ? undefined : from.after;
  let next: Walked["next"];
  for (;;) {
    const args = { bucket: s3.bucket, limit: limits.listPageMax, ...(prefix === "" ? {} : { prefix }), ...(after === undefined ? {} : { after }) };
    const page = await routerCall(s3, "ball.list", args, { bucket: s3.bucket });
    for (const ball of page.balls) {
      if (skipPrefix !== undefined && ball.key.startsWith(skipPrefix)) continue;
      if (entries.length >= maxKeys) return { entries, truncated: true, next };
      const common = commonPrefixOf(ball.key, prefix, delimiter);
      if (common === undefined) {
        entries.push({ kind: "object", ball });
        next = { after: ball.key };
      } else {
        entries.push({ kind: "prefix", prefix: common });
        skipPrefix = common;
        next = { after: ball.key, skipPrefix: common };
      }
    }
    if (page.next === undefined) return { entries, truncated: false, next };
    after = page.next;
  }
}

/** S3's encoding-type=url: each byte percent-encoded except unreserved characters and '/'. */
export function urlEncodeKey(key: string): string {
  return encodeURIComponent(key).replace(/%2F/g, "/").replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** How a listing writes a key or prefix: as it is, or url-encoded when asked. */
export function encoderOf(params: ListParams): (text: string) => string {
  return params.urlEncoded ? urlEncodeKey : (text) => text;
}

/** The walked common prefixes as `<CommonPrefixes>` elements, in order. */
export function commonPrefixesXml(walked: Walked, encode: (text: string) => string): string {
  return walked.entries.map((entry) => (entry.kind === "prefix" ? `<CommonPrefixes>${element("Prefix", encode(entry.prefix))}</CommonPrefixes>` : "")).join("");
}

/** The elements every listing opens with: Name, Prefix, and the Delimiter when given. */
export function listingHeadXml(s3: S3Request, params: ListParams): string {
  const encode = encoderOf(params);
  return `${element("Name", s3.bucket)}${element("Prefix", encode(params.prefix))}${params.delimiter === "" ? "" : element("Delimiter", encode(params.delimiter))}`;
}

/** `<Owner>`: the key that asks (buckets have no owner of their own in mictlanx). */
export function ownerXml(s3: S3Request): string {
  const id = s3.record?.accessKey ?? "anonymous";
  return `<Owner>${element("ID", id)}${element("DisplayName", id)}</Owner>`;
}

/** The walked objects as `<Contents>` elements, in key order; `owner`: the `<Owner>` V1 puts in each, or false (V2). */
export function objectsXml(walked: Walked, encode: (text: string) => string, owner: string | false): string {
  return walked.entries
    .map((entry) => {
      if (entry.kind !== "object") return "";
      const ball = entry.ball;
      return `<Contents>${element("Key", encode(ball.key))}${element("LastModified", new Date(ball.createdMs).toISOString())}${element("ETag", etagOf(ball))}${element("Size", ball.size)}${owner === false ? "" : owner}${element("StorageClass", "STANDARD")}</Contents>`;
    })
    .join("");
}

const xmlHeaders = { "Content-Type": "application/xml" };

/**
 * ListObjects (V1, GET /bucket without list-type=2): from `marker`; NextMarker (the last key or
 * common prefix returned) only when a delimiter is given and the list is cut, as S3 answers
 * (without a delimiter a client goes on from the last Key).
 */
export async function listObjectsV1(s3: S3Request): Promise<Response> {
  requireGrant(s3, "list", "ListObjects");
  const params = listParams(s3);
  const encode = encoderOf(params);
  const marker = s3.query.get("marker") ?? "";
  const walked = await walkListing(s3, params, walkFromMarker(marker, params));
  const last = walked.entries.at(-1);
  const nextMarker = walked.truncated && params.delimiter !== "" && last !== undefined ? element("NextMarker", encode(last.kind === "object" ? last.ball.key : last.prefix)) : "";
  const body =
    `${xmlHeader}<ListBucketResult xmlns="${s3Namespace}">${listingHeadXml(s3, params)}${element("Marker", encode(marker))}${nextMarker}` +
    `${element("MaxKeys", params.maxKeys)}${element("IsTruncated", walked.truncated)}${params.urlEncoded ? element("EncodingType", "url") : ""}` +
    `${objectsXml(walked, encode, ownerXml(s3))}${commonPrefixesXml(walked, encode)}</ListBucketResult>`;
  return new Response(body, { headers: xmlHeaders });
}

/** The only version an object has here: mictlanx keeps no versions, so each is "null", as S3 names a current version of an unversioned bucket. */
export const nullVersionId = "null";

/**
 * ListObjectVersions (GET /bucket?versions): the current objects, each one Version with
 * VersionId null and IsLatest true, so cleanup code that walks versions (boto3's
 * object_versions.delete(), aws s3api list-object-versions) works. Paged by key-marker; a
 * version-id-marker can only be "null" (there is one version a key), so a page goes on after
 * the key-marker either way.
 */
export async function listObjectVersions(s3: S3Request): Promise<Response> {
  requireGrant(s3, "list", "ListObjectVersions");
  const params = listParams(s3);
  const encode = encoderOf(params);
  const keyMarker = s3.query.get("key-marker") ?? "";
  const versionMarker = s3.query.get("version-id-marker");
  if (versionMarker !== null && versionMarker !== "") {
    if (keyMarker === "") throw s3Errors.invalidArgument("A version-id marker cannot be specified without a key marker.");
    if (versionMarker !== nullVersionId) throw s3Errors.invalidArgument(`Invalid version id specified: ${versionMarker} (objects here have the one version null)`);
  }
  const walked = await walkListing(s3, params, walkFromMarker(keyMarker, params));
  const last = walked.entries.at(-1);
  const next = walked.truncated && last !== undefined ? `${element("NextKeyMarker", encode(last.kind === "object" ? last.ball.key : last.prefix))}${last.kind === "object" ? element("NextVersionIdMarker", nullVersionId) : ""}` : "";
  const owner = ownerXml(s3);
  const versions = walked.entries
    .map((entry) => {
      if (entry.kind !== "object") return "";
      const ball = entry.ball;
      return `<Version>${element("Key", encode(ball.key))}${element("VersionId", nullVersionId)}${element("IsLatest", true)}${element("LastModified", new Date(ball.createdMs).toISOString())}${element("ETag", etagOf(ball))}${element("Size", ball.size)}${owner}${element("StorageClass", "STANDARD")}</Version>`;
    })
    .join("");
  const body =
    `${xmlHeader}<ListVersionsResult xmlns="${s3Namespace}">${listingHeadXml(s3, params)}${element("KeyMarker", encode(keyMarker))}${element("VersionIdMarker", versionMarker ?? "")}${next}` +
    `${element("MaxKeys", params.maxKeys)}${element("IsTruncated", walked.truncated)}${params.urlEncoded ? element("EncodingType", "url") : ""}` +
    `${versions}${commonPrefixesXml(walked, encode)}</ListVersionsResult>`;
  return new Response(body, { headers: xmlHeaders });
}
