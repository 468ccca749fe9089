// The lifecycle rule AbortIncompleteMultipartUpload, applied by the SPM's lifecycle pass: each
// enabled rule of a bucket aborts the S3 multipart uploads begun before its cut-off under its
// prefix (src/catalog/multipart.ts: their parts and records are retired like deleted balls, so
// their chunks are garbage-collected). The gateway's own lifetime (s3MultipartUploadMsMax) is
// the routers' sweep; a rule only shortens it.
import { abortMultipartUploadsBefore, type GroupWrite, type RetireTiming } from "../../catalog/index.ts";
import { uploadsBegunBeforeMs } from "../../s3/lifecycle.ts";
import type { AbortIncompleteUploads } from "./lifecycle.ts";

/** `persist`: the SPM's write batcher, so each rule's abort is one fenced group (bounded by the uploads of one prefix). */
export function abortIncompleteUploadsIn(persist: <T>(write: GroupWrite<T>) => Promise<T>, retireNow: () => RetireTiming): AbortIncompleteUploads {
  return async (bucket, config, nowMs) => {
    let aborted = 0;
    for (const rule of config.rules) {
      if (!rule.enabled || rule.abortIncompleteDays === undefined) continue;
      const query = { bucket, keyPrefix: rule.prefix, beforeMs: uploadsBegunBeforeMs(rule.abortIncompleteDays, nowMs) };
      const timing = retireNow(); // once: the batcher may run the write again
      aborted += await persist((tx) => abortMultipartUploadsBefore(tx, query, timing));
    }
    return aborted;
  };
}
