// abortMultipartUploadsBefore (multipart.ts) on either engine: the same walk over the staging
// bucket, through CatalogCalls (api.ts), so the SPM's lifecycle pass can run it on a
// CatalogStore. The uploads' layout is src/lib/s3-multipart-layout.ts.
import { limits } from "../lib/limits.ts";
import { assert } from "../lib/assert.ts";
import { multipartDoneTag, multipartPartPrefix, multipartStagingBucket, multipartUploadKeyTag, multipartUploadOf, multipartUploadsPrefix } from "../lib/s3-multipart-layout.ts";
import type { CatalogCalls } from "./api.ts";
import type { AbortUploadsQuery } from "./multipart.ts";
import type { RetireTiming } from "./types.ts";

/** Abort the uploads the query names: each one's parts, then its record. Returns how many (a completed upload's record, also dropped, is not counted). */
export async function abortMultipartUploadsIn(catalog: CatalogCalls, q: AbortUploadsQuery, when: RetireTiming = {}): Promise<number> {
  if ((await catalog.getBucket(multipartStagingBucket)) === undefined) return 0; // no upload was ever made
  let aborted = 0;
  let after: string | undefined;
  do {
    const page = await catalog.listBalls({ bucket: multipartStagingBucket, prefix: multipartUploadsPrefix(q.bucket), limit: limits.listPageMax, ...(after === undefined ? {} : { after }) });
    for (const record of page.balls) {
      const key = record.tags[multipartUploadKeyTag];
      if (key === undefined || record.createdMs >= q.beforeMs || !key.startsWith(q.keyPrefix)) continue;
      await abortUpload(catalog, record.key, when);
      if (record.tags[multipartDoneTag] === undefined) aborted += 1;
    }
    after = page.next;
  } while (after !== undefined);
  return aborted;
}

async function abortUpload(catalog: CatalogCalls, uploadKey: string, when: RetireTiming): Promise<void> {
  const { uploadId } = multipartUploadOf(uploadKey);
  assert(uploadId !== "", `an upload record's key names its upload: ${uploadKey}`);
  let after: string | undefined;
  do {
    const batch = await catalog.deleteBalls({ bucket: multipartStagingBucket, prefix: multipartPartPrefix(uploadId), limit: limits.deleteBatchBallsMax, chunksMax: limits.deleteBatchChunksMax, ...(after === undefined ? {} : { after }) }, when);
    after = batch?.next;
  } while (after !== undefined);
  await catalog.deleteBall(multipartStagingBucket, uploadKey, when);
}
