// DeleteObjects: POST /bucket?delete with <Delete><Quiet/>?<Object><Key/></Object>…</Delete>.
// The body is bounded (limits.s3DeleteObjectsBodyBytesMax), at most s3DeleteObjectsKeysMax keys,
// and must carry Content-MD5 or a flexible checksum, as S3 requires; the digest is checked before
// anything is deleted. Each key is deleted as DeleteObject deletes it (a missing key is deleted
// too), a few at once; each key that fails is an <Error> in the result, the others go on.
// Verbose results list every <Deleted> key; Quiet ones only the errors.
import { createHash } from "node:crypto";
import { z } from "zod";
import { limits } from "../../../lib/limits.ts";
import { assert } from "../../../lib/assert.ts";
import { checksumHeader, createChecksum } from "../../../s3/checksums.ts";
import { grantsAllow } from "../../../lib/grants.ts";
import { bucketExists, routerCall, type S3Request } from "./context.ts";
import { checksumAsked, payloadOf } from "./objects.ts";
import { S3Reply, element, s3Errors, s3Namespace, s3ReplyFor, xmlHeader } from "./xml.ts";

const deleteRequest = z.object({
  quiet: z.boolean(),
  keys: z.array(z.string().min(1)).min(1).max(limits.s3DeleteObjectsKeysMax),
});
type DeleteRequest = z.infer<typeof deleteRequest>;

/** The body, bounded and checked against its signed sha256, Content-MD5 or flexible checksum. */
async function readBody(s3: S3Request): Promise<string> {
  const md5Header = s3.request.headers.get("content-md5");
  const asked = checksumAsked(s3);
  if (md5Header === null && asked === undefined) throw new S3Reply("InvalidRequest", 400, "Missing required header for this request: Content-MD5 (or an x-amz-checksum-* header)");
  const pieces: Uint8Array[] = [];
  let bytes = 0;
  const body = payloadOf(s3);
  let next = await body.next();
  while (!next.done) {
    bytes += next.value.byteLength;
    if (bytes > limits.s3DeleteObjectsBodyBytesMax) throw new S3Reply("MaxMessageLengthExceeded", 400, `A DeleteObjects body is at most ${limits.s3DeleteObjectsBodyBytesMax} bytes`);
    pieces.push(next.value);
    next = await body.next();
  }
  const whole = Buffer.concat(pieces);
  const verified = s3.verified;
  if (verified?.payload === "signed" && verified.payloadSha256 !== createHash("sha256").update(whole).digest("hex")) {
    throw new S3Reply("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  if (md5Header !== null && md5Header !== createHash("md5").update(whole).digest("base64")) throw new S3Reply("BadDigest", 400, "The Content-MD5 you specified did not match what we received");
  if (asked !== undefined) {
    const sent = asked.value ?? next.value[checksumHeader(asked.algorithm)];
    const checksum = createChecksum(asked.algorithm);
    checksum.update(whole);
    if (sent !== undefined && sent !== checksum.digestBase64()) throw new S3Reply("BadDigest", 400, `The ${asked.algorithm.toUpperCase()} you specified did not match the calculated checksum`);
  }
  return whole.toString("utf8");
}

const entities: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** XML text with its five entities and character references resolved. */
function xmlUnescape(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, name: string) => {
    if (name.startsWith("#")) {
      const code = name.startsWith("#x") ? Number.parseInt(name.slice(2), 16) : Number.parseInt(name.slice(1), 10);
      if (!(code >= 0 && code <= 0x10ffff)) throw malformed(`${whole} is not a character`);
      return String.fromCodePoint(code);
    }
    const value = entities[name];
    if (value === undefined) throw malformed(`the entity ${whole} is not one XML defines`);
    return value;
  });
}

function malformed(why: string): S3Reply {
  return new S3Reply("MalformedXML", 400, `The XML you provided was not well-formed or did not validate against our published schema: ${why}`);
}

/**
 * The Delete document: a small, strict reader for its one shape (no XML library on the server).
 * Elements other than Quiet and Object/Key are refused, except Object/VersionId "null" (ours).
 */
