// AWS Signature Version 4 for the S3 gateway: checks that a request was signed with the secret
// of an access key, by header (`Authorization: AWS4-HMAC-SHA256 …`) or by a presigned URL
// (`X-Amz-Algorithm=…&X-Amz-Signature=…`), and hands back what the rest of the request needs:
// the key, the signing key and seed signature that aws-chunked bodies chain from
// (chunked.ts), and how the payload is to be checked.
//
//   canonical request = method \n canonical URI \n canonical query \n
//                       name:value\n … (each signed header) \n signed;header;names \n payload hash
//   string to sign    = AWS4-HMAC-SHA256 \n 20250101T000000Z \n 20250101/region/s3/aws4_request \n
//                       hex(sha256(canonical request))
//   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), "s3"), "aws4_request")
//
// Canonical forms as S3 computes them: the path is decoded and encoded once (S3 does not
// double-encode, unlike other services), '/' kept; query names and values are decoded ('+' is
// a space, as Go's and Python's clients send it) and encoded again, then sorted by name and
// value; header values trimmed with inner runs of spaces and tabs collapsed, several values of
// one header joined by ','. Signatures are compared in constant time.
//
// Pure: no I/O. The gateway passes the request as it came off the wire and a way to find a
// key's secret (access keys' secrets are recoverable: docs/security.md).
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { assert } from "../lib/assert.ts";
import { limits } from "../lib/limits.ts";
import { S3Error } from "./errors.ts";

export const sigv4Algorithm = "AWS4-HMAC-SHA256";
export const s3Service = "s3";
const terminator = "aws4_request";
export const unsignedPayload = "UNSIGNED-PAYLOAD";
/** sha256 of no bytes: the payload hash of a request without a body. */
export const emptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** x-amz-content-sha256 values that announce an aws-chunked body, and what each means here. */
const streamingModes = {
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD": "streaming-signed",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER": "streaming-signed-trailer",
  "STREAMING-UNSIGNED-PAYLOAD-TRAILER": "streaming-unsigned-trailer",
} as const;

/**
 * How the body is to be checked: `signed`, against `payloadSha256` (the gateway hashes what it
 * receives); `unsigned`, not at all; `streaming-*`, through a ChunkSignatureVerifier.
 */
export type PayloadMode = "signed" | "unsigned" | (typeof streamingModes)[keyof typeof streamingModes];

export interface SignedRequest {
  method: string;
  /** The path as it came on the wire, still percent-encoded, without the query. */
  path: string;
  /** The raw query string, without its '?'. */
  query: string;
  /** Lower-case names; a header sent several times as an array of its values, in order. */
  headers: Readonly<Record<string, string | readonly string[]>>;
  /** The body's sha256 in hex, when the gateway already has it: checked against x-amz-content-sha256. */
  payloadHash?: string;
}

export type SecretLookup = (accessKey: string) => Promise<string | undefined>;

export interface VerifyOptions {
  /** The region this gateway signs for (`--s3-region`). */
  region: string;
  /** Wall clock now, in ms since the epoch. */
  nowMs: number;
  /** How far X-Amz-Date may be from nowMs (limits.s3ClockSkewMsMax). */
  clockSkewMaxMs: number;
}

export interface VerifiedRequest {
  accessKey: string;
  auth: "header" | "presigned";
  signingKey: Uint8Array;
  /** The request's signature (hex): the first link of an aws-chunked body's chain. */
  seedSignature: string;
  /** X-Amz-Date as sent, `20250101T000000Z`. */
  amzDate: string;
  /** `20250101/us-east-1/s3/aws4_request`. */
  scope: string;
  payload: PayloadMode;
  /** For `signed`: the sha256 (hex) the body must have. */
  payloadSha256: string | undefined;
  /** x-amz-decoded-content-length: the payload's size inside an aws-chunked body. */
  decodedContentLength: number | undefined;
  /** x-amz-trailer: the trailing headers an aws-chunked body promises (lower case). */
  trailerNames: readonly string[];
}

