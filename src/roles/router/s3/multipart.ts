// S3 multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
// CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads, and the part
// ranges GetObject/HeadObject ?partNumber read. Layout: src/lib/s3-multipart-layout.ts.
//
// Where an upload lives: in the SPM's catalog, as balls of a staging bucket of its own
// (`stagingBucket`, a name S3 cannot create: the underscore), so an upload survives router
// restarts, is seen by every router, and every byte of it goes the way of any other ball's:
//   u/<bucket>/<uploadId>   the upload: an empty ball whose tags hold the object's key, its
//                           x-amz-meta-* and Content-Type (given at Create); createdMs is
//                           when it began, and its lifetime runs from there.
//   p/<uploadId>/<NNNNN>    part NNNNN: a ball written by PutObject's own streaming path
//                           (chunks written as they arrive, rf replicas, fsync before ack),
//                           its MD5 in s3:etag. A part uploaded again replaces the ball, and the
//                           replaced version's chunks go through the catalog's garbage path.
// Complete checks the list (order, ETags, sizes), then copies the parts, in order, through
// the router's read path into one ball at the object's key, computing the sha256 the native
// client checks on every get, and commits it: the object appears whole at once. Then the parts
// are deleted (garbage path) and the upload's record marked completed (a retried Complete
// answers again), until the sweep drops it. Abort and the lifetime sweep delete uploads whole.
// The copy costs a second write of the bytes; in return the object is an ordinary ball (dense
// chunk indices), so the native client, healing, scrub and GC need no change.
import { parseCopySource } from "./copy.ts";
import { createHash, randomUUID } from "node:crypto";
import { z } from "zod";
import { chunkChecksum, checksumHex } from "../../../lib/checksum.ts";
import { defaults } from "../../../lib/defaults.ts";
import { limits } from "../../../lib/limits.ts";
import { assert } from "../../../lib/assert.ts";
import { grantsAllow } from "../../../lib/grants.ts";
import type { BallMetaWire, ChunkRecordWire } from "../../../protocol/ball.ts";
import { requireBucket, requireGrant, routerCall, s3TagPrefix, type S3Request } from "./context.ts";
import { checksumAsked, commit, declaredSize, storeBody, userMetadata } from "./objects.ts";
import { cannedAclOf, objectAclTags } from "./acl.ts";
import { element, errorBody, s3Errors, s3Namespace, s3ReplyFor, S3Reply, xmlHeader } from "./xml.ts";
import { multipartDoneTag, multipartPartKey, multipartPartPrefix, multipartStagingBucket, multipartUploadIdPattern, multipartUploadKey, multipartUploadKeyTag, multipartUploadOf, multipartUploadsPrefix } from "../../../lib/s3-multipart-layout.ts";

/** The bucket uploads and their parts are kept in (not an S3 bucket name: S3 clients never see it). */
export const stagingBucket = multipartStagingBucket;
const uploadKeyTag = multipartUploadKeyTag;
/** A completed multipart object's part sizes, for GetObject/HeadObject ?partNumber (see partSizesText). */
const partsTag = `${s3TagPrefix}parts`;
const etagTag = `${s3TagPrefix}etag`;
const xmlHeaders = { "Content-Type": "application/xml" };
const uploadIdPattern = multipartUploadIdPattern;
const uploadKey = multipartUploadKey;
const partPrefix = multipartPartPrefix;
const partKey = multipartPartKey;

type Caller = Pick<S3Request, "call" | "record">;

function partNumberOf(key: string): number {
  return Number(key.slice(key.lastIndexOf("/") + 1));
}

function noSuchUpload(uploadId: string): S3Reply {
  return new S3Reply("NoSuchUpload", 404, `The specified multipart upload does not exist: ${uploadId} (it was completed, aborted, or is older than ${limits.s3MultipartUploadMsMax / 86_400_000} days)`, { UploadId: uploadId });
}

/** The upload `?uploadId=` names, of this bucket and key, not past its lifetime. */
async function loadUpload(s3: S3Request, completed: "completed too" | "under way" = "under way"): Promise<{ uploadId: string; record: BallMetaWire }> {
  const uploadId = s3.query.get("uploadId") ?? "";
  if (!uploadIdPattern.test(uploadId)) throw noSuchUpload(uploadId);
  let record: BallMetaWire;
  try {
    record = await routerCall(s3, "ball.stat", { bucket: stagingBucket, key: uploadKey(s3.bucket, uploadId) });
  } catch (error) {
    if (error instanceof S3Reply && error.httpStatus === 404) throw noSuchUpload(uploadId);
    throw error;
  }
  if (record.tags[uploadKeyTag] !== s3.key || record.createdMs + limits.s3MultipartUploadMsMax < Date.now()) throw noSuchUpload(uploadId);
  if (record.tags[multipartDoneTag] !== undefined && completed === "under way") throw noSuchUpload(uploadId);
  return { uploadId, record };
}