export function parseDeleteXml(text: string): DeleteRequest {
  const body = text.replace(/^\uFEFF/, "").replace(/^<\?xml[^>]*\?>/, "").trim();
  const root = /^<Delete(?:\s[^>]*)?>([\s\S]*)<\/Delete>$/.exec(body);
  if (root === null) throw malformed("the root element is not <Delete>");
  let rest = (root[1] ?? "").trim();
  let quiet = false;
  const keys: string[] = [];
  while (rest !== "") {
    const quietMatch = /^<Quiet>\s*(true|false)\s*<\/Quiet>/i.exec(rest);
    const objectMatch = /^<Object>([\s\S]*?)<\/Object>/.exec(rest);
    if (quietMatch) quiet = (quietMatch[1] ?? "").toLowerCase() === "true";
    else if (objectMatch) keys.push(parseObject(objectMatch[1] ?? ""));
    else throw malformed(`unexpected ${JSON.stringify(rest.slice(0, 40))} in <Delete>`);
    rest = rest.slice((quietMatch ?? objectMatch)?.[0].length ?? rest.length).trim();
    if (keys.length > limits.s3DeleteObjectsKeysMax) throw malformed(`a DeleteObjects request names at most ${limits.s3DeleteObjectsKeysMax} keys`);
  }
  if (keys.length === 0) throw malformed("<Delete> names no <Object>");
  return deleteRequest.parse({ quiet, keys });
}

function parseObject(inner: string): string {
  let key: string | undefined;
  let rest = inner.trim();
  while (rest !== "") {
    const match = /^<(Key|VersionId|ETag|LastModifiedTime|Size)>([^<]*)<\/\1>/.exec(rest);
    if (match === null) throw malformed(`unexpected ${JSON.stringify(rest.slice(0, 40))} in <Object>`);
    const [whole, name, value = ""] = match;
    if (name === "Key") key = xmlUnescape(value);
    else if (name === "VersionId" && value !== "null") throw s3Errors.notImplemented("DeleteObjects of a version (objects have one version: null)");
    else if (name !== "VersionId") throw s3Errors.notImplemented(`DeleteObjects with a conditional <${name}>`);
    rest = rest.slice(whole.length).trim();
  }
  if (key === undefined || key === "") throw malformed("an <Object> has no <Key>");
  return key;
}

type Outcome = { key: string; ok: true } | { key: string; ok: false; code: string; message: string };

async function deleteOne(s3: S3Request, key: string): Promise<Outcome> {
  if (s3.record !== undefined && !grantsAllow(s3.record.grants, s3.bucket, "delete")) {
    return { key, ok: false, code: "AccessDenied", message: `access key ${s3.record.accessKey} may not delete in bucket ${s3.bucket}` };
  }
  try {
    await routerCall(s3, "ball.delete", { bucket: s3.bucket, key }, { bucket: s3.bucket, key });
    return { key, ok: true };
  } catch (error) {
    const reply = s3ReplyFor(error, { bucket: s3.bucket, key });
    if (reply.s3Code === "NoSuchKey") return { key, ok: true }; // as DeleteObject: deleting what is not there succeeds
    return { key, ok: false, code: reply.s3Code, message: reply.message };
  }
}

/** Every key, at most s3DeleteObjectsConcurrencyMax at once, outcomes in the request's order. */
async function deleteAll(s3: S3Request, keys: readonly string[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array<Outcome>(keys.length);
  let nextIndex = 0;
  const worker = async () => {
    while (nextIndex < keys.length) {
      const index = nextIndex;
      nextIndex += 1;
      outcomes[index] = await deleteOne(s3, keys[index] ?? "");
    }
  };
  await Promise.all(Array.from({ length: Math.min(limits.s3DeleteObjectsConcurrencyMax, keys.length) }, worker));
  assert(outcomes.every((outcome) => outcome !== undefined), "every key of a DeleteObjects has an outcome");
  return outcomes;
}

export async function deleteObjects(s3: S3Request): Promise<Response> {
  const parsed = parseDeleteXml(await readBody(s3));
  if (!(await bucketExists(s3))) throw s3Errors.noSuchBucket(s3.bucket);
  const outcomes = await deleteAll(s3, parsed.keys);
  const parts = outcomes.map((outcome) => {
    if (outcome.ok) return parsed.quiet ? "" : `<Deleted>${element("Key", outcome.key)}</Deleted>`;
    return `<Error>${element("Key", outcome.key)}${element("Code", outcome.code)}${element("Message", outcome.message)}</Error>`;
  });
  return new Response(`${xmlHeader}<DeleteResult xmlns="${s3Namespace}">${parts.join("")}</DeleteResult>`, { status: 200, headers: { "Content-Type": "application/xml" } });
}
