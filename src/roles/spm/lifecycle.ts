// The SPM's lifecycle pass (issue 13): applies the buckets' S3 lifecycle rules, kept in the
// catalog by the gateway's PutBucketLifecycleConfiguration. Each pass, at most every
// `intervalMs` (spm --lifecycle-every), walks the buckets that have a configuration and, in
// each, the key ranges its Expiration rules cover; a ball past its expiry (src/s3/lifecycle.ts)
// is deleted through the catalog's ordinary delete, retired with the readers' grace, so its
// chunks are garbage-collected as a DeleteObject's are. One pass looks at no more than
// lifecycleBallsScannedPerPassMax balls and deletes no more than lifecycleBallsDeletedPerPassMax,
// and the next one goes on where it stopped.
import type { Manifests, PendingManifest } from "./manifests.ts";
import type { CatalogStore } from "../../catalog/index.ts";
import type { Clock } from "../../lib/clock.ts";
import { assert } from "../../lib/assert.ts";
import { toMictlanxError } from "../../lib/errors.ts";
import { limits } from "../../lib/limits.ts";
import type { RetireTiming } from "../../catalog/index.ts";
import { expiringPrefixes, isExpired, lifecycleConfiguration, type LifecycleConfiguration } from "../../s3/lifecycle.ts";
import type { AuditTrail } from "./audit.ts";

/**
 * Abort the multipart uploads of `bucket` that its AbortIncompleteMultipartUpload rules say are
 * due at `nowMs` (src/s3/lifecycle.ts uploadAbortAtMs); returns how many. Multipart uploads are
 * another part of the gateway: it passes this in when it is there (see spm.ts).
 */
export type AbortIncompleteUploads = (bucket: string, config: LifecycleConfiguration, nowMs: number) => Promise<number>;

export interface LifecycleDeps {
  catalog: CatalogStore;
  audit: AuditTrail;
  clock: Clock;
  retireNow: () => RetireTiming;
  intervalMs: number;
  event: (kind: string, message: string) => void;
  abortIncompleteUploads?: AbortIncompleteUploads;
  /** Each expired ball's tombstone goes to its peers (docs/recovery.md). */
  manifests: Manifests;
}

/** Where the walk stopped: the bucket, which of its expiring prefixes, the last key looked at. */
interface Cursor {
  bucket: string;
  prefixIndex: number;
  after?: string;
}

export class LifecyclePass {
  private lastMonoMs: number | undefined;
  private running = false;
  private cursor: Cursor | undefined;
  /** Totals since the SPM started. */
  readonly totals = { passes: 0, expired: 0, abortedUploads: 0 };

  constructor(private readonly deps: LifecycleDeps) {
    assert(deps.intervalMs >= 1, `lifecycle interval ${deps.intervalMs} ms`);
  }

  /** A pass if one is due and none is running; never throws (failures are events). */
  async tick(): Promise<void> {
    const now = this.deps.clock.monoMs();
    if (this.running || (this.lastMonoMs !== undefined && now - this.lastMonoMs < this.deps.intervalMs)) return;
    this.running = true;
    this.lastMonoMs = now;
    try {
      await this.pass(this.deps.clock.wallMs());
    } catch (error) {
      this.deps.event("lifecycle_failed", `lifecycle pass: ${toMictlanxError(error).message}; it is tried again in ${this.deps.intervalMs} ms`);
    } finally {
      this.running = false;
    }
  }

  /** One bounded pass at wall time `nowMs`. */
  async pass(nowMs: number): Promise<{ scanned: number; expired: number }> {
    const budget = { scanned: 0, expired: 0 };
    let from = this.cursor?.bucket ?? "";
    let seen: string | undefined;
    for (;;) {
      const page = await this.deps.catalog.bucketsWithSetting("lifecycle", from, limits.listPageMax);
      for (const { bucket, value } of page) {
        if (bucket === seen) continue; // the page starts at the last bucket of the one before
        const config = lifecycleConfiguration.parse(JSON.parse(value));
        const done = await this.bucketPass(bucket, config, nowMs, budget);
        if (!done) return this.finish(budget);
      }
      if (page.length < limits.listPageMax) break;
      from = seen = page[page.length - 1]!.bucket;
    }
    this.cursor = undefined; // every bucket seen: the next pass starts from the first
    return this.finish(budget);
  }