async function ensureStagingBucket(s3: Caller): Promise<void> {
  try {
    await routerCall(s3, "bucket.create", { bucket: stagingBucket });
  } catch (error) {
    if (!(error instanceof S3Reply) || error.httpStatus !== 409) throw error; // 409: it is there
  }
}

function emptySha256(): string {
  return createHash("sha256").digest("hex");
}

// --- CreateMultipartUpload ----------------------------------------------------------------

export async function createMultipartUpload(s3: S3Request): Promise<Response> {
  requireGrant(s3, "write", "CreateMultipartUpload");
  for (const header of ["x-amz-tagging", "x-amz-server-side-encryption", "x-amz-object-lock-mode"]) {
    if (s3.request.headers.has(header)) throw s3Errors.notImplemented(`CreateMultipartUpload with ${header}`);
  }
  // The object's canned ACL (x-amz-acl) and metadata are given here and kept on the upload's record until Complete.
  const tags = { ...userMetadata(s3), ...objectAclTags(cannedAclOf(s3.request.headers)) };
  checksumAsked(s3); // an algorithm named for the parts is one S3 defines
  const contentType = s3.request.headers.get("content-type") ?? "";
  await requireBucket(s3);
  await ensureStagingBucket(s3);
  const uploadId = randomUUID().replaceAll("-", "");
  await routerCall(s3, "ball.put", {
    bucket: stagingBucket,
    key: uploadKey(s3.bucket, uploadId),
    size: 0,
    checksum: emptySha256(),
    contentType,
    tags: { ...tags, [uploadKeyTag]: s3.key },
    rf: defaults.replicationFactor,
    chunkSize: limits.chunkBytesDefault,
    data: new Uint8Array(0),
  });
  const body = `${xmlHeader}<InitiateMultipartUploadResult xmlns="${s3Namespace}">${element("Bucket", s3.bucket)}${element("Key", s3.key)}${element("UploadId", uploadId)}</InitiateMultipartUploadResult>`;
  return new Response(body, { headers: xmlHeaders });
}

// --- UploadPart ---------------------------------------------------------------------------

function parsePartNumber(text: string | null): number {
  const parsed = z.coerce.number().int().min(1).max(limits.s3MultipartPartsMax).safeParse(text ?? "");
  if (!parsed.success || !/^\d+$/.test(text ?? "")) throw s3Errors.invalidArgument(`Part number must be an integer between 1 and ${limits.s3MultipartPartsMax}, inclusive (got ${text ?? "none"})`);
  return parsed.data;
}

export async function uploadPart(s3: S3Request): Promise<Response> {
  requireGrant(s3, "write", "UploadPart");
  const partNumber = parsePartNumber(s3.query.get("partNumber"));
  const copySource = s3.request.headers.get("x-amz-copy-source");
  if (copySource !== null) return uploadPartCopy(s3, partNumber, copySource);
  // The flexible checksums as PutObject takes them (one hook: what it learns to check, parts check too).
  const checksum = checksumAsked(s3);
  const size = declaredSize(s3);
  if (size > limits.s3MultipartPartBytesMax) throw new S3Reply("EntityTooLarge", 400, `Your proposed upload exceeds the maximum allowed size: a part is at most ${limits.s3MultipartPartBytesMax} bytes, this one ${size}`, { ProposedSize: String(size), MaxSizeAllowed: String(limits.s3MultipartPartBytesMax) });
  const { uploadId } = await loadUpload(s3);
  const key = partKey(uploadId, partNumber);
  const stored = await storeBody({ ...s3, bucket: stagingBucket, key }, size, {}, { checksum });
  await dropIfUploadGone(s3, key);
  return new Response(null, { status: 200, headers: { ETag: `"${stored.etag}"`, ...stored.checksumHeaders } });
}

/**
 * An Abort or Complete that ran while part `key` was arriving has already deleted the upload's
 * parts: this one must not outlive it (NoSuchUpload, and the part deleted).
 */
async function dropIfUploadGone(s3: S3Request, key: string): Promise<void> {
  try {
    await loadUpload(s3);
  } catch (error) {
    // Best effort: the caller is told NoSuchUpload either way. If this delete fails too, the part
    // stays in the staging bucket (its upload record is gone, so the sweep does not see it).
    await routerCall(s3, "ball.delete", { bucket: stagingBucket, key }).catch(() => {});
    throw error;
  }
}

// --- the parts of an upload ---------------------------------------------------------------

/** Part balls of an upload in part-number order, after part `marker`, at most `limit` (undefined: all). */
async function listPartBalls(s3: Caller, uploadId: string, marker: number, limit: number | undefined): Promise<{ parts: BallMetaWire[]; truncated: boolean }> {
  const parts: BallMetaWire[] = [];
  let after: string | undefined = marker > 0 ? partKey(uploadId, marker) : undefined;
  for (;;) {
    const page = await routerCall(s3, "ball.list", { bucket: stagingBucket, prefix: partPrefix(uploadId), limit: limits.listPageMax, ...(after === undefined ? {} : { after }) });
    for (const ball of page.balls) {
      if (limit !== undefined && parts.length === limit) return { parts, truncated: true };
      parts.push(ball);
    }
    if (page.next === undefined) return { parts, truncated: false };
    after = page.next;
  }
}

