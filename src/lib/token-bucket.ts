// A token bucket for throttling bytes per second (healing must not crowd out clients).
export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    nowMs = Date.now(),
  ) {
    this.tokens = burst;
    this.lastMs = nowMs;
  }

  /** Wait until `amount` tokens are available, then take them. Amounts over the burst pass alone. */
  async take(amount: number): Promise<void> {
    for (;;) {
      this.refill(Date.now());
      const need = Math.min(amount, this.burst);
      if (this.tokens >= need) {
        this.tokens -= need;
        return;
      }
      await Bun.sleep(Math.ceil(((need - this.tokens) * 1000) / this.ratePerSec));
    }
  }

  private refill(nowMs: number): void {
    this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.lastMs) * this.ratePerSec) / 1000);
    this.lastMs = nowMs;
  }
}
