// PutObject, GetObject, HeadObject, DeleteObject over the router's own write and read paths.
// A put streams: the body is cut into chunks as it arrives and each is written to its replicas;
// only when the whole body is in and checked (its signature or chunk signatures, its sha256,
// Content-MD5, its flexible checksum: src/s3/checksums.ts) is the ball committed, so a bad body
// leaves nothing visible (its chunks are abandoned). The ETag is the body's MD5, kept in the
// ball's `s3:etag` tag. CopyObject (copy.ts) writes through the same storeBody.
import { createHash } from "node:crypto";
import { ChunkSignatureVerifier } from "../../../s3/chunked.ts";
import { checksumAlgorithmOf, checksumAlgorithms, checksumDigestBytes, checksumHeader, createChecksum, type ChecksumAlgorithm } from "../../../s3/checksums.ts";
import { compression, decompressChunk } from "../../../lib/compress.ts";
import { chunkChecksum, checksumHex } from "../../../lib/checksum.ts";
import { limits } from "../../../lib/limits.ts";
import { defaults } from "../../../lib/defaults.ts";
import { assert } from "../../../lib/assert.ts";
import type { BallMetaWire, ChunkRecordWire } from "../../../protocol/ball.ts";
import { bucketExists, requireBucket, requireGrant, routerCall, s3TagPrefix, utf8HeaderValue, type S3Request } from "./context.ts";
import { S3Reply, s3Errors } from "./xml.ts";
import { evaluateConditions, readConditions, writeCondition } from "./conditions.ts";

/** The `compression` tag of a ball the mictlanx client put compressed (src/lib/compress.ts). */
const compressionTag = compression.tag;
import { cannedAclOf, objectAclTags } from "./acl.ts";
import { partRange } from "./multipart.ts";

const etagTag = `${s3TagPrefix}etag`;
/** The checksum a put was sent with, per algorithm: `s3:crc32`, `s3:crc32c`, … (base64, as S3 returns it). */
const checksumTag = (algorithm: ChecksumAlgorithm) => `${s3TagPrefix}${algorithm}`;
const metaTagPrefix = `${s3TagPrefix}meta:`;
/** The HTTP headers S3 keeps with an object and returns as they were sent, each in an `s3:h:<name>` tag. */
const storedHeaders = ["content-encoding", "content-disposition", "cache-control", "expires", "content-language"] as const;
const headerTag = (name: string) => `${s3TagPrefix}h:${name}`;
/** Tags that are the object's metadata (what CopyObject's COPY directive carries over). */
export const isMetadataTag = (name: string) => name.startsWith(metaTagPrefix) || name.startsWith(`${s3TagPrefix}h:`);
const amzMetaPrefix = "x-amz-meta-";
/** What S3 answers as the Content-Type of an object stored without one. */
const defaultContentType = "binary/octet-stream";

/** A put's body as payload bytes, checked by its framing (aws-chunked) as it goes. */
export async function* payloadOf(s3: S3Request): AsyncGenerator<Uint8Array, Record<string, string>> {
  const body = s3.request.body;
  const chunked = s3.verified?.payload.startsWith("streaming-") ? new ChunkSignatureVerifier(s3.verified) : undefined;
  if (body) {
    for await (const piece of body as AsyncIterable<Uint8Array>) {
      if (chunked) yield* chunked.push(piece);
      else yield piece;
    }
  }
  return chunked ? chunked.end().trailers : {};
}

export function declaredSize(s3: S3Request): number {
  const decoded = s3.verified?.decodedContentLength;
  if (decoded !== undefined) return decoded;
  const length = s3.request.headers.get("content-length");
  if (length === null) throw new S3Reply("MissingContentLength", 411, "You must provide the Content-Length HTTP header (or x-amz-decoded-content-length with an aws-chunked body)");
  const size = Number(length);
  if (!Number.isSafeInteger(size) || size < 0) throw s3Errors.invalidArgument(`Content-Length ${length} is not a byte count`);
  return size;
}