/** Delete an upload's parts and then the upload (each through the catalog's garbage path). */
async function deleteUpload(s3: Caller, bucket: string, uploadId: string): Promise<void> {
  await deleteParts(s3, uploadId);
  try {
    await routerCall(s3, "ball.delete", { bucket: stagingBucket, key: uploadKey(bucket, uploadId) });
  } catch (error) {
    if (!(error instanceof S3Reply) || error.httpStatus !== 404) throw error; // gone already: another abort won
  }
}

async function deleteParts(s3: Caller, uploadId: string): Promise<void> {
  let after: string | undefined;
  do {
    const batch = await routerCall(s3, "ball.deletePrefix", { bucket: stagingBucket, prefix: partPrefix(uploadId), ...(after === undefined ? {} : { after }) });
    after = batch.next;
  } while (after !== undefined);
}

/** A completed upload: its record says so (and keeps the ETag a retried Complete answers with), its parts go. */
async function markCompleted(s3: S3Request, uploadId: string, record: BallMetaWire, etag: string): Promise<void> {
  await routerCall(s3, "ball.put", { bucket: stagingBucket, key: record.key, size: 0, checksum: emptySha256(), contentType: "", tags: { [uploadKeyTag]: s3.key, [multipartDoneTag]: etag }, rf: record.rf, chunkSize: limits.chunkBytesDefault, data: new Uint8Array(0) });
  await deleteParts(s3, uploadId);
}

// --- AbortMultipartUpload -----------------------------------------------------------------

export async function abortMultipartUpload(s3: S3Request): Promise<Response> {
  // Abort deletes what the key wrote: `write` (S3's own rule) or `delete` suffices.
  if (s3.record !== undefined && !grantsAllow(s3.record.grants, s3.bucket, "delete")) requireGrant(s3, "write", "AbortMultipartUpload");
  const { uploadId } = await loadUpload(s3);
  await deleteUpload(s3, s3.bucket, uploadId);
  return new Response(null, { status: 204 });
}

/**
 * Abort every multipart upload of `bucket` whose key starts with `keyPrefix`, begun before
 * `beforeMs`; how many. For the lifecycle rule AbortIncompleteMultipartUpload, and the
 * lifetime sweep (s3MultipartUploadMsMax).
 */
export async function abortUploadsBefore(s3: Caller, bucket: string | undefined, keyPrefix: string, beforeMs: number): Promise<number> {
  let aborted = 0;
  let after: string | undefined;
  const prefix = multipartUploadsPrefix(bucket);
  do {
    let page;
    try {
      page = await routerCall(s3, "ball.list", { bucket: stagingBucket, prefix, limit: limits.listPageMax, ...(after === undefined ? {} : { after }) });
    } catch (error) {
      if (error instanceof S3Reply && error.s3Code === "NoSuchBucket") return aborted; // no upload was ever made
      throw error;
    }
    for (const record of page.balls) {
      const key = record.tags[uploadKeyTag] ?? "";
      const completedLongAgo = record.tags[multipartDoneTag] !== undefined && record.createdMs < Date.now() - limits.s3CompletedUploadKeepMs;
      if ((record.createdMs >= beforeMs && !completedLongAgo) || !key.startsWith(keyPrefix)) continue;
      const { bucket: owner, uploadId } = multipartUploadOf(record.key);
      await deleteUpload(s3, owner, uploadId);
      aborted += 1;
    }
    after = page.next;
  } while (after !== undefined);
  return aborted;
}

/** Abort the uploads older than `lifetimeMs` every s3MultipartSweepMs (more often for a short lifetime). Returns the stopper. */
export function startMultipartSweep(s3: Caller, lifetimeMs: number, log?: (line: string) => void): () => void {
  assert(lifetimeMs > 0 && lifetimeMs <= limits.s3MultipartUploadMsMax, `a multipart upload lives from 1 ms to ${limits.s3MultipartUploadMsMax} ms`);
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    abortUploadsBefore(s3, undefined, "", Date.now() - lifetimeMs)
      .then((count) => {
        if (count > 0) log?.(`s3: ${count} multipart upload(s) older than ${lifetimeMs} ms aborted`);
      })
      .catch((error: unknown) => log?.(`s3: the multipart sweep failed: ${s3ReplyFor(error).message}`))
      .finally(() => {
        running = false;
      });
  }, Math.max(1, Math.min(limits.s3MultipartSweepMs, Math.floor(lifetimeMs / 4))));
  return () => clearInterval(timer);
}

// --- CompleteMultipartUpload --------------------------------------------------------------

const completeRequest = z.array(z.object({ partNumber: z.number().int().min(1).max(limits.s3MultipartPartsMax), etag: z.string().min(1).max(200) })).min(1).max(limits.s3MultipartPartsMax);

