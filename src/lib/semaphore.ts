// A counting semaphore with a FIFO wait queue: bounds in-flight work without busy loops.
import { assert } from "./assert.ts";

export class Semaphore {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly permits: number) {
    assert(Number.isInteger(permits) && permits > 0, "semaphore needs at least one permit");
    this.available = permits;
  }

  get inUse(): number {
    return this.permits - this.available;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  tryAcquire(): boolean {
    if (this.available === 0) return false;
    this.available -= 1;
    return true;
  }

  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) {
      next(); // hand the permit straight over: `available` stays the same
      return;
    }
    this.available += 1;
    assert(this.available <= this.permits, "semaphore released more than acquired");
  }

  async with<T>(work: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await work();
    } finally {
      this.release();
    }
  }
}
