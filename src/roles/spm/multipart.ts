// The lifecycle rule AbortIncompleteMultipartUpload, applied by the SPM's lifecycle pass: each
// enabled rule of a bucket aborts the S3 multipart uploads begun before its cut-off under its
// prefix (src/catalog/multipart.ts: their parts and records are retired like deleted balls, so
// their chunks are garbage-collected). The gateway's own lifetime (s3MultipartUploadMsMax) is
// the routers' sweep; a rule only shortens it.
import { abortMultipartUploadsBefore, type CatalogCalls, type RetireTiming } from "../../catalog/index.ts";
import { uploadsBegunBeforeMs } from "../../s3/lifecycle.ts";
import type { AbortIncompleteUploads } from "./lifecycle.ts";

export function abortIncompleteUploadsIn(catalog: CatalogCalls, retireNow: () => RetireTiming): AbortIncompleteUploads {
  return async (bucket, config, nowMs) => {
    let aborted = 0;
    for (const rule of config.rules) {
      if (!rule.enabled || rule.abortIncompleteDays === undefined) continue;
      aborted += await abortMultipartUploadsBefore(catalog, { bucket, keyPrefix: rule.prefix, beforeMs: uploadsBegunBeforeMs(rule.abortIncompleteDays, nowMs) }, retireNow());
    }
    return aborted;
  };
}