async function readBounded(s3: S3Request, maxBytes: number): Promise<string> {
  const pieces: Uint8Array[] = [];
  let bytes = 0;
  if (s3.request.body) {
    for await (const piece of s3.request.body as AsyncIterable<Uint8Array>) {
      bytes += piece.byteLength;
      if (bytes > maxBytes) throw new S3Reply("MaxMessageLengthExceeded", 400, `A CompleteMultipartUpload body is at most ${maxBytes} bytes`);
      pieces.push(piece);
    }
  }
  return Buffer.concat(pieces).toString("utf8");
}

/** The <Part> list of a CompleteMultipartUpload body (other elements, as checksums, are not needed). */
export function parseCompleteBody(text: string): { partNumber: number; etag: string }[] {
  const parts: { partNumber: number; etag: string }[] = [];
  for (const match of text.matchAll(/<Part>([\s\S]*?)<\/Part>/g)) {
    const inner = match[1] ?? "";
    const number = /<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(inner)?.[1];
    const etag = /<ETag>([\s\S]*?)<\/ETag>/.exec(inner)?.[1];
    if (number === undefined || etag === undefined) throw new S3Reply("MalformedXML", 400, "Each <Part> of CompleteMultipartUpload needs a <PartNumber> and an <ETag>");
    parts.push({ partNumber: Number(number), etag: normalEtag(etag) });
  }
  const parsed = completeRequest.safeParse(parts);
  if (!parsed.success) throw new S3Reply("MalformedXML", 400, `The CompleteMultipartUpload body must list from 1 to ${limits.s3MultipartPartsMax} <Part> elements with part numbers 1..${limits.s3MultipartPartsMax}`);
  return parsed.data;
}

function normalEtag(text: string): string {
  return text.replaceAll("&quot;", "").replaceAll('"', "").trim().toLowerCase();
}

/** The stored parts the list names, checked as S3 checks them; the object's size. */
export function checkParts(asked: { partNumber: number; etag: string }[], stored: Map<number, BallMetaWire>): { parts: BallMetaWire[]; size: number } {
  const parts: BallMetaWire[] = [];
  let size = 0;
  asked.forEach((part, position) => {
    const previous = asked[position - 1];
    if (previous !== undefined && part.partNumber <= previous.partNumber) throw new S3Reply("InvalidPartOrder", 400, `The list of parts was not in ascending order: part ${part.partNumber} follows part ${previous.partNumber}`);
  });
  asked.forEach((part, position) => {
    const ball = stored.get(part.partNumber);
    if (ball === undefined || ball.tags[etagTag] !== part.etag) throw new S3Reply("InvalidPart", 400, `One or more of the specified parts could not be found or its ETag did not match: part ${part.partNumber} ("${part.etag}")`, { PartNumber: String(part.partNumber), ETag: part.etag });
    if (position < asked.length - 1 && ball.size < limits.s3MultipartPartBytesMin) throw new S3Reply("EntityTooSmall", 400, `Your proposed upload is smaller than the minimum allowed size: part ${part.partNumber} is ${ball.size} bytes; every part but the last must be at least ${limits.s3MultipartPartBytesMin}`, { PartNumber: String(part.partNumber), ProposedSize: String(ball.size), MinSizeAllowed: String(limits.s3MultipartPartBytesMin) });
    parts.push(ball);
    size += ball.size;
  });
  return { parts, size };
}

/** S3's multipart ETag: the MD5 of the parts' binary MD5s, then -N. */
export function multipartEtag(partEtags: readonly string[]): string {
  const md5 = createHash("md5");
  for (const etag of partEtags) md5.update(Buffer.from(etag, "hex"));
  return `${md5.digest("hex")}-${partEtags.length}`;
}

/** The largest object Complete makes: the catalog's chunk count at multipart's chunk size. */
export const multipartObjectBytesMax = limits.ballChunksMax * limits.chunkBytesMax;