/** Which authentication a request carries (anonymous ones are the gateway's to allow or refuse). */
export function authKind(request: SignedRequest): "header" | "presigned" | "anonymous" {
  const header = headerJoined(request.headers, "authorization") !== undefined;
  const query = parseQuery(request.query).some(([name]) => name === "X-Amz-Algorithm" || name === "X-Amz-Signature");
  if (header && query) {
    throw new S3Error("InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified");
  }
  return header ? "header" : query ? "presigned" : "anonymous";
}

/** Checks a request's SigV4 signature; throws an S3Error saying what S3 would answer. */
export async function verifyRequest(request: SignedRequest, lookupSecret: SecretLookup, options: VerifyOptions): Promise<VerifiedRequest> {
  assert(options.clockSkewMaxMs >= 0 && Number.isFinite(options.nowMs), "verifyRequest: bad clock options");
  const kind = authKind(request);
  if (kind === "anonymous") throw new S3Error("AccessDenied", "Anonymous access is not allowed here: sign the request with an access key (AWS Signature Version 4)");
  const claim = kind === "header" ? headerClaim(request, options) : presignedClaim(request, options);
  rejectUnsignedAmzHeaders(request.headers, claim.signedHeaders);
  const secret = await lookupSecret(claim.accessKey);
  if (secret === undefined) {
    throw new S3Error("InvalidAccessKeyId", `The AWS Access Key Id you provided does not exist in our records: ${claim.accessKey} is not a key of this VSS (mictlanx key ls)`, { AWSAccessKeyId: claim.accessKey });
  }
  const canonicalRequest = buildCanonicalRequest(request, claim.signedHeaders, claim.payloadHashForSigning, claim.excludeSignatureParam);
  const scope = `${claim.date}/${options.region}/${s3Service}/${terminator}`;
  const stringToSign = [sigv4Algorithm, claim.amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
  const signingKey = deriveSigningKey(secret, claim.date, options.region, s3Service);
  const expected = hmacHex(signingKey, stringToSign);
  if (!hexEqual(expected, claim.signature)) {
    throw new S3Error("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.", {
      AWSAccessKeyId: claim.accessKey,
      StringToSign: stringToSign,
      SignatureProvided: claim.signature,
      CanonicalRequest: canonicalRequest,
    });
  }
  return { accessKey: claim.accessKey, auth: kind, signingKey, seedSignature: expected, amzDate: claim.amzDate, scope, ...claim.payload };
}

/** What a request says about itself before its signature is checked. */
interface Claim {
  accessKey: string;
  date: string;
  amzDate: string;
  signedHeaders: readonly string[];
  signature: string;
  payloadHashForSigning: string;
  excludeSignatureParam: boolean;
  payload: Pick<VerifiedRequest, "payload" | "payloadSha256" | "decodedContentLength" | "trailerNames">;
}

// --- header auth ------------------------------------------------------------------------------

function headerClaim(request: SignedRequest, options: VerifyOptions): Claim {
  const authorization = headerJoined(request.headers, "authorization") ?? "";
  const fields = parseAuthorization(authorization);
  const amzDate = headerJoined(request.headers, "x-amz-date");
  if (amzDate === undefined) throw new S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header: send x-amz-date");
  const atMs = parseAmzDate(amzDate, () => new S3Error("AccessDenied", `x-amz-date ${JSON.stringify(amzDate)} is not of the form 20250101T000000Z`));
  const credential = parseCredential(fields.credential, options.region, headerMalformed);
  if (credential.date !== amzDate.slice(0, 8)) throw headerMalformed(`Invalid credential date "${credential.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  checkSkew(atMs, amzDate, options);
  const contentSha256 = headerJoined(request.headers, "x-amz-content-sha256");
  if (contentSha256 === undefined) throw new S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
  const payload = payloadOf(contentSha256, request);
  return { ...credential, amzDate, signedHeaders: fields.signedHeaders, signature: fields.signature, payloadHashForSigning: contentSha256, excludeSignatureParam: false, payload };
}

function headerMalformed(detail: string, fields: Record<string, string> = {}): S3Error {
  return new S3Error("AuthorizationHeaderMalformed", `The authorization header is malformed; ${detail}`, fields);
}

interface AuthorizationFields {
  credential: string;
  signedHeaders: string[];
  signature: string;
}

/** `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` (commas, spaces, any order). */
export function parseAuthorization(value: string): AuthorizationFields {
  if (value.length > limits.s3AuthorizationBytesMax) throw headerMalformed(`it is longer than ${limits.s3AuthorizationBytesMax} bytes`);
  const space = value.indexOf(" ");
  const algorithm = space < 0 ? value : value.slice(0, space);
  if (algorithm !== sigv4Algorithm) {
    throw new S3Error("InvalidRequest", `The authorization mechanism you have provided is not supported (${JSON.stringify(algorithm.slice(0, 32))}). Please use AWS4-HMAC-SHA256.`);
  }
  const parts = new Map<string, string>();
  for (const piece of value.slice(space + 1).split(",")) {
    const trimmed = piece.trim();
    if (trimmed === "") continue;
    const equals = trimmed.indexOf("=");
    if (equals < 0) throw headerMalformed(`the part ${JSON.stringify(trimmed.slice(0, 64))} is not name=value`);
    parts.set(trimmed.slice(0, equals).trim(), trimmed.slice(equals + 1).trim());
  }
  const credential = parts.get("Credential");
  const signedHeaders = parts.get("SignedHeaders");
  const signature = parts.get("Signature");
  if (credential === undefined) throw headerMalformed("a non-empty Access Key (AKID) must be provided in the credential (Credential=…)");
  if (signedHeaders === undefined) throw headerMalformed("it has no SignedHeaders=…");
  if (signature === undefined) throw headerMalformed("it has no Signature=…");
  return { credential, signedHeaders: parseSignedHeaders(signedHeaders, headerMalformed), signature };
}

// --- presigned URLs ---------------------------------------------------------------------------

function presignedClaim(request: SignedRequest, options: VerifyOptions): Claim {
  const params = presignParams(request.query);
  if (params.algorithm !== sigv4Algorithm) {
    throw queryError(`X-Amz-Algorithm only supports "${sigv4Algorithm}", not ${JSON.stringify(params.algorithm.slice(0, 32))}`);
  }
  const atMs = parseAmzDate(params.amzDate, () => queryError(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'", not ${JSON.stringify(params.amzDate.slice(0, 32))}`));
  const credential = parseCredential(params.credential, options.region, (detail, fields) => queryError(`Error parsing the X-Amz-Credential parameter; ${detail}`, fields));
  if (credential.date !== params.amzDate.slice(0, 8)) throw queryError(`Invalid credential date "${credential.date}". This date is not the same as X-Amz-Date: "${params.amzDate.slice(0, 8)}".`);
  const expiresSeconds = parseExpires(params.expires);
  if (atMs - options.nowMs > options.clockSkewMaxMs) throw new S3Error("AccessDenied", "Request is not valid yet: its X-Amz-Date is in the future", { "X-Amz-Date": params.amzDate, ServerTime: amzDateOf(options.nowMs) });
  const expiresAtMs = atMs + expiresSeconds * 1000;
  if (options.nowMs > expiresAtMs) {
    throw new S3Error("AccessDenied", "Request has expired", { "X-Amz-Expires": String(expiresSeconds), Expires: new Date(expiresAtMs).toISOString(), ServerTime: new Date(options.nowMs).toISOString() });
  }
  // S3 signs presigned URLs' payloads as UNSIGNED-PAYLOAD unless the URL names a hash.
  const payloadHash = params.contentSha256 ?? unsignedPayload;
  if (payloadHash !== unsignedPayload && !isSha256Hex(payloadHash)) throw queryError("X-Amz-Content-Sha256 must be UNSIGNED-PAYLOAD or a sha256 in hex");
  const payload = payloadOf(payloadHash, request);
  return { ...credential, amzDate: params.amzDate, signedHeaders: params.signedHeaders, signature: params.signature, payloadHashForSigning: payloadHash, excludeSignatureParam: true, payload };
}

