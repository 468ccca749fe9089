// The routers the SPM has heard from, for `status` and the TUI: their counters, rates between
// heartbeats, and a state like a peer's (up → suspect → down by the age of the last heartbeat,
// monotonic). The table is keyed by what routers send (their address), so it is bounded
// (least recently heard from goes first) and forgets a router silent for routerForgetAfterMs.
import type { RouterCounters, VssStatus } from "../../protocol/spm.ts";
import type { Clock } from "../../lib/clock.ts";
import { vssLimits, vssTimings } from "../../lib/limits.ts";
import type { RegistryTimings } from "./registry.ts";

interface RouterSeen {
  lastSeenMonoMs: number;
  counters: RouterCounters;
  rates: { requestsPerSec: number; putsPerSec: number; getsPerSec: number; bytesInPerSec: number; bytesOutPerSec: number };
}

export class RouterTable {
  /** In order of last heartbeat, oldest first (a Map keeps insertion order; a heartbeat re-inserts). */
  private readonly routers = new Map<string, RouterSeen>();

  constructor(
    private readonly clock: Clock,
    private readonly timings: RegistryTimings,
  ) {}

  heartbeat(address: string, counters: RouterCounters): void {
    const nowMs = this.clock.monoMs();
    const seen = this.routers.get(address);
    const elapsedMs = seen ? nowMs - seen.lastSeenMonoMs : 0;
    // A counter that went down means the router restarted: no rate across that.
    const rate = (now: number, before: number | undefined) => (before !== undefined && elapsedMs > 0 && now >= before ? ((now - before) * 1000) / elapsedMs : 0);
    const rates = {
      requestsPerSec: rate(counters.requests, seen?.counters.requests),
      putsPerSec: rate(counters.puts, seen?.counters.puts),
      getsPerSec: rate(counters.gets, seen?.counters.gets),
      bytesInPerSec: rate(counters.bytesIn, seen?.counters.bytesIn),
      bytesOutPerSec: rate(counters.bytesOut, seen?.counters.bytesOut),
    };
    this.routers.delete(address);
    this.routers.set(address, { lastSeenMonoMs: nowMs, counters, rates });
    this.forget(nowMs);
  }

  status(): VssStatus["routers"] {
    const nowMs = this.clock.monoMs();
    this.forget(nowMs);
    return [...this.routers.entries()].map(([address, seen]) => {
      const ageMs = nowMs - seen.lastSeenMonoMs;
      const state = ageMs >= this.timings.downAfterMs ? "down" : ageMs >= this.timings.suspectAfterMs ? "suspect" : "up";
      return { address, state, lastHeartbeatAgeMs: Math.round(ageMs), ...seen.counters, ...seen.rates };
    });
  }

  get size(): number {
    return this.routers.size;
  }

  /** Drop routers silent too long, and the oldest past the bound. */
  private forget(nowMs: number): void {
    for (const [address, seen] of this.routers) {
      const tooMany = this.routers.size > vssLimits.routersTrackedMax;
      if (!tooMany && nowMs - seen.lastSeenMonoMs < vssTimings.routerForgetAfterMs) break; // the rest are newer
      this.routers.delete(address);
    }
  }
}
