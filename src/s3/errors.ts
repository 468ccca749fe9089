// Errors the S3 gateway answers with: each carries the S3 error code a client's SDK switches on,
// the HTTP status S3 sends with it, and the extra elements S3 puts in its XML error body
// (the canonical request of a SignatureDoesNotMatch, the region of an
// AuthorizationHeaderMalformed, …), in the order they are to be written.
import { MictlanxError } from "../lib/errors.ts";

/** The S3 error codes this layer raises, with the HTTP status S3 answers each with. */
export const s3ErrorStatus = {
  AccessDenied: 403,
  SignatureDoesNotMatch: 403,
  InvalidAccessKeyId: 403,
  RequestTimeTooSkewed: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  InvalidRequest: 400,
  InvalidArgument: 400,
  IncompleteBody: 400,
  XAmzContentSHA256Mismatch: 400,
  MissingContentLength: 411,
  MalformedXML: 400,
  MalformedACLError: 400,
  NotImplemented: 501,
} as const;
export type S3ErrorCode = keyof typeof s3ErrorStatus;

export class S3Error extends MictlanxError {
  readonly s3Code: S3ErrorCode;
  readonly httpStatus: number;
  /** Elements of the XML error body beside Code and Message, e.g. `{ Region: "us-east-1" }`. */
  readonly fields: Readonly<Record<string, string>>;
  constructor(s3Code: S3ErrorCode, message: string, fields: Record<string, string> = {}) {
    const httpStatus = s3ErrorStatus[s3Code];
    super(httpStatus === 403 ? "forbidden" : "bad_request", message);
    this.name = "S3Error";
    this.s3Code = s3Code;
    this.httpStatus = httpStatus;
    this.fields = fields;
  }
}