function queryError(message: string, fields: Record<string, string> = {}): S3Error {
  return new S3Error("AuthorizationQueryParametersError", message, fields);
}

interface PresignParams {
  algorithm: string;
  credential: string;
  amzDate: string;
  expires: string;
  signedHeaders: string[];
  signature: string;
  contentSha256: string | undefined;
}

function presignParams(query: string): PresignParams {
  const seen = new Map<string, string>();
  for (const [name, value] of parseQuery(query)) {
    if (!name.startsWith("X-Amz-")) continue;
    if (seen.has(name)) throw queryError(`${name} is given more than once`);
    seen.set(name, value);
  }
  const required = (name: string): string => {
    const value = seen.get(name);
    if (value === undefined) {
      throw queryError("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.");
    }
    return value;
  };
  const signedHeaders = required("X-Amz-SignedHeaders");
  if (signedHeaders.length > limits.s3AuthorizationBytesMax) throw queryError(`X-Amz-SignedHeaders is longer than ${limits.s3AuthorizationBytesMax} bytes`);
  return {
    algorithm: required("X-Amz-Algorithm"),
    credential: required("X-Amz-Credential"),
    amzDate: required("X-Amz-Date"),
    expires: required("X-Amz-Expires"),
    signedHeaders: parseSignedHeaders(signedHeaders, (detail) => queryError(`X-Amz-SignedHeaders: ${detail}`)),
    signature: required("X-Amz-Signature"),
    contentSha256: seen.get("X-Amz-Content-Sha256"),
  };
}