export async function completeMultipartUpload(s3: S3Request): Promise<Response> {
  requireGrant(s3, "write", "CompleteMultipartUpload");
  const { uploadId, record } = await loadUpload(s3, "completed too");
  const asked = parseCompleteBody(await readBounded(s3, limits.s3CompleteBodyBytesMax));
  const done = record.tags[multipartDoneTag];
  if (done !== undefined) {
    // A retry of a Complete that succeeded (its reply was lost): the same list is the same object.
    if (multipartEtag(asked.map((part) => part.etag)) !== done) throw noSuchUpload(uploadId);
    return new Response(`${xmlHeader}${completeResult(s3, done)}`, { headers: xmlHeaders });
  }
  const stored = new Map((await listPartBalls(s3, uploadId, 0, undefined)).parts.map((ball) => [partNumberOf(ball.key), ball] as const));
  const { parts, size } = checkParts(asked, stored);
  if (size > multipartObjectBytesMax) throw new S3Reply("EntityTooLarge", 400, `The object would be ${size} bytes; the largest this VSS holds is ${multipartObjectBytesMax}`, { ProposedSize: String(size), MaxSizeAllowed: String(multipartObjectBytesMax) });
  const etag = multipartEtag(parts.map((ball) => ball.tags[etagTag] ?? ""));
  const encoder = new TextEncoder();
  // 200 at once, spaces while the parts are copied, then the result or an <Error> (as S3 does).
  let timer: ReturnType<typeof setInterval> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start: (controller) => {
      // The client may hang up mid-copy (the copy still completes): nothing sent after that may throw.
      const send = (text: string) => {
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          clearInterval(timer);
        }
      };
      send(xmlHeader);
      timer = setInterval(() => send(" "), limits.s3CompleteKeepaliveMs);
      assembleObject(s3, record, parts, size, etag)
        .then(() => markCompleted(s3, uploadId, record, etag).catch(() => {})) // else the sweep deletes the parts
        .then(() => completeResult(s3, etag))
        .catch((error: unknown) => errorBody(s3ReplyFor(error, { bucket: s3.bucket }), s3.url.pathname, randomUUID()).slice(xmlHeader.length))
        .then((text) => {
          clearInterval(timer);
          send(text);
          try {
            controller.close();
          } catch {
            // cancelled by the client: there is no one to tell
          }
        });
    },
    cancel: () => clearInterval(timer),
  });
  // Chunked: sent as it comes (the listener would otherwise wait for the whole reply to give its length).
  return new Response(body, { status: 200, headers: { ...xmlHeaders, "Transfer-Encoding": "chunked" } });
}

function completeResult(s3: S3Request, etag: string): string {
  return `<CompleteMultipartUploadResult xmlns="${s3Namespace}">${element("Location", `${s3.url.origin}/${s3.bucket}/${s3.key}`)}${element("Bucket", s3.bucket)}${element("Key", s3.key)}${element("ETag", `"${etag}"`)}</CompleteMultipartUploadResult>`;
}

/**
 * The parts' bytes in order, read through the router's read path (each chunk checked there),
 * s3CompleteReadAheadChunks chunks at a time so the copy is not one round trip per chunk.
 */
async function* partBytes(s3: S3Request, parts: readonly BallMetaWire[]): AsyncGenerator<Uint8Array> {
  const reads = (function* () {
    for (const part of parts) {
      for (let index = 0; index < part.numChunks; index += 1) yield () => routerCall(s3, "ball.getChunk", { bucket: stagingBucket, objectId: part.objectId, index });
    }
  })();
  const queue: Promise<{ data: Uint8Array }>[] = [];
  const refill = () => {
    while (queue.length < limits.s3CompleteReadAheadChunks) {
      const next = reads.next();
      if (next.done) return;
      const read = next.value();
      read.catch(() => {}); // awaited in turn below; a failure ahead of its turn is not unhandled
      queue.push(read);
    }
  };
  refill();
  for (let read = queue.shift(); read !== undefined; read = queue.shift()) {
    const chunk = await read;
    refill();
    yield chunk.data;
  }
}

/** Write the parts as one ball at the upload's key, and commit it: the object appears whole. */
async function assembleObject(s3: S3Request, record: BallMetaWire, parts: readonly BallMetaWire[], size: number, etag: string): Promise<void> {
  const sizesText = partSizesText(parts.map((part) => part.size));
  const tags: Record<string, string> = { ...record.tags, [etagTag]: etag, ...(sizesText === undefined ? {} : { [partsTag]: sizesText }) };
  delete tags[uploadKeyTag];
  // The largest chunk: the catalog's chunk count then bounds the object least.
  await writeBall(s3, { bucket: s3.bucket, key: s3.key }, size, limits.chunkBytesMax, partBytes(s3, parts), () => ({ contentType: record.contentType, tags }));
}

/**
 * Write `size` bytes from `source` as the ball `target`, `chunkSize` at a time as they come
 * (one chunk's buffer in memory), and commit it with the metadata `describe` gives from the
 * bytes' MD5. On a failure the upload is given up (its chunks deleted). Returns the MD5 (hex).
 */
