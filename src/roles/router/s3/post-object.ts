// PostObject: a browser form upload (POST /bucket, multipart/form-data) signed by a POST policy
// (src/s3/post-policy.ts) instead of a SigV4 header. The fields come first and are read whole
// (bounded) to check the policy before any byte is stored; the file part, last, is streamed
// into chunks through PutObject's path (storeBody), never held whole.
//
// The file's size must be known before it is stored (the chunks are declared with it): it is the
// request's Content-Length less what precedes the file's bytes and the closing
// `\r\n--BOUNDARY--\r\n` that browsers, curl and fetch's FormData end a form with. A body that
// ends otherwise (no CRLF after the closing boundary, fields after the file) is refused, nothing
// stored.
import { limits } from "../../../lib/limits.ts";
import { assert } from "../../../lib/assert.ts";
import type { KeyRecord, KeyVerifier } from "../../../net/authorize.ts";
import { FormDataParser, formBoundary, type FormEvent } from "../../../s3/form-data.ts";
import { verifyPostPolicy, type VerifiedPolicy } from "../../../s3/post-policy.ts";
import { S3Error } from "../../../s3/errors.ts";
import { requireBucket, requireGrant, type S3Request } from "./context.ts";
import { checksumAsked, storeBody, userMetadata } from "./objects.ts";
import { cannedAclOf, objectAclTags } from "./acl.ts";
import { element, S3Reply, s3Errors, s3Namespace, xmlHeader } from "./xml.ts";

/** Whether a request is a PostObject: a form POSTed to a bucket. */
export function isPostObject(request: Request, bucket: string, key: string): boolean {
  return request.method === "POST" && bucket !== "" && key === "" && formBoundary(request.headers.get("content-type")) !== undefined;
}

interface PostForm {
  /** Lower-case names. */
  fields: Map<string, string>;
  file: { filename: string; contentType: string };
  size: number;
  /** The file's bytes, checked to end where `size` said. */
  data: AsyncGenerator<Uint8Array, Record<string, string>>;
  policy: VerifiedPolicy | undefined;
}

/** The form read up to its file, per request: authenticatePost reads it, postObject stores it. */
const forms = new WeakMap<Request, PostForm>();

/** Fields that name something the gateway does not keep yet: refused rather than dropped. */
const unsupportedFields = ["success_action_redirect", "redirect", "tagging", "x-amz-server-side-encryption", "x-amz-storage-class", "x-amz-website-redirect-location"];
/** Fields PutObject takes as headers: passed to its path as such. */
const headerFields = ["cache-control", "content-disposition", "content-encoding", "content-language", "expires"];

/**
 * Reads the form's fields, checks its policy and signature (keys undefined: --insecure, believed),
 * and answers the request as the key that signed the policy.
 */
export async function authenticatePost(base: Omit<S3Request, "record" | "verified">, keys: KeyVerifier | undefined): Promise<S3Request> {
  const request = base.request;
  const boundary = formBoundary(request.headers.get("content-type"));
  assert(boundary !== undefined, "authenticatePost: a form's boundary");
  const length = Number(request.headers.get("content-length") ?? Number.NaN);
  if (!Number.isSafeInteger(length) || length < 0) throw new S3Reply("MissingContentLength", 411, "A POST upload must say its Content-Length");
  const parser = new FormDataParser(boundary, { fieldsBytesMax: limits.s3PostFieldsBytesMax, fieldsMax: limits.s3PostFieldsMax, partHeaderBytesMax: limits.s3PostPartHeaderBytesMax });
  const events = formEvents(request, parser);
  const fields = new Map<string, string>();
  let next = await events.next();
  for (; !next.done && next.value.kind === "field"; next = await events.next()) fields.set(next.value.name.toLowerCase(), next.value.value);
  if (next.done || next.value.kind !== "file") throw new S3Reply("InvalidArgument", 400, "POST requires exactly one file upload per request: a field named file, the form's last");
  const file = next.value;
  // \r\n--BOUNDARY (the delimiter), -- (closing it), \r\n (the end of the form).
  const size = length - file.dataOffset - (4 + boundary.length) - 2 - 2;
  if (size < 0) throw s3Errors.invalidArgument("The POST body is shorter than its fields and closing boundary");
  const key = (fields.get("key") ?? "").replaceAll("${filename}", file.filename);
  if (fields.has("key")) fields.set("key", key);
  let record: KeyRecord | undefined;
  // --insecure: there are no keys to sign a policy with; the form is believed, as every request is.
  const policy = keys === undefined ? undefined : await verifyPostPolicy(fields, async (accessKey) => {
    record = await keys.lookup(accessKey);
    if (record?.revoked) throw new S3Error("AccessDenied", `access key ${accessKey} is revoked`);
    return record?.secretKey;
  }, { bucket: base.bucket, region: base.region, nowMs: Date.now() });
  if (keys !== undefined && record === undefined) throw s3Errors.accessDenied("no access key signed this POST policy");
  forms.set(request, { fields, file: { filename: file.filename, contentType: file.contentType }, size, data: fileData(events, size), policy });
  return { ...base, key: "", record, verified: undefined };
}

