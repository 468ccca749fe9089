// SigV4 as the S3 gateway will check it, against the AWS SDK's own signer: requests signed by
// @smithy/signature-v4 (what @aws-sdk/client-s3 signs with), URLs presigned by
// @aws-sdk/s3-request-presigner, aws-chunked bodies whose chunk signatures the SDK's signer
// computes, and the real S3Client talking HTTP to a server that verifies what it receives.
import { describe, expect, test } from "bun:test";
import { Readable } from "node:stream";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { Crc32, Sha256 } from "@smithy/core/checksum";
import { SignatureV4 } from "@smithy/signature-v4";
import type { HttpRequest } from "@smithy/types";
import { newAccessKeyId, newSecretKey } from "../../src/lib/access-keys.ts";
import { limits } from "../../src/lib/limits.ts";
import { ChunkSignatureVerifier, type ChunkedStream } from "../../src/s3/chunked.ts";
import { S3Error } from "../../src/s3/errors.ts";
import { canonicalHeaderValue, canonicalQuery, canonicalUri, verifyRequest, type SignedRequest, type VerifyOptions } from "../../src/s3/sigv4.ts";
import { randomBytes, seededRandom } from "../support/random.ts";

const region = "us-east-1";
const accessKey = newAccessKeyId();
const secret = newSecretKey();
const lookup = async (key: string): Promise<string | undefined> => (key === accessKey ? secret : undefined);
const signingDate = new Date(Date.UTC(2025, 0, 15, 12, 0, 0));
const amzDate = "20250115T120000Z";
const scope = `20250115/${region}/s3/aws4_request`;
const options: VerifyOptions = { region, nowMs: signingDate.getTime() + 1_000, clockSkewMaxMs: limits.s3ClockSkewMsMax };
const host = "127.0.0.1:9000";

function signerFor(secretAccessKey = secret, signingRegion = region, keyId = accessKey): SignatureV4 {
  return new SignatureV4({ credentials: { accessKeyId: keyId, secretAccessKey }, region: signingRegion, service: "s3", sha256: Sha256, uriEscapePath: false });
}

/** The SDK's escapeUri: encodeURIComponent and !'()* too. */
function escapeUri(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A key as S3Client puts it in a path: each segment escaped, '/' kept. */
function keyPath(bucket: string, key: string): string {
  return `/${bucket}/${key.split("/").map(escapeUri).join("/")}`;
}

/** An SDK request as the gateway will see it on the wire. */
function wire(request: HttpRequest, queryText?: string): SignedRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  const pairs: string[] = [];
  for (const [name, value] of Object.entries(request.query ?? {})) {
    for (const one of Array.isArray(value) ? value : [value]) pairs.push(one === null ? escapeUri(name) : `${escapeUri(name)}=${escapeUri(String(one))}`);
  }
  return { method: request.method, path: request.path, query: queryText ?? pairs.join("&"), headers };
}

function baseRequest(overrides: Partial<HttpRequest> = {}): HttpRequest {
  return { method: "PUT", protocol: "http:", hostname: "127.0.0.1", port: 9000, path: keyPath("photos", "cat.jpg"), query: {}, headers: { host, "content-type": "image/jpeg" }, body: "hello world", ...overrides };
}

async function signed(request: HttpRequest = baseRequest(), signer = signerFor()): Promise<SignedRequest> {
  return wire(await signer.sign(request, { signingDate }));
}

async function refusal(promise: Promise<unknown>): Promise<S3Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof S3Error) return error;
    throw error;
  }
  throw new Error("expected an S3Error, the request was accepted");
}

function refusalSync(run: () => unknown): S3Error {
  try {
    run();
  } catch (error) {
    if (error instanceof S3Error) return error;
    throw error;
  }
  throw new Error("expected an S3Error, it was accepted");
}

