// What the S3 operations work with: the router's own operations (called in process, with the
// arguments parsed by their schemas as if they came over the wire), and the request as verified.
import { ZodError } from "zod";
import type { ArgsOf, ResultOf } from "../../../protocol/envelope.ts";
import type { RouterOps } from "../../../protocol/router.ts";
import type { KeyRecord } from "../../../net/authorize.ts";
import type { VerifiedRequest } from "../../../s3/sigv4.ts";
import { actions, grantsAllow, type Action } from "../../../lib/grants.ts";
import { s3Errors, s3ReplyFor, S3Reply } from "./xml.ts";

/** One of the router's operations, run here as its RPC handler runs it, for the key (undefined: --insecure). */
export type RouterCall = <K extends keyof RouterOps>(op: K, args: ArgsOf<RouterOps, K>, key: KeyRecord | undefined) => Promise<ResultOf<RouterOps, K>>;

export interface S3Request {
  request: Request;
  url: URL;
  bucket: string;
  /** Decoded; "" for a bucket request. */
  key: string;
  query: URLSearchParams;
  /** The key that signed it; undefined when the router runs --insecure. */
  record: KeyRecord | undefined;
  /** How the body is framed and checked; undefined without a signature (--insecure). */
  verified: VerifiedRequest | undefined;
  call: RouterCall;
  /** The region the gateway signs for (--s3-region): what GetBucketLocation and HeadBucket name. */
  region: string;
  /**
   * No Authorization header and no X-Amz-Signature, on a VSS with keys (src/roles/router/s3/acl.ts).
   * Such a request may do only `publicAction`, which a public-read ACL opened; nothing without one.
   */
  anonymous?: boolean;
  publicAction?: Action;
}

/** AccessDenied unless the request's key may do `action` on its bucket (--insecure: everyone may). */
export function requireGrant(s3: Pick<S3Request, "record" | "bucket" | "anonymous" | "publicAction">, action: Action, operation: string): void {
  const record = s3.record;
  if (record === undefined) {
    if (s3.anonymous === true && s3.publicAction !== action) throw s3Errors.accessDenied(`${operation} is refused to anonymous requests: sign it with an access key (mictlanx key create --bucket ${s3.bucket} --allow ${action})`);
    return; // --insecure: everyone may
  }
  if (!grantsAllow(record.grants, s3.bucket, action)) {
    throw s3Errors.accessDenied(`access key ${record.accessKey} may not ${action} bucket ${s3.bucket}, which ${operation} needs (mictlanx key create --bucket ${s3.bucket} --allow ${action})`);
  }
}

/** Whether the request's key holds any grant (read, list, write or delete) on its bucket (--insecure: yes). */
export function hasAnyGrant(s3: Pick<S3Request, "record" | "bucket">): boolean {
  const record = s3.record;
  return record === undefined || actions.some((action) => grantsAllow(record.grants, s3.bucket, action));
}

/** A router call whose failure reads as S3 would say it: a schema refusal is InvalidArgument. */
export async function routerCall<K extends keyof RouterOps>(s3: Pick<S3Request, "call" | "record">, op: K, args: ArgsOf<RouterOps, K>, target: { bucket?: string; key?: string } = {}): Promise<ResultOf<RouterOps, K>> {
  try {
    return await s3.call(op, args, s3.record);
  } catch (error) {
    if (error instanceof ZodError) throw s3Errors.invalidArgument(error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; "));
    throw s3ReplyFor(error, target);
  }
}

/** Whether the bucket exists (a one-ball listing: the SPM says not_found only for a missing bucket). */
export async function bucketExists(s3: S3Request): Promise<boolean> {
  try {
    await routerCall(s3, "ball.list", { bucket: s3.bucket, limit: 1 }, { bucket: s3.bucket });
    return true;
  } catch (error) {
    if (error instanceof S3Reply && error.s3Code === "NoSuchBucket") return false;
    throw error;
  }
}

export async function requireBucket(s3: S3Request): Promise<void> {
  if (!(await bucketExists(s3))) throw s3Errors.noSuchBucket(s3.bucket);
}

/**
 * A header value as its sender wrote it: HTTP carries bytes, which Bun hands over one character
 * per byte (latin1); clients sign (and mean) UTF-8, as in x-amz-meta-* values with accents.
 */
export function utf8HeaderValue(value: string): string {
  if (!/[\u0080-\u00ff]/.test(value)) return value;
  const bytes = Buffer.from(value, "latin1");
  const text = bytes.toString("utf8");
  return Buffer.from(text, "utf8").equals(bytes) ? text : value;
}

/** The tag namespace the gateway keeps S3's own metadata in (protocol/ball.ts reserves it). */
export { s3TagPrefix } from "../../../protocol/ball.ts";
