// S3's XML: the error body every refusal carries, and the few result documents the gateway
// answers with. Only writing: the one XML body read so far, DeleteObjects', has its own strict
// reader in delete-objects.ts.
import { MictlanxError, toMictlanxError } from "../../../lib/errors.ts";
import { S3Error } from "../../../s3/errors.ts";

export const xmlHeader = '<?xml version="1.0" encoding="UTF-8"?>\n';
export const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/";

/** Text for an XML element: the five markup characters escaped. */
export function xmlText(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c] ?? c);
}

/** `<Name>text</Name>`. */
export function element(name: string, text: string | number | boolean): string {
  return `<${name}>${xmlText(String(text))}</${name}>`;
}

/**
 * An error the gateway answers with: an S3 code, its HTTP status and a message, and the extra
 * elements of its body. src/s3's S3Error covers authentication; these are the operations' own.
 */
export class S3Reply extends MictlanxError {
  readonly s3Code: string;
  readonly httpStatus: number;
  readonly fields: Readonly<Record<string, string>>;
  constructor(s3Code: string, httpStatus: number, message: string, fields: Record<string, string> = {}) {
    super(httpStatus === 403 ? "forbidden" : httpStatus === 404 ? "not_found" : httpStatus >= 500 ? "internal" : "bad_request", message);
    this.name = "S3Reply";
    this.s3Code = s3Code;
    this.httpStatus = httpStatus;
    this.fields = fields;
  }
}

export const s3Errors = {
  noSuchBucket: (bucket: string) => new S3Reply("NoSuchBucket", 404, `The specified bucket does not exist: ${bucket} (create it with CreateBucket or mictlanx mb)`, { BucketName: bucket }),
  noSuchKey: (bucket: string, key: string) => new S3Reply("NoSuchKey", 404, `The specified key does not exist: ${bucket}/${key}`, { Key: key }),
  notImplemented: (what: string) => new S3Reply("NotImplemented", 501, `${what} is not implemented by the mictlanx S3 gateway yet (docs/s3.md lists what is)`),
  accessDenied: (message: string) => new S3Reply("AccessDenied", 403, message),
  invalidArgument: (message: string) => new S3Reply("InvalidArgument", 400, message),
};

/** How a failure from the router's own paths reads to an S3 client. `bucket`/`key`: what a not_found names. */
export function s3ReplyFor(error: unknown, target: { bucket?: string; key?: string } = {}): S3Reply {
  if (error instanceof S3Reply) return error;
  if (error instanceof S3Error) return new S3Reply(error.s3Code, error.httpStatus, error.message, { ...error.fields });
  const typed = toMictlanxError(error);
  switch (typed.code) {
    case "not_found":
      if (target.key !== undefined && target.bucket !== undefined && !/bucket/i.test(typed.message)) return s3Errors.noSuchKey(target.bucket, target.key);
      return target.bucket === undefined ? new S3Reply("NoSuchBucket", 404, typed.message) : s3Errors.noSuchBucket(target.bucket);
    case "forbidden":
      return s3Errors.accessDenied(typed.message);
    case "bad_request":
    case "usage":
      return s3Errors.invalidArgument(typed.message);
    case "conflict":
      return new S3Reply("OperationAborted", 409, typed.message);
    case "full":
      return new S3Reply("ServiceUnavailable", 503, `the VSS is out of space: ${typed.message}`);
    case "not_implemented":
      return new S3Reply("NotImplemented", 501, typed.message);
    case "unavailable":
    case "timeout":
    case "overloaded":
    case "insufficient_peers":
      return new S3Reply("ServiceUnavailable", 503, typed.message);
    default:
      return new S3Reply("InternalError", 500, typed.message);
  }
}

/** The XML error body S3 sends: Code, Message, the extra fields, Resource and RequestId. */
export function errorBody(reply: S3Reply, resource: string, requestId: string): string {
  const fields = Object.entries(reply.fields).map(([name, value]) => element(name, value)).join("");
  return `${xmlHeader}<Error>${element("Code", reply.s3Code)}${element("Message", reply.message)}${fields}${element("Resource", resource)}${element("RequestId", requestId)}</Error>`;
}