function sdkHex(bytes: Uint8Array | string): Promise<string> {
  const hash = new Sha256();
  hash.update(typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes);
  return hash.digest().then((digest) => Buffer.from(digest).toString("hex"));
}

describe("header auth, signed by the SDK's SignatureV4", () => {
  test("a signed payload: the key, the scope, the seed signature and the hash the body must have", async () => {
    const request = await signed();
    const verified = await verifyRequest(request, lookup, options);
    expect(verified.accessKey).toBe(accessKey);
    expect(verified.auth).toBe("header");
    expect(verified.scope).toBe(scope);
    expect(verified.amzDate).toBe(amzDate);
    expect(verified.payload).toBe("signed");
    expect(verified.payloadSha256).toBe(await sdkHex("hello world"));
    expect(String(request.headers.authorization)).toEndWith(`Signature=${verified.seedSignature}`);
  });

  test("a body whose hash is not the signed one is XAmzContentSHA256Mismatch", async () => {
    const request = { ...(await signed()), payloadHash: await sdkHex("hello w0rld") };
    expect((await refusal(verifyRequest(request, lookup, options))).s3Code).toBe("XAmzContentSHA256Mismatch");
    const right = { ...(await signed()), payloadHash: await sdkHex("hello world") };
    expect((await verifyRequest(right, lookup, options)).payload).toBe("signed");
  });

  test("UNSIGNED-PAYLOAD", async () => {
    const request = await signed(baseRequest({ headers: { host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } }));
    const verified = await verifyRequest(request, lookup, options);
    expect(verified.payload).toBe("unsigned");
    expect(verified.payloadSha256).toBeUndefined();
  });

  test("keys that need encoding, and a query in the SDK's encoding and in Go's ('+' for a space)", async () => {
    const path = keyPath("photos", "a b+c/é/100%/x&y=z/(1)!*'~.txt");
    const query = { "list-type": "2", prefix: "a b/é", delimiter: "/", "max-keys": "10", "encoding-type": "url" };
    const request = await signed(baseRequest({ method: "GET", path, query, body: undefined }));
    expect((await verifyRequest(request, lookup, options)).payloadSha256).toBe(await sdkHex(""));
    const goStyle = { ...request, query: "delimiter=/&encoding-type=url&list-type=2&max-keys=10&prefix=a+b%2F%C3%A9" };
    expect((await verifyRequest(goStyle, lookup, options)).accessKey).toBe(accessKey);
    // CreateMultipartUpload: the SDK sends ?uploads=, aws-cli a bare ?uploads; both are "uploads=".
    const subresource = await signed(baseRequest({ method: "POST", query: { uploads: "" }, body: undefined }));
    for (const query of ["uploads=", "uploads"]) expect((await verifyRequest({ ...subresource, query }, lookup, options)).accessKey).toBe(accessKey);
  });

  test("a header sent twice is its values trimmed and joined by ','", async () => {
    const request = await signed(baseRequest({ headers: { host, "x-amz-meta-tags": "a   b,c" } }));
    const asTwo = { ...request, headers: { ...request.headers, "x-amz-meta-tags": ["  a b ", "\tc"] } };
    expect((await verifyRequest(asTwo, lookup, options)).accessKey).toBe(accessKey);
  });

  test("a wrong secret is SignatureDoesNotMatch, with the canonical request and string to sign S3 reports", async () => {
    const request = await signed(baseRequest(), signerFor(newSecretKey()));
    const error = await refusal(verifyRequest(request, lookup, options));
    expect(error.s3Code).toBe("SignatureDoesNotMatch");
    expect(error.httpStatus).toBe(403);
    expect(error.fields.AWSAccessKeyId).toBe(accessKey);
    expect(error.fields.CanonicalRequest).toBe(
      ["PUT", "/photos/cat.jpg", "", "content-type:image/jpeg", `host:${host}`, `x-amz-content-sha256:${await sdkHex("hello world")}`, `x-amz-date:${amzDate}`, "", "content-type;host;x-amz-content-sha256;x-amz-date", await sdkHex("hello world")].join("\n"),
    );
    expect(error.fields.StringToSign).toBe(["AWS4-HMAC-SHA256", amzDate, scope, await sdkHex(error.fields.CanonicalRequest ?? "")].join("\n"));
  });

  test("a header, the path, the query or the method changed after signing is SignatureDoesNotMatch", async () => {
    const request = await signed(baseRequest({ query: { partNumber: "1" } }));
    const changes: SignedRequest[] = [
      { ...request, headers: { ...request.headers, "content-type": "text/html" } },
      { ...request, path: keyPath("photos", "dog.jpg") },
      { ...request, query: "partNumber=2" },
      { ...request, method: "DELETE" },
    ];
    for (const changed of changes) expect((await refusal(verifyRequest(changed, lookup, options))).s3Code).toBe("SignatureDoesNotMatch");
  });

  test("an x-amz-* header added after signing is AccessDenied, naming it", async () => {
    const request = await signed();
    const error = await refusal(verifyRequest({ ...request, headers: { ...request.headers, "x-amz-acl": "public-read" } }, lookup, options));
    expect(error.s3Code).toBe("AccessDenied");
    expect(error.fields.HeadersNotSigned).toBe("x-amz-acl");
  });

  test("another region is AuthorizationHeaderMalformed naming the region expected", async () => {
    const request = await signed(baseRequest(), signerFor(secret, "eu-west-1"));
    const error = await refusal(verifyRequest(request, lookup, options));
    expect(error.s3Code).toBe("AuthorizationHeaderMalformed");
    expect(error.httpStatus).toBe(400);
    expect(error.message).toContain("the region 'eu-west-1' is wrong; expecting 'us-east-1'");
    expect(error.fields.Region).toBe(region);
  });

  test(`a clock skew of ${limits.s3ClockSkewMsMax} ms either way is accepted, 1 ms more is RequestTimeTooSkewed`, async () => {
    const request = await signed();
    const at = signingDate.getTime();
    for (const nowMs of [at + limits.s3ClockSkewMsMax, at - limits.s3ClockSkewMsMax]) {
      expect((await verifyRequest(request, lookup, { ...options, nowMs })).accessKey).toBe(accessKey);
    }
    for (const nowMs of [at + limits.s3ClockSkewMsMax + 1, at - limits.s3ClockSkewMsMax - 1]) {
      const error = await refusal(verifyRequest(request, lookup, { ...options, nowMs }));
      expect(error.s3Code).toBe("RequestTimeTooSkewed");
      expect(error.fields.RequestTime).toBe(amzDate);
    }
  });

  test("an unknown access key is InvalidAccessKeyId", async () => {
    const stranger = newAccessKeyId();
    const error = await refusal(verifyRequest(await signed(baseRequest(), signerFor(secret, region, stranger)), lookup, options));
    expect(error.s3Code).toBe("InvalidAccessKeyId");
    expect(error.fields.AWSAccessKeyId).toBe(stranger);
  });

  test("no signature, two mechanisms, SigV2, an Authorization past its bound, a date that does not exist", async () => {
    const request = await signed();
    const { authorization, ...unsigned } = request.headers;
    expect((await refusal(verifyRequest({ ...request, headers: unsigned }, lookup, options))).s3Code).toBe("AccessDenied");
    expect((await refusal(verifyRequest({ ...request, query: "X-Amz-Algorithm=AWS4-HMAC-SHA256" }, lookup, options))).s3Code).toBe("InvalidArgument");
    expect((await refusal(verifyRequest({ ...request, headers: { ...unsigned, authorization: `AWS ${accessKey}:c2lnbmF0dXJl` } }, lookup, options))).s3Code).toBe("InvalidRequest");
    const long = `${String(authorization)}, X=${"a".repeat(limits.s3AuthorizationBytesMax)}`;
    expect((await refusal(verifyRequest({ ...request, headers: { ...unsigned, authorization: long } }, lookup, options))).s3Code).toBe("AuthorizationHeaderMalformed");
    const rolledOver = await signed(baseRequest(), signerFor());
    rolledOver.headers = { ...rolledOver.headers, "x-amz-date": "20250231T120000Z" };
    expect((await refusal(verifyRequest(rolledOver, lookup, options))).s3Code).toBe("AccessDenied");
  });
});

