// Bounds bytes in flight (e.g. chunk writes a router has outstanding to peers). A request
// larger than the whole budget is let through alone, so it can never wait forever.
import { assert } from "./assert.ts";

export class ByteBudget {
  private used = 0;
  private readonly waiters: Array<{ bytes: number; resolve: () => void }> = [];

  constructor(readonly bytesMax: number) {
    assert(bytesMax > 0, "byte budget must be positive");
  }

  get inUse(): number {
    return this.used;
  }

  async acquire(bytes: number): Promise<void> {
    if (this.fits(bytes) && this.waiters.length === 0) {
      this.used += bytes;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push({ bytes, resolve }));
  }

  release(bytes: number): void {
    this.used -= bytes;
    assert(this.used >= 0, "byte budget released more than acquired");
    while (this.waiters.length > 0) {
      const next = this.waiters[0];
      if (!next || !this.fits(next.bytes)) break;
      this.waiters.shift();
      this.used += next.bytes;
      next.resolve();
    }
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.bytesMax;
  }
}