function parseExpires(value: string): number {
  if (!/^[0-9]{1,7}$/.test(value)) throw queryError("X-Amz-Expires should be a number of seconds");
  const seconds = Number(value);
  if (seconds > limits.s3PresignExpiresSecondsMax) throw queryError(`X-Amz-Expires must be less than a week (in seconds) that is ${limits.s3PresignExpiresSecondsMax}`);
  return seconds;
}

// --- the parts both share ---------------------------------------------------------------------

type MalformedError = (detail: string, fields?: Record<string, string>) => S3Error;

/** `AKID/20250101/us-east-1/s3/aws4_request`, checked against this gateway's region and service. */
function parseCredential(credential: string, region: string, malformed: MalformedError): { accessKey: string; date: string } {
  const parts = credential.split("/");
  const shape = 'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request"';
  if (parts.length < 5) throw malformed(`the Credential is mal-formed; ${shape}.`);
  const [date, claimedRegion, service, last] = parts.slice(-4) as [string, string, string, string];
  const accessKey = parts.slice(0, -4).join("/");
  if (accessKey === "" || accessKey.length > limits.accessKeyIdBytesMax) throw malformed(`the Credential is mal-formed; ${shape}.`);
  if (!/^[0-9]{8}$/.test(date)) throw malformed(`the Credential's date ${JSON.stringify(date)} is not YYYYMMDD; ${shape}.`);
  if (claimedRegion !== region) throw malformed(`the region '${claimedRegion}' is wrong; expecting '${region}'`, { Region: region });
  if (service !== s3Service) throw malformed(`incorrect service '${service}'. This endpoint belongs to '${s3Service}'.`);
  if (last !== terminator) throw malformed(`incorrect terminal '${last}'. This endpoint uses '${terminator}'.`);
  return { accessKey, date };
}

function parseSignedHeaders(value: string, malformed: MalformedError): string[] {
  const names = value.split(";");
  for (const name of names) {
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw malformed(`the signed header name ${JSON.stringify(name.slice(0, 64))} is not a lower-case header name`);
  }
  if (!names.includes("host")) throw malformed("SignedHeaders must include host");
  return names;
}

/** `20250101T000000Z` → ms since the epoch; `invalid` builds the error for anything else. */
export function parseAmzDate(value: string, invalid: () => S3Error): number {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (match === null) throw invalid();
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  if (amzDateOf(ms) !== value) throw invalid(); // 20250231 and the like roll over: refuse them
  return ms;
}

export function amzDateOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

function checkSkew(atMs: number, amzDate: string, options: VerifyOptions): void {
  if (Math.abs(options.nowMs - atMs) <= options.clockSkewMaxMs) return;
  throw new S3Error("RequestTimeTooSkewed", `The difference between the request time and the current time is too large (more than ${options.clockSkewMaxMs / 60_000} minutes): check this host's clock`, {
    RequestTime: amzDate,
    ServerTime: amzDateOf(options.nowMs),
    MaxAllowedSkewMilliseconds: String(options.clockSkewMaxMs),
  });
}