/** x-amz-meta-* and the headers S3 keeps (Content-Encoding, …), refused before any byte is stored when too many. */
export function userMetadata(s3: S3Request): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [name, value] of s3.request.headers) {
    if (name.startsWith(amzMetaPrefix)) tags[`${metaTagPrefix}${name.slice(amzMetaPrefix.length)}`] = utf8HeaderValue(value);
  }
  for (const name of storedHeaders) {
    const value = s3.request.headers.get(name);
    if (value !== null) tags[headerTag(name)] = utf8HeaderValue(value);
  }
  // The gateway's own tags beside them: the ETag, the checksum and the canned ACL.
  if (Object.keys(tags).length > limits.tagCountMax - 3) throw new S3Reply("MetadataTooLarge", 400, `at most ${limits.tagCountMax - 3} x-amz-meta-* and Content-Encoding/-Disposition/-Language, Cache-Control, Expires headers are kept with an object`);
  return tags;
}

/** A flexible checksum a put asks for, and the value it sent (a header's now, a trailer's at the end). */
export interface ChecksumAsked {
  algorithm: ChecksumAlgorithm;
  value: string | undefined;
}

/**
 * The flexible checksum a put asks for: x-amz-checksum-<alg> as a header or an announced
 * trailer, or x-amz-sdk-checksum-algorithm alone. Two algorithms at once are refused, as S3 does.
 */
export function checksumAsked(s3: S3Request): ChecksumAsked | undefined {
  const named = new Set<ChecksumAlgorithm>();
  let value: string | undefined;
  // x-amz-checksum-algorithm is how CopyObject (and CreateMultipartUpload) name one; a put says x-amz-sdk-checksum-algorithm.
  for (const header of ["x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"]) {
    const declared = s3.request.headers.get(header);
    if (declared === null) continue;
    const algorithm = checksumAlgorithmOf(declared);
    if (algorithm === undefined) throw s3Errors.invalidArgument(`${header} ${declared} is not one of ${checksumAlgorithms.join(", ").toUpperCase()}`);
    named.add(algorithm);
  }
  for (const name of [...s3.request.headers.keys(), ...(s3.verified?.trailerNames ?? [])]) {
    if (!name.startsWith("x-amz-checksum-") || ["x-amz-checksum-type", "x-amz-checksum-mode", "x-amz-checksum-algorithm"].includes(name)) continue;
    const algorithm = checksumAlgorithmOf(name.slice("x-amz-checksum-".length));
    if (algorithm === undefined) throw s3Errors.invalidArgument(`${name} is not a checksum S3 defines (${checksumAlgorithms.map(checksumHeader).join(", ")})`);
    named.add(algorithm);
    value = s3.request.headers.get(name) ?? value;
  }
  if (named.size > 1) throw new S3Reply("InvalidRequest", 400, `Expecting a single x-amz-checksum- header; the request names ${[...named].join(" and ")}`);
  const [algorithm] = named;
  if (algorithm === undefined) return undefined;
  if (value !== undefined) checkChecksumShape(algorithm, value);
  return { algorithm, value };
}

function checkChecksumShape(algorithm: ChecksumAlgorithm, value: string): void {
  if (Buffer.from(value, "base64").byteLength !== checksumDigestBytes[algorithm]) {
    throw new S3Reply("InvalidRequest", 400, `Value for ${checksumHeader(algorithm)} is invalid: ${JSON.stringify(value.slice(0, 100))} is not ${checksumDigestBytes[algorithm]} bytes in base64`);
  }
}

export async function putObject(s3: S3Request): Promise<Response> {
  requireGrant(s3, "write", "PutObject");
  for (const header of ["x-amz-tagging", "x-amz-server-side-encryption", "x-amz-object-lock-mode"]) {
    if (s3.request.headers.has(header)) throw s3Errors.notImplemented(`PutObject with ${header}`);
  }
  const aclTags = objectAclTags(cannedAclOf(s3.request.headers));
  const size = declaredSize(s3);
  if (size > limits.s3PutObjectBytesMax) throw new S3Reply("EntityTooLarge", 400, `Your proposed upload exceeds the maximum allowed size: ${size} bytes, over ${limits.s3PutObjectBytesMax} for one PutObject`, { ProposedSize: String(size), MaxSizeAllowed: String(limits.s3PutObjectBytesMax) });
  const tags = { ...userMetadata(s3), ...aclTags };
  const checksum = checksumAsked(s3);
  await requireBucket(s3);
  const condition = await writeCondition(s3, (ball) => etagOf(ball));
  const stored = await storeBody(s3, size, tags, { checksum, ...condition });
  return new Response(null, { status: 200, headers: { ETag: `"${stored.etag}"`, ...stored.checksumHeaders } });
}

