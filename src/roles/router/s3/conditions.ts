// S3's conditional requests. Reads (GetObject, HeadObject) and a copy's source follow RFC 7232
// as S3 applies it: If-Match, then If-Unmodified-Since (ignored when If-Match is there) fail
// with 412; then If-None-Match, then If-Modified-Since (ignored when If-None-Match is there)
// answer 304 Not Modified on a read, 412 on a copy source. Writes (PutObject, CopyObject's
// destination): `If-None-Match: *` commits only where no object is, `If-Match: "etag"` only
// over that very object; both are checked again inside the SPM's commit transaction (ifAbsent,
// expectedObjectId), so of two racing conditional writers at most one succeeds.
import type { BallMetaWire } from "../../../protocol/ball.ts";
import { routerCall, type S3Request } from "./context.ts";
import { S3Reply, s3Errors } from "./xml.ts";

/** The four conditions' header names: a read's own, or a copy source's (x-amz-copy-source-if-…). */
export interface ConditionHeaders {
  ifMatch: string;
  ifNoneMatch: string;
  ifModifiedSince: string;
  ifUnmodifiedSince: string;
}
export const readConditions: ConditionHeaders = { ifMatch: "if-match", ifNoneMatch: "if-none-match", ifModifiedSince: "if-modified-since", ifUnmodifiedSince: "if-unmodified-since" };
export const copySourceConditions: ConditionHeaders = {
  ifMatch: "x-amz-copy-source-if-match",
  ifNoneMatch: "x-amz-copy-source-if-none-match",
  ifModifiedSince: "x-amz-copy-source-if-modified-since",
  ifUnmodifiedSince: "x-amz-copy-source-if-unmodified-since",
};

/** What a read answers: the object, or 304 (only for a read; a copy source turns it into 412). */
export type ConditionOutcome = "proceed" | "not-modified";

/** Whether an If-Match / If-None-Match list names `etag` (quoted or not; `*` names any object). */
export function etagListMatches(header: string, etag: string): boolean {
  const bare = unquote(etag);
  return header.split(",").some((item) => {
    const candidate = item.trim();
    return candidate === "*" || unquote(candidate.replace(/^W\//, "")) === bare;
  });
}

function unquote(text: string): string {
  return text.startsWith('"') && text.endsWith('"') && text.length >= 2 ? text.slice(1, -1) : text;
}

/** An HTTP date, or undefined when it is not one (S3 ignores a date condition it cannot read). */
function httpDateMs(text: string | null): number | undefined {
  if (text === null) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Last-Modified has whole seconds: conditions compare at that resolution. */
function lastModifiedSeconds(ball: Pick<BallMetaWire, "createdMs">): number {
  return Math.floor(ball.createdMs / 1000);
}

function failed(condition: string): S3Reply {
  return new S3Reply("PreconditionFailed", 412, `At least one of the pre-conditions you specified did not hold: ${condition}`, { Condition: condition });
}

/** S3's precedence over the four conditions for the object `ball` with ETag `etag`. Throws 412. */
export function evaluateConditions(s3: Pick<S3Request, "request">, ball: Pick<BallMetaWire, "createdMs">, etag: string, names: ConditionHeaders): ConditionOutcome {
  const headers = s3.request.headers;
  const modified = lastModifiedSeconds(ball);
  const ifMatch = headers.get(names.ifMatch);
  if (ifMatch !== null) {
    if (!etagListMatches(ifMatch, etag)) throw failed(names.ifMatch);
  } else {
    const since = httpDateMs(headers.get(names.ifUnmodifiedSince));
    if (since !== undefined && modified > Math.floor(since / 1000)) throw failed(names.ifUnmodifiedSince);
  }
  const ifNoneMatch = headers.get(names.ifNoneMatch);
  if (ifNoneMatch !== null) return etagListMatches(ifNoneMatch, etag) ? "not-modified" : "proceed";
  const since = httpDateMs(headers.get(names.ifModifiedSince));
  if (since !== undefined && modified <= Math.floor(since / 1000)) return "not-modified";
  return "proceed";
}

/** For a copy source a "not modified" is a failed precondition too. */
export function requireCopySourceConditions(s3: Pick<S3Request, "request">, ball: Pick<BallMetaWire, "createdMs">, etag: string): void {
  if (evaluateConditions(s3, ball, etag, copySourceConditions) === "not-modified") {
    throw failed(s3.request.headers.has(copySourceConditions.ifNoneMatch) ? copySourceConditions.ifNoneMatch : copySourceConditions.ifModifiedSince);
  }
}

/** A write's precondition for the SPM's commit: `ifAbsent`, or the objectId the key must still hold. */
export interface WriteCondition {
  ifAbsent?: true;
  expectedObjectId?: string;
}

/**
 * If-None-Match: * and If-Match on a write. If-Match is checked here against the current object
 * (412 when its ETag differs; NoSuchKey when there is none, as S3 answers) and then again by the
 * commit, which must still find that very version: a write in between makes this one fail.
 */
export async function writeCondition(s3: S3Request, etagOf: (ball: BallMetaWire) => string): Promise<WriteCondition> {
  const ifNoneMatch = s3.request.headers.get("if-none-match");
  const ifMatch = s3.request.headers.get("if-match");
  if (ifNoneMatch !== null && ifMatch !== null) throw s3Errors.notImplemented("a write with both If-Match and If-None-Match");
  if (ifNoneMatch !== null) {
    if (ifNoneMatch.trim() !== "*") throw s3Errors.notImplemented(`If-None-Match: ${ifNoneMatch} on a write (S3 takes only If-None-Match: *)`);
    return { ifAbsent: true };
  }
  if (ifMatch === null) return {};
  const current = await routerCall(s3, "ball.stat", { bucket: s3.bucket, key: s3.key }, { bucket: s3.bucket, key: s3.key });
  if (!etagListMatches(ifMatch, etagOf(current))) throw failed("If-Match");
  return { expectedObjectId: current.objectId };
}