describe("presigned URLs, made by @aws-sdk/s3-request-presigner", () => {
  const client = new S3Client({ region, endpoint: `http://${host}`, forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secret } });

  async function presigned(command: GetObjectCommand | PutObjectCommand, expiresIn: number): Promise<SignedRequest> {
    const url = new URL(await getSignedUrl(client, command, { expiresIn, signingDate }));
    return { method: command instanceof PutObjectCommand ? "PUT" : "GET", path: url.pathname, query: url.search.slice(1), headers: { host: url.host } };
  }

  test("GET and PUT verify, as unsigned payloads, until they expire", async () => {
    const get = await presigned(new GetObjectCommand({ Bucket: "photos", Key: "a b/é+1.jpg" }), 3600);
    const verified = await verifyRequest(get, lookup, options);
    expect(verified.auth).toBe("presigned");
    expect(verified.payload).toBe("unsigned");
    expect(verified.scope).toBe(scope);
    const put = await presigned(new PutObjectCommand({ Bucket: "photos", Key: "new.jpg" }), 60);
    expect((await verifyRequest(put, lookup, options)).accessKey).toBe(accessKey);
    expect((await refusal(verifyRequest({ ...put, method: "GET" }, lookup, options))).s3Code).toBe("SignatureDoesNotMatch");
  });

  test("an expired URL is AccessDenied \"Request has expired\", the last second of a 7-day one is not", async () => {
    const week = limits.s3PresignExpiresSecondsMax;
    const request = await presigned(new GetObjectCommand({ Bucket: "photos", Key: "cat.jpg" }), week);
    const end = signingDate.getTime() + week * 1000;
    expect((await verifyRequest(request, lookup, { ...options, nowMs: end })).accessKey).toBe(accessKey);
    const error = await refusal(verifyRequest(request, lookup, { ...options, nowMs: end + 1 }));
    expect(error.s3Code).toBe("AccessDenied");
    expect(error.message).toBe("Request has expired");
    expect(error.fields["X-Amz-Expires"]).toBe(String(week));
  });

  test("X-Amz-Expires past 7 days, another region, a wrong secret, an added x-amz-* header", async () => {
    const request = await presigned(new GetObjectCommand({ Bucket: "photos", Key: "cat.jpg" }), 3600);
    const longer = { ...request, query: request.query.replace("X-Amz-Expires=3600", `X-Amz-Expires=${limits.s3PresignExpiresSecondsMax + 1}`) };
    expect((await refusal(verifyRequest(longer, lookup, options))).s3Code).toBe("AuthorizationQueryParametersError");
    const elsewhere = await refusal(verifyRequest(request, lookup, { ...options, region: "eu-west-1" }));
    expect(elsewhere.s3Code).toBe("AuthorizationQueryParametersError");
    expect(elsewhere.fields.Region).toBe("eu-west-1");
    const wrongSecret = await refusal(verifyRequest(request, async () => newSecretKey(), options));
    expect(wrongSecret.s3Code).toBe("SignatureDoesNotMatch");
    expect(wrongSecret.fields.CanonicalRequest).toEndWith("\nhost\nUNSIGNED-PAYLOAD");
    expect((await refusal(verifyRequest({ ...request, headers: { ...request.headers, "x-amz-acl": "public-read" } }, lookup, options))).s3Code).toBe("AccessDenied");
  });

  test("a URL presigned for another region names the region expected, as header auth does, before the key is looked up", async () => {
    const request = await presigned(new GetObjectCommand({ Bucket: "photos", Key: "cat.jpg" }), 3600);
    const gateway = { ...options, region: "ap-south-1" };
    const error = await refusal(verifyRequest(request, async () => { throw new Error("the secret must not be looked up for a request of another region"); }, gateway));
    expect(error.s3Code).toBe("AuthorizationQueryParametersError");
    expect(error.httpStatus).toBe(400);
    expect(error.message).toContain("the region 'us-east-1' is wrong; expecting 'ap-south-1'");
    expect(error.fields.Region).toBe("ap-south-1");
  });
});

