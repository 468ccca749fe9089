// A token bucket for throttling bytes per second (healing must not crowd out clients). Time is
// monotonic (src/lib/clock.ts): a wall clock stepped back would otherwise stall it.
import { systemClock, type Clock } from "./clock.ts";

export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly clock: Pick<Clock, "monoMs"> = systemClock,
    private readonly sleep: (ms: number) => Promise<unknown> = (ms) => Bun.sleep(ms),
  ) {
    this.tokens = burst;
    this.lastMs = clock.monoMs();
  }

  /** Wait until `amount` tokens are available, then take them. Amounts over the burst pass alone. */
  async take(amount: number): Promise<void> {
    for (;;) {
      this.refill(this.clock.monoMs());
      const need = Math.min(amount, this.burst);
      if (this.tokens >= need) {
        this.tokens -= need;
        return;
      }
      await this.sleep(Math.ceil(((need - this.tokens) * 1000) / this.ratePerSec));
    }
  }

  private refill(nowMs: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, nowMs - this.lastMs) * this.ratePerSec) / 1000);
    this.lastMs = nowMs;
  }
}
