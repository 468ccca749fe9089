// An upload's intent at the SPM expires when the upload makes no progress for intentTtlMs, so a
// dead router's uploads leave no orphans. An upload that keeps going must keep it alive, however
// slow it is (a `pg_dump | mictlanx put` may take hours): placing chunks extends it, and before
// writing a chunk the router touches the intent when nothing has extended it for a quarter of
// its lifetime. A touch that finds the upload gone (it expired, idle) refuses the chunk before
// any byte goes to a peer, with the SPM's reason.
import type { SpmOps } from "../../protocol/spm.ts";
import type { ServiceCaller } from "../../net/spm-set.ts";
import { systemClock, type Clock } from "../../lib/clock.ts";
import { vssLimits, vssTimings } from "../../lib/limits.ts";
import { Lru } from "../../lib/lru.ts";

/** Touch when less than this share of the intent's lifetime is known to be left. */
const touchAfterShare = 0.25;

export class UploadLeases {
  /** When each upload's intent was last extended (monotonic), as far as this router knows. */
  private readonly renewedMonoMs = new Lru<string, number>(vssLimits.placeAheadUploadsMax);
  private readonly touching = new Map<string, Promise<void>>();
  /** The SPM's intent lifetime, as its last reply said. */
  private ttlMs: number = vssTimings.intentTtlMs;

  constructor(
    private readonly spm: ServiceCaller<SpmOps>,
    private readonly clock: Pick<Clock, "monoMs"> = systemClock,
  ) {}

  /** The SPM just extended this upload (it placed chunks for it, or it was just reserved). */
  renewed(objectId: string, intentTtlMs?: number): void {
    if (intentTtlMs !== undefined) this.ttlMs = intentTtlMs;
    this.renewedMonoMs.set(objectId, this.clock.monoMs());
  }

  /** Before a chunk of this upload goes to peers: make sure its intent is not about to expire. */
  async keep(objectId: string): Promise<void> {
    const last = this.renewedMonoMs.get(objectId);
    if (last !== undefined && this.clock.monoMs() - last < this.ttlMs * touchAfterShare) return;
    let pending = this.touching.get(objectId);
    if (!pending) {
      pending = this.touch(objectId).finally(() => this.touching.delete(objectId));
      this.touching.set(objectId, pending);
    }
    await pending;
  }

  forget(objectId: string): void {
    this.renewedMonoMs.delete(objectId);
  }

  private async touch(objectId: string): Promise<void> {
    const { intentTtlMs } = await this.spm.call("ball.touch", { objectId });
    this.renewed(objectId, intentTtlMs);
  }
}