describe("canonical forms", () => {
  test("the path is encoded once, whatever escaping the client chose", () => {
    expect(canonicalUri("")).toBe("/");
    expect(canonicalUri("/b/a%20b/%7e~%2Fc")).toBe("/b/a%20b/~~/c");
    expect(canonicalUri("/b/é+()")).toBe("/b/%C3%A9%2B%28%29");
    expect(canonicalUri("/b/100%")).toBe("/b/100%25");
  });
  test("query pairs sorted by encoded name then value; the signature dropped for presigned URLs", () => {
    expect(canonicalQuery("b=2&a=2&a=1&c&X-Amz-Signature=x", true)).toBe("a=1&a=2&b=2&c=");
    expect(canonicalQuery("k=a+b%2a&K=1", false)).toBe("K=1&k=a%20b%2A");
  });
  test("header values trimmed, inner runs of spaces collapsed, several joined by ','", () => {
    expect(canonicalHeaderValue("  a \t  b  ")).toBe("a b");
    expect(canonicalHeaderValue([" x ", "y  z"])).toBe("x,y z");
  });
});

// --- aws-chunked ---------------------------------------------------------------------------

const chunkBytes = 64 * 1024;
const encoder = new TextEncoder();

interface ChunkedUpload {
  stream: ChunkedStream;
  body: Uint8Array;
  payload: Uint8Array;
  /** Where chunk i's bytes start in the body. */
  chunkStarts: number[];
}