/** How a body is stored: where its bytes come from, what it must match, and the commit's precondition. */
export interface StoreOptions {
  /** The bytes (default: the request's body, unframed); its return value is the trailers. */
  body?: AsyncGenerator<Uint8Array, Record<string, string>>;
  /** Check the body against the request's own digests (signed sha256, Content-MD5, checksum): not for a copy's source bytes. */
  requestDigests?: boolean;
  checksum?: ChecksumAsked | undefined;
  contentType?: string;
  /** Commit only when the key holds no ball (If-None-Match: *). */
  ifAbsent?: boolean;
  /** Commit only when the key still holds this version (If-Match): checked in the SPM's commit transaction. */
  expectedObjectId?: string;
}

interface Stored {
  etag: string;
  /** x-amz-checksum-<alg> for the reply, when a checksum was asked for. */
  checksumHeaders: Record<string, string>;
}

export async function storeBody(s3: S3Request, size: number, tags: Record<string, string>, options: StoreOptions = {}): Promise<Stored> {
  const { bucket, key } = s3;
  const rf = defaults.replicationFactor;
  const chunkSize = limits.chunkBytesDefault;
  const md5 = createHash("md5");
  const sha256 = createHash("sha256");
  const flexible = options.checksum ? createChecksum(options.checksum.algorithm) : undefined;
  let buffer = new Uint8Array(Math.min(chunkSize, Math.max(size, 1)));
  let filled = 0;
  let received = 0;
  /** Bytes handed to chunks already written. */
  let flushed = 0;
  let objectId: string | undefined;
  const records: ChunkRecordWire[] = [];
  const precondition = { ...(options.ifAbsent ? { ifAbsent: true } : {}), ...(options.expectedObjectId === undefined ? {} : { expectedObjectId: options.expectedObjectId }) };
  const flush = async () => {
    if (objectId === undefined) objectId = (await routerCall(s3, "ball.begin", { bucket, key, rf, chunkBytes: chunkSize, ...(options.ifAbsent ? { ifAbsent: true } : {}) }, { bucket })).objectId;
    const data = buffer.subarray(0, filled);
    records.push(await routerCall(s3, "ball.putChunk", { bucket, key, objectId, index: records.length, rf, data, checksum: checksumHex(chunkChecksum(data)), chunksHint: Math.ceil(size / chunkSize) }, { bucket }));
    flushed += filled;
    buffer = new Uint8Array(Math.min(chunkSize, Math.max(size - flushed, 1)));
    filled = 0;
  };
  try {
    const body = options.body ?? payloadOf(s3);
    let next = await body.next();
    while (!next.done) {
      const piece = next.value;
      received += piece.byteLength;
      if (received > size) throw new S3Reply("IncompleteBody", 400, `The body is longer than the ${size} bytes its length said`);
      md5.update(piece);
      sha256.update(piece);
      flexible?.update(piece);
      for (let at = 0; at < piece.byteLength; ) {
        const take = Math.min(piece.byteLength - at, chunkSize - filled);
        buffer.set(piece.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === chunkSize && flushed + filled < size) await flush();
      }
      next = await body.next();
    }
    if (received !== size) throw new S3Reply("IncompleteBody", 400, `You did not provide the number of bytes specified by the Content-Length HTTP header: ${received} of ${size}`);
    const shaHex = sha256.digest("hex");
    const md5Bytes = md5.digest();
    const flexibleValue = flexible?.digestBase64();
    if (options.requestDigests !== false) checkDigests(s3, { shaHex, md5Base64: md5Bytes.toString("base64"), trailers: next.value });
    if (options.checksum && flexibleValue !== undefined) checkFlexible(options.checksum, flexibleValue, next.value);
    const etag = md5Bytes.toString("hex");
    const checksumTags = options.checksum && flexibleValue !== undefined ? { [checksumTag(options.checksum.algorithm)]: flexibleValue } : {};
    const allTags = { ...tags, [etagTag]: etag, ...checksumTags };
    const declaration = { bucket, key, size, checksum: shaHex, contentType: options.contentType ?? contentTypeOf(s3), tags: allTags, rf, chunkSize, ...precondition };
    try {
      if (objectId === undefined) {
        await routerCall(s3, "ball.put", { ...declaration, data: buffer.subarray(0, filled) }, { bucket });
      } else {
        if (filled > 0) await flush();
        await commit(s3, objectId, declaration, records);
      }
    } catch (error) {
      throw preconditionFailed(error, options);
    }
    return { etag, checksumHeaders: options.checksum && flexibleValue !== undefined ? { [checksumHeader(options.checksum.algorithm)]: flexibleValue } : {} };
  } catch (error) {
    if (objectId !== undefined) await routerCall(s3, "ball.abandon", { bucket, key, objectId }).catch(() => {}); // its chunks go now; else at expiry
    throw error instanceof S3Reply && error.s3Code === "OperationAborted" ? preconditionFailed(error, options) : error;
  }
}

