// PutObject, GetObject, HeadObject, DeleteObject over the router's own write and read paths.
// A put streams: the body is cut into chunks as it arrives and each is written to its replicas;
// only when the whole body is in and checked (its signature or chunk signatures, its sha256,
// Content-MD5, CRC32) is the ball committed, so a bad body leaves nothing visible (its chunks
// are abandoned). The ETag is the body's MD5, kept in the ball's `s3:etag` tag.
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { ChunkSignatureVerifier } from "../../../s3/chunked.ts";
import { chunkChecksum, checksumHex } from "../../../lib/checksum.ts";
import { limits } from "../../../lib/limits.ts";
import { defaults } from "../../../lib/defaults.ts";
import { assert } from "../../../lib/assert.ts";
import type { BallMetaWire, ChunkRecordWire } from "../../../protocol/ball.ts";
import { bucketExists, requireBucket, requireGrant, routerCall, s3TagPrefix, utf8HeaderValue, type S3Request } from "./context.ts";
import { S3Reply, s3Errors } from "./xml.ts";

const etagTag = `${s3TagPrefix}etag`;
const crc32Tag = `${s3TagPrefix}crc32`;
const metaTagPrefix = `${s3TagPrefix}meta:`;
const amzMetaPrefix = "x-amz-meta-";
/** What S3 answers as the Content-Type of an object stored without one. */
const defaultContentType = "binary/octet-stream";

/** A put's body as payload bytes, checked by its framing (aws-chunked) as it goes. */
async function* payloadOf(s3: S3Request): AsyncGenerator<Uint8Array, Record<string, string>> {
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

function declaredSize(s3: S3Request): number {
  const decoded = s3.verified?.decodedContentLength;
  if (decoded !== undefined) return decoded;
  const length = s3.request.headers.get("content-length");
  if (length === null) throw new S3Reply("MissingContentLength", 411, "You must provide the Content-Length HTTP header (or x-amz-decoded-content-length with an aws-chunked body)");
  const size = Number(length);
  if (!Number.isSafeInteger(size) || size < 0) throw s3Errors.invalidArgument(`Content-Length ${length} is not a byte count`);
  return size;
}

/** x-amz-meta-* and the checksums asked for, refused before any byte is stored when unsupported. */
export function userMetadata(s3: S3Request): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [name, value] of s3.request.headers) {
    if (name.startsWith(amzMetaPrefix)) tags[`${metaTagPrefix}${name.slice(amzMetaPrefix.length)}`] = utf8HeaderValue(value);
  }
  if (Object.keys(tags).length > limits.tagCountMax - 2) throw new S3Reply("MetadataTooLarge", 400, `at most ${limits.tagCountMax - 2} x-amz-meta-* headers are kept with an object`);
  const algorithm = s3.request.headers.get("x-amz-sdk-checksum-algorithm");
  if (algorithm !== null && algorithm.toUpperCase() !== "CRC32") throw s3Errors.notImplemented(`the ${algorithm} checksum (only CRC32 is checked so far)`);
  for (const name of [...s3.request.headers.keys(), ...(s3.verified?.trailerNames ?? [])]) {
    if (name.startsWith("x-amz-checksum-") && name !== "x-amz-checksum-crc32" && name !== "x-amz-checksum-type") throw s3Errors.notImplemented(`the ${name} checksum (only x-amz-checksum-crc32 is checked so far)`);
  }
  return tags;
}

function crc32Base64(value: number): string {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value >>> 0);
  return Buffer.from(bytes).toString("base64");
}

export async function putObject(s3: S3Request): Promise<Response> {
  requireGrant(s3, "write", "PutObject");
  for (const header of ["x-amz-copy-source", "if-match", "if-none-match", "x-amz-tagging", "x-amz-server-side-encryption", "x-amz-object-lock-mode"]) {
    if (s3.request.headers.has(header)) throw s3Errors.notImplemented(`PutObject with ${header}`);
  }
  const acl = s3.request.headers.get("x-amz-acl");
  if (acl !== null && acl !== "private") throw s3Errors.notImplemented(`the canned ACL ${acl} (objects are private)`);
  const size = declaredSize(s3);
  if (size > limits.s3PutObjectBytesMax) throw new S3Reply("EntityTooLarge", 400, `Your proposed upload exceeds the maximum allowed size: ${size} bytes, over ${limits.s3PutObjectBytesMax} for one PutObject`, { ProposedSize: String(size), MaxSizeAllowed: String(limits.s3PutObjectBytesMax) });
  const tags = userMetadata(s3);
  await requireBucket(s3);
  const stored = await storeBody(s3, size, tags);
  return new Response(null, { status: 200, headers: { ETag: `"${stored.etag}"`, ...(stored.crc32 ? { "x-amz-checksum-crc32": stored.crc32 } : {}) } });
}