/** A streaming upload signed the way the SDKs do it: the request by SignatureV4, each chunk and the trailer by its sign(stringToSign). */
async function signedChunkedUpload(payload: Uint8Array, withTrailer: boolean): Promise<ChunkedUpload> {
  const signer = signerFor();
  const contentSha256 = withTrailer ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  const headers: Record<string, string> = { host, "content-encoding": "aws-chunked", "x-amz-content-sha256": contentSha256, "x-amz-decoded-content-length": String(payload.length) };
  if (withTrailer) headers["x-amz-trailer"] = "x-amz-checksum-crc32";
  const request = wire(await signer.sign(baseRequest({ headers, body: undefined }), { signingDate }));
  const seed = /Signature=([0-9a-f]{64})/.exec(String(request.headers.authorization))?.[1] ?? "";
  const empty = await sdkHex("");
  const pieces: Uint8Array[] = [];
  const chunkStarts: number[] = [];
  let previous = seed;
  let offset = 0;
  for (let at = 0; ; at += chunkBytes) {
    const data = payload.subarray(at, Math.min(at + chunkBytes, payload.length));
    const signature = await signer.sign(["AWS4-HMAC-SHA256-PAYLOAD", amzDate, scope, previous, empty, await sdkHex(data)].join("\n"), { signingDate });
    const header = encoder.encode(`${data.length.toString(16)};chunk-signature=${signature}\r\n`);
    chunkStarts.push(offset + header.length);
    pieces.push(header, data);
    if (data.length > 0 || !withTrailer) pieces.push(encoder.encode("\r\n"));
    offset += header.length + data.length + 2;
    previous = signature;
    if (data.length === 0) break;
  }
  if (withTrailer) {
    const crc = new Crc32();
    crc.update(payload);
    const checksum = Buffer.from(await crc.digest()).toString("base64");
    const trailerSignature = await signer.sign(["AWS4-HMAC-SHA256-TRAILER", amzDate, scope, previous, await sdkHex(`x-amz-checksum-crc32:${checksum}\n`)].join("\n"), { signingDate });
    pieces.push(encoder.encode(`x-amz-checksum-crc32:${checksum}\r\nx-amz-trailer-signature:${trailerSignature}\r\n\r\n`));
  }
  const verified = await verifyRequest(request, lookup, options);
  return { stream: verified, body: Buffer.concat(pieces), payload, chunkStarts };
}