/** What x-amz-content-sha256 (or a presigned URL's payload hash) says about the body. */
function payloadOf(contentSha256: string, request: SignedRequest): Claim["payload"] {
  const none = { payloadSha256: undefined, decodedContentLength: undefined, trailerNames: [] };
  if (contentSha256 === unsignedPayload) return { ...none, payload: "unsigned" };
  if (isSha256Hex(contentSha256)) {
    if (request.payloadHash !== undefined && request.payloadHash !== contentSha256) {
      throw new S3Error("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.", { ClientComputedContentSHA256: contentSha256, S3ComputedContentSHA256: request.payloadHash });
    }
    return { ...none, payload: "signed", payloadSha256: contentSha256 };
  }
  const mode = Object.hasOwn(streamingModes, contentSha256) ? streamingModes[contentSha256 as keyof typeof streamingModes] : undefined;
  if (mode === undefined) throw new S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER), STREAMING-UNSIGNED-PAYLOAD-TRAILER, or a valid sha256 value.");
  return { payload: mode, payloadSha256: undefined, decodedContentLength: decodedLength(request.headers), trailerNames: trailerNamesOf(request.headers, mode) };
}

function decodedLength(headers: SignedRequest["headers"]): number {
  const value = headerJoined(headers, "x-amz-decoded-content-length");
  if (value === undefined) throw new S3Error("MissingContentLength", "An aws-chunked upload must say its payload's size in x-amz-decoded-content-length");
  if (!/^[0-9]{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) throw new S3Error("InvalidArgument", `x-amz-decoded-content-length ${JSON.stringify(value.slice(0, 32))} is not a size in bytes`);
  return Number(value);
}

function trailerNamesOf(headers: SignedRequest["headers"], mode: PayloadMode): string[] {
  const value = headerJoined(headers, "x-amz-trailer");
  if (mode === "streaming-signed") {
    if (value !== undefined) throw new S3Error("InvalidRequest", "x-amz-trailer needs x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER (or the unsigned trailer variant)");
    return [];
  }
  if (value === undefined) throw new S3Error("InvalidRequest", `x-amz-content-sha256 ${mode === "streaming-signed-trailer" ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" : "STREAMING-UNSIGNED-PAYLOAD-TRAILER"} needs an x-amz-trailer header naming the trailing checksum`);
  const names = value.split(",").map((name) => name.trim().toLowerCase()).filter((name) => name !== "");
  for (const name of names) {
    if (!/^x-amz-checksum-[a-z0-9]+$/.test(name)) throw new S3Error("InvalidArgument", `x-amz-trailer may name x-amz-checksum-* headers only, not ${JSON.stringify(name.slice(0, 64))}`);
  }
  return names;
}

/** Every x-amz-* header present must be signed: otherwise anyone on the path (or holding a presigned URL) could add one. */
function rejectUnsignedAmzHeaders(headers: SignedRequest["headers"], signed: readonly string[]): void {
  const unsigned = Object.keys(headers).filter((name) => name.startsWith("x-amz-") && !signed.includes(name));
  if (unsigned.length > 0) throw new S3Error("AccessDenied", `There were headers present in the request which were not signed: ${unsigned.join(", ")}`, { HeadersNotSigned: unsigned.join(", ") });
}

// --- canonical forms --------------------------------------------------------------------------

export function buildCanonicalRequest(request: SignedRequest, signedHeaders: readonly string[], payloadHash: string, excludeSignatureParam: boolean): string {
  const headerLines = signedHeaders.map((name) => `${name}:${canonicalHeaderValue(ownHeader(request.headers, name))}\n`).join("");
  return [request.method.toUpperCase(), canonicalUri(request.path), canonicalQuery(request.query, excludeSignatureParam), headerLines, signedHeaders.join(";"), payloadHash].join("\n");
}

/** The path decoded and encoded once, '/' kept: S3 does not double-encode. */
export function canonicalUri(rawPath: string): string {
  const path = rawPath === "" ? "/" : rawPath;
  return uriEncode(percentDecode(path, false), true);
}

/** name=value pairs, decoded then encoded, sorted by name then value; X-Amz-Signature dropped for presigned URLs. */
export function canonicalQuery(rawQuery: string, excludeSignatureParam: boolean): string {
  const pairs = parseQueryBytes(rawQuery)
    .map(([name, value]) => [uriEncode(name, false), uriEncode(value, false)] as const)
    .filter(([name]) => !(excludeSignatureParam && name === "X-Amz-Signature"));
  pairs.sort(([nameA, valueA], [nameB, valueB]) => (nameA < nameB ? -1 : nameA > nameB ? 1 : valueA < valueB ? -1 : valueA > valueB ? 1 : 0));
  return pairs.map(([name, value]) => `${name}=${value}`).join("&");
}

export function canonicalHeaderValue(value: string | readonly string[] | undefined): string {
  if (value === undefined) return "";
  const values = typeof value === "string" ? [value] : value;
  return values.map((one) => one.replace(/[ \t]+/g, " ").trim()).join(",");
}

/** A header's value, never something inherited ("__proto__" is a name a client can sign). */
function ownHeader(headers: SignedRequest["headers"], name: string): string | readonly string[] | undefined {
  return Object.hasOwn(headers, name) ? headers[name] : undefined;
}

function headerJoined(headers: SignedRequest["headers"], name: string): string | undefined {
  const value = ownHeader(headers, name);
  if (value === undefined) return undefined;
  return typeof value === "string" ? value : value.join(",");
}

/** The query's pairs, decoded to text (invalid UTF-8 becomes U+FFFD; only used to find X-Amz-* values). */
function parseQuery(rawQuery: string): [string, string][] {
  const decoder = new TextDecoder();
  return parseQueryBytes(rawQuery).map(([name, value]) => [decoder.decode(name), decoder.decode(value)]);
}

function parseQueryBytes(rawQuery: string): [Uint8Array, Uint8Array][] {
  const query = rawQuery.startsWith("?") ? rawQuery.slice(1) : rawQuery;
  const pairs: [Uint8Array, Uint8Array][] = [];
  for (const piece of query.split("&")) {
    if (piece === "") continue;
    const equals = piece.indexOf("=");
    const name = equals < 0 ? piece : piece.slice(0, equals);
    const value = equals < 0 ? "" : piece.slice(equals + 1);
    pairs.push([percentDecode(name, true), percentDecode(value, true)]);
  }
  return pairs;
}

const utf8 = new TextEncoder();

/** %XX to its byte ('+' to a space in a query); a '%' not followed by two hex digits stays itself. */
function percentDecode(text: string, plusIsSpace: boolean): Uint8Array {
  const bytes = utf8.encode(text);
  const out = new Uint8Array(bytes.length);
  let length = 0;
  for (let at = 0; at < bytes.length; at++) {
    const byte = bytes[at] ?? 0;
    const high = hexDigit(bytes[at + 1]);
    const low = hexDigit(bytes[at + 2]);
    if (byte === 0x25 && high >= 0 && low >= 0) {
      out[length++] = high * 16 + low;
      at += 2;
    } else {
      out[length++] = plusIsSpace && byte === 0x2b ? 0x20 : byte;
    }
  }
  return out.subarray(0, length);
}

function hexDigit(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  return -1;
}

/** AWS's UriEncode: A-Z a-z 0-9 - . _ ~ kept, every other byte %XX in upper case ('/' kept in a path). */
function uriEncode(bytes: Uint8Array, keepSlash: boolean): string {
  let out = "";
  for (const byte of bytes) {
    const unreserved = (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x30 && byte <= 0x39) || byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x7e;
    out += unreserved || (keepSlash && byte === 0x2f) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

// --- hashing ----------------------------------------------------------------------------------

export function deriveSigningKey(secret: string, date: string, region: string, service: string): Uint8Array {
  assert(/^[0-9]{8}$/.test(date), "a signing key's date is YYYYMMDD");
  const dateKey = createHmac("sha256", `AWS4${secret}`).update(date).digest();
  const regionKey = createHmac("sha256", dateKey).update(region).digest();
  const serviceKey = createHmac("sha256", regionKey).update(service).digest();
  return createHmac("sha256", serviceKey).update(terminator).digest();
}

export function hmacHex(key: Uint8Array, text: string): string {
  return createHmac("sha256", key).update(text).digest("hex");
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export function isSha256Hex(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value);
}

/** Constant time for equal lengths (a signature's length is no secret). */
export function hexEqual(expected: string, provided: string): boolean {
  const a = Buffer.from(expected, "latin1");
  const b = Buffer.from(provided, "latin1");
  return a.length === b.length && timingSafeEqual(a, b);
}