async function writeBall(s3: S3Request, target: { bucket: string; key: string }, size: number, chunkSize: number, source: AsyncIterable<Uint8Array>, describe: (md5Hex: string) => { contentType: string; tags: Record<string, string> }): Promise<string> {
  const { bucket, key } = target;
  const rf = defaults.replicationFactor;
  const sha256 = createHash("sha256");
  const md5 = createHash("md5");
  const records: ChunkRecordWire[] = [];
  let objectId: string | undefined;
  let buffer = new Uint8Array(Math.min(chunkSize, Math.max(size, 1)));
  let filled = 0;
  let written = 0;
  const flush = async () => {
    objectId ??= (await routerCall(s3, "ball.begin", { bucket, key, rf, chunkBytes: chunkSize }, { bucket })).objectId;
    const data = buffer.subarray(0, filled);
    records.push(await routerCall(s3, "ball.putChunk", { bucket, key, objectId, index: records.length, rf, data, checksum: checksumHex(chunkChecksum(data)), chunksHint: Math.ceil(size / chunkSize) }, { bucket }));
    written += filled;
    buffer = new Uint8Array(Math.min(chunkSize, Math.max(size - written, 1)));
    filled = 0;
  };
  try {
    for await (const piece of source) {
      assert(written + filled + piece.byteLength <= size, "the source holds no more bytes than its size says");
      sha256.update(piece);
      md5.update(piece);
      for (let at = 0; at < piece.byteLength; ) {
        const take = Math.min(piece.byteLength - at, chunkSize - filled);
        buffer.set(piece.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === chunkSize && written + filled < size) await flush();
      }
    }
    assert(written + filled === size, "the source holds the bytes its size says");
    const md5Hex = md5.digest("hex");
    const declaration = { bucket, key, size, checksum: sha256.digest("hex"), ...describe(md5Hex), rf, chunkSize };
    if (objectId === undefined) {
      await routerCall(s3, "ball.put", { ...declaration, data: buffer.subarray(0, filled) }, { bucket });
      return md5Hex;
    }
    if (filled > 0) await flush();
    await commit({ ...s3, bucket, key }, objectId, declaration, records);
    return md5Hex;
  } catch (error) {
    if (objectId !== undefined) await routerCall(s3, "ball.abandon", { bucket, key, objectId }).catch(() => {}); // its chunks go now; else at expiry
    throw error;
  }
}

// --- UploadPartCopy -----------------------------------------------------------------------


/** x-amz-copy-source-range: "bytes=first-last", both given, within the source (S3 takes no other form). */
function copyRangeOf(header: string | null, size: number): { start: number; end: number } {
  if (header === null) return { start: 0, end: size - 1 };
  const match = /^bytes=(\d+)-(\d+)$/.exec(header.trim());
  if (!match) throw s3Errors.invalidArgument(`x-amz-copy-source-range must be bytes=first-last, got ${header}`);
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start || end >= size) throw new S3Reply("InvalidRange", 416, `The x-amz-copy-source-range ${header} is not within the source's ${size} bytes`, { RangeRequested: header, ActualObjectSize: String(size) });
  return { start, end };
}

/** Bytes start..end of a stored ball (its chunks chunkSize each but the last), read through the router. */
async function* ballBytes(s3: S3Request, ball: BallMetaWire, start: number, end: number): AsyncGenerator<Uint8Array> {
  if (end < start) return;
  for (let index = Math.floor(start / ball.chunkSize); index <= Math.floor(end / ball.chunkSize); index += 1) {
    const chunk = await routerCall(s3, "ball.getChunk", { bucket: ball.bucket, objectId: ball.objectId, index }, { bucket: ball.bucket, key: ball.key });
    const offset = index * ball.chunkSize;
    yield chunk.data.subarray(Math.max(start - offset, 0), Math.min(end - offset + 1, chunk.data.byteLength));
  }
}

async function uploadPartCopy(s3: S3Request, partNumber: number, header: string): Promise<Response> {
  for (const name of ["x-amz-copy-source-if-match", "x-amz-copy-source-if-none-match", "x-amz-copy-source-if-modified-since", "x-amz-copy-source-if-unmodified-since"]) {
    if (s3.request.headers.has(name)) throw s3Errors.notImplemented(`UploadPartCopy with ${name}`);
  }
  const source = parseCopySource(header);
  requireGrant({ record: s3.record, bucket: source.bucket }, "read", "UploadPartCopy (of its source)");
  const { uploadId } = await loadUpload(s3);
  const ball = await routerCall(s3, "ball.stat", source, source);
  if (ball.tags.encryption !== undefined || ball.tags.compression !== undefined) throw new S3Reply("InvalidRequest", 400, `${source.bucket}/${source.key} was stored encrypted or compressed by the mictlanx client; the gateway cannot copy it`);
  const range = copyRangeOf(s3.request.headers.get("x-amz-copy-source-range"), ball.size);
  const size = range.end - range.start + 1;
  if (size > limits.s3MultipartPartBytesMax) throw new S3Reply("EntityTooLarge", 400, `a part is at most ${limits.s3MultipartPartBytesMax} bytes; the copy's range is ${size} (give x-amz-copy-source-range)`);
  const key = partKey(uploadId, partNumber);
  const etag = await writeBall(s3, { bucket: stagingBucket, key }, size, limits.chunkBytesDefault, ballBytes(s3, ball, range.start, range.end), (md5Hex) => ({ contentType: "", tags: { [etagTag]: md5Hex } }));
  await dropIfUploadGone(s3, key);
  const body = `${xmlHeader}<CopyPartResult xmlns="${s3Namespace}">${element("ETag", `"${etag}"`)}${element("LastModified", new Date().toISOString())}</CopyPartResult>`;
  return new Response(body, { headers: xmlHeaders });
}

// --- GetObject and HeadObject ?partNumber -------------------------------------------------

/**
 * Part sizes in a tag value: "COUNTxSIZE+LAST" when every part but the last has one size (what
 * every SDK uploads), else the sizes joined by commas; undefined when that is longer than a tag
 * may be (then ?partNumber is NotImplemented for that object).
 */