/** A commit the SPM refused for its precondition (the key exists; it is not the version If-Match named) is S3's 412. */
function preconditionFailed(error: unknown, options: StoreOptions): unknown {
  const conditional = options.ifAbsent === true || options.expectedObjectId !== undefined;
  if (!conditional || !(error instanceof S3Reply) || error.s3Code !== "OperationAborted") return error;
  return new S3Reply("PreconditionFailed", 412, `At least one of the pre-conditions you specified did not hold: ${error.message}`, { Condition: options.ifAbsent ? "If-None-Match" : "If-Match" });
}

/** The flexible checksum computed over the body against the one sent (header, or trailer at the end). */
function checkFlexible(asked: ChecksumAsked, computed: string, trailers: Record<string, string>): void {
  const header = checksumHeader(asked.algorithm);
  const sent = asked.value ?? trailers[header];
  if (sent === undefined) return; // x-amz-sdk-checksum-algorithm alone: computed and kept, nothing to compare
  checkChecksumShape(asked.algorithm, sent);
  if (sent !== computed) throw new S3Reply("BadDigest", 400, `The ${asked.algorithm.toUpperCase()} you specified did not match the calculated checksum (${computed}); nothing was stored`);
}

function contentTypeOf(s3: S3Request): string {
  const type = s3.request.headers.get("content-type") ?? "";
  if (type.length > limits.contentTypeBytesMax) throw s3Errors.invalidArgument(`Content-Type is at most ${limits.contentTypeBytesMax} bytes`);
  return type;
}

export async function commit(s3: S3Request, objectId: string, declaration: { bucket: string; key: string; size: number; checksum: string; contentType: string; tags: Record<string, string>; rf: number; chunkSize: number }, records: ChunkRecordWire[]): Promise<void> {
  const pageMax = limits.chunkRecordsPageMax;
  let staged = 0;
  while (records.length - staged > pageMax) {
    await routerCall(s3, "ball.stageChunks", { bucket: s3.bucket, key: s3.key, objectId, chunks: records.slice(staged, staged + pageMax) });
    staged += pageMax;
  }
  await routerCall(s3, "ball.commit", { ...declaration, objectId, chunks: records.slice(staged), ...(staged > 0 ? { stagedChunks: staged } : {}) }, { bucket: s3.bucket });
}

/** The body's digests against what the request promised: its signed sha256, Content-MD5 (flexible checksums: checkFlexible). */
function checkDigests(s3: S3Request, got: { shaHex: string; md5Base64: string; trailers: Record<string, string> }): void {
  const verified = s3.verified;
  if (verified?.payload === "signed" && verified.payloadSha256 !== got.shaHex) {
    throw new S3Reply("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.", { ClientComputedContentSHA256: verified.payloadSha256 ?? "", S3ComputedContentSHA256: got.shaHex });
  }
  const md5 = s3.request.headers.get("content-md5");
  if (md5 !== null && md5 !== got.md5Base64) throw new S3Reply("BadDigest", 400, `The Content-MD5 you specified did not match what we received (${got.md5Base64})`);
}

/** The ETag of a ball: the MD5 the gateway stored, or for a ball put natively one derived from its sha256 (marked -1: not an MD5). */
export function etagOf(ball: Pick<BallMetaWire, "tags" | "checksum">): string {
  return `"${ball.tags[etagTag] ?? `${ball.checksum.slice(0, 32)}-1`}"`;
}

