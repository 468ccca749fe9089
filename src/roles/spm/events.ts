// The SPM's recent events (peers joining and leaving, healing, refusals, errors), newest last,
// kept for `status` and the TUI; bounded by vssLimits.eventsKept. Times are wall-clock: they
// are shown to people.
import type { VssStatus } from "../../protocol/spm.ts";
import type { Clock } from "../../lib/clock.ts";
import { vssLimits } from "../../lib/limits.ts";

export type SpmEvent = VssStatus["events"][number];

export class EventLog {
  private readonly events: SpmEvent[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly log?: (line: string) => void,
  ) {}

  add(kind: string, message: string): void {
    this.events.push({ atMs: this.clock.wallMs(), kind, message });
    if (this.events.length > vssLimits.eventsKept) this.events.shift();
    this.log?.(message);
  }

  recent(count: number): SpmEvent[] {
    return this.events.slice(-count);
  }
}