export function partSizesText(sizes: readonly number[]): string | undefined {
  const first = sizes[0];
  const last = sizes.at(-1);
  assert(first !== undefined && last !== undefined, "a multipart object has a part");
  if (sizes.slice(0, -1).every((size) => size === first)) return `${sizes.length}x${first}+${last}`;
  const text = sizes.join(",");
  return text.length <= limits.tagBytesMax ? text : undefined;
}

export function parsePartSizes(text: string): number[] {
  const uniform = /^(\d+)x(\d+)\+(\d+)$/.exec(text);
  if (uniform) return [...Array<number>(Number(uniform[1]) - 1).fill(Number(uniform[2])), Number(uniform[3])];
  return text.split(",").map(Number);
}

/** The byte range of part `?partNumber=` of a ball, and how many parts it has (a ball not made by multipart is one part). */
export function partRange(s3: S3Request, ball: Pick<BallMetaWire, "size" | "tags">): { start: number; end: number; count?: number } {
  const partNumber = parsePartNumber(s3.query.get("partNumber"));
  const text = ball.tags[partsTag];
  const sizes = text === undefined ? (ball.tags[etagTag]?.includes("-") ? undefined : [ball.size]) : parsePartSizes(text);
  if (sizes === undefined) throw s3Errors.notImplemented("?partNumber of a multipart object of more than a tag's worth of differently sized parts");
  const size = sizes[partNumber - 1];
  if (size === undefined) throw new S3Reply("InvalidPartNumber", 416, `The requested partnumber is not satisfiable: the object has ${sizes.length} part(s), not ${partNumber}`, { PartNumberRequested: String(partNumber), ActualPartCount: String(sizes.length) });
  const start = sizes.slice(0, partNumber - 1).reduce((sum, each) => sum + each, 0);
  return { start, end: start + size - 1, ...(text === undefined ? {} : { count: sizes.length }) }; // S3 counts parts of multipart objects only
}

// --- ListParts ----------------------------------------------------------------------------

function maxOf(s3: S3Request, name: string): number {
  const text = s3.query.get(name);
  if (text === null) return limits.s3ListPartsMax;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) throw s3Errors.invalidArgument(`${name} must be a whole number, got ${text}`);
  return Math.min(value, limits.s3ListPartsMax);
}

function owner(s3: S3Request, element_: "Owner" | "Initiator"): string {
  const id = s3.record?.accessKey ?? "anonymous";
  return `<${element_}>${element("ID", id)}${element("DisplayName", id)}</${element_}>`;
}

export async function listParts(s3: S3Request): Promise<Response> {
  requireGrant(s3, "list", "ListParts");
  const { uploadId } = await loadUpload(s3);
  const maxParts = maxOf(s3, "max-parts");
  const markerText = s3.query.get("part-number-marker") ?? "0";
  const marker = Number(markerText);
  if (!/^\d+$/.test(markerText) || marker > limits.s3MultipartPartsMax) throw s3Errors.invalidArgument(`part-number-marker must be a part number, got ${markerText}`);
  const { parts, truncated } = maxParts === 0 ? { parts: [], truncated: false } : await listPartBalls(s3, uploadId, marker, maxParts);
  const last = parts.at(-1);
  const items = parts
    .map((ball) => `<Part>${element("PartNumber", partNumberOf(ball.key))}${element("LastModified", new Date(ball.createdMs).toISOString())}${element("ETag", `"${ball.tags[etagTag] ?? ""}"`)}${element("Size", ball.size)}</Part>`)
    .join("");
  const body =
    `${xmlHeader}<ListPartsResult xmlns="${s3Namespace}">${element("Bucket", s3.bucket)}${element("Key", s3.key)}${element("UploadId", uploadId)}` +
    `${owner(s3, "Initiator")}${owner(s3, "Owner")}${element("StorageClass", "STANDARD")}${element("PartNumberMarker", marker)}` +
    `${element("NextPartNumberMarker", last === undefined ? marker : partNumberOf(last.key))}${element("MaxParts", maxParts)}${element("IsTruncated", truncated)}${items}</ListPartsResult>`;
  return new Response(body, { headers: xmlHeaders });
}

// --- ListMultipartUploads -----------------------------------------------------------------

interface UploadEntry {
  key: string;
  uploadId: string;
  createdMs: number;
}