async function* formEvents(request: Request, parser: FormDataParser): AsyncGenerator<FormEvent> {
  if (request.body) for await (const piece of request.body as AsyncIterable<Uint8Array>) yield* parser.push(piece);
  parser.end();
}

/** The file's bytes; refused when the form does not end where the file's size was reckoned. */
async function* fileData(events: AsyncGenerator<FormEvent>, size: number): AsyncGenerator<Uint8Array, Record<string, string>> {
  const misshapen = (got: string) => new S3Reply("MalformedPOSTRequest", 400, `The body of your POST request is not well-formed multipart/form-data: the file must be the last field and the form end with --BOUNDARY--CRLF (the file was ${got} bytes, where the body's length left ${size}); nothing was stored`);
  let sent = 0;
  for await (const event of events) {
    if (event.kind === "data") {
      sent += event.data.byteLength;
      if (sent > size) throw misshapen(`more than ${size}`); // before PutObject's path would take the bytes
      yield event.data;
    }
    if (event.kind === "fileEnd" && event.size !== size) throw misshapen(String(event.size));
  }
  return {};
}

export async function postObject(s3: S3Request): Promise<Response> {
  const form = forms.get(s3.request);
  assert(form !== undefined, "postObject: the form was read by authenticatePost");
  forms.delete(s3.request);
  const key = form.fields.get("key");
  if (key === undefined || key === "") throw s3Errors.invalidArgument("Bucket POST must contain a field named 'key'. If it is specified, please check the order of the fields (the file is last).");
  const target = { ...s3, key };
  requireGrant(target, "write", "PostObject");
  for (const name of unsupportedFields) if (form.fields.has(name)) throw s3Errors.notImplemented(`PostObject with the ${name} field`);
  const acl = form.fields.get("acl");
  const aclTags = objectAclTags(cannedAclOf(new Headers(acl === undefined ? {} : { "x-amz-acl": acl })));
  const status = form.fields.get("success_action_status") ?? "204";
  if (!["200", "201", "204"].includes(status)) throw s3Errors.invalidArgument(`success_action_status must be 200, 201 or 204, not ${status}`);
  checkSize(form);
  // PutObject's path reads Content-Type, x-amz-meta-* and checksums from headers: the form's, as headers.
  const headers = new Headers({ "content-type": form.fields.get("content-type") ?? form.file.contentType });
  for (const [name, value] of form.fields) {
    if (name.startsWith("x-amz-meta-") || name.startsWith("x-amz-checksum-") || headerFields.includes(name)) headers.set(name, Buffer.from(value, "utf8").toString("latin1"));
  }
  const asPut = { ...target, request: new Request(s3.request.url, { method: "PUT", headers }) };
  const tags = { ...userMetadata(asPut), ...aclTags };
  const checksum = checksumAsked(asPut);
  await requireBucket(target);
  const stored = await storeBody(asPut, form.size, tags, { body: form.data, checksum });
  const etag = `"${stored.etag}"`;
  const location = `/${encodeURIComponent(s3.bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`;
  const replyHeaders = { ETag: etag, Location: location, ...stored.checksumHeaders };
  if (status === "201") {
    const body = `${xmlHeader}<PostResponse xmlns="${s3Namespace}">${element("Location", location)}${element("Bucket", s3.bucket)}${element("Key", key)}${element("ETag", etag)}</PostResponse>`;
    return new Response(body, { status: 201, headers: { ...replyHeaders, "Content-Type": "application/xml" } });
  }
  return new Response(null, { status: Number(status), headers: replyHeaders });
}

function checkSize(form: PostForm): void {
  if (form.size > limits.s3PutObjectBytesMax) throw new S3Reply("EntityTooLarge", 400, `Your proposed upload exceeds the maximum allowed size: ${form.size} bytes, over ${limits.s3PutObjectBytesMax}`, { ProposedSize: String(form.size), MaxSizeAllowed: String(limits.s3PutObjectBytesMax) });
  const range = form.policy?.lengthRange;
  if (range === undefined) return;
  if (form.size > range.max) throw new S3Reply("EntityTooLarge", 400, `Your proposed upload exceeds the maximum allowed size: ${form.size} bytes, over the policy's content-length-range ${range.min}–${range.max}`, { ProposedSize: String(form.size), MaxSizeAllowed: String(range.max) });
  if (form.size < range.min) throw new S3Reply("EntityTooSmall", 400, `Your proposed upload is smaller than the minimum allowed size: ${form.size} bytes, under the policy's content-length-range ${range.min}–${range.max}`, { ProposedSize: String(form.size), MinSizeAllowed: String(range.min) });
}