interface Stored {
  etag: string;
  crc32: string | undefined;
}

/** `source`: the payload when it is not the request's body (PostObject's file part). */
export async function storeBody(s3: S3Request, size: number, tags: Record<string, string>, source?: AsyncGenerator<Uint8Array, Record<string, string>>): Promise<Stored> {
  const { bucket, key } = s3;
  const rf = defaults.replicationFactor;
  const chunkSize = limits.chunkBytesDefault;
  const md5 = createHash("md5");
  const sha256 = createHash("sha256");
  let crc = 0;
  let buffer = new Uint8Array(Math.min(chunkSize, Math.max(size, 1)));
  let filled = 0;
  let received = 0;
  /** Bytes handed to chunks already written. */
  let flushed = 0;
  let objectId: string | undefined;
  const records: ChunkRecordWire[] = [];
  const flush = async () => {
    if (objectId === undefined) objectId = (await routerCall(s3, "ball.begin", { bucket, key, rf, chunkBytes: chunkSize }, { bucket })).objectId;
    const data = buffer.subarray(0, filled);
    records.push(await routerCall(s3, "ball.putChunk", { bucket, key, objectId, index: records.length, rf, data, checksum: checksumHex(chunkChecksum(data)), chunksHint: Math.ceil(size / chunkSize) }, { bucket }));
    flushed += filled;
    buffer = new Uint8Array(Math.min(chunkSize, Math.max(size - flushed, 1)));
    filled = 0;
  };
  try {
    const body = source ?? payloadOf(s3);
    let next = await body.next();
    while (!next.done) {
      const piece = next.value;
      received += piece.byteLength;
      if (received > size) throw new S3Reply("IncompleteBody", 400, `The body is longer than the ${size} bytes its length said`);
      md5.update(piece);
      sha256.update(piece);
      crc = crc32(piece, crc);
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
    const crc32Text = crc32Base64(crc);
    const shaHex = sha256.digest("hex");
    const md5Bytes = md5.digest();
    checkDigests(s3, { shaHex, md5Base64: md5Bytes.toString("base64"), crc32Text, trailers: next.value });
    const etag = md5Bytes.toString("hex");
    const asked = s3.request.headers.has("x-amz-checksum-crc32") || "x-amz-checksum-crc32" in next.value;
    const allTags = { ...tags, [etagTag]: etag, ...(asked ? { [crc32Tag]: crc32Text } : {}) };
    const declaration = { bucket, key, size, checksum: shaHex, contentType: contentTypeOf(s3), tags: allTags, rf, chunkSize };
    if (objectId === undefined) {
      await routerCall(s3, "ball.put", { ...declaration, data: buffer.subarray(0, filled) }, { bucket });
    } else {
      if (filled > 0) await flush();
      await commit(s3, objectId, declaration, records);
    }
    return { etag, crc32: asked ? crc32Text : undefined };
  } catch (error) {
    if (objectId !== undefined) await routerCall(s3, "ball.abandon", { bucket, key, objectId }).catch(() => {}); // its chunks go now; else at expiry
    throw error;
  }
}

function contentTypeOf(s3: S3Request): string {
  const type = s3.request.headers.get("content-type") ?? "";
  if (type.length > limits.contentTypeBytesMax) throw s3Errors.invalidArgument(`Content-Type is at most ${limits.contentTypeBytesMax} bytes`);
  return type;
}

async function commit(s3: S3Request, objectId: string, declaration: { bucket: string; key: string; size: number; checksum: string; contentType: string; tags: Record<string, string>; rf: number; chunkSize: number }, records: ChunkRecordWire[]): Promise<void> {
  const pageMax = limits.chunkRecordsPageMax;
  let staged = 0;
  while (records.length - staged > pageMax) {
    await routerCall(s3, "ball.stageChunks", { bucket: s3.bucket, key: s3.key, objectId, chunks: records.slice(staged, staged + pageMax) });
    staged += pageMax;
  }
  await routerCall(s3, "ball.commit", { ...declaration, objectId, chunks: records.slice(staged), ...(staged > 0 ? { stagedChunks: staged } : {}) }, { bucket: s3.bucket });
}

/** The body's digests against what the request promised: its signed sha256, Content-MD5, CRC32 header or trailer. */
function checkDigests(s3: S3Request, got: { shaHex: string; md5Base64: string; crc32Text: string; trailers: Record<string, string> }): void {
  const verified = s3.verified;
  if (verified?.payload === "signed" && verified.payloadSha256 !== got.shaHex) {
    throw new S3Reply("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.", { ClientComputedContentSHA256: verified.payloadSha256 ?? "", S3ComputedContentSHA256: got.shaHex });
  }
  const md5 = s3.request.headers.get("content-md5");
  if (md5 !== null && md5 !== got.md5Base64) throw new S3Reply("BadDigest", 400, `The Content-MD5 you specified did not match what we received (${got.md5Base64})`);
  const crc = s3.request.headers.get("x-amz-checksum-crc32") ?? got.trailers["x-amz-checksum-crc32"];
  if (crc !== undefined && crc !== got.crc32Text) throw new S3Reply("BadDigest", 400, `The CRC32 you specified did not match the calculated checksum (${got.crc32Text}); nothing was stored`);
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
  const crc = ball.tags[crc32Tag];
  if (crc !== undefined && !ranged && s3.request.headers.get("x-amz-checksum-mode")?.toUpperCase() === "ENABLED") headers["x-amz-checksum-crc32"] = crc;
  return headers;
}

async function statObject(s3: S3Request): Promise<BallMetaWire> {
  for (const header of ["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"]) {
    if (s3.request.headers.has(header)) throw s3Errors.notImplemented(`the conditional header ${header}`);
  }
  for (const name of s3.query.keys()) if (name.startsWith("response-")) throw s3Errors.notImplemented(`the ${name} override`);
  try {
    const ball = await routerCall(s3, "ball.stat", { bucket: s3.bucket, key: s3.key }, { bucket: s3.bucket, key: s3.key });
    if (ball.tags.encryption !== undefined) throw new S3Reply("InvalidRequest", 400, `${s3.bucket}/${s3.key} was stored encrypted by the mictlanx client; the gateway cannot open it: use mictlanx get --key-file`);
    if (ball.tags.compression !== undefined) throw s3Errors.notImplemented(`reading ${s3.bucket}/${s3.key}, stored compressed by the mictlanx client (use mictlanx get)`);
    return ball;
  } catch (error) {
    if (error instanceof S3Reply && error.httpStatus === 404 && !(await bucketExists(s3))) throw s3Errors.noSuchBucket(s3.bucket);
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

export async function headObject(s3: S3Request): Promise<Response> {
  requireGrant(s3, "read", "HeadObject");
  const ball = await statObject(s3);
  const range = parseRange(s3.request.headers.get("range"), ball.size);
  const length = range ? range.end - range.start + 1 : ball.size;
  return new Response(null, { status: range ? 206 : 200, headers: { ...objectHeaders(s3, ball, range !== undefined), "Content-Length": String(length), ...(range ? { "Content-Range": `bytes ${range.start}-${range.end}/${ball.size}` } : {}) } });
}

export async function getObject(s3: S3Request): Promise<Response> {
  requireGrant(s3, "read", "GetObject");
  if (s3.query.has("partNumber")) throw s3Errors.notImplemented("GetObject by partNumber");
  const ball = await statObject(s3);
  const range = parseRange(s3.request.headers.get("range"), ball.size);
  const start = range?.start ?? 0;
  const end = range?.end ?? ball.size - 1; // -1 for an empty object: no chunk is read
  const headers = { ...objectHeaders(s3, ball, range !== undefined), "Content-Length": String(end - start + 1), ...(range ? { "Content-Range": `bytes ${start}-${end}/${ball.size}` } : {}) };
  if (end < start) return new Response(new Uint8Array(0), { status: 200, headers });
  assert(ball.chunkSize > 0, "a ball with bytes has a chunk size");
  let index = Math.floor(start / ball.chunkSize);
  const lastIndex = Math.floor(end / ball.chunkSize);
  const body = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      try {
        const chunk = await routerCall(s3, "ball.getChunk", { bucket: s3.bucket, objectId: ball.objectId, index }, { bucket: s3.bucket, key: s3.key });
        const offset = index * ball.chunkSize;
        const from = Math.max(start - offset, 0);
        const to = Math.min(end - offset + 1, chunk.data.byteLength);
        controller.enqueue(chunk.data.subarray(from, to));
        index += 1;
        if (index > lastIndex) controller.close();
      } catch (error) {
        controller.error(error); // the status is sent: the client sees a body cut short, as S3 does it
      }
    },
  });
  return new Response(body, { status: range ? 206 : 200, headers });
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