/** `ranged`: a part of the body is sent, so the whole body's checksum is not (as S3 does). */
function objectHeaders(s3: S3Request, ball: BallMetaWire, ranged: boolean): Record<string, string> {
  const headers: Record<string, string> = {
    ETag: etagOf(ball),
    "Last-Modified": new Date(ball.createdMs).toUTCString(),
    "Content-Type": ball.contentType === "" ? defaultContentType : ball.contentType,
    "Accept-Ranges": "bytes",
  };
  for (const [name, value] of Object.entries(ball.tags)) {
    if (name.startsWith(metaTagPrefix)) headers[`${amzMetaPrefix}${name.slice(metaTagPrefix.length)}`] = value;
  }
  for (const name of storedHeaders) {
    const value = ball.tags[headerTag(name)];
    if (value !== undefined) headers[name] = value;
  }
  if (!ranged && s3.request.headers.get("x-amz-checksum-mode")?.toUpperCase() === "ENABLED") {
    for (const algorithm of checksumAlgorithms) {
      const value = ball.tags[checksumTag(algorithm)];
      if (value !== undefined) headers[checksumHeader(algorithm)] = value;
    }
  }
  return { ...headers, ...responseOverrides(s3) };
}

/** GetObject's response-* query parameters: the header each one sets in the reply, whatever the object holds. */
const responseOverrideHeaders: Readonly<Record<string, string>> = {
  "response-content-type": "Content-Type",
  "response-content-language": "content-language",
  "response-expires": "expires",
  "response-cache-control": "cache-control",
  "response-content-disposition": "content-disposition",
  "response-content-encoding": "content-encoding",
};

function responseOverrides(s3: S3Request): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of s3.query) {
    if (!name.startsWith("response-")) continue;
    const header = responseOverrideHeaders[name];
    if (header === undefined) throw s3Errors.invalidArgument(`${name} is not a response override S3 defines (${Object.keys(responseOverrideHeaders).join(", ")})`);
    headers[header] = value;
  }
  return headers;
}

/** The object to read (the request's, or `target`, a copy's source): refused when the gateway cannot give its bytes. */
export async function statObject(s3: S3Request, target: { bucket: string; key: string } = s3): Promise<BallMetaWire> {
  try {
    const ball = await routerCall(s3, "ball.stat", { bucket: target.bucket, key: target.key }, { bucket: target.bucket, key: target.key });
    if (ball.tags.encryption !== undefined) throw new S3Reply("InvalidRequest", 400, `${target.bucket}/${target.key} was stored encrypted by the mictlanx client; the gateway cannot open it: use mictlanx get --key-file`);
    if (ball.tags.compression !== undefined && ball.tags.compression !== compressionTag) throw s3Errors.notImplemented(`reading ${target.bucket}/${target.key}, compressed with ${ball.tags.compression} (use mictlanx get)`);
    return ball;
  } catch (error) {
    if (error instanceof S3Reply && error.httpStatus === 404 && !(await bucketExists({ ...s3, bucket: target.bucket }))) throw s3Errors.noSuchBucket(target.bucket);
    throw error;
  }
}

/** One byte range of `size` bytes from a Range header: undefined for the whole (absent, or not one range S3 honours). */
export function parseRange(header: string | null, size: number): { start: number; end: number } | undefined {
  if (header === null) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return undefined; // S3 ignores a Range it cannot parse
  const [first, last] = [match[1] ?? "", match[2] ?? ""];
  const range = first === "" ? { start: Math.max(0, size - Number(last)), end: size - 1 } : { start: Number(first), end: last === "" ? size - 1 : Math.min(Number(last), size - 1) };
  if (first !== "" && last !== "" && Number(last) < Number(first)) return undefined;
  if (range.start >= size || (first === "" && Number(last) === 0)) {
    throw new S3Reply("InvalidRange", 416, `The requested range is not satisfiable: ${header} of an object of ${size} bytes`, { RangeRequested: header, ActualObjectSize: String(size) });
  }
  return range;
}

/** The Range asked for, or with ?partNumber that part's bytes (a Range beside it is refused, as S3 does). */
function rangeOf(s3: S3Request, ball: BallMetaWire): { start: number; end: number; count?: number } | undefined {
  if (!s3.query.has("partNumber")) return parseRange(s3.request.headers.get("range"), ball.size);
  if (s3.request.headers.has("range")) throw s3Errors.invalidArgument("Cannot specify both Range header and partNumber query parameter");
  const part = partRange(s3, ball);
  return part.end < part.start ? undefined : part; // an empty object's one part: the whole, empty body
}

