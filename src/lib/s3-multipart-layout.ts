// Where S3 multipart uploads are kept in the catalog (src/roles/router/s3/multipart.ts writes
// them, src/catalog/multipart.ts aborts them by age): balls of one staging bucket, whose name S3
// cannot create (the underscore), so no S3 client ever sees or writes it.
//   u/<bucket>/<uploadId>   the upload: an empty ball; tag `s3:mpu-key` holds the object's key,
//                           createdMs is when it began (its lifetime runs from there)
//                           (once completed: only `s3:mpu-done`, the ETag, until it is swept)
//   p/<uploadId>/<NNNNN>    part NNNNN (five digits, so the catalog's key order is part order)

export const multipartStagingBucket = "_s3-multipart";
export const multipartUploadKeyTag = "s3:mpu-key";
/** On a completed upload's record (its parts deleted): the object's ETag, so a retried Complete succeeds again. */
export const multipartDoneTag = "s3:mpu-done";
/** An upload id: 32 lowercase hex digits (a random UUID without its dashes). */
export const multipartUploadIdPattern = /^[0-9a-f]{32}$/;

export function multipartUploadKey(bucket: string, uploadId: string): string {
  return `u/${bucket}/${uploadId}`;
}
export function multipartUploadsPrefix(bucket?: string): string {
  return bucket === undefined ? "u/" : `u/${bucket}/`;
}
export function multipartPartPrefix(uploadId: string): string {
  return `p/${uploadId}/`;
}
export function multipartPartKey(uploadId: string, partNumber: number): string {
  return `${multipartPartPrefix(uploadId)}${String(partNumber).padStart(5, "0")}`;
}
/** The bucket and upload id an upload's key names. */
export function multipartUploadOf(uploadKey: string): { bucket: string; uploadId: string } {
  const [, bucket = "", uploadId = ""] = uploadKey.split("/");
  return { bucket, uploadId };
}