  private finish(budget: { scanned: number; expired: number }) {
    this.totals.passes += 1;
    this.totals.expired += budget.expired;
    if (budget.expired > 0) this.deps.event("lifecycle_expired", `lifecycle rules expired ${budget.expired} balls (${budget.scanned} looked at)`);
    return budget;
  }

  /** One bucket from the cursor; false when the pass's budget ran out in it (the cursor then says where). */
  private async bucketPass(bucket: string, config: LifecycleConfiguration, nowMs: number, budget: { scanned: number; expired: number }): Promise<boolean> {
    const resume = this.cursor?.bucket === bucket ? this.cursor : undefined;
    if (resume === undefined && this.deps.abortIncompleteUploads) this.totals.abortedUploads += await this.deps.abortIncompleteUploads(bucket, config, nowMs);
    const prefixes = expiringPrefixes(config);
    for (let index = resume?.prefixIndex ?? 0; index < prefixes.length; index += 1) {
      const prefix = prefixes[index]!;
      let after = resume?.prefixIndex === index ? resume.after : undefined;
      for (;;) {
        if (budget.scanned >= limits.lifecycleBallsScannedPerPassMax || budget.expired >= limits.lifecycleBallsDeletedPerPassMax) {
          this.cursor = { bucket, prefixIndex: index, ...(after === undefined ? {} : { after }) };
          return false;
        }
        const room = Math.min(limits.deleteBatchBallsMax, limits.lifecycleBallsScannedPerPassMax - budget.scanned);
        const page = await this.deps.catalog.listBalls({ bucket, ...(prefix === "" ? {} : { prefix }), ...(after === undefined ? {} : { after }), limit: room });
        budget.scanned += page.balls.length;
        const expired = page.balls.filter((ball) => isExpired(config, ball.key, ball.createdMs, nowMs)).slice(0, limits.lifecycleBallsDeletedPerPassMax - budget.expired);
        budget.expired += await this.expire(bucket, prefix, expired);
        assert(budget.scanned <= limits.lifecycleBallsScannedPerPassMax && budget.expired <= limits.lifecycleBallsDeletedPerPassMax, `a lifecycle pass went past its bounds (${budget.scanned} scanned, ${budget.expired} expired)`);
        const last = page.balls[page.balls.length - 1];
        if (page.next === undefined || last === undefined) break;
        after = last.key;
      }
    }
    return true;
  }

  /** Delete these versions (each only if it is still the key's live one: a put since wins), in one write. */
  private async expire(bucket: string, prefix: string, balls: Array<{ key: string; objectId: string }>): Promise<number> {
    if (balls.length === 0) return 0;
    const timing = this.deps.retireNow(); // once: the batcher may run the write again
    const entry = { actor: { accessKey: null, remote: "spm lifecycle" }, action: "lifecycle.expire", target: `${bucket}/${prefix}*` };
    const { count: deleted, tombstones } = await this.deps.audit.write(entry, async (tx) => {
      const tombstones: PendingManifest[] = [];
      for (const ball of balls) {
        if ((await tx.getBallMeta(bucket, ball.key))?.objectId !== ball.objectId) continue;
        const done = await this.deps.manifests.deleteBall(tx, bucket, ball.key, timing);
        if (done) tombstones.push(done.tombstone);
      }
      return { count: tombstones.length, tombstones };
    });
    await this.deps.manifests.deliver(tombstones); // a failure ends the pass: tick() reports it and tries again later
    assert(deleted >= 0 && deleted <= balls.length, `lifecycle deleted ${deleted} of ${balls.length} balls`);
    return deleted;
  }
}
