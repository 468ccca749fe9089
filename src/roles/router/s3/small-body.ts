// The body of a settings request (PutBucketAcl, PutObjectAcl, PutBucketLifecycleConfiguration):
// small, read whole up to a bound, and checked as a PutObject body is before it is believed —
// its signed sha256 (or chunk signatures, when aws-chunked), Content-MD5 and CRC32.
import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { ChunkSignatureVerifier } from "../../../s3/chunked.ts";
import type { S3Request } from "./context.ts";
import { S3Reply, s3Errors } from "./xml.ts";

function crc32Base64(value: number): string {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value >>> 0);
  return Buffer.from(bytes).toString("base64");
}

/** The checksums this reader checks; a body sent with another is refused, never taken unchecked. */
const checkedChecksums = new Set(["x-amz-checksum-crc32", "x-amz-checksum-sha256", "x-amz-checksum-sha1", "x-amz-checksum-type"]);

async function payloadBytes(s3: S3Request, bytesMax: number): Promise<{ body: Buffer; trailers: Record<string, string> }> {
  const chunked = s3.verified?.payload.startsWith("streaming-") ? new ChunkSignatureVerifier(s3.verified) : undefined;
  const pieces: Uint8Array[] = [];
  let bytes = 0;
  const take = (piece: Uint8Array) => {
    bytes += piece.byteLength;
    if (bytes > bytesMax) throw new S3Reply("MaxMessageLengthExceeded", 400, `This request's body is at most ${bytesMax} bytes`);
    pieces.push(piece);
  };
  if (s3.request.body) {
    for await (const piece of s3.request.body as AsyncIterable<Uint8Array>) {
      if (chunked) for (const payload of chunked.push(piece)) take(payload);
      else take(piece);
    }
  }
  return { body: Buffer.concat(pieces), trailers: chunked ? chunked.end().trailers : {} };
}

/** The body as text, every digest the request promised checked. */
export async function readSmallBody(s3: S3Request, bytesMax: number): Promise<string> {
  const headers = s3.request.headers;
  for (const name of [...headers.keys(), ...(s3.verified?.trailerNames ?? [])]) {
    if (name.startsWith("x-amz-checksum-") && !checkedChecksums.has(name)) throw s3Errors.notImplemented(`the ${name} checksum on this request (send CRC32, SHA1, SHA256 or Content-MD5)`);
  }
  const { body, trailers } = await payloadBytes(s3, bytesMax);
  const verified = s3.verified;
  const sha256 = createHash("sha256").update(body).digest();
  if (verified?.payload === "signed" && verified.payloadSha256 !== sha256.toString("hex")) {
    throw new S3Reply("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.", { ClientComputedContentSHA256: verified.payloadSha256 ?? "", S3ComputedContentSHA256: sha256.toString("hex") });
  }
  const promised = (name: string) => headers.get(name) ?? trailers[name];
  const checks: Array<[string | null | undefined, () => string, string]> = [
    [headers.get("content-md5"), () => createHash("md5").update(body).digest("base64"), "Content-MD5"],
    [promised("x-amz-checksum-crc32"), () => crc32Base64(crc32(body)), "CRC32"],
    [promised("x-amz-checksum-sha256"), () => sha256.toString("base64"), "SHA256"],
    [promised("x-amz-checksum-sha1"), () => createHash("sha1").update(body).digest("base64"), "SHA1"],
  ];
  for (const [given, compute, what] of checks) {
    if (given !== null && given !== undefined && given !== compute()) throw new S3Reply("BadDigest", 400, `The ${what} you specified did not match what we received; nothing was changed`);
  }
  return body.toString("utf8");
}