/** Feeds `body` in random pieces (1 byte to 100 KiB); returns what came out, or the error and what came out before it. */
function feed(verifier: ChunkSignatureVerifier, body: Uint8Array, random: () => number): { out: Uint8Array; error: S3Error | undefined } {
  const out: Uint8Array[] = [];
  let at = 0;
  try {
    while (at < body.length) {
      const size = random() < 0.2 ? 1 + Math.floor(random() * 4) : 1 + Math.floor(random() * 100_000);
      out.push(...verifier.push(body.slice(at, at + size)).map((piece) => piece.slice()));
      at += size;
    }
    verifier.end();
    return { out: Buffer.concat(out), error: undefined };
  } catch (error) {
    if (!(error instanceof S3Error)) throw error;
    return { out: Buffer.concat(out), error };
  }
}

describe("aws-chunked bodies", () => {
  const { random, seed } = seededRandom("s3-sigv4 chunked");

  test(`STREAMING-AWS4-HMAC-SHA256-PAYLOAD in random splits yields the payload (seed ${seed})`, async () => {
    for (const size of [0, 1, chunkBytes, 3 * chunkBytes + 777]) {
      const upload = await signedChunkedUpload(randomBytes(random, size), false);
      expect(upload.stream.payload).toBe("streaming-signed");
      for (let round = 0; round < 3; round++) {
        const verifier = new ChunkSignatureVerifier(upload.stream);
        const { out, error } = feed(verifier, upload.body, random);
        expect(error).toBeUndefined();
        expect(Buffer.from(out).equals(Buffer.from(upload.payload))).toBe(true);
      }
      const whole = new ChunkSignatureVerifier(upload.stream);
      whole.push(upload.body);
      expect(whole.end()).toEqual({ payloadBytes: size, chunks: Math.ceil(size / chunkBytes) + 1, trailers: {} });
    }
  });

  test(`STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: the trailer signature checked, the checksum handed back (seed ${seed})`, async () => {
    const upload = await signedChunkedUpload(randomBytes(random, 2 * chunkBytes + 5), true);
    expect(upload.stream.payload).toBe("streaming-signed-trailer");
    const verifier = new ChunkSignatureVerifier(upload.stream);
    const { out, error } = feed(verifier, upload.body, random);
    expect(error).toBeUndefined();
    expect(out.length).toBe(upload.payload.length);
    const crc = new Crc32();
    crc.update(upload.payload);
    const whole = new ChunkSignatureVerifier(upload.stream);
    whole.push(upload.body);
    expect(whole.end().trailers).toEqual({ "x-amz-checksum-crc32": Buffer.from(await crc.digest()).toString("base64") });
    const text = Buffer.from(upload.body).toString("latin1");
    const at = text.indexOf("x-amz-checksum-crc32:") + "x-amz-checksum-crc32:".length;
    const tampered = Buffer.from(upload.body);
    tampered[at] = tampered[at] === 0x41 ? 0x42 : 0x41;
    const refused = feed(new ChunkSignatureVerifier(upload.stream), tampered, random).error;
    expect(refused?.s3Code).toBe("SignatureDoesNotMatch");
    expect(refused?.message).toContain("trailer");
  });

  test(`a tampered chunk is SignatureDoesNotMatch at that chunk, after the chunks before it (seed ${seed})`, async () => {
    const upload = await signedChunkedUpload(randomBytes(random, 4 * chunkBytes), false);
    const tampered = Buffer.from(upload.body);
    const at = (upload.chunkStarts[2] ?? 0) + Math.floor(random() * chunkBytes);
    tampered[at] = (tampered[at] ?? 0) ^ 0x01;
    const verifier = new ChunkSignatureVerifier(upload.stream);
    const { out, error } = feed(verifier, tampered, random);
    expect(error?.s3Code).toBe("SignatureDoesNotMatch");
    expect(error?.message).toContain("chunk 2 signature");
    // What was handed on is the payload's start, never past chunk 2 (a push that throws hands on nothing).
    expect(out.length).toBeLessThanOrEqual(3 * chunkBytes);
    expect(Buffer.from(out.subarray(0, Math.min(out.length, 2 * chunkBytes))).equals(Buffer.from(upload.payload.subarray(0, Math.min(out.length, 2 * chunkBytes))))).toBe(true);
    // Fed up to chunk 2's bytes, then the rest: chunks 0 and 1 come out whole, the rest is refused.
    const split = new ChunkSignatureVerifier(upload.stream);
    const first = Buffer.concat(split.push(tampered.subarray(0, upload.chunkStarts[2])));
    expect(first.equals(Buffer.from(upload.payload.subarray(0, 2 * chunkBytes)))).toBe(true);
    expect(refusalSync(() => split.push(tampered.subarray(upload.chunkStarts[2]))).message).toContain("chunk 2 signature");
    expect(() => verifier.push(new Uint8Array(1))).toThrow(error);
  });

  test("a body cut short is IncompleteBody; bytes after its end are refused", async () => {
    const upload = await signedChunkedUpload(randomBytes(random, chunkBytes + 10), false);
    const cut = new ChunkSignatureVerifier(upload.stream);
    cut.push(upload.body.slice(0, upload.body.length - 5));
    expect(refusalSync(() => cut.end()).s3Code).toBe("IncompleteBody");
    const extra = new ChunkSignatureVerifier(upload.stream);
    expect(refusalSync(() => extra.push(Buffer.concat([upload.body, encoder.encode("x")]))).s3Code).toBe("InvalidRequest");
  });

  test(`a chunk header of ${limits.s3ChunkHeaderBytesMax} bytes is read, one more is refused before its end arrives`, () => {
    const stream: ChunkedStream = { payload: "streaming-unsigned-trailer", signingKey: new Uint8Array(32), seedSignature: "", amzDate, scope, decodedContentLength: 3, trailerNames: [] };
    const header = (bytes: number): string => `3;${"x".repeat(bytes - 2)}`;
    const fits = new ChunkSignatureVerifier(stream);
    const out = fits.push(encoder.encode(`${header(limits.s3ChunkHeaderBytesMax)}\r\nabc\r\n0\r\n\r\n`));
    expect(Buffer.concat(out).toString()).toBe("abc");
    expect(fits.end().payloadBytes).toBe(3);
    const over = new ChunkSignatureVerifier(stream);
    const error = refusalSync(() => over.push(encoder.encode(`${header(limits.s3ChunkHeaderBytesMax + 1)}\r\n`)));
    expect(error.s3Code).toBe("InvalidRequest");
    expect(error.message).toContain(`longer than ${limits.s3ChunkHeaderBytesMax} bytes`);
    // A header that never ends is refused once it cannot fit, not held until its end.
    const endless = new ChunkSignatureVerifier(stream);
    endless.push(encoder.encode(header(limits.s3ChunkHeaderBytesMax + 2)));
    expect(refusalSync(() => endless.push(encoder.encode("x"))).message).toContain(`longer than ${limits.s3ChunkHeaderBytesMax} bytes`);
  });

  test(`a trailer section past ${limits.s3ChunkTrailerBytesMax} bytes is refused; a trailer not announced too`, () => {
    const stream: ChunkedStream = { payload: "streaming-unsigned-trailer", signingKey: new Uint8Array(32), seedSignature: "", amzDate, scope, decodedContentLength: 0, trailerNames: ["x-amz-checksum-crc32"] };
    const long = new ChunkSignatureVerifier(stream);
    expect(refusalSync(() => long.push(encoder.encode(`0\r\nx-amz-checksum-crc32:${"A".repeat(limits.s3ChunkTrailerBytesMax)}`))).message).toContain("trailer is longer");
    const stranger = new ChunkSignatureVerifier(stream);
    expect(refusalSync(() => stranger.push(encoder.encode("0\r\nx-amz-meta-x:1\r\n\r\n"))).message).toContain("not announced");
    const missing = new ChunkSignatureVerifier(stream);
    expect(refusalSync(() => missing.push(encoder.encode("0\r\n\r\n"))).s3Code).toBe("IncompleteBody");
  });
});