/** The bucket's live uploads, by key then upload id (the catalog keeps them by upload id: sorted here, bounded). */
async function uploadsOf(s3: S3Request): Promise<UploadEntry[]> {
  const found: UploadEntry[] = [];
  const oldestMs = Date.now() - limits.s3MultipartUploadMsMax;
  let after: string | undefined;
  do {
    let page;
    try {
      page = await routerCall(s3, "ball.list", { bucket: stagingBucket, prefix: multipartUploadsPrefix(s3.bucket), limit: limits.listPageMax, ...(after === undefined ? {} : { after }) });
    } catch (error) {
      if (error instanceof S3Reply && error.s3Code === "NoSuchBucket") return []; // no upload was ever made
      throw error;
    }
    for (const record of page.balls) {
      const key = record.tags[uploadKeyTag];
      if (key !== undefined && record.createdMs >= oldestMs && record.tags[multipartDoneTag] === undefined) found.push({ key, uploadId: record.key.slice(record.key.lastIndexOf("/") + 1), createdMs: record.createdMs });
    }
    if (found.length > limits.s3ListUploadsScanMax) throw new S3Reply("ServiceUnavailable", 503, `bucket ${s3.bucket} has more than ${limits.s3ListUploadsScanMax} multipart uploads under way; complete or abort some`);
    after = page.next;
  } while (after !== undefined);
  const bytes = (text: string) => Buffer.from(text, "utf8");
  return found.sort((a, b) => Buffer.compare(bytes(a.key), bytes(b.key)) || (a.uploadId < b.uploadId ? -1 : a.uploadId > b.uploadId ? 1 : 0));
}

export async function listMultipartUploads(s3: S3Request): Promise<Response> {
  requireGrant(s3, "list", "ListMultipartUploads");
  await requireBucket(s3);
  const prefix = s3.query.get("prefix") ?? "";
  const delimiter = s3.query.get("delimiter") ?? "";
  const keyMarker = s3.query.get("key-marker") ?? "";
  const uploadIdMarker = s3.query.get("upload-id-marker") ?? "";
  const maxUploads = maxOf(s3, "max-uploads");
  const encode = s3.query.get("encoding-type") === "url";
  const show = (text: string) => (encode ? encodeURIComponent(text).replaceAll("%2F", "/") : text);
  const after = (entry: UploadEntry) => {
    if (keyMarker === "") return true;
    const order = Buffer.compare(Buffer.from(entry.key), Buffer.from(keyMarker));
    return order > 0 || (order === 0 && uploadIdMarker !== "" && entry.uploadId > uploadIdMarker);
  };
  const uploads: UploadEntry[] = [];
  const prefixes: string[] = [];
  let truncated = false;
  let last: { key: string; uploadId: string } | undefined;
  for (const entry of await uploadsOf(s3)) {
    if (!entry.key.startsWith(prefix) || !after(entry)) continue;
    const cut = delimiter === "" ? -1 : entry.key.indexOf(delimiter, prefix.length);
    const common = cut < 0 ? undefined : entry.key.slice(0, cut + delimiter.length);
    if (common !== undefined && prefixes.at(-1) === common) continue;
    if (uploads.length + prefixes.length === maxUploads) {
      truncated = true;
      break;
    }
    if (common !== undefined) prefixes.push(common);
    else uploads.push(entry);
    last = common !== undefined ? { key: common, uploadId: "" } : entry;
  }
  const items = uploads
    .map((entry) => `<Upload>${element("Key", show(entry.key))}${element("UploadId", entry.uploadId)}${owner(s3, "Initiator")}${owner(s3, "Owner")}${element("StorageClass", "STANDARD")}${element("Initiated", new Date(entry.createdMs).toISOString())}</Upload>`)
    .join("");
  const common = prefixes.map((text) => `<CommonPrefixes>${element("Prefix", show(text))}</CommonPrefixes>`).join("");
  const next = truncated && last !== undefined ? `${element("NextKeyMarker", show(last.key))}${element("NextUploadIdMarker", last.uploadId)}` : "";
  const body =
    `${xmlHeader}<ListMultipartUploadsResult xmlns="${s3Namespace}">${element("Bucket", s3.bucket)}${element("KeyMarker", show(keyMarker))}${element("UploadIdMarker", uploadIdMarker)}` +
    `${next}${element("Prefix", show(prefix))}${delimiter === "" ? "" : element("Delimiter", show(delimiter))}${element("MaxUploads", maxUploads)}${element("IsTruncated", truncated)}${encode ? element("EncodingType", "url") : ""}${items}${common}</ListMultipartUploadsResult>`;
  return new Response(body, { headers: xmlHeaders });
}

/** The multipart operation a request is, or undefined when it is none (gateway.ts's route asks first). */
export function multipartRoute(s3: S3Request): Promise<Response> | undefined {
  const method = s3.request.method;
  const query = s3.query;
  if (s3.key === "") return method === "GET" && query.has("uploads") ? listMultipartUploads(s3) : undefined;
  if (query.has("partNumber") && !query.has("uploadId") && method !== "GET" && method !== "HEAD") throw s3Errors.notImplemented(`${method} with ?partNumber and no ?uploadId`);
  if (method === "POST" && query.has("uploads")) return createMultipartUpload(s3);
  if (!query.has("uploadId")) return undefined;
  if (method === "PUT" && query.has("partNumber")) return uploadPart(s3);
  if (method === "POST") return completeMultipartUpload(s3);
  if (method === "DELETE") return abortMultipartUpload(s3);
  if (method === "GET") return listParts(s3);
  return undefined;
}
