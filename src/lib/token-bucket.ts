// A token bucket for throttling bytes per second (healing and scrubbing must not crowd out
// clients). Time is monotonic (src/lib/clock.ts): a wall clock stepped back would stall it.

/** Where a bucket reads the (monotonic) time and how it waits; a test injects a stepped one. */
export interface BucketClock {
  nowMs(): number;
  sleep(ms: number): Promise<void>;
}

const monotonicClock: BucketClock = { nowMs: () => performance.now(), sleep: (ms) => Bun.sleep(ms) };

export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly clock: BucketClock = monotonicClock,
  ) {
    this.tokens = burst;
    this.lastMs = clock.nowMs();
  }

  /** Wait until `amount` tokens are available, then take them. Amounts over the burst pass alone. */
  async take(amount: number): Promise<void> {
    for (;;) {
      const waitMs = this.tryTake(amount);
      if (waitMs === 0) return;
      await this.clock.sleep(waitMs);
    }
  }

  /**
   * Take `amount` tokens now (capped at the burst, as in take) and return 0, or take nothing and
   * return how many ms until they could be taken: for a caller whose wait must be interruptible.
   */
  tryTake(amount: number): number {
    this.refill(this.clock.nowMs());
    const need = Math.min(amount, this.burst);
    if (this.tokens >= need) {
      this.tokens -= need;
      return 0;
    }
    return Math.max(1, Math.ceil(((need - this.tokens) * 1000) / this.ratePerSec));
  }

  private refill(nowMs: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, nowMs - this.lastMs) * this.ratePerSec) / 1000);
    this.lastMs = nowMs;
  }
}
