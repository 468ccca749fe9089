// CopyObject: PUT /bucket/key with x-amz-copy-source: [/]srcBucket/srcKey (percent-encoded).
// Needs `read` on the source's bucket and `write` on the destination's. The source's chunks are
// read one at a time and streamed into a new ball through the same write path as PutObject
// (storeBody), so memory stays one chunk whatever the size; the copy gets its own MD5 ETag.
// x-amz-metadata-directive COPY (the default) carries the source's metadata and Content-Type
// over; REPLACE takes them from the request, which is how an object's metadata is changed in
// place (a copy onto itself without REPLACE is refused, as S3 does).
import { limits } from "../../../lib/limits.ts";
import { checksumAlgorithms, type ChecksumAlgorithm } from "../../../s3/checksums.ts";
import type { BallMetaWire } from "../../../protocol/ball.ts";
import { requireBucket, requireGrant, routerCall, s3TagPrefix, type S3Request } from "./context.ts";
import { requireCopySourceConditions, writeCondition } from "./conditions.ts";
import { checksumAsked, etagOf, isMetadataTag, plainChunk, statObject, storeBody, userMetadata } from "./objects.ts";
import { cannedAclOf, objectAclTags } from "./acl.ts";
import { S3Reply, element, s3Errors, s3Namespace, xmlHeader } from "./xml.ts";

/** The bucket and key x-amz-copy-source names, decoded. */
export function parseCopySource(header: string): { bucket: string; key: string } {
  const [path = "", query] = header.split("?", 2);
  if (query !== undefined) {
    const versionId = new URLSearchParams(query).get("versionId");
    if (versionId !== null && versionId !== "null") throw s3Errors.notImplemented("CopyObject from a version (objects have one version: null)");
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(path.startsWith("/") ? path.slice(1) : path);
  } catch {
    throw s3Errors.invalidArgument("x-amz-copy-source is not valid percent-encoded UTF-8");
  }
  const slash = decoded.indexOf("/");
  if (slash <= 0 || slash === decoded.length - 1) throw s3Errors.invalidArgument(`Invalid copy source: ${JSON.stringify(header.slice(0, 200))} is not bucket/key`);
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) };
}

/** The source's chunks, in order, decompressed when the mictlanx client stored them compressed. */
async function* sourceBytes(s3: S3Request, ball: BallMetaWire): AsyncGenerator<Uint8Array, Record<string, string>> {
  for (let index = 0; index < ball.numChunks; index += 1) {
    const chunk = await routerCall(s3, "ball.getChunk", { bucket: ball.bucket, objectId: ball.objectId, index }, { bucket: ball.bucket, key: ball.key });
    yield plainChunk(ball, index, chunk.data);
  }
  return {};
}

/** The flexible checksum the source was stored with, computed again over the copy (S3 keeps it). */
function sourceChecksum(ball: BallMetaWire): ChecksumAlgorithm | undefined {
  return checksumAlgorithms.find((algorithm) => ball.tags[`${s3TagPrefix}${algorithm}`] !== undefined);
}

function directiveOf(s3: S3Request): "COPY" | "REPLACE" {
  const directive = (s3.request.headers.get("x-amz-metadata-directive") ?? "COPY").toUpperCase();
  if (directive !== "COPY" && directive !== "REPLACE") throw s3Errors.invalidArgument(`Unknown metadata directive ${directive}: COPY or REPLACE`);
  return directive;
}

export async function copyObject(s3: S3Request): Promise<Response> {
  for (const header of ["x-amz-tagging-directive", "x-amz-tagging", "x-amz-server-side-encryption", "x-amz-copy-source-range", "x-amz-object-lock-mode"]) {
    if (s3.request.headers.has(header)) throw s3Errors.notImplemented(`CopyObject with ${header}`);
  }
  const aclTags = objectAclTags(cannedAclOf(s3.request.headers)); // as S3: the copy is private unless it says otherwise
  const source = parseCopySource(s3.request.headers.get("x-amz-copy-source") ?? "");
  requireGrant({ ...s3, bucket: source.bucket }, "read", "CopyObject's source"); // an anonymous caller stays anonymous
  requireGrant(s3, "write", "CopyObject");
  const directive = directiveOf(s3);
  if (source.bucket === s3.bucket && source.key === s3.key && directive === "COPY") {
    throw new S3Reply("InvalidRequest", 400, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes (send x-amz-metadata-directive: REPLACE)");
  }
  const ball = await statObject(s3, source);
  requireCopySourceConditions(s3, ball, etagOf(ball));
  if (ball.size > limits.s3CopyObjectBytesMax) {
    throw new S3Reply("InvalidRequest", 400, `The specified copy source is larger than the maximum allowable size for a copy source: ${limits.s3CopyObjectBytesMax} (${ball.size} bytes; copy it with UploadPartCopy)`);
  }
  const replace = directive === "REPLACE";
  const tags = { ...(replace ? userMetadata(s3) : Object.fromEntries(Object.entries(ball.tags).filter(([name]) => isMetadataTag(name)))), ...aclTags };
  const contentType = replace ? (s3.request.headers.get("content-type") ?? "") : ball.contentType;
  const asked = replace ? checksumAsked(s3) : undefined;
  const algorithm = asked?.algorithm ?? sourceChecksum(ball);
  if (asked?.value !== undefined) throw s3Errors.invalidArgument(`CopyObject takes x-amz-checksum-algorithm, not a checksum value (${asked.algorithm}): the copy's checksum is computed`);
  await requireBucket(s3);
  const condition = await writeCondition(s3, etagOf);
  const stored = await storeBody(s3, ball.size, tags, {
    body: sourceBytes(s3, ball),
    requestDigests: false,
    contentType,
    checksum: algorithm === undefined ? undefined : { algorithm, value: undefined },
    ...condition,
  });
  const result = `${xmlHeader}<CopyObjectResult xmlns="${s3Namespace}">${element("LastModified", new Date().toISOString())}${element("ETag", `"${stored.etag}"`)}${Object.entries(stored.checksumHeaders).map(([name, value]) => element(`Checksum${name.slice("x-amz-checksum-".length).toUpperCase()}`, value)).join("")}</CopyObjectResult>`;
  return new Response(result, { status: 200, headers: { "Content-Type": "application/xml" } });
}