function partsCount(range: { count?: number } | undefined): Record<string, string> {
  return range?.count === undefined ? {} : { "x-amz-mp-parts-count": String(range.count) };
}

/** 304 Not Modified, with the validators a cache needs (S3 sends ETag and Last-Modified). */
function notModified(ball: BallMetaWire): Response {
  return new Response(null, { status: 304, headers: { ETag: etagOf(ball), "Last-Modified": new Date(ball.createdMs).toUTCString() } });
}

export async function headObject(s3: S3Request): Promise<Response> {
  requireGrant(s3, "read", "HeadObject");
  const ball = await statObject(s3);
  if (evaluateConditions(s3, ball, etagOf(ball), readConditions) === "not-modified") return notModified(ball);
  const range = rangeOf(s3, ball);
  const length = range ? range.end - range.start + 1 : ball.size;
  return new Response(null, { status: range ? 206 : 200, headers: { ...objectHeaders(s3, ball, range !== undefined), "Content-Length": String(length), ...(range ? { "Content-Range": `bytes ${range.start}-${range.end}/${ball.size}` } : {}), ...partsCount(range) } });
}

export async function getObject(s3: S3Request): Promise<Response> {
  requireGrant(s3, "read", "GetObject");
  const ball = await statObject(s3);
  if (evaluateConditions(s3, ball, etagOf(ball), readConditions) === "not-modified") return notModified(ball);
  const range = rangeOf(s3, ball);
  const start = range?.start ?? 0;
  const end = range?.end ?? ball.size - 1; // -1 for an empty object: no chunk is read
  const headers = { ...objectHeaders(s3, ball, range !== undefined), "Content-Length": String(end - start + 1), ...(range ? { "Content-Range": `bytes ${start}-${end}/${ball.size}` } : {}), ...partsCount(range) };
  if (end < start) return new Response(new Uint8Array(0), { status: 200, headers });
  assert(ball.chunkSize > 0, "a ball with bytes has a chunk size");
  let index = Math.floor(start / ball.chunkSize);
  const lastIndex = Math.floor(end / ball.chunkSize);
  const body = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      try {
        const chunk = await routerCall(s3, "ball.getChunk", { bucket: s3.bucket, objectId: ball.objectId, index }, { bucket: s3.bucket, key: s3.key });
        const data = plainChunk(ball, index, chunk.data);
        const offset = index * ball.chunkSize;
        const from = Math.max(start - offset, 0);
        const to = Math.min(end - offset + 1, data.byteLength);
        controller.enqueue(data.subarray(from, to));
        index += 1;
        if (index > lastIndex) controller.close();
      } catch (error) {
        controller.error(error); // the status is sent: the client sees a body cut short, as S3 does it
      }
    },
  });
  return new Response(body, { status: range ? 206 : 200, headers });
}

/**
 * A chunk's bytes as the object holds them: a ball the mictlanx client put compressed has each
 * chunk a zstd frame of chunkSize plain bytes (the last fewer), so offsets stay plain offsets.
 */
export function plainChunk(ball: Pick<BallMetaWire, "tags" | "chunkSize" | "bucket" | "key">, index: number, stored: Uint8Array): Uint8Array {
  if (ball.tags.compression === undefined) return stored;
  return decompressChunk(stored, ball.chunkSize, `chunk ${index} of ${ball.bucket}/${ball.key}`);
}

export async function deleteObject(s3: S3Request): Promise<Response> {
  requireGrant(s3, "delete", "DeleteObject");
  if (s3.query.has("versionId")) throw s3Errors.notImplemented("DeleteObject of a version");
  try {
    await routerCall(s3, "ball.delete", { bucket: s3.bucket, key: s3.key }, { bucket: s3.bucket, key: s3.key });
  } catch (error) {
    if (!(error instanceof S3Reply) || error.httpStatus !== 404) throw error;
    if (!(await bucketExists(s3))) throw s3Errors.noSuchBucket(s3.bucket);
    // S3 answers a delete of a key that is not there as a success.
  }
  return new Response(null, { status: 204 });
}