// --- the real client on the wire ---------------------------------------------------------

describe("@aws-sdk/client-s3 over HTTP, its defaults unchanged", () => {
  test("PutObject of a stream (aws-chunked, STREAMING-UNSIGNED-PAYLOAD-TRAILER with CRC32) and GetObject verify; a wrong secret is refused", async () => {
    const { random } = seededRandom("s3-sigv4 client");
    const payload = randomBytes(random, 200_000 + Math.floor(random() * 1000));
    const seen: string[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(http) {
        const target = http.url.slice(http.url.indexOf("/", "http://".length));
        const query = target.indexOf("?");
        const headers: Record<string, string> = {};
        http.headers.forEach((value, name) => (headers[name] = value));
        const request: SignedRequest = { method: http.method, path: query < 0 ? target : target.slice(0, query), query: query < 0 ? "" : target.slice(query + 1), headers };
        const body = new Uint8Array(await http.arrayBuffer());
        try {
          const verified = await verifyRequest(request, lookup, { ...options, nowMs: Date.now() });
          seen.push(verified.payload);
          if (verified.payload.startsWith("streaming-")) {
            const verifier = new ChunkSignatureVerifier(verified);
            const { out, error } = feed(verifier, body, random);
            if (error !== undefined) throw error;
            if (!Buffer.from(out).equals(Buffer.from(payload))) return new Response("payload differs", { status: 500 });
            seen.push(Object.keys(verifier.end().trailers).join(","));
          }
          return http.method === "GET" ? new Response(payload, { headers: { "content-length": String(payload.length) } }) : new Response(null, { headers: { etag: '"x"' } });
        } catch (error) {
          if (!(error instanceof S3Error)) throw error;
          return new Response(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${error.s3Code}</Code><Message>${error.message}</Message></Error>`, { status: error.httpStatus, headers: { "content-type": "application/xml" } });
        }
      },
    });
    try {
      const endpoint = `http://127.0.0.1:${server.port}`;
      const client = new S3Client({ region, endpoint, forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secret } });
      const pieces: Uint8Array[] = [];
      for (let at = 0; at < payload.length; at += 50_000) pieces.push(payload.slice(at, at + 50_000));
      const body = Readable.from(pieces);
      await client.send(new PutObjectCommand({ Bucket: "photos", Key: "a b/é.bin", Body: body, ContentLength: payload.length }));
      const got = await client.send(new GetObjectCommand({ Bucket: "photos", Key: "a b/é.bin" }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.from(payload))).toBe(true);
      expect(seen).toEqual(["streaming-unsigned-trailer", "x-amz-checksum-crc32", "signed"]); // a GET signs the empty body's hash
      const wrong = new S3Client({ region, endpoint, forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: newSecretKey() } });
      const refused = await wrong.send(new GetObjectCommand({ Bucket: "photos", Key: "x" })).then(() => undefined, (error: unknown) => error);
      expect((refused as { name?: string }).name).toBe("SignatureDoesNotMatch");
    } finally {
      await server.stop(true);
    }
  });
});
